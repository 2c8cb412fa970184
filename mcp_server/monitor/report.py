"""The numbers: cost, the Claude-only baseline, savings, quality, time, runs and the verdict.

Pure functions over a ``MonitorInput`` (see ``load``); nothing here reads a file or the clock.
Money is Decimal from the price table's rates as written, so a figure is exact to the rates and
rounding happens only when it is shown. The method is in docs/cost-method.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterable, Mapping, Sequence

from mcp_server.config import MonitorSettings
from mcp_server.monitor.load import CoverageInfo, MonitorInput, StoryInput, UsageGroup, parse_time
from mcp_server.pricing import PER_MILLION, PriceTable

ZERO = Decimal(0)
PHASES = ("P1", "P2", "P3", "P4", "P5", "P6", "P7")
NO_PHASE = "no phase"
ORCHESTRATION = "orchestration / unattributed"
CLAUDE, GLM = "claude", "glm"
APPROVED, NEEDS_ATTENTION, REJECTED = "APPROVED", "NEEDS_ATTENTION", "REJECTED"
VERDICT_LINES = {
    APPROVED: "✅ VERDICT: APPROVED - Continue hybrid approach",
    NEEDS_ATTENTION: "⚠️ VERDICT: NEEDS_ATTENTION - Check the reasons before continuing",
    REJECTED: "❌ VERDICT: REJECTED - Do not continue the hybrid approach as run (a hard gate failed)",
}


def side(provider: str) -> str:
    return GLM if provider == GLM else CLAUDE


# --- money --------------------------------------------------------------------------------------


@dataclass
class Tally:
    calls: int = 0
    prompt: int = 0  # all input: uncached, cache reads and cache writes
    cached: int = 0  # cache reads
    cache_writes: int = 0
    completion: int = 0  # output, reasoning included

    def add(self, group: UsageGroup) -> None:
        self.calls += group.calls
        self.prompt += group.tokens.prompt_tokens
        self.cached += group.tokens.cached_tokens
        self.cache_writes += group.tokens.cache_write_5m_tokens + group.tokens.cache_write_1h_tokens
        self.completion += group.tokens.completion_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "input": self.prompt,
            "cached": self.cached,
            "cache_writes": self.cache_writes,
            "output": self.completion,
        }


@dataclass
class Money:
    """Cost of some usage, split by Claude and GLM, with its Claude-only baseline.

    ``baseline`` and ``compared`` cover the same usage: the groups whose cost and baseline are
    both known. With every model priced, ``compared`` equals ``total``.
    """

    claude: Decimal = ZERO
    glm: Decimal = ZERO
    baseline: Decimal = ZERO
    compared: Decimal = ZERO
    tokens: dict[str, Tally] = field(default_factory=lambda: {CLAUDE: Tally(), GLM: Tally()})
    unpriced: set[str] = field(default_factory=set)

    def add(self, group: UsageGroup, cost: Decimal | None, baseline: Decimal | None) -> None:
        which = side(group.provider)
        self.tokens[which].add(group)
        if cost is None:
            self.unpriced.add(group.model)
            return
        if which == GLM:
            self.glm += cost
        else:
            self.claude += cost
        if baseline is not None:
            self.baseline += baseline
            self.compared += cost

    @property
    def calls(self) -> int:
        return self.tokens[CLAUDE].calls + self.tokens[GLM].calls

    @property
    def has_data(self) -> bool:
        return self.calls > 0

    @property
    def total(self) -> Decimal:
        return self.claude + self.glm

    @property
    def savings(self) -> Decimal:
        return self.baseline - self.compared

    @property
    def savings_pct(self) -> float | None:
        if self.baseline <= 0:
            return None
        return float(self.savings / self.baseline * 100)

    def as_dict(self) -> dict[str, Any]:
        if not self.has_data:
            return {"data": False}
        return {
            "data": True,
            "claude_usd": usd(self.claude),
            "glm_usd": usd(self.glm),
            "total_usd": usd(self.total),
            "claude_only_usd": usd(self.baseline),
            "savings_usd": usd(self.savings),
            "savings_pct": rounded(self.savings_pct),
            "compared_usd": usd(self.compared),
            "tokens": {name: tally.as_dict() for name, tally in self.tokens.items()},
            "unpriced_models": sorted(self.unpriced),
        }


def usd(value: Decimal | None) -> float | None:
    """Dollars to the micro-dollar, for JSON."""
    return None if value is None else float(Decimal(value).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


class Pricer:
    """Exact per-group costs, with each (model, tier bucket)'s rates converted once."""

    def __init__(self, prices: PriceTable, baseline: Mapping[str, str]):
        self.prices = prices
        self.baseline = dict(baseline)
        self._rates: dict[tuple[str, int], tuple[Decimal, ...] | None] = {}

    def rates(self, model: str, bucket: int) -> tuple[Decimal, ...] | None:
        key = (model, bucket)
        if key not in self._rates:
            price = self.prices.lookup(model)
            if price is None:
                self._rates[key] = None
            else:
                r = price.rates_for(self.prices.bucket_prompt_size(bucket))
                self._rates[key] = tuple(
                    Decimal(repr(x)) for x in (r.input, r.cached_input, r.cache_write_5m, r.cache_write_1h, r.output)
                )
        return self._rates[key]

    @staticmethod
    def _apply(rates: tuple[Decimal, ...], uncached: int, cached: int, w5: int, w1: int, out: int) -> Decimal:
        return (uncached * rates[0] + cached * rates[1] + w5 * rates[2] + w1 * rates[3] + out * rates[4]) / PER_MILLION

    def baseline_model(self, phase: str | None) -> str:
        return self.baseline.get(phase or "other") or self.baseline["other"]

    def price(self, group: UsageGroup) -> tuple[Decimal | None, Decimal | None]:
        """(what it cost, what Claude would have cost for it)."""
        t = group.tokens
        rates = self.rates(group.model, group.bucket)
        cost = None
        if rates is not None:
            cost = self._apply(rates, t.uncached_input, t.cached_tokens, t.cache_write_5m_tokens, t.cache_write_1h_tokens, t.completion_tokens)
        if side(group.provider) == CLAUDE:
            return cost, cost  # Claude's own tokens count the same in both worlds
        claude = self.rates(self.baseline_model(group.phase if group.phase in PHASES else None), group.bucket)
        if claude is None or cost is None:
            return cost, None
        # GLM's cache hits as Claude cache reads; GLM has no cache writes to price
        return cost, self._apply(claude, t.uncached_input, t.cached_tokens, t.cache_write_5m_tokens, t.cache_write_1h_tokens, t.completion_tokens)


