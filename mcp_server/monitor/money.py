"""Money: what each usage group cost, what Claude alone would have cost for it, and the sums.

Decimal from the price table's rates as written, so a figure is exact to the rates and rounding
happens only when it is shown. Nothing here reads a file or the clock. The method is in
docs/cost-method.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterable, Mapping, Sequence

from mcp_server.config import MonitorSettings
from mcp_server.monitor.inputs import UsageGroup
from mcp_server.monitor.wording import pct_text
from mcp_server.pricing import PER_MILLION, PriceTable

ZERO = Decimal(0)
PHASES = ("P1", "P2", "P3", "P4", "P5", "P6", "P7")
CLAUDE, GLM = "claude", "glm"


def side(provider: str) -> str:
    return GLM if provider == GLM else CLAUDE


@dataclass
class Tally:
    calls: int = 0
    prompt: int = 0  # all input: uncached, cache reads and cache writes
    cached: int = 0  # cache reads
    cache_writes: int = 0
    completion: int = 0  # output, reasoning included

    def add(self, group: UsageGroup) -> None:
        tokens = group.tokens
        self.calls += group.calls
        self.prompt += tokens.prompt_tokens
        self.cached += tokens.cached_tokens
        self.cache_writes += tokens.cache_write_5m_tokens + tokens.cache_write_1h_tokens
        self.completion += tokens.completion_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "input": self.prompt,
            "cached": self.cached,
            "cache_writes": self.cache_writes,
            "output": self.completion,
        }


TOKEN_KINDS = ("input", "cache_read", "cache_write", "output")


@dataclass
class Money:
    """Cost of some usage, split by Claude and GLM, with its Claude-only baselines.

    ``baselines`` holds one Claude-only figure per baseline, in the report's order (the primary
    first); ``baseline`` is the primary's. They and ``compared`` cover the same usage: the groups
    whose cost and baselines are known. With every model priced, ``compared`` equals ``total``.
    """

    claude: Decimal = ZERO
    glm: Decimal = ZERO
    compared: Decimal = ZERO
    tokens: dict[str, Tally] = field(default_factory=lambda: {CLAUDE: Tally(), GLM: Tally()})
    unpriced: set[str] = field(default_factory=set)
    # each priced group's Claude-only figures, one per baseline; summed when first read, so that
    # an addition is one append whatever the number of baselines
    _parts: list[tuple[Decimal, ...]] = field(default_factory=list, repr=False)
    _sums: list[Decimal] | None = field(default=None, repr=False)

    def add(self, group: UsageGroup, cost: Decimal | None, baselines: tuple[Decimal, ...] | None) -> None:
        # called three times per usage group: kept to plain additions
        is_glm = group.provider == GLM
        tally = self.tokens[GLM if is_glm else CLAUDE]
        tokens = group.tokens
        tally.calls += group.calls
        tally.prompt += tokens.prompt_tokens
        tally.cached += tokens.cached_tokens
        tally.cache_writes += tokens.cache_write_5m_tokens + tokens.cache_write_1h_tokens
        tally.completion += tokens.completion_tokens
        if cost is None:
            self.unpriced.add(group.model)
            return
        if is_glm:
            self.glm += cost
        else:
            self.claude += cost
        if baselines is not None:
            self._parts.append(baselines)
            self._sums = None
            self.compared += cost

    def merge(self, other: "Money") -> None:
        """Add another Money's sums to this one's (the total is its parts, merged)."""
        self.claude += other.claude
        self.glm += other.glm
        if other._parts:
            self._parts.append(tuple(other.baselines))  # its sums: one part, not all of its parts
            self._sums = None
        self.compared += other.compared
        for name, tally in other.tokens.items():
            mine = self.tokens[name]
            mine.calls += tally.calls
            mine.prompt += tally.prompt
            mine.cached += tally.cached
            mine.cache_writes += tally.cache_writes
            mine.completion += tally.completion
        self.unpriced |= other.unpriced

    @property
    def baselines(self) -> list[Decimal]:
        """The Claude-only figure of every baseline, in the report's order (the primary first)."""
        if self._sums is None:
            self._sums = [sum(column, ZERO) for column in zip(*self._parts)]
        return self._sums

    @property
    def baseline(self) -> Decimal:
        """The primary baseline's Claude-only figure."""
        return self.baseline_at(0)

    @property
    def calls(self) -> int:
        return self.tokens[CLAUDE].calls + self.tokens[GLM].calls

    @property
    def has_data(self) -> bool:
        return self.calls > 0

    @property
    def total(self) -> Decimal:
        return self.claude + self.glm

    def baseline_at(self, index: int) -> Decimal:
        """The Claude-only figure of the ``index``-th baseline (0: the primary)."""
        sums = self.baselines
        return sums[index] if index < len(sums) else ZERO

    def savings_at(self, index: int) -> Decimal:
        return self.baseline_at(index) - self.compared

    def savings_pct_at(self, index: int) -> float | None:
        base = self.baseline_at(index)
        if base <= 0:
            return None
        return float((base - self.compared) / base * 100)

    @property
    def savings(self) -> Decimal:
        return self.savings_at(0)

    @property
    def savings_pct(self) -> float | None:
        return self.savings_pct_at(0)

    @property
    def claude_tokens(self) -> dict[str, int]:
        """The Claude tokens measured, by kind."""
        return _by_kind(self.tokens[CLAUDE])

    @property
    def avoided(self) -> dict[str, int]:
        """Claude tokens avoided, by kind: the baseline's Claude tokens minus those measured. The
        baseline gives Claude GLM's tokens one for one (uncached input as input, cache hits as
        cache reads, output as output, no cache writes), so that is GLM's tokens, whatever the
        baseline's models (docs/cost-method.md, "Claude usage avoided")."""
        glm = self.tokens[GLM]
        return {"input": glm.prompt - glm.cached - glm.cache_writes, "cache_read": glm.cached, "cache_write": 0,
                "output": glm.completion}

    def as_dict(self, names: Sequence[str] = ()) -> dict[str, Any]:
        """The figures for JSON; ``names``: the baselines' names, in ``baselines``' order."""
        if not self.has_data:
            return {"data": False}
        measured, avoided = self.claude_tokens, self.avoided
        return {
            "data": True,
            "claude_usd": usd(self.claude),
            "glm_usd": usd(self.glm),
            "total_usd": usd(self.total),
            "claude_only_usd": usd(self.baseline),  # the primary baseline's
            "savings_usd": usd(self.savings),
            "savings_pct": rounded(self.savings_pct),
            "baselines": {
                name: {"claude_only_usd": usd(self.baseline_at(i)), "savings_usd": usd(self.savings_at(i)),
                       "savings_pct": rounded(self.savings_pct_at(i))}
                for i, name in enumerate(names)
            },
            "compared_usd": usd(self.compared),
            "tokens": {name: tally.as_dict() for name, tally in self.tokens.items()},
            "claude_tokens_avoided": {**avoided, "total": sum(avoided.values())},
            "claude_tokens_claude_only": {kind: measured[kind] + avoided[kind] for kind in TOKEN_KINDS},
            "unpriced_models": sorted(self.unpriced),
        }


