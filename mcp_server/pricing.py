"""prices.yaml -> USD. An unknown model is *unpriced*, a state of its own, never $0.

Token fields follow one convention for every provider (see ledger.UsageRow):
``prompt_tokens`` counts every input token, cached reads and cache writes included.

Some models are priced by the size of each request's prompt (Claude Haiku 5.5: every token of
a request whose prompt is over 100,000 tokens, output included, is billed at higher rates). A
row says so with ``tiers``; the prompt size of ONE request decides its tier. Totals summed over
many requests must therefore be priced per tier bucket: group the ledger's rows by
``PriceTable.bucket_sql()`` and price each group with ``bucket_prompt_size(bucket)``
(``budget.spend`` and the monitor do this).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

PER_MILLION = 1_000_000
_RATE_FIELDS = ("input", "cached_input", "cache_write_5m", "cache_write_1h", "output")


class PriceTableError(Exception):
    """A price row is malformed; the message names the model and the field."""


@dataclass(frozen=True)
class Rates:
    """USD per million tokens for one tier of one model."""

    input: float
    output: float
    cached_input: float
    cache_write_5m: float
    cache_write_1h: float


@dataclass(frozen=True)
class Tier:
    """Rates for a request whose prompt (all input tokens) is above ``above_prompt_tokens``."""

    above_prompt_tokens: int
    rates: Rates


@dataclass(frozen=True)
class Price:
    input: float
    output: float
    cached_input: float
    cache_write_5m: float
    cache_write_1h: float
    source: str
    date: str
    tiers: tuple[Tier, ...] = ()  # ascending by threshold

    @property
    def base(self) -> Rates:
        return Rates(self.input, self.output, self.cached_input, self.cache_write_5m, self.cache_write_1h)

    def rates_for(self, prompt_size: int | None) -> Rates:
        """The rates of a request with this prompt size; None: the base rates."""
        chosen = self.base
        if prompt_size is None:
            return chosen
        for tier in self.tiers:
            if prompt_size > tier.above_prompt_tokens:
                chosen = tier.rates
        return chosen


@dataclass(frozen=True)
class TokenCounts:
    prompt_tokens: int = 0
    cached_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    completion_tokens: int = 0

    @property
    def uncached_input(self) -> int:
        return max(
            0,
            self.prompt_tokens
            - self.cached_tokens
            - self.cache_write_5m_tokens
            - self.cache_write_1h_tokens,
        )


def _rates_from(model: str, row: Mapping[str, Any], where: str) -> Rates:
    try:
        base_input = float(row["input"])
        output = float(row["output"])
    except (KeyError, TypeError, ValueError):
        raise PriceTableError(f"price row {model!r}{where} needs numeric 'input' and 'output'") from None
    try:
        # No published cache price: a cache hit (or write) is billed as plain input.
        return Rates(
            input=base_input,
            output=output,
            cached_input=float(row.get("cached_input", base_input)),
            cache_write_5m=float(row.get("cache_write_5m", base_input)),
            cache_write_1h=float(row.get("cache_write_1h", base_input)),
        )
    except (TypeError, ValueError):
        raise PriceTableError(f"price row {model!r}{where} has a non-numeric price") from None


def _tiers_from(model: str, raw: Any) -> tuple[Tier, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise PriceTableError(f"price row {model!r}: 'tiers' must be a list of {{above_prompt_tokens, input, output, ...}}")
    tiers = []
    for index, item in enumerate(raw):
        where = f" tiers[{index}]"
        if not isinstance(item, Mapping):
            raise PriceTableError(f"price row {model!r}{where} must be a mapping")
        unknown = set(item) - {"above_prompt_tokens", *_RATE_FIELDS}
        if unknown:
            raise PriceTableError(f"price row {model!r}{where} has unknown field(s): {', '.join(sorted(unknown))}")
        threshold = item.get("above_prompt_tokens")
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
            raise PriceTableError(f"price row {model!r}{where} needs a whole 'above_prompt_tokens' >= 0")
        tiers.append(Tier(threshold, _rates_from(model, item, where)))
    thresholds = [tier.above_prompt_tokens for tier in tiers]
    if len(set(thresholds)) != len(thresholds):
        raise PriceTableError(f"price row {model!r}: two tiers have the same 'above_prompt_tokens'")
    return tuple(sorted(tiers, key=lambda tier: tier.above_prompt_tokens))


def _price_from_row(model: str, row: Mapping[str, Any]) -> Price:
    if not isinstance(row, Mapping):
        raise PriceTableError(f"price row {model!r} must be a mapping of prices")
    rates = _rates_from(model, row, "")
    return Price(
        input=rates.input,
        output=rates.output,
        cached_input=rates.cached_input,
        cache_write_5m=rates.cache_write_5m,
        cache_write_1h=rates.cache_write_1h,
        source=str(row.get("source", "")),
        date=str(row.get("date", "")),
        tiers=_tiers_from(model, row.get("tiers")),
    )


def _exact(rate: float) -> Decimal:
    """A YAML rate as the decimal it was written as (0.1 -> Decimal('0.1'), not its binary double)."""
    return Decimal(repr(rate))


class PriceTable:
    def __init__(self, rows: Mapping[str, Mapping[str, Any]]):
        self._prices = {model: _price_from_row(model, row) for model, row in rows.items()}
        self._thresholds = tuple(
            sorted({tier.above_prompt_tokens for price in self._prices.values() for tier in price.tiers})
        )

    @classmethod
    def load(cls, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> "PriceTable":
        from mcp_server.config import load_data_yaml

        rows = dict(load_data_yaml("prices.yaml").get("models", {}))
        rows.update(overrides or {})
        return cls(rows)

    @property
    def models(self) -> dict[str, Price]:
        return dict(self._prices)

    def lookup(self, model: str) -> Price | None:
        """Exact id first, then the longest known id that the given one extends.

        The CLI reports ids such as ``claude-haiku-5-5-20261007`` or
        ``claude-sonnet-5-5[1m]``; they price as their base id. Nothing fuzzier.
        """
        if model in self._prices:
            return self._prices[model]
        best = None
        for known in self._prices:
            if model.startswith(known) and model[len(known)] in "-[@":
                if best is None or len(known) > len(best):
                    best = known
        return self._prices[best] if best else None

    def cost(self, model: str, tokens: TokenCounts, prompt_size: int | None = None) -> float | None:
        """USD for ``tokens``; None when the model is unpriced.

        ``prompt_size`` is the prompt of the one request these tokens belong to, and picks its
        tier. Without it the base rates apply: right for untiered models and for requests up to
        the first threshold. Sums over several requests: price them per tier bucket (see the
        module docstring), never with their summed prompt.
        """
        price = self.lookup(model)
        if price is None:
            return None
        rates = price.rates_for(prompt_size)
        return (
            tokens.uncached_input * rates.input
            + tokens.cached_tokens * rates.cached_input
            + tokens.cache_write_5m_tokens * rates.cache_write_5m
            + tokens.cache_write_1h_tokens * rates.cache_write_1h
            + tokens.completion_tokens * rates.output
        ) / PER_MILLION

    def request_cost(self, model: str, tokens: TokenCounts) -> float | None:
        """USD for the tokens of ONE request: its own prompt picks the tier."""
        return self.cost(model, tokens, prompt_size=tokens.prompt_tokens)

    def exact_cost(self, model: str, tokens: TokenCounts, prompt_size: int | None = None) -> Decimal | None:
        """As ``cost``, in Decimal: exact to the rates as written, for reports checked against bills."""
        price = self.lookup(model)
        if price is None:
            return None
        rates = price.rates_for(prompt_size)
        total = (
            tokens.uncached_input * _exact(rates.input)
            + tokens.cached_tokens * _exact(rates.cached_input)
            + tokens.cache_write_5m_tokens * _exact(rates.cache_write_5m)
            + tokens.cache_write_1h_tokens * _exact(rates.cache_write_1h)
            + tokens.completion_tokens * _exact(rates.output)
        )
        return total / PER_MILLION

    # --- tier buckets, for pricing sums of many requests ---------------------------------------

    @property
    def thresholds(self) -> tuple[int, ...]:
        """Every tier threshold of every model, ascending."""
        return self._thresholds

    def bucket_sql(self, column: str = "prompt_tokens") -> str:
        """An SQL expression: how many thresholds a row's prompt is above (0 = the base tier).

        Rows in one bucket are in the same tier for every model, so a bucket's summed tokens
        price exactly with ``bucket_prompt_size(bucket)``.
        """
        if not self._thresholds:
            return "0"
        return "(" + " + ".join(f"({column} > {int(t)})" for t in self._thresholds) + ")"

    def bucket_prompt_size(self, bucket: int) -> int:
        """A prompt size inside ``bucket``: what to pass as ``prompt_size`` for its sums."""
        if bucket <= 0 or not self._thresholds:
            return 0
        return self._thresholds[min(bucket, len(self._thresholds)) - 1] + 1

    def bucket_label(self, bucket: int) -> str:
        if bucket <= 0 or not self._thresholds:
            return f"prompt <= {self._thresholds[0]:,}" if self._thresholds else "all"
        low = self._thresholds[min(bucket, len(self._thresholds)) - 1]
        return f"prompt > {low:,}"
