"""The report's rows: per story, phase, model and run, from the priced usage groups and the
checkpoints; and the quality and time summaries over the story rows. Pure functions over a
``MonitorInput``; nothing here reads a file or the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Mapping, Sequence

from mcp_server.monitor.inputs import CoverageInfo, MonitorInput, StoryInput, UsageGroup, parse_time
from mcp_server.monitor.money import GLM, PHASES, Money, Pricer, rounded, side
from mcp_server.pricing import PriceTable

NO_PHASE = "no phase"
ORCHESTRATION = "orchestration / unattributed"
Cost = tuple[Decimal | None, Decimal | None]  # (what it cost, what Claude alone would have cost)


@dataclass(frozen=True)
class AcResult:
    passed: int
    failed: int
    failed_ids: tuple[str, ...]
    unjudged: int = 0  # ACs of the story without a QA result yet

    @property
    def total(self) -> int:
        """The ACs QA judged."""
        return self.passed + self.failed

    @property
    def pct(self) -> float:
        return 100.0 * self.passed / self.total if self.total else 0.0


def ac_result(data: Mapping[str, Any] | None) -> AcResult | None:
    """The story's QA results (the current round); None without any."""
    if not data or not data.get("qa"):
        return None
    results = data["qa"].get("results") or []
    if not results:
        return None
    passed = sum(1 for r in results if r.get("result") == "pass")
    failed_ids = tuple(str(r.get("ac", "?")) for r in results if r.get("result") != "pass")
    judged = {r.get("ac") for r in results}
    unjudged = sum(1 for ac in data.get("acceptance_criteria") or [] if ac.get("id") not in judged)
    return AcResult(passed, len(failed_ids), failed_ids, unjudged)


@dataclass
class StoryRow:
    story: str
    title: str | None
    money: Money
    ac: AcResult | None
    coverage: CoverageInfo | None
    quality: float | None  # the last review round's score
    review_rounds: int | None
    started: datetime | None
    finished: datetime | None
    phase_seconds: dict[str, float]
    next_action: str | None
    problem: str | None

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.finished is None or self.finished < self.started:
            return None
        return (self.finished - self.started).total_seconds()

    @property
    def done(self) -> bool:
        return self.next_action == "done"


@dataclass
class PhaseRow:
    phase: str
    money: Money = field(default_factory=Money)
    baseline_model: str | None = None
    seconds: list[float] = field(default_factory=list)

    @property
    def total_seconds(self) -> float | None:
        return sum(self.seconds) if self.seconds else None

    @property
    def mean_seconds(self) -> float | None:
        return sum(self.seconds) / len(self.seconds) if self.seconds else None


@dataclass
class ModelRow:
    provider: str
    model: str
    money: Money = field(default_factory=Money)
    tier_calls: int = 0  # calls above the first price threshold
    source: str | None = None
    date: str | None = None


@dataclass
class RunRow:
    index: int
    start: str
    end: str
    stories: set[str] = field(default_factory=set)
    money: Money = field(default_factory=Money)

    @property
    def cost_per_story(self) -> Decimal | None:
        return self.money.total / len(self.stories) if self.stories else None


@dataclass
class Sums:
    """The priced groups summed every way the report shows them."""

    total: Money = field(default_factory=Money)
    orchestration: Money = field(default_factory=Money)
    per_story: dict[str, Money] = field(default_factory=dict)
    phases: dict[str, PhaseRow] = field(
        default_factory=lambda: {name: PhaseRow(name) for name in (*PHASES, NO_PHASE, ORCHESTRATION)}
    )
    models: dict[tuple[str, str], ModelRow] = field(default_factory=dict)


def sum_groups(groups: Sequence[UsageGroup], costs: Sequence[Cost], pricer: Pricer, prices: PriceTable) -> Sums:
    """Each group is added twice: to its story's (or the orchestration's) Money and to its (phase,
    provider, model) cell; the phase and model rows are merged from the few cells, and the total
    from the stories and the orchestration, so the per-group work stays small at a million rows."""
    sums = Sums()
    cells: dict[tuple[str, str, str], Money] = {}
    tier_calls: dict[tuple[str, str], int] = {}
    for group, (cost, baseline) in zip(groups, costs):
        if group.story is None:
            sums.orchestration.add(group, cost, baseline)
            phase_key = ORCHESTRATION
        else:
            money = sums.per_story.get(group.story)
            if money is None:
                money = sums.per_story[group.story] = Money()
            money.add(group, cost, baseline)
            phase_key = group.phase if group.phase in PHASES else NO_PHASE
        key = (phase_key, group.provider, group.model)
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = Money()
        cell.add(group, cost, baseline)
        if group.bucket > 0:  # above the first price threshold
            model_key = (group.provider, group.model)
            tier_calls[model_key] = tier_calls.get(model_key, 0) + group.calls
    for money in (*sums.per_story.values(), sums.orchestration):  # the total is its parts
        sums.total.merge(money)
    for (phase_key, provider, model), cell in cells.items():
        phase_row = sums.phases[phase_key]
        phase_row.money.merge(cell)
        if phase_row.baseline_model is None and side(provider) == GLM and phase_key != ORCHESTRATION:
            phase_row.baseline_model = pricer.baseline_model(phase_key if phase_key in PHASES else None)
        model_row = sums.models.get((provider, model))
        if model_row is None:
            model_row = sums.models[(provider, model)] = ModelRow(provider, model, tier_calls=tier_calls.get((provider, model), 0))
        model_row.money.merge(cell)
    for row in sums.models.values():
        price = prices.lookup(row.model)
        if price is not None:
            row.source, row.date = price.source, price.date
    return sums


