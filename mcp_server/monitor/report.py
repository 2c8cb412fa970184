"""The report: every number and the verdict over a ``MonitorInput``, put together from ``money``
(prices and sums), ``rows`` (per story, phase, model and run) and ``verdict`` (checks and the
footnote). Pure: nothing here reads a file; the clock only for ``generated_at`` when not given.
The renderers (``render_md``, ``render_json``, ``dashboard``) only read a ``Report``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from mcp_server.config import MonitorSettings
from mcp_server.monitor.inputs import MonitorInput
from mcp_server.monitor.money import Money, Pricer, usd
from mcp_server.monitor.rows import (
    ModelRow,
    PhaseRow,
    RunRow,
    StoryRow,
    phase_rows,
    quality_summary,
    runs,
    story_rows,
    sum_groups,
    time_summary,
)
from mcp_server.monitor.scorecard import Scorecard, build_scorecard
from mcp_server.monitor.verdict import VERDICT_LINES, Check, data_checks, decide, footnote, verdict_checks
from mcp_server.pricing import PriceTable


@dataclass
class Report:
    generated_at: str
    project: str
    stories: list[str]
    explicit: bool
    since: str | None
    until: str | None
    total: Money
    story_rows: list[StoryRow]
    orchestration: Money
    phase_rows: list[PhaseRow]
    model_rows: list[ModelRow]
    runs: list[RunRow]
    quality: dict[str, Any]
    time: dict[str, Any]
    verdict: str
    checks: list[Check]
    warnings: list[str]
    footnote: str
    thresholds: dict[str, Any]
    baseline: dict[str, str]  # the primary baseline's phase -> model
    baselines: dict[str, dict[str, str]]  # every baseline, the primary first
    unattributed: dict[str, Any]
    price_dates: tuple[str, str] | None
    baseline_is_default: bool = True
    note: str | None = None
    scorecard: Scorecard | None = None  # per model: usage, first attempts, reviews, ACs (monitor/scorecard.py)
    lower_bound: bool = False  # some usage is missing from the transcripts: totals are at least this  # --note: a line under the title, e.g. where the numbers come from

    @property
    def verdict_line(self) -> str:
        return VERDICT_LINES[self.verdict]

    @property
    def baseline_names(self) -> list[str]:
        """The baselines' names in the order of every Money's ``baselines``: the primary first."""
        return list(self.baselines)

    @property
    def primary_baseline(self) -> str:
        return self.baseline_names[0]


def build_report(
    inp: MonitorInput,
    prices: PriceTable,
    monitor: MonitorSettings,
    *,
    generated_at: datetime | None = None,
    profile: str | None = None,
) -> Report:
    """``profile``: the project's profile, named by the savings check's advice when it fails."""
    baselines = {name: dict(monitor.baselines[name]) for name in monitor.baseline_names}
    pricer = Pricer(prices, baselines)
    costs = [pricer.price(group) for group in inp.groups]
    sums = sum_groups(inp.groups, costs, pricer, prices)
    stories = story_rows(inp, sums.per_story)
    phases = phase_rows(sums, stories)
    total, orchestration = sums.total, sums.orchestration
    warnings = list(inp.warnings)
    partial = sum(group.partial for group in inp.groups)
    if partial:
        warnings.append(
            f"lower bound: {partial} Claude request(s) never got their final usage in their transcript (a Claude Code "
            "defect): their output is undercounted, so the totals marked ≥ are at least what is shown"
        )
    warnings += inp.agent_gaps
    extra_checks = data_checks(inp, stories, total, warnings)
    checks = verdict_checks(stories, total, monitor, extra_checks, profile=profile)
    window = inp.unattributed_window
    others_in_window = sorted(
        {g.story for g in inp.other_groups if window and g.last_ts >= window[0] and g.first_ts <= window[1]}
    )
    unattributed = {
        "rule": "sessions and window" if inp.explicit else "all",
        "window": list(window) if window else None,
        "sessions": len(inp.sessions),
        "usd": usd(orchestration.total),
        "other_stories_in_window": len(others_in_window),
        "other_stories_in_sessions": len(inp.other_stories_in_sessions),
    }
    dates = sorted({row.date for row in sums.models.values() if row.date})
    price_dates = (dates[0], dates[-1]) if dates else None
    shipped = MonitorSettings.model_validate({})
    baseline_is_default = monitor.primary_baseline == shipped.primary_baseline and baselines == {
        name: dict(shipped.baselines[name]) for name in shipped.baseline_names
    }
    return Report(
        generated_at=(generated_at or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        project=str(inp.root),
        stories=list(inp.stories),
        explicit=inp.explicit,
        since=inp.since,
        until=inp.until,
        total=total,
        story_rows=stories,
        orchestration=orchestration,
        phase_rows=phases,
        model_rows=sorted(sums.models.values(), key=lambda r: (r.provider, r.model)),
        runs=runs(inp.groups, costs, monitor.run_gap_hours),
        quality=quality_summary(stories),
        time=time_summary(stories),
        verdict=decide(checks),
        checks=checks,
        warnings=warnings,
        footnote=footnote(
            total, orchestration, phases, unattributed, baseline_is_default=baseline_is_default, price_dates=price_dates,
            baselines=baselines,
        ),
        thresholds={
            "thresholds": monitor.thresholds.model_dump(),
            "reject_below": monitor.reject_below.model_dump(),
        },
        baseline=baselines[monitor.primary_baseline],
        baselines=baselines,
        unattributed=unattributed,
        price_dates=price_dates,
        baseline_is_default=baseline_is_default,
        lower_bound=bool(partial or inp.agent_gaps),
        scorecard=build_scorecard(inp, sums.models.values(), stories),
    )