def unpriced_baseline(prices: PriceTable, monitor: MonitorSettings) -> list[str]:
    """Baseline settings whose model has no price: the report refuses to run with them."""
    return [f"monitor.baseline.{key}: {model}" for key, model in monitor.baseline.items() if prices.lookup(model) is None]


# --- quality ------------------------------------------------------------------------------------


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


# --- stories, phases, models, runs ---------------------------------------------------------------


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


@dataclass(frozen=True)
class Check:
    name: str  # ac_pass_rate | coverage | quality | savings | data
    outcome: str  # pass | fail | reject | missing
    text: str


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
    baseline: dict[str, str]
    unattributed: dict[str, Any]
    price_dates: tuple[str, str] | None
    baseline_is_default: bool = True
    note: str | None = None  # --note: a line under the title, e.g. where the numbers come from

    @property
    def verdict_line(self) -> str:
        return VERDICT_LINES[self.verdict]


def _story_rows(inp: MonitorInput, per_story: Mapping[str, Money]) -> list[StoryRow]:
    rows = []
    for story in inp.stories:
        item: StoryInput = inp.inputs[story]
        data = item.data or {}
        phases = data.get("phases") or {}
        starts = [parse_time(p.get("started_at")) for p in phases.values()]
        ends = [parse_time(p.get("finished_at")) for p in phases.values()]
        starts, ends = [s for s in starts if s], [e for e in ends if e]
        phase_seconds = {}
        for name in PHASES:
            phase = phases.get(name) or {}
            begin, end = parse_time(phase.get("started_at")), parse_time(phase.get("finished_at"))
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


