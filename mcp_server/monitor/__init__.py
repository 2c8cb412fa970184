"""hybrid-monitor: cost against Claude-only, quality and a verdict, as Markdown, JSON and HTML.

The rest of the code imports these names from ``mcp_server.monitor`` and nothing deeper (the
``hybrid-monitor`` entry point is ``mcp_server.monitor.cli``). Each name is imported on first
use, so importing the package for one name does not import the whole report. The coverage file
readers, which the checkpoints use too, live below both in ``mcp_server.coverage``.

Modules, each importing only those before it:
``wording`` (lists, counts, percents);
``inputs`` (what a report reads, as data) and ``cache`` (monitor-cache.json) <- ``ledger_sums``
(the ledger summed in SQL), ``checkpoint_reader`` (the checkpoints, in parallel and cached) and
``story_coverage`` (each story's coverage) <- ``load`` (all of it, once);
``money`` (prices and sums) <- ``rows`` (per story, phase, model, run) <- ``scorecard`` (per
model: usage, first attempts, reviews, ACs), ``verdict`` (checks, footnote) <- ``report`` (the
``Report``) <- ``render_md``, ``render_json``, ``render_scorecard`` (``--models``), ``dashboard``
(the outputs) <- ``cli`` (``hybrid-monitor`` and ``hybrid report``). docs/monitor.md has the rest.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    # what a report reads
    "MonitorInput": "inputs",
    "StoryInput": "inputs",
    "UsageGroup": "inputs",
    "CoverageInfo": "inputs",
    "MonitorInputError": "inputs",
    "MonitorArgumentError": "inputs",
    "parse_bound": "inputs",
    "load_input": "load",
    # the numbers and the verdict
    "unpriced_baseline": "money",
    "money_text": "money",  # dollars as the report shows them (hybrid report --compare too)
    "usd": "money",  # dollars for JSON, to the micro-dollar
    "Report": "report",
    "build_report": "report",
    # the outputs
    "render_markdown": "render_md",
    "report_json": "render_json",
    "render_dashboard": "dashboard",
    # the command
    "main": "cli",
}  # no name here may be a module's name: importing that module would shadow it
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
