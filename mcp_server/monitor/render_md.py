"""The Markdown report, in the seed's shape: the headline block first, then the tables."""

from __future__ import annotations

from decimal import Decimal
from typing import Iterable, Sequence

from mcp_server.monitor.money import CLAUDE, GLM, Money, avoided_text, cell_usd, money_text, savings_at_cell, savings_cell
from mcp_server.monitor.report import Report
from mcp_server.monitor.rows import ORCHESTRATION, StoryRow
from mcp_server.monitor.wording import pct_text, stories

NO_DATA = "no data"
HEADLINE_STORIES = 20
BREAK = "  "  # a Markdown hard line break, so the headline keeps one figure per line
MARKS = {"pass": "✓", "fail": "✗", "reject": "✗ hard gate:", "missing": "?"}
SIDE_BY_SIDE = " · "


def _baseline_label(report: Report, index: int) -> str:
    name = report.baseline_names[index]
    return f"with {name} (primary)" if index == 0 else f"with {name}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return NO_DATA
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _stories_line(stories: Sequence[str]) -> str:
    if len(stories) <= HEADLINE_STORIES:
        return ", ".join(stories)
    return f"{len(stories)} stories ({', '.join(stories[:HEADLINE_STORIES])}, …)"


def headline(report: Report) -> list[str]:
    total, q = report.total, report.quality
    if total.has_data:
        at_least = "≥ " if report.lower_bound else ""  # usage missing from the transcripts: see the warnings
        cost = f"Total Cost: {at_least}{money_text(total.total)} (Claude {at_least}{money_text(total.claude)} + GLM {money_text(total.glm)})"
        base = "vs Claude-Only: " + SIDE_BY_SIDE.join(
            f"{money_text(total.baseline_at(i))} {_baseline_label(report, i)}" + ("¹" if i == 0 else "")
            for i in range(len(report.baseline_names))
        )
        savings = "Savings: " + SIDE_BY_SIDE.join(
            f"{money_text(total.savings_at(i))} ({pct_text(total.savings_pct_at(i))}) vs {report.baseline_names[i]}"
            for i in range(len(report.baseline_names))
        )
    else:
        cost, base, savings = f"Total Cost: {NO_DATA}", f"vs Claude-Only: {NO_DATA}¹", f"Savings: {NO_DATA}"
    if total.unpriced:
        cost += f" + unpriced ({', '.join(sorted(total.unpriced))})"
    ac = f"AC Pass Rate: {pct_text(q['ac_pass_rate'])}"
    if q["acs"]:
        ac += f" ({q['acs_passed']}/{q['acs']} ACs; {q['stories_all_pass']}/{q['stories_with_qa']} stories)"
    if q["stories_with_qa"] < q["stories"]:
        ac += f"; no QA results: {stories(q['stories'] - q['stories_with_qa'])}"
    coverage = f"Test Coverage: {pct_text(q['coverage_avg'])}"
    if q["coverage_avg"] is not None:
        coverage += f" avg (min {pct_text(q['coverage_min'])}; {q['stories_with_coverage']}/{q['stories']} stories)"
    quality = "Code Quality: " + (NO_DATA if q["quality_avg"] is None else f"{q['quality_avg']:g}/10 avg")
    if q["quality_avg"] is not None:
        quality += f" (min {q['quality_min']:g}; {q['review_rounds_avg']:g} review rounds per story)"
    return [
        "# Hybrid AI Batch Report",
        "",
        *([f"> {report.note}", ""] if report.note else []),
        f"Stories: {_stories_line(report.stories)}{BREAK}",
        f"{cost}{BREAK}",
        f"{base}{BREAK}",
        f"{savings}{BREAK}",
        f"Claude Tokens Avoided: {avoided_text(total)}",
        "",
        "Quality:",
        f"- {ac}",
        f"- {coverage}",
        f"- {quality}",
        "",
        report.verdict_line,
        "",
        "Reasons:",
        *(f"- {MARKS[check.outcome]} {check.text}" + (f"; to change it: {check.fix}" if check.fix else "") for check in report.checks),
    ]


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return lines


def _tokens(money: Money, which: str) -> str:
    tally = money.tokens[which]
    if not tally.calls:
        return "–"
    return f"{tally.prompt:,} / {tally.cached:,} / {tally.completion:,}"


def _story_cells(row: StoryRow) -> list[str]:
    m = row.money
    has = m.has_data
    if row.ac is None:
        ac = NO_DATA
    else:
        ac = f"{pct_text(row.ac.pct)} ({row.ac.passed}/{row.ac.total})"
        if row.ac.unjudged:
            ac += f", {row.ac.unjudged} not judged"
    if row.coverage is None:
        coverage = NO_DATA
    else:
        coverage = pct_text(row.coverage.percent) + (" (checkpoint)" if row.coverage.how == "checkpoint" else "")
    return [
        row.story,
        cell_usd(m.claude, has, m.unpriced if m.tokens[CLAUDE].calls else ()),
        cell_usd(m.glm, has, m.unpriced if m.tokens[GLM].calls else ()),
        cell_usd(m.total, has, m.unpriced),
        cell_usd(m.baseline, has),
        savings_cell(m),
        ac,
        coverage,
        NO_DATA if row.quality is None else f"{row.quality:g}/10",
        NO_DATA if row.review_rounds is None else str(row.review_rounds),
        duration(row.seconds),
    ]


