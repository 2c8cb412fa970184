"""The dashboard: one self-contained HTML file (no network, no CDN, no external font).

Templating: ``string.Template`` from the standard library over three package files
(templates/dashboard.html, .css, .js). Charts: uPlot 1.6.32 (MIT), vendored in
``monitor/vendor`` and inlined. The data is embedded once, as column arrays in one JSON block;
the page builds the charts and the story table from it, so 1,000 stories stay small.
See docs/monitor.md for the choice.
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from string import Template
from typing import Any

from mcp_server.monitor.money import CLAUDE, GLM, PHASES, Money, avoided_text, cell_usd, money_text, savings_cell
from mcp_server.monitor.render_scorecard import COLUMNS as MODEL_COLUMNS, cells as model_cells
from mcp_server.monitor.report import Report
from mcp_server.monitor.rows import NO_PHASE, ORCHESTRATION
from mcp_server.monitor.wording import pct_text

TITLE_CHARS = 60
CHART_NAMES = {ORCHESTRATION: "orch.", NO_PHASE: "no phase"}  # short x labels


@lru_cache(maxsize=None)
def _asset(name: str) -> str:
    return resources.files("mcp_server.monitor").joinpath(name).read_text(encoding="utf-8")


def _num(value: Decimal | float | None, digits: int = 6) -> float | None:
    return None if value is None else round(float(value), digits)


def _script_safe(text: str) -> str:
    """JSON that cannot end its <script> element early."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _avoided_cell(money: Money) -> str:
    """Claude tokens avoided in a story, as the story table shows them: in / cache read / out."""
    if not money.has_data:
        return "no data"
    avoided = money.avoided
    return f"{avoided['input']:,} / {avoided['cache_read']:,} / {avoided['output']:,}"


