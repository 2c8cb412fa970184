"""`hybrid-monitor` (also `hybrid report`): the seed's flags, plus --json, --since/--until,
--project and --prices. ``main(argv) -> int``: 0 done, 1 nothing to report on yet (or an unknown
story), 2 a bad argument or setting (docs/cli.md). Errors are one line on stderr, never a traceback."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

from mcp_server.cli_grammar import (
    EXIT_NOT_FOUND, EXIT_USAGE, UnknownStory, add_version, check_known, exit_code, known_stories, story_list,
)
from mcp_server.config import ConfigError, load_settings, project_root
from mcp_server.errors import HybridError
from mcp_server.ledger import LEDGER_RELATIVE
from mcp_server.monitor.dashboard import render_dashboard
from mcp_server.monitor.inputs import MonitorArgumentError, MonitorInputError, parse_bound
from mcp_server.monitor.load import load_input
from mcp_server.monitor.money import unpriced_baseline
from mcp_server.monitor.render_json import report_json
from mcp_server.monitor.render_md import render_markdown
from mcp_server.monitor.render_scorecard import scorecard_json, scorecard_markdown
from mcp_server.monitor.report import build_report
from mcp_server.pricing import PriceTable, PriceTableError

ACTIONS = ("report", "dashboard", "all")
DEFAULT_DASHBOARD = LEDGER_RELATIVE.parent / "dashboard.html"
DIR_NAMES = {"report": "hybrid-report", "dashboard": "hybrid-dashboard"}
KNOWN_SUFFIXES = (".md", ".markdown", ".html", ".htm", ".json")


class UsageProblem(Exception):
    """A flag or file that cannot be used: exit 2."""


def build_parser(prog: str = "hybrid-monitor") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Cost against Claude-only, quality and a verdict for stories run through the hybrid pipeline.",
        epilog="Method: docs/cost-method.md. Dashboard and flags: docs/monitor.md. Exit codes: 0 done, 1 nothing "
               "to report on (an unknown story, nothing recorded yet), 2 a bad argument or setting (docs/cli.md).",
    )
    add_version(parser)
    parser.add_argument("--stories", nargs="*", help="story ids: 01.2,01.3 or 01.2 01.3 (default: every story with a checkpoint)")
    parser.add_argument("--action", choices=ACTIONS, default="report",
                        help="report: Markdown (JSON with --json); dashboard: one self-contained HTML file; all: both")
    parser.add_argument("--output", help=(
        "report/dashboard: the file to write. all: a directory (existing, or ending in /) that gets "
        "hybrid-report.md and hybrid-dashboard.html, else a stem: STEM.md and STEM.html (a .md/.html/.json "
        "suffix is dropped). Default: the report to stdout, the dashboard to .claude/hybrid/dashboard.html"
    ))
    parser.add_argument("--json", action="store_true", help="the report as JSON (machine-readable totals) instead of Markdown")
    parser.add_argument("--models", action="store_true", help=(
        "the report is the per-model scorecard instead: calls, tokens, cost, first-attempt test pass rate, fix rounds, "
        "and the review score, REQUEST_CHANGES rate and AC pass rate of the stories each model wrote (the dashboard always has it)"
    ))
    parser.add_argument("--since", help="only ledger usage from this date/time on (YYYY-MM-DD or ISO 8601; UTC when no zone)")
    parser.add_argument("--until", help="only ledger usage before this date/time (a bare date: up to the end of that day)")
    parser.add_argument("--project", help="the project directory (default: $CLAUDE_PROJECT_DIR, else the current directory)")
    parser.add_argument("--prices", help="a YAML price file (prices.yaml's shape: models: {id: {input, output, ...}}) over the shipped prices and your overrides")
    parser.add_argument("--note", help="a line shown under the title of the report and the dashboard (e.g. where the numbers come from)")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"), help=(
        "two measured runs side by side instead of one report: project folders (PATH, or PATH@RUN_ID for one run), "
        "e.g. the worktrees of `hybrid ab`; Markdown, or JSON with --json (docs/monitor.md)"))
    parser.add_argument("--no-cache", action="store_true",
                        help="parse every checkpoint again; neither read nor write .claude/hybrid/monitor-cache.json")
    return parser


def _stories(values: list[str] | None) -> list[str] | None:
    return story_list(values) or None  # `--stories ""` (an empty /hybrid:report argument) means every story


def _price_rows(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageProblem(f"--prices {path}: cannot be read ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise UsageProblem(f"--prices {path}: not UTF-8 text") from None
    except yaml.YAMLError as error:
        raise UsageProblem(f"--prices {path}: not valid YAML ({error})") from None
    rows = loaded.get("models", loaded) if isinstance(loaded, dict) else None
    if not isinstance(rows, dict) or not all(isinstance(v, dict) for v in rows.values()):
        raise UsageProblem(f"--prices {path}: expected `models:` with one mapping per model id (see mcp_server/data/prices.yaml)")
    return rows


def _targets(args: argparse.Namespace, root: Path) -> dict[str, Path | None]:
    """Where each output goes; None: stdout."""
    report_suffix = ".json" if args.json else ".md"
    out = args.output
    if args.action == "report":
        return {"report": Path(out) if out else None}
    if args.action == "dashboard":
        return {"dashboard": Path(out) if out else root / DEFAULT_DASHBOARD}
    if not out:
        return {"report": None, "dashboard": root / DEFAULT_DASHBOARD}
    path = Path(out)
    if path.is_dir() or out.endswith(("/", "\\")):
        return {"report": path / f"{DIR_NAMES['report']}{report_suffix}", "dashboard": path / f"{DIR_NAMES['dashboard']}.html"}
    stem = path.with_suffix("") if path.suffix.lower() in KNOWN_SUFFIXES else path
    return {"report": Path(f"{stem}{report_suffix}"), "dashboard": Path(f"{stem}.html")}


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise UsageProblem(f"cannot write {path}: {error.strerror or error}") from None


def run(args: argparse.Namespace, stdout=None, stderr=None) -> int:
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    root = Path(args.project).resolve() if args.project else project_root()
    if not root.is_dir():
        raise UsageProblem(f"--project {root}: no such directory")
    settings = load_settings(root)
    overrides = {**settings.prices, **_price_rows(args.prices)}
    prices = PriceTable.load(overrides)
    problems = unpriced_baseline(prices, settings.monitor)
    if problems:
        raise UsageProblem(
            f"a Claude-only baseline needs a price for {'; '.join(problems)} "
            "(add it under `prices:` in .claude/hybrid.yaml, or pick a priced model)"
        )
    if args.compare:
        return _compare(args, settings, prices, stdout, stderr)
    since = parse_bound(args.since) if args.since else None
    until = parse_bound(args.until, end=True) if args.until else None
    if since and until and since >= until:
        raise UsageProblem(f"--since {args.since} is not before --until {args.until}")
    stories = _stories(args.stories)
    data = load_input(root, prices, stories=stories, since=since, until=until, use_cache=not args.no_cache)
    check_known(stories or [], known_stories(root, settings.stories.glob))  # after load_input has checked their form
    report = dataclasses.replace(build_report(data, prices, settings.monitor, profile=settings.profile), note=args.note)
    targets = _targets(args, root)
    if "report" in targets:
        if args.models:
            text = scorecard_json(report) if args.json else scorecard_markdown(report)
        else:
            text = report_json(report) if args.json else render_markdown(report)
        if targets["report"] is None:
            stdout.write(text)
        else:
            _write(targets["report"], text)
            print(f"report: {targets['report']}", file=stderr)
    if "dashboard" in targets:
        html = render_dashboard(report)
        _write(targets["dashboard"], html)
        print(f"dashboard: {targets['dashboard']} ({len(html.encode('utf-8')):,} bytes)", file=stderr)
    return 0


def _compare(args: argparse.Namespace, settings, prices: PriceTable, stdout, stderr) -> int:
    from mcp_server.compare.cli import compare_text  # above the monitor: it reads each side through it

    if args.action != "report" or args.since or args.until:
        raise UsageProblem("--compare makes a report only: --action, --since and --until do not apply (PATH@RUN_ID narrows a side)")
    text = compare_text(args.compare, prices, settings, stories=_stories(args.stories), as_json=args.json, note=args.note)
    if args.output:
        _write(Path(args.output), text)
        print(f"report: {args.output}", file=stderr)
    else:
        stdout.write(text)
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "hybrid-monitor") -> int:
    args = build_parser(prog).parse_args(argv)
    # A report makes many long-lived objects (checkpoints, usage groups, rows) and frees almost
    # none before it ends, so the cyclic collector's passes over them find nothing to free: about
    # a fifth of a cold report's CPU over 1,000 stories (bench/monitor_scale.py). Reference
    # counting still frees everything that is not a cycle; the collector is back on afterwards.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return run(args)
    except (MonitorInputError, UnknownStory) as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except (UsageProblem, MonitorArgumentError, ConfigError, PriceTableError) as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except HybridError as error:  # --compare's errors carry their exit code (docs/cli.md)
        print(f"{prog}: {error}", file=sys.stderr)
        return exit_code(error)
    finally:
        if collecting:
            gc.enable()


if __name__ == "__main__":
    sys.exit(main())