def story_table(report: Report) -> list[str]:
    header = ["story", "Claude", "GLM", "total", "Claude-only", "savings", "AC pass", "coverage", "quality", "review rounds", "time"]
    rows = [_story_cells(row) for row in report.story_rows]
    o = report.orchestration
    if o.has_data:
        rows.append([ORCHESTRATION, cell_usd(o.claude), cell_usd(o.glm), cell_usd(o.total, True, o.unpriced), cell_usd(o.baseline), savings_cell(o), "", "", "", "", ""])
    t = report.total
    rows.append(["**total**", cell_usd(t.claude, t.has_data), cell_usd(t.glm, t.has_data), cell_usd(t.total, t.has_data, t.unpriced),
                 cell_usd(t.baseline, t.has_data), savings_cell(t), "", "", "", "", duration(report.time.get("wall_clock_s")) + " wall-clock" if report.time.get("data") else ""])
    return ["## Stories", "", *_table(header, rows, "lrrrrrrrrrr")]


def _against_each_cells(name: str, money: Money, count: int) -> list[str]:
    avoided = money.avoided
    cells = [name, *(savings_at_cell(money, i) for i in range(count))]
    if not money.has_data:
        return cells + [NO_DATA] * 5
    return cells + [f"{avoided[kind]:,}" for kind in ("input", "cache_read", "cache_write", "output")] + [f"{sum(avoided.values()):,}"]


def baselines_table(report: Report) -> list[str]:
    """Per story: the savings against every baseline, and the Claude tokens avoided by kind."""
    names = report.baseline_names
    header = ["story", *(f"savings vs {name}" + (" (primary)" if i == 0 else "") for i, name in enumerate(names)),
              "Claude tokens avoided: input", "cache read", "cache write", "output", "total"]
    rows = [_against_each_cells(row.story, row.money, len(names)) for row in report.story_rows]
    if report.orchestration.has_data:
        rows.append(_against_each_cells(ORCHESTRATION, report.orchestration, len(names)))
    rows.append(_against_each_cells("**total**", report.total, len(names)))
    return ["## Against each baseline", "",
            "Savings against every Claude-only baseline, and the Claude tokens the hybrid did not spend (docs/cost-method.md).",
            "", *_table(header, rows, "l" + "r" * (len(names) + 5))]


def phase_table(report: Report) -> list[str]:
    header = ["phase", "Claude tokens in / cached / out", "GLM tokens in / cached / out", "Claude", "GLM", "Claude-only", "primary baseline's model", "time (sum)", "time (mean)"]
    rows = []
    for row in report.phase_rows:
        m = row.money
        rows.append([
            row.phase, _tokens(m, CLAUDE), _tokens(m, GLM),
            cell_usd(m.claude, m.has_data), cell_usd(m.glm, m.has_data), cell_usd(m.baseline, m.has_data),
            row.baseline_model or "–", duration(row.total_seconds), duration(row.mean_seconds),
        ])
    return ["## Phases", "", *_table(header, rows, "lrrrrrlrr")]


def model_table(report: Report) -> list[str]:
    header = ["provider", "model", "calls", "input", "cached", "cache writes", "output", "calls in a higher tier", "USD", "price (date)"]
    rows = []
    for row in report.model_rows:
        m = row.money
        tally = m.tokens[GLM if row.provider == "glm" else CLAUDE]
        cost = "unpriced" if row.model in m.unpriced else money_text(m.total, 4)
        rows.append([
            row.provider, row.model, f"{tally.calls:,}", f"{tally.prompt:,}", f"{tally.cached:,}", f"{tally.cache_writes:,}",
            f"{tally.completion:,}", f"{row.tier_calls:,}", cost, row.date or "–",
        ])
    return ["## Models", "", *_table(header, rows, "llrrrrrrrl")]


def time_section(report: Report) -> list[str]:
    t = report.time
    if not t.get("data"):
        return ["## Time", "", f"Time: {NO_DATA} (no phase has both a start and a finish time)"]
    speedup = "no data" if t["speedup"] is None else f"{t['speedup']:g}×"
    return [
        "## Time",
        "",
        f"Wall-clock: {duration(t['wall_clock_s'])} (first phase start {t['first_start'][:16]} → last phase finish {t['last_finish'][:16]} UTC){BREAK}",
        f"Sum of story times: {duration(t['story_sum_s'])} over {t['stories']} stories (each from its first phase start to its last phase finish){BREAK}",
        f"Parallel speed-up: {speedup} (sum of story times ÷ wall-clock)",
    ]


def runs_section(report: Report) -> list[str]:
    if not report.runs:
        return []
    header = ["run", "from (UTC)", "to (UTC)", "stories", "cost", "cost per story", "Claude-only", "savings"]
    rows = []
    for run in report.runs:
        m = run.money
        rows.append([
            str(run.index + 1), run.start[:16], run.end[:16], str(len(run.stories)), money_text(m.total, 4),
            money_text(run.cost_per_story, 4) if run.cost_per_story is not None else NO_DATA,
            money_text(m.baseline, 4), pct_text(m.savings_pct),
        ])
    return ["## Runs", "", "A run: ledger activity without a silent gap (see docs/cost-method.md).", "", *_table(header, rows, "rllrrrrr")]


def render_markdown(report: Report) -> str:
    lines = headline(report)
    for section in (story_table, baselines_table, phase_table, model_table, time_section, runs_section):
        part = section(report)
        if part:
            lines += ["", *part]
    lines += ["", "## Warnings", ""]
    lines += [f"- {w}" for w in report.warnings] or ["None."]
    lines += ["", "---", "", report.footnote, ""]
    return "\n".join(lines)