def dashboard_data(report: Report) -> dict[str, Any]:
    total, q, t = report.total, report.quality, report.time
    headline = {
        "total": _num(total.total) if total.has_data else None,
        "claude": _num(total.claude) if total.has_data else None,
        "glm": _num(total.glm) if total.has_data else None,
        "baseline": _num(total.baseline) if total.has_data else None,
        "savings": _num(total.savings) if total.has_data else None,
        "savings_pct": _num(total.savings_pct, 2),
        "ac": q["ac_pass_rate"],
        "ac_detail": f"{q['acs_passed']}/{q['acs']} ACs; {q['stories_all_pass']}/{q['stories_with_qa']} stories" if q["acs"] else None,
        "coverage": q["coverage_avg"],
        "coverage_detail": f"min {pct_text(q['coverage_min'])}; {q['stories_with_coverage']}/{q['stories']} stories" if q["coverage_avg"] is not None else None,
        "quality": q["quality_avg"],
        "quality_detail": f"min {q['quality_min']:g}; {q['review_rounds_avg']:g} review rounds per story" if q["quality_avg"] is not None else None,
        # The figures as the Markdown report writes them, so both round every value the same way.
        "text": {
            "total": money_text(total.total) if total.has_data else None,
            "claude": money_text(total.claude) if total.has_data else None,
            "glm": money_text(total.glm) if total.has_data else None,
            "baseline": money_text(total.baseline) if total.has_data else None,
            "savings": money_text(total.savings) if total.has_data else None,
            "savings_pct": pct_text(total.savings_pct) if total.has_data else None,
            "ac": pct_text(q["ac_pass_rate"]),
            "coverage": pct_text(q["coverage_avg"]),
            # every baseline, the primary first: [name, Claude-only, savings, savings %]
            "baselines": [
                [name, money_text(total.baseline_at(i)), money_text(total.savings_at(i)), pct_text(total.savings_pct_at(i))]
                for i, name in enumerate(report.baseline_names)
            ] if total.has_data else [],
            "avoided": avoided_text(total),
            "avoided_total": f"{sum(total.avoided.values()):,}" if total.has_data else None,
        },
        "wall": t.get("wall_clock_s"),
        "story_sum": t.get("story_sum_s"),
        "speedup": t.get("speedup"),
        "lower_bound": report.lower_bound,  # the totals are at least what is shown
    }
    rows = report.story_rows
    stories = {
        "id": [r.story for r in rows],
        "title": [(r.title or "")[:TITLE_CHARS] for r in rows],
        "has_cost": [1 if r.money.has_data else 0 for r in rows],
        "claude": [_num(r.money.claude) if r.money.has_data else None for r in rows],
        "glm": [_num(r.money.glm) if r.money.has_data else None for r in rows],
        "base": [_num(r.money.baseline) if r.money.has_data else None for r in rows],
        "savings_pct": [_num(r.money.savings_pct, 2) for r in rows],
        "ac": [_num(r.ac.pct, 2) if r.ac else None for r in rows],
        "ac_text": [f"{r.ac.passed}/{r.ac.total}" if r.ac else "" for r in rows],
        "cov": [_num(r.coverage.percent, 2) if r.coverage else None for r in rows],
        "cov_checkpoint": [1 if r.coverage and r.coverage.how == "checkpoint" else 0 for r in rows],
        "q": [r.quality for r in rows],
        "rounds": [r.review_rounds for r in rows],
        "secs": [_num(r.seconds, 0) for r in rows],
        "next": [r.next_action or r.problem or "" for r in rows],
        "cost_text": [cell_usd(r.money.total, r.money.has_data, r.money.unpriced) for r in rows],
        "base_text": [cell_usd(r.money.baseline, r.money.has_data) for r in rows],
        "savings_text": [savings_cell(r.money) for r in rows],
        "avoided_text": [_avoided_cell(r.money) for r in rows],
        "ac_pct_text": [pct_text(r.ac.pct) if r.ac else None for r in rows],
        "cov_text": [pct_text(r.coverage.percent) if r.coverage else None for r in rows],
    }
    phase_rows = [row for row in report.phase_rows if row.money.has_data]
    phases = {
        "name": [CHART_NAMES.get(row.phase, row.phase) for row in phase_rows],
        "claude": [_num(row.money.claude) for row in phase_rows],
        "glm": [_num(row.money.glm) for row in phase_rows],
        "base": [_num(row.money.baseline) for row in phase_rows],
    }
    timed = [row for row in report.phase_rows if row.phase in PHASES and row.seconds]
    time = {
        "name": [row.phase for row in timed],
        "mean": [_num(row.mean_seconds, 0) for row in timed],
        "total": [_num(row.total_seconds, 0) for row in timed],
    }
    runs = {
        "label": [f"{run.index + 1}: {run.start[:10]}" for run in report.runs],
        "start": [run.start for run in report.runs],
        "per_story": [_num(run.cost_per_story) for run in report.runs],
        "savings": [_num(run.money.savings_pct, 2) for run in report.runs],
        "cost": [_num(run.money.total) for run in report.runs],
    }
    return {
        "meta": {
            "generated_at": report.generated_at,
            "project": report.project,
            "note": report.note,
            "stories": len(report.stories),
            "verdict": report.verdict,
            "verdict_line": report.verdict_line,
            "verdict_text": "VERDICT:" + report.verdict_line.split("VERDICT:", 1)[1],  # without the emoji: no emoji font needed
            "since": report.since,
            "until": report.until,
        },
        "headline": headline,
        "checks": [[c.outcome, c.text + (f"; to change it: {c.fix}" if c.fix else "")] for c in report.checks],
        "primary_baseline": report.primary_baseline,
        "warnings": report.warnings,
        "footnote": report.footnote,
        "thresholds": report.thresholds["thresholds"],
        "stories": stories,
        "phases": phases,
        "time": time,
        "runs": runs,
        "tokens": {side: report.total.tokens[side].as_dict() for side in (CLAUDE, GLM)},
        # the per-model scorecard, its cells as `hybrid report --models` writes them
        "models": {
            "columns": list(MODEL_COLUMNS),
            "rows": [model_cells(score) for score in (report.scorecard.rows if report.scorecard else [])],
            "no_writer": report.scorecard.no_writer if report.scorecard else [],
        },
    }


def render_dashboard(report: Report) -> str:
    data = json.dumps(dashboard_data(report), ensure_ascii=False, separators=(",", ":"))
    title = f"Hybrid AI Batch Report: {len(report.stories)} stories, {report.verdict}"
    if report.total.has_data:
        title += f", {money_text(report.total.total)}"
    return Template(_asset("templates/dashboard.html")).substitute(
        title=title.replace("&", "&amp;").replace("<", "&lt;"),
        uplot_css=_asset("vendor/uPlot.min.css"),
        css=_asset("templates/dashboard.css"),
        data=_script_safe(data),
        uplot_js=_asset("vendor/uPlot.iife.min.js"),
        app_js=_asset("templates/dashboard.js"),
    )
