"""The comparison's figures: each metric of side A and side B, per story and in total, with the
difference (B − A) and the ratio (B ÷ A); and the hybrid side's estimated Claude-only cost next
to the Claude-only side's measured cost. Pure: reads two ``Side``s, no file, no clock.

Token kinds are disjoint, so they add up to every token: input is the uncached input (the prompt
less its cache reads and cache writes), then cache reads, cache writes and output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Sequence

from mcp_server.compare.sides import Side

Number = Decimal | int | float | None


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str  # "usd" | "tokens" | "count" | "seconds" | "percent" | "score"


METRICS = (
    Metric("cost_usd", "measured cost", "usd"),
    Metric("claude_usd", "  Claude", "usd"),
    Metric("glm_usd", "  GLM", "usd"),
    Metric("claude_input", "Claude input (uncached)", "tokens"),
    Metric("claude_cache_read", "Claude cache reads", "tokens"),
    Metric("claude_cache_write", "Claude cache writes", "tokens"),
    Metric("claude_output", "Claude output", "tokens"),
    Metric("glm_requests", "GLM requests", "count"),
    Metric("glm_input", "GLM input (uncached)", "tokens"),
    Metric("glm_cached", "GLM cached input", "tokens"),
    Metric("glm_output", "GLM output", "tokens"),
    Metric("wall_s", "wall time", "seconds"),
    Metric("ac_pass_rate", "AC pass rate", "percent"),
    Metric("coverage", "coverage", "percent"),
    Metric("review_score", "review score", "score"),
    Metric("review_rounds", "review rounds", "count"),
    Metric("fix_rounds", "fix rounds", "count"),
)


@dataclass
class Row:
    metric: Metric
    a: Number
    b: Number

    @property
    def diff(self) -> Number:
        if self.a is None or self.b is None:
            return None
        if isinstance(self.a, Decimal) or isinstance(self.b, Decimal):
            return Decimal(str(self.b)) - Decimal(str(self.a))
        return self.b - self.a

    @property
    def ratio(self) -> float | None:
        if self.a is None or self.b is None or self.a == 0:
            return None
        return float(Decimal(str(self.b)) / Decimal(str(self.a)))


@dataclass
class Block:
    """The metrics of one story (or of the total), both sides."""

    story: str | None  # None: the total
    title: str | None
    rows: list[Row]


@dataclass
class EstimateRow:
    story: str | None  # None: the total
    baseline: str  # the baseline's name
    estimated: Decimal  # the hybrid side's Claude-only estimate
    measured: Decimal  # what the Claude-only side cost
    complete: bool

    @property
    def off(self) -> Decimal:
        return self.estimated - self.measured

    @property
    def off_pct(self) -> float | None:
        return float(self.off / self.measured * 100) if self.measured else None


@dataclass
class Comparison:
    a: Side
    b: Side
    stories: list[str]
    only_in: dict[str, list[str]]
    total: Block
    per_story: list[Block]
    hybrid_side: str | None  # "A" or "B" when exactly one side used GLM
    estimates: list[EstimateRow] = field(default_factory=list)
    note: str | None = None

    @property
    def estimate_missing(self) -> str | None:
        """Why there is no estimate to check, or None."""
        if self.hybrid_side is not None:
            return None
        used = [side.spec.name for side in (self.a, self.b) if side.glm_requests]
        if not used:
            return "neither side made a GLM request, so neither has a Claude-only estimate to check"
        return "both sides made GLM requests, so neither is a measured Claude-only run"


def _tokens(side: Side, story: str | None) -> dict[str, int]:
    money = side.report.total if story is None else _story_row(side, story).money
    claude, glm = money.tokens["claude"], money.tokens["glm"]
    return {
        "claude_input": claude.prompt - claude.cached - claude.cache_writes,
        "claude_cache_read": claude.cached,
        "claude_cache_write": claude.cache_writes,
        "claude_output": claude.completion,
        "glm_requests": glm.calls,
        "glm_input": glm.prompt - glm.cached - glm.cache_writes,
        "glm_cached": glm.cached,
        "glm_output": glm.completion,
    }


def _story_row(side: Side, story: str):
    return next(row for row in side.report.story_rows if row.story == story)


def story_values(side: Side, story: str) -> dict[str, Number]:
    row = _story_row(side, story)
    money = row.money
    return {
        "cost_usd": money.total if money.has_data else None,
        "claude_usd": money.claude if money.has_data else None,
        "glm_usd": money.glm if money.has_data else None,
        **_tokens(side, story),
        "wall_s": row.seconds,
        "ac_pass_rate": round(row.ac.pct, 2) if row.ac is not None and row.ac.total else None,
        "coverage": round(row.coverage.percent, 2) if row.coverage is not None else None,
        "review_score": row.quality,
        "review_rounds": row.review_rounds,
        "fix_rounds": side.fix_rounds.get(story),
    }


def total_values(side: Side) -> dict[str, Number]:
    """Every story and the orchestration for cost and tokens; the selected stories' wall time
    (first phase start to last phase finish), their AC pass rate over all ACs, mean coverage and
    review score, and summed rounds."""
    report = side.report
    money, quality = report.total, report.quality
    rounds = [row.review_rounds for row in report.story_rows if row.review_rounds is not None]
    fixes = [value for value in side.fix_rounds.values() if value is not None]
    return {
        "cost_usd": money.total if money.has_data else None,
        "claude_usd": money.claude if money.has_data else None,
        "glm_usd": money.glm if money.has_data else None,
        **_tokens(side, None),
        "wall_s": report.time.get("wall_clock_s"),
        "ac_pass_rate": quality.get("ac_pass_rate"),
        "coverage": quality.get("coverage_avg"),
        "review_score": quality.get("quality_avg"),
        "review_rounds": sum(rounds) if rounds else None,
        "fix_rounds": sum(fixes) if fixes else None,
    }


def _block(story: str | None, title: str | None, a: dict[str, Number], b: dict[str, Number]) -> Block:
    return Block(story, title, [Row(metric, a[metric.key], b[metric.key]) for metric in METRICS])


def _estimates(hybrid: Side, measured: Side, stories: Sequence[str]) -> list[EstimateRow]:
    rows = []
    for estimate in hybrid.estimates:
        rows.append(EstimateRow(None, estimate.name, estimate.total, measured.report.total.total, estimate.complete))
        for story in stories:
            rows.append(EstimateRow(story, estimate.name, estimate.stories.get(story, Decimal(0)),
                                    _story_row(measured, story).money.total, estimate.complete))
    return rows


def compare(a: Side, b: Side, stories: Sequence[str], only_in: dict[str, list[str]], note: str | None = None) -> Comparison:
    hybrid = [side for side in (a, b) if side.glm_requests > 0]
    hybrid_side = hybrid[0].spec.name if len(hybrid) == 1 else None
    comparison = Comparison(
        a, b, list(stories), only_in,
        total=_block(None, None, total_values(a), total_values(b)),
        per_story=[_block(story, _story_row(a, story).title or _story_row(b, story).title, story_values(a, story), story_values(b, story))
                   for story in stories],
        hybrid_side=hybrid_side,
        note=note,
    )
    if hybrid_side is not None:
        measured = b if hybrid_side == "A" else a
        comparison.estimates = _estimates(hybrid[0], measured, stories)
    return comparison