def phase_rows(sums: Sums, stories: Sequence[StoryRow]) -> list[PhaseRow]:
    """Every pipeline phase, and the other rows that have usage; each phase with its stories' times."""
    for row in stories:
        for name, seconds in row.phase_seconds.items():
            sums.phases[name].seconds.append(seconds)
    return [row for key, row in sums.phases.items() if key in PHASES or row.money.has_data]


def story_rows(inp: MonitorInput, per_story: Mapping[str, Money]) -> list[StoryRow]:
    rows = []
    for story in inp.stories:
        item: StoryInput = inp.inputs[story]
        data = item.data or {}
        phases = data.get("phases") or {}
        # each phase's times parsed once: the story's span and the phase times both use them
        times = {name: (parse_time(p.get("started_at")), parse_time(p.get("finished_at"))) for name, p in phases.items()}
        starts = [begin for begin, _ in times.values() if begin]
        ends = [end for _, end in times.values() if end]
        phase_seconds = {}
        for name in PHASES:
            phase = phases.get(name) or {}
            begin, end = times.get(name, (None, None))
            earlier = phase.get("earlier_seconds")  # the phase's earlier rounds
            if begin and end and end >= begin:
                phase_seconds[name] = (end - begin).total_seconds() + (earlier or 0)
            elif earlier:
                phase_seconds[name] = float(earlier)
        reviews = item.reviews
        rows.append(
            StoryRow(
                story=story,
                title=data.get("title"),
                money=per_story.get(story) or Money(),
                ac=ac_result(data),
                coverage=item.coverage,
                quality=float(reviews[-1]["score"]) if reviews else None,
                review_rounds=len(reviews) if reviews else None,
                started=min(starts) if starts else None,
                finished=max(ends) if ends else None,
                phase_seconds=phase_seconds,
                next_action=item.next_action,
                problem=item.problem,
            )
        )
    return rows


def _hour(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def runs(groups: Sequence[UsageGroup], costs: Sequence[Cost], gap_hours: float) -> list[RunRow]:
    """A run: active UTC hours with fewer than ``gap_hours`` silent hours between neighbours."""
    moments = {hour: moment for hour in {g.hour for g in groups} if (moment := _hour(hour)) is not None}
    run_of: dict[str, int] = {}
    previous = None
    index = -1
    for hour in sorted(moments):
        moment = moments[hour]
        if previous is None or (moment - previous).total_seconds() / 3600 - 1 >= gap_hours:
            index += 1
        run_of[hour] = index
        previous = moment
    runs = [RunRow(i, "", "") for i in range(index + 1)]
    for group, (cost, baseline) in zip(groups, costs):
        i = run_of.get(group.hour)
        if i is None:
            continue
        run = runs[i]
        run.money.add(group, cost, baseline)
        if group.story is not None:
            run.stories.add(group.story)
        run.start = min(run.start, group.first_ts) if run.start else group.first_ts
        run.end = max(run.end, group.last_ts)
    return runs


def time_summary(rows: Sequence[StoryRow]) -> dict[str, Any]:
    timed = [row for row in rows if row.seconds is not None]
    if not timed:
        return {"data": False}
    start = min(row.started for row in timed)
    end = max(row.finished for row in timed)
    wall = (end - start).total_seconds()
    story_sum = sum(row.seconds for row in timed)
    return {
        "data": True,
        "stories": len(timed),
        "first_start": start.isoformat(),
        "last_finish": end.isoformat(),
        "wall_clock_s": wall,
        "story_sum_s": story_sum,
        "speedup": round(story_sum / wall, 2) if wall > 0 else None,
    }


def quality_summary(rows: Sequence[StoryRow]) -> dict[str, Any]:
    results = [row.ac for row in rows if row.ac is not None]
    passed, acs = sum(r.passed for r in results), sum(r.total for r in results)
    coverage = [row.coverage.percent for row in rows if row.coverage is not None]
    quality = [row.quality for row in rows if row.quality is not None]
    rounds = [row.review_rounds for row in rows if row.review_rounds is not None]
    return {
        "stories": len(rows),
        "ac_pass_rate": rounded(100.0 * passed / acs) if acs else None,
        "acs_passed": passed,
        "acs": acs,
        "stories_with_qa": len(results),
        "stories_all_pass": sum(1 for r in results if r.failed == 0 and r.unjudged == 0),
        "coverage_avg": rounded(sum(coverage) / len(coverage)) if coverage else None,
        "coverage_min": rounded(min(coverage)) if coverage else None,
        "stories_with_coverage": len(coverage),
        "quality_avg": rounded(sum(quality) / len(quality)) if quality else None,
        "quality_min": min(quality) if quality else None,
        "stories_with_review": len(quality),
        "review_rounds_avg": rounded(sum(rounds) / len(rounds)) if rounds else None,
    }