def _by_kind(tally: Tally) -> dict[str, int]:
    return {"input": tally.prompt - tally.cached - tally.cache_writes, "cache_read": tally.cached,
            "cache_write": tally.cache_writes, "output": tally.completion}


def usd(value: Decimal | None) -> float | None:
    """Dollars to the micro-dollar, for JSON."""
    return None if value is None else float(Decimal(value).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


SIGNIFICANT_BELOW_A_DOLLAR = 3
_QUANTUM = {digits: Decimal(1).scaleb(-digits) for digits in range(7)}  # 0 to 6 decimals, made once


def money_text(value: Decimal | None, digits: int | None = None) -> str:
    """Dollars as the report and the dashboard show them. ``digits`` fixes the decimals (table
    columns); without it, cents from $1 up, and below $1 three significant digits (at least
    two decimals, at most six), so "$0.246 vs $0.251: -$0.00510 (-2%)" explains itself where
    cents would read "$0.25 vs $0.25: -$0.01". The sign always shows: -$0.0047, never $0.00."""
    if value is None:
        return "no data"
    amount = Decimal(value)
    if digits is None:
        digits = 2 if amount == 0 or abs(amount) >= 1 else min(6, max(2, SIGNIFICANT_BELOW_A_DOLLAR - 1 - amount.copy_abs().adjusted()))
    q = amount.quantize(_QUANTUM.get(digits) or Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    text = f"{abs(q):,.{digits}f}"
    sign = "-" if amount < 0 else ""
    return f"{sign}${text}"


def cell_usd(value: Decimal | None, has_data: bool = True, unpriced: Iterable[str] = ()) -> str:
    """A table cell: four decimals, so a column lines up (the Markdown report and the dashboard)."""
    if not has_data or value is None:
        return "no data"
    return money_text(value, 4) + (" + unpriced" if list(unpriced) else "")


def avoided_text(money: Money) -> str:
    """Claude tokens avoided, by kind, and their share of what Claude alone would have used
    (the Markdown headline and the dashboard's card say it alike)."""
    if not money.has_data:
        return "no data"
    avoided, measured = money.avoided, money.claude_tokens
    total = sum(avoided.values())
    alone = total + sum(measured.values())
    share = f" ({pct_text(100 * total / alone)} of the {alone:,} Claude alone would have used)" if alone else ""
    kinds = ", ".join(f"{avoided[key]:,} {name}" for key, name in AVOIDED_KINDS if avoided[key])  # the kinds there are
    return f"{total:,}{share}" + (f": {kinds}" if kinds else "")


AVOIDED_KINDS = (("input", "input"), ("cache_read", "cache read"), ("cache_write", "cache write"), ("output", "output"))


def savings_cell(money: "Money") -> str:
    return savings_at_cell(money, 0)


def savings_at_cell(money: "Money", index: int) -> str:
    """The savings against the ``index``-th baseline (0: the primary), as a table cell."""
    if not money.has_data:
        return "no data"
    return f"{money_text(money.savings_at(index), 4)} ({pct_text(money.savings_pct_at(index))})"


class Pricer:
    """Exact per-group costs, with each (model, tier bucket)'s rates converted once, and each
    group's Claude-only figure under every baseline (``baselines``: name -> phase -> model, in the
    report's order, the primary first)."""

    def __init__(self, prices: PriceTable, baselines: Mapping[str, Mapping[str, str]]):
        self.prices = prices
        self.baselines = {name: dict(models) for name, models in baselines.items()}
        self._primary = next(iter(self.baselines.values()))
        self._rates: dict[tuple[str, int], tuple[Decimal, ...] | None] = {}
        # per (phase, bucket): every baseline's rates, looked up once
        self._baseline_rates: dict[tuple[str | None, int], tuple[tuple[Decimal, ...] | None, ...]] = {}

    @property
    def names(self) -> list[str]:
        return list(self.baselines)

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

    def baseline_model(self, phase: str | None, name: str | None = None) -> str:
        """The model ``name`` (default: the primary) gives ``phase``; a phase it does not name: ``other``."""
        models = self.baselines[name] if name else self._primary
        return models.get(phase or "other") or models["other"]

    def _rates_of_baselines(self, phase: str | None, bucket: int) -> tuple[tuple[Decimal, ...] | None, ...]:
        key = (phase, bucket)
        found = self._baseline_rates.get(key)
        if found is None:
            found = self._baseline_rates[key] = tuple(
                self.rates(self.baseline_model(phase, name), bucket) for name in self.baselines
            )
        return found

    def price(self, group: UsageGroup) -> tuple[Decimal | None, tuple[Decimal, ...] | None]:
        """(what it cost, what Claude would have cost for it under each baseline)."""
        t = group.tokens
        rates = self.rates(group.model, group.bucket)
        if rates is None:
            return None, None
        uncached = t.prompt_tokens - t.cached_tokens - t.cache_write_5m_tokens - t.cache_write_1h_tokens
        if uncached < 0:
            uncached = 0
        counts = (uncached, t.cached_tokens, t.cache_write_5m_tokens, t.cache_write_1h_tokens, t.completion_tokens)
        cost = self._apply(rates, *counts)
        if side(group.provider) == CLAUDE:
            return cost, (cost,) * len(self.baselines)  # Claude's own tokens count the same in every world
        claude = self._rates_of_baselines(group.phase if group.phase in PHASES else None, group.bucket)
        if None in claude:
            return cost, None
        # GLM's cache hits as Claude cache reads; GLM has no cache writes to price
        apply = self._apply
        return cost, tuple([apply(r, *counts) for r in claude])  # type: ignore[arg-type]


def unpriced_baseline(prices: PriceTable, monitor: MonitorSettings) -> list[str]:
    """Baseline settings whose model has no price: the report refuses to run with them."""
    return [
        f"monitor.baselines.{name}.{key}: {model}"
        for name, models in monitor.baselines.items()
        for key, model in models.items()
        if prices.lookup(model) is None
    ]
