"""Money: what each usage group cost, what Claude alone would have cost for it, and the sums.

Decimal from the price table's rates as written, so a figure is exact to the rates and rounding
happens only when it is shown. Nothing here reads a file or the clock. The method is in
docs/cost-method.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterable, Mapping

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
        is_glm = group.provider == GLM
        self.tokens[GLM if is_glm else CLAUDE].add(group)
        if cost is None:
            self.unpriced.add(group.model)
            return
        if is_glm:
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


SIGNIFICANT_BELOW_A_DOLLAR = 3


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
    q = amount.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    text = f"{abs(q):,.{digits}f}"
    sign = "-" if amount < 0 else ""
    return f"{sign}${text}"


def cell_usd(value: Decimal | None, has_data: bool = True, unpriced: Iterable[str] = ()) -> str:
    """A table cell: four decimals, so a column lines up (the Markdown report and the dashboard)."""
    if not has_data or value is None:
        return "no data"
    return money_text(value, 4) + (" + unpriced" if list(unpriced) else "")


def savings_cell(money: "Money") -> str:
    if not money.has_data:
        return "no data"
    return f"{money_text(money.savings, 4)} ({pct_text(money.savings_pct)})"


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
