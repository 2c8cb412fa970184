"""The per-model scorecard as ``hybrid report --models`` prints it: Markdown, or JSON with
``--json``; and the cells the dashboard's model table shows, so both write every figure alike.
The figures come from ``report.scorecard`` (monitor/scorecard.py)."""

from __future__ import annotations

import json
from typing import Any

from mcp_server.monitor.money import money_text, rounded, usd
from mcp_server.monitor.render_json import heading
from mcp_server.monitor.report import Report
from mcp_server.monitor.scorecard import ModelScore, Scorecard
from mcp_server.monitor.wording import listed, pct_text

NO_DATA = "no data"
COLUMNS = (
    "model", "calls", "input tokens", "cached", "output tokens", "cost",
    "tests passed at first attempt", "fix rounds", "stories written", "review score", "REQUEST_CHANGES", "AC pass",
)
METHOD = (
    "Calls, tokens and cost: the model's usage rows, priced as the report prices them. First attempt and fix rounds: "
    "its implement/refactor calls that ran their test command. Review score, REQUEST_CHANGES and AC pass: the stories "
    "it wrote (the model that did their P3), every review round counted once. Method: docs/monitor.md#the-model-scorecard."
)


def _ratio(part: int, whole: int, pct: float | None) -> str:
    return NO_DATA if not whole else f"{pct_text(pct)} ({part}/{whole})"


def cells(score: ModelScore) -> list[str]:
    """One row of the table, in ``COLUMNS`` order."""
    tokens = score.tokens
    fixes = NO_DATA if not score.tested_calls else f"{score.fix_rounds} ({score.fix_rounds_per_call:.2g} per call)"
    review = NO_DATA if not score.review_rounds else f"{score.review_score:.3g}/10 ({score.review_rounds} rounds)"
    return [
        score.model,
        f"{tokens.calls:,}",
        f"{tokens.prompt:,}",
        f"{tokens.cached:,}",
        f"{tokens.completion:,}",
        "unpriced" if score.cost is None else money_text(score.cost, 4),
        _ratio(score.first_passed, score.tested_calls, score.first_pass_pct),
        fixes,
        str(len(score.stories)),
        review,
        _ratio(score.changes_requested, score.review_rounds, score.changes_pct),
        _ratio(score.acs_passed, score.acs_judged, score.ac_pct),
    ]


def _table(scorecard: Scorecard) -> list[str]:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join(["---"] + ["--:"] * (len(COLUMNS) - 1)) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in cells(score)) + " |" for score in scorecard.rows]
    return lines


def scorecard_markdown(report: Report) -> str:
    scorecard = report.scorecard or Scorecard([], [])
    window = f"; ledger from {report.since or 'the start'} to {report.until or 'now'}" if report.since or report.until else ""
    lines = [
        "# Hybrid model scorecard",
        "",
        *([f"> {report.note}", ""] if report.note else []),
        f"Stories: {listed(report.stories, 20)}{window}",
        "",
        *(_table(scorecard) if scorecard.rows else ["No model did work in these stories yet."]),
        "",
        METHOD,
    ]
    if scorecard.no_writer:
        lines += ["", f"No model is known to have done P3 of {listed(scorecard.no_writer)}: their reviews and QA count for no model."]
    return "\n".join(lines) + "\n"


def score_json(score: ModelScore) -> dict[str, Any]:
    tokens = score.tokens
    return {
        "provider": score.provider or None,
        "model": score.model,
        "calls": tokens.calls,
        "tokens": {"input": tokens.prompt, "cached": tokens.cached, "cache_writes": tokens.cache_writes, "output": tokens.completion},
        "cost_usd": usd(score.cost),
        "unpriced": score.cost is None,
        "tested_code_calls": score.tested_calls,
        "first_attempt_passed": score.first_passed,
        "first_attempt_pass_pct": rounded(score.first_pass_pct),
        "fix_rounds": score.fix_rounds,
        "fix_rounds_per_call": rounded(score.fix_rounds_per_call),
        "stories_written": list(score.stories),
        "review_rounds": score.review_rounds,
        "review_score_avg": rounded(score.review_score),
        "request_changes": score.changes_requested,
        "request_changes_pct": rounded(score.changes_pct),
        "acs_passed": score.acs_passed,
        "acs_judged": score.acs_judged,
        "ac_pass_pct": rounded(score.ac_pct),
    }


def scorecard_json(report: Report) -> str:
    scorecard = report.scorecard or Scorecard([], [])
    return json.dumps({
        **heading(report),
        "models": [score_json(score) for score in scorecard.rows],
        "stories_without_writer": scorecard.no_writer,
        "method": METHOD,
    }, indent=2, ensure_ascii=False) + "\n"