def _runs(groups: Sequence[UsageGroup], costs: Sequence[tuple[Decimal | None, Decimal | None]], gap_hours: float) -> list[RunRow]:
    """A run: active UTC hours with fewer than ``gap_hours`` silent hours between neighbours."""
    hours = sorted({g.hour for g in groups if _hour(g.hour)})
    run_of: dict[str, int] = {}
    previous = None
    index = -1
    for hour in hours:
        moment = _hour(hour)
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


# --- the verdict --------------------------------------------------------------------------------


def pct_text(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "no data"
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"


def stories(count: int) -> str:
    return f"{count} {'story' if count == 1 else 'stories'}"


def _listed(items: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _per_story_check(
    name: str, label: str, rows: Sequence[StoryRow], value_of, minimum: float, hard: float | None, shown
) -> list[Check]:
    present = [(row.story, value_of(row)) for row in rows if value_of(row) is not None]
    missing = [row.story for row in rows if value_of(row) is None]
    checks = []
    if present:
        rejected = [f"{s} ({shown(v)})" for s, v in present if hard is not None and v < hard]
        below = [f"{s} ({shown(v)})" for s, v in present if v < minimum]
        low = min(v for _, v in present)
        if rejected:
            checks.append(Check(name, "reject", f"{label} below the hard gate {shown(hard)} in {stories(len(rejected))}: {_listed(rejected)}"))
        elif below:
            checks.append(Check(name, "fail", f"{label} below {shown(minimum)} in {len(below)} of {stories(len(present))}: {_listed(below)}"))
        else:
            checks.append(Check(name, "pass", f"{label} ≥ {shown(minimum)} in every story with data (lowest {shown(low)})"))
    if missing:
        checks.append(Check(name, "missing", f"{label}: no data for {stories(len(missing))}: {_listed(missing)}"))
    return checks


def verdict_checks(
    rows: Sequence[StoryRow], total: Money, monitor: MonitorSettings, extra: Iterable[Check] = ()
) -> list[Check]:
    thresholds, hard = monitor.thresholds, monitor.reject_below
    checks: list[Check] = []
    # AC pass rate, over every AC of the stories with QA results
    results = [row.ac for row in rows if row.ac is not None]
    missing_qa = [row.story for row in rows if row.ac is None]
    if results:
        passed, acs = sum(r.passed for r in results), sum(r.total for r in results)
        rate = 100.0 * passed / acs if acs else 0.0
        failed = [f"{row.story} {', '.join(row.ac.failed_ids)}" for row in rows if row.ac and row.ac.failed_ids]
        detail = f"{pct_text(rate)} ({passed}/{acs} ACs)"
        if failed:
            detail += f"; failed: {_listed(failed)}"
        if hard.ac_pass_rate is not None and rate < hard.ac_pass_rate:
            checks.append(Check("ac_pass_rate", "reject", f"AC pass rate {detail} is below the hard gate {pct_text(hard.ac_pass_rate)}"))
        elif rate < thresholds.ac_pass_rate:
            checks.append(Check("ac_pass_rate", "fail", f"AC pass rate {detail} is below {pct_text(thresholds.ac_pass_rate)}"))
        else:
            checks.append(Check("ac_pass_rate", "pass", f"AC pass rate {detail} ≥ {pct_text(thresholds.ac_pass_rate)}"))
    if missing_qa:
        checks.append(Check("ac_pass_rate", "missing", f"AC pass rate: no QA results for {stories(len(missing_qa))}: {_listed(missing_qa)}"))
    unjudged = [f"{row.story} ({row.ac.unjudged})" for row in rows if row.ac and row.ac.unjudged]
    if unjudged:
        checks.append(Check("ac_pass_rate", "missing", f"AC pass rate: ACs without a QA result in {stories(len(unjudged))}: {_listed(unjudged)}"))
    checks += _per_story_check(
        "coverage", "test coverage", rows, lambda r: r.coverage.percent if r.coverage else None,
        thresholds.coverage, hard.coverage, pct_text,
    )
    checks += _per_story_check(
        "quality", "code quality", rows, lambda r: r.quality, thresholds.quality, hard.quality,
        lambda v: f"{v:g}/10",
    )
    # savings, over the selected stories and the orchestration in scope
    pct = total.savings_pct
    if pct is None:
        checks.append(Check("savings", "missing", "savings: no priced usage to compare"))
    else:
        detail = f"savings {pct_text(pct)} ({money_text(total.savings)} of {money_text(total.baseline)} Claude-only)"
        if hard.savings is not None and pct < hard.savings:
            why = "the hybrid cost more than Claude-only" if pct < 0 else "below the hard gate"
            checks.append(Check("savings", "reject", f"{detail} is below {pct_text(hard.savings)}: {why}"))
        elif pct < thresholds.savings:
            checks.append(Check("savings", "fail", f"{detail} is below {pct_text(thresholds.savings)}"))
        else:
            checks.append(Check("savings", "pass", f"{detail} ≥ {pct_text(thresholds.savings)}"))
    checks += list(extra)
    return checks


def decide(checks: Sequence[Check]) -> str:
    outcomes = {check.outcome for check in checks}
    if "reject" in outcomes:
        return REJECTED
    if outcomes & {"fail", "missing"}:
        return NEEDS_ATTENTION
    return APPROVED


def money_text(value: Decimal | None, digits: int = 2) -> str:
    if value is None:
        return "no data"
    q = Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    sign = "-" if q < 0 else ""
    return f"{sign}${abs(q):,.{digits}f}"


# --- time ---------------------------------------------------------------------------------------


def _time_summary(rows: Sequence[StoryRow]) -> dict[str, Any]:
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


# --- the report ---------------------------------------------------------------------------------


def build_report(
    inp: MonitorInput,
    prices: PriceTable,
    monitor: MonitorSettings,
    *,
    generated_at: datetime | None = None,
) -> Report:
    pricer = Pricer(prices, monitor.baseline)
    costs = [pricer.price(group) for group in inp.groups]
    total, orchestration = Money(), Money()
    per_story: dict[str, Money] = {}
    phases: dict[str, PhaseRow] = {name: PhaseRow(name) for name in (*PHASES, NO_PHASE, ORCHESTRATION)}
    models: dict[tuple[str, str], ModelRow] = {}
    first_tier = 0
    for group, (cost, baseline) in zip(inp.groups, costs):
        total.add(group, cost, baseline)
        if group.story is None:
            orchestration.add(group, cost, baseline)
            phase_key = ORCHESTRATION
        else:
            per_story.setdefault(group.story, Money()).add(group, cost, baseline)
            phase_key = group.phase if group.phase in PHASES else NO_PHASE
        phase_row = phases[phase_key]
        phase_row.money.add(group, cost, baseline)
        if side(group.provider) == GLM and phase_key != ORCHESTRATION:
            phase_row.baseline_model = pricer.baseline_model(group.phase if group.phase in PHASES else None)
        model_row = models.setdefault((group.provider, group.model), ModelRow(group.provider, group.model))
        model_row.money.add(group, cost, baseline)
        if group.bucket > first_tier:
            model_row.tier_calls += group.calls
    for row in models.values():
        price = prices.lookup(row.model)
        if price is not None:
            row.source, row.date = price.source, price.date

    story_rows = _story_rows(inp, per_story)
    for row in story_rows:
        for name, seconds in row.phase_seconds.items():
            phases[name].seconds.append(seconds)
    phase_rows = [row for key, row in phases.items() if key in PHASES or row.money.has_data]

    runs = _runs(inp.groups, costs, monitor.run_gap_hours)
    warnings = list(inp.warnings)
    extra_checks = _data_checks(inp, story_rows, total, warnings)
    checks = verdict_checks(story_rows, total, monitor, extra_checks)
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
    dates = sorted({row.date for row in models.values() if row.date})
    report = Report(
        generated_at=(generated_at or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        project=str(inp.root),
        stories=list(inp.stories),
        explicit=inp.explicit,
        since=inp.since,
        until=inp.until,
        total=total,
        story_rows=story_rows,
        orchestration=orchestration,
        phase_rows=phase_rows,
        model_rows=sorted(models.values(), key=lambda r: (r.provider, r.model)),
        runs=runs,
        quality=_quality_summary(story_rows),
        time=_time_summary(story_rows),
        verdict=decide(checks),
        checks=checks,
        warnings=warnings,
        footnote="",
        thresholds={
            "thresholds": monitor.thresholds.model_dump(),
            "reject_below": monitor.reject_below.model_dump(),
        },
        baseline=dict(monitor.baseline),
        unattributed=unattributed,
        price_dates=(dates[0], dates[-1]) if dates else None,
        baseline_is_default=dict(monitor.baseline) == dict(MonitorSettings.model_validate({}).baseline),
    )
    report.footnote = footnote(report)
    return report


def _data_checks(inp: MonitorInput, rows: Sequence[StoryRow], total: Money, warnings: list[str]) -> list[Check]:
    checks = []
    problems = [row for row in rows if row.problem]
    for row in problems:
        warnings.append(f"{row.story}: {row.problem}")
    if problems:
        checks.append(Check("data", "missing", f"no readable checkpoint for {stories(len(problems))}: {_listed([r.story for r in problems])}"))
    silent = [row.story for row in rows if not row.money.has_data]
    if silent:
        warnings.append(f"no usage in the ledger for {_listed(silent)}: shown as 'no data', not $0")
        checks.append(Check("data", "missing", f"no usage data for {stories(len(silent))}: {_listed(silent)}"))
    if total.unpriced:
        for model in sorted(total.unpriced):
            tally = Tally()
            for group in inp.groups:
                if group.model == model:
                    tally.add(group)
            warnings.append(
                f"unpriced model {model} ({tally.calls} calls; {tally.prompt:,} tokens in, {tally.completion:,} out): "
                "left out of every cost, never counted as $0; add its price under `prices:` in .claude/hybrid.yaml or with --prices"
            )
        checks.append(Check("data", "missing", f"costs are incomplete: unpriced {', '.join(sorted(total.unpriced))}"))
    unfinished = [f"{row.story} (next: {row.next_action})" for row in rows if row.next_action and not row.done]
    if unfinished:
        warnings.append(f"{stories(len(unfinished))} not finished: {_listed(unfinished)}")
        checks.append(Check("data", "missing", f"{stories(len(unfinished))} not finished"))
    if any("unreadable" in (row.coverage.note or "") for row in rows if row.coverage):
        checks.append(Check("data", "missing", "a coverage report is unreadable (see the warnings)"))
    if inp.other_groups:
        by_story: dict[str, int] = {}
        for group in inp.other_groups:
            by_story[group.story] = by_story.get(group.story, 0) + group.calls
        names = sorted(by_story)
        what = "outside the selection" if inp.explicit else "without a checkpoint"
        warnings.append(f"the ledger also has usage of {stories(len(names))} {what}, not in this report: {_listed(names)}")
    return checks


def _quality_summary(rows: Sequence[StoryRow]) -> dict[str, Any]:
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


def footnote(report: Report) -> str:
    total = report.total
    glm = total.tokens[GLM]
    used = [row for row in report.phase_rows if row.baseline_model and row.money.tokens[GLM].calls]
    mapping = ", ".join(f"{row.phase} {row.baseline_model}" for row in used) or "no GLM phases"
    whose = "the model of each phase's role" if report.baseline_is_default else "the model set for each phase in monitor.baseline"
    text = (
        f"¹ Claude-only = every Claude token measured ({money_text(total.claude, 4)}, orchestration included) "
        f"+ GLM's measured tokens ({glm.prompt:,} in, {glm.cached:,} of them cached, {glm.completion:,} out) priced at "
        f"{whose} ({mapping}), each request in its own price tier, GLM cache hits as Claude cache reads. "
    )
    orchestration = money_text(report.orchestration.total, 4)
    if report.unattributed["rule"] == "all":
        text += f"Unattributed orchestration ({orchestration}) is in every total, in full."
    elif report.unattributed["sessions"] or report.unattributed["window"]:
        parts = []
        if report.unattributed["sessions"]:
            count, others = report.unattributed["sessions"], report.unattributed["other_stories_in_sessions"]
            parts.append(
                f"of the {count} Claude Code session{'s' if count != 1 else ''} that ran them"
                + (f" (which also ran {others} other {'story' if others == 1 else 'stories'})" if others else "")
            )
        if report.unattributed["window"]:
            low, high = report.unattributed["window"]
            others = report.unattributed["other_stories_in_window"]
            parts.append(
                f"without a session, from their first to last activity ({low[:16]} to {high[:16]} UTC"
                + (f", when {others} other {'story was' if others == 1 else 'stories were'} active" if others else "")
                + ")"
            )
        text += (
            f"Unattributed orchestration {' and, '.join(parts)} ({orchestration}) is in the totals in full; it adds the "
            "same to both sides, so it moves the savings % but not the savings $."
        )
    else:
        text += "The selected stories have no recorded activity, so no unattributed orchestration is included."
    if report.total.unpriced:
        text += (f" Unpriced models ({', '.join(sorted(report.total.unpriced))}) are in the token counts above "
                 "but left out of both sides' dollars.")
    if report.price_dates:
        text += f" Prices: mcp_server/data/prices.yaml (rows dated up to {report.price_dates[-1]}) and overrides, if any."
    return text + " Method: docs/cost-method.md."


# --- JSON ---------------------------------------------------------------------------------------


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def to_json(report: Report) -> dict[str, Any]:
    return {
        "note": report.note,
        "generated_at": report.generated_at,
        "project": report.project,
        "stories": report.stories,
        "since": report.since,
        "until": report.until,
        "verdict": report.verdict,
        "verdict_line": report.verdict_line,
        "checks": [{"name": c.name, "outcome": c.outcome, "text": c.text} for c in report.checks],
        "totals": report.total.as_dict(),
        "orchestration": report.orchestration.as_dict(),
        "unattributed": report.unattributed,
        "quality": report.quality,
        "time": report.time,
        "per_story": [
            {
                "story": row.story,
                "title": row.title,
                "cost": row.money.as_dict(),
                "ac": None if row.ac is None else {
                    "passed": row.ac.passed, "failed": row.ac.failed, "judged": row.ac.total,
                    "unjudged": row.ac.unjudged, "pct": rounded(row.ac.pct), "failed_ids": list(row.ac.failed_ids),
                },
                "coverage": None if row.coverage is None else {
                    "percent": rounded(row.coverage.percent), "source": row.coverage.source,
                    "read_as": row.coverage.how, "recorded": row.coverage.recorded,
                },
                "quality": row.quality,
                "review_rounds": row.review_rounds,
                "seconds": _seconds(row.seconds),
                "phase_seconds": {k: _seconds(v) for k, v in row.phase_seconds.items()},
                "next": row.next_action,
                "problem": row.problem,
            }
            for row in report.story_rows
        ],
        "per_phase": [
            {
                "phase": row.phase,
                "cost": row.money.as_dict(),
                "baseline_model": row.baseline_model,
                "seconds_total": _seconds(row.total_seconds),
                "seconds_mean": _seconds(row.mean_seconds),
                "stories_timed": len(row.seconds),
            }
            for row in report.phase_rows
        ],
        "per_model": [
            {
                "provider": row.provider,
                "model": row.model,
                "cost": row.money.as_dict(),
                "calls_above_first_tier": row.tier_calls,
                "price_source": row.source,
                "price_date": row.date,
            }
            for row in report.model_rows
        ],
        "runs": [
            {
                "run": run.index + 1,
                "start": run.start,
                "end": run.end,
                "stories": len(run.stories),
                "cost": run.money.as_dict(),
                "cost_per_story_usd": usd(run.cost_per_story),
            }
            for run in report.runs
        ],
        "warnings": report.warnings,
        "footnote": report.footnote,
        "settings": {**report.thresholds, "baseline": report.baseline},
    }
