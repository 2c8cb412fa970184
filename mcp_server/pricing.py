"""prices.yaml -> USD. An unknown model is *unpriced*, a state of its own, never $0.

Token fields follow one convention for every provider (see ledger.UsageRow):
``prompt_tokens`` counts every input token, cached reads and cache writes included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

PER_MILLION = 1_000_000


class PriceTableError(Exception):
    """A price row is malformed; the message names the model and the field."""


@dataclass(frozen=True)
class Price:
    input: float
    output: float
    cached_input: float
    cache_write_5m: float
    cache_write_1h: float
    source: str
    date: str


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


def _price_from_row(model: str, row: Mapping[str, Any]) -> Price:
    try:
        base_input = float(row["input"])
        output = float(row["output"])
    except (KeyError, TypeError, ValueError):
        raise PriceTableError(f"price row {model!r} needs numeric 'input' and 'output'") from None
    try:
        return Price(
            input=base_input,
            output=output,
            # No published cache price: a cache hit is billed as plain input.
            cached_input=float(row.get("cached_input", base_input)),
            cache_write_5m=float(row.get("cache_write_5m", base_input)),
            cache_write_1h=float(row.get("cache_write_1h", base_input)),
            source=str(row.get("source", "")),
            date=str(row.get("date", "")),
        )
    except (TypeError, ValueError):
        raise PriceTableError(f"price row {model!r} has a non-numeric price") from None


class PriceTable:
    def __init__(self, rows: Mapping[str, Mapping[str, Any]]):
        self._prices = {model: _price_from_row(model, row) for model, row in rows.items()}

    @classmethod
    def load(cls, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> "PriceTable":
        from mcp_server.config import load_data_yaml

        rows = dict(load_data_yaml("prices.yaml").get("models", {}))
        rows.update(overrides or {})
        return cls(rows)

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

    def cost(self, model: str, tokens: TokenCounts) -> float | None:
        price = self.lookup(model)
        if price is None:
            return None
        return (
            tokens.uncached_input * price.input
            + tokens.cached_tokens * price.cached_input
            + tokens.cache_write_5m_tokens * price.cache_write_5m
            + tokens.cache_write_1h_tokens * price.cache_write_1h
            + tokens.completion_tokens * price.output
        ) / PER_MILLION
