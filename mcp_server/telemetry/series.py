"""Ledger rows -> increments of named metric series. Pure: no SDK, no file, no clock.

A series is (metric name, its attributes); its value only grows. Attribute names follow Claude
Code's own metrics where the meaning is the same (``model``, ``type``, ``session.id``), so the
two sit side by side in one dashboard. Money is Decimal at the price table's rates as written,
priced per request (the row's own prompt picks its tier), as ``hybrid report`` prices it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping, get_args

from mcp_server.config import BaselineKey, MonitorSettings
from mcp_server.pricing import PriceTable, TokenCounts

TOKEN_USAGE = "hybrid.token.usage"
COST_USAGE = "hybrid.cost.usage"
COST_BASELINE = "hybrid.cost.baseline"
UNPRICED_CALLS = "hybrid.usage.unpriced"
DELEGATION_CALLS = "hybrid.delegation.count"
DELEGATION_ATTEMPTS = "hybrid.delegation.attempts"
DELEGATION_DURATION = "hybrid.delegation.duration"
BUDGET_REFUSALS = "hybrid.budget.refusals"

# name -> (unit, description). Units as Claude Code writes them ("tokens", "USD").
METRICS: dict[str, tuple[str, str]] = {
    TOKEN_USAGE: ("tokens", "Tokens used, Claude's and GLM's, by type (input, output, cacheRead, cacheCreation)"),
    COST_USAGE: ("USD", "Cost at the price table's list prices, per request tier"),
    COST_BASELINE: ("USD", "What the same work would have cost Claude-only, per baseline name"),
    UNPRICED_CALLS: ("{call}", "Calls to a model with no price: in token usage, not in any cost"),
    DELEGATION_CALLS: ("{call}", "GLM tool requests recorded, by status"),
    DELEGATION_ATTEMPTS: ("{attempt}", "HTTP attempts of those requests, retries included"),
    DELEGATION_DURATION: ("s", "Seconds GLM took to answer (the successful attempt of each request)"),
    BUDGET_REFUSALS: ("{call}", "Calls a budget cap stopped before any model was called"),
}

PHASES = frozenset(get_args(BaselineKey)) - {"other"}
GLM = "glm"

Attributes = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Attributes]


@dataclass(frozen=True)
class Baseline:
    """A named Claude-only baseline: the Claude model that would have done each phase."""

    name: str
    models: Mapping[str, str]  # phase (P1..P7, "other") -> model id
    setting: str = "monitor.baselines"  # where it is set, for an error that names it

    def model_for(self, phase: str | None) -> str:
        return self.models.get(phase if phase in PHASES else "other") or self.models["other"]


def baselines_from(named: Mapping[str, Mapping[str, str]], monitor: MonitorSettings) -> list[Baseline]:
    """Every baseline of ``monitor.baselines`` (what `hybrid report` compares with), and each of
    ``telemetry.baselines`` over the primary one: it overrides the phases it lists."""
    chosen = {name: Baseline(name, dict(monitor.baselines[name])) for name in monitor.baseline_names}
    primary = chosen[monitor.primary_baseline].models
    chosen.update({name: Baseline(name, {**primary, **dict(models)}, "telemetry.baselines") for name, models in named.items()})
    return [chosen[name] for name in sorted(chosen)]


def unpriced_baselines(baselines: list[Baseline], prices: PriceTable) -> list[str]:
    return sorted(
        f"{b.setting}.{b.name}.{phase}: {model}"
        for b in baselines
        for phase, model in b.models.items()
        if prices.lookup(model) is None
    )


def _attributes(pairs: Mapping[str, Any]) -> Attributes:
    """Sorted (name, text) pairs; an unknown value (None, "") is left out, not sent as a label."""
    return tuple(sorted((name, str(value)) for name, value in pairs.items() if value not in (None, "")))


def _common(row: Mapping[str, Any], extra: Mapping[str, str]) -> dict[str, Any]:
    return {
        **extra,
        "provider": row.get("provider"),
        "model": row.get("model"),
        "story": row.get("story"),
        "phase": row.get("phase"),
        "agent": row.get("agent_type"),
        "tool": row.get("tool"),
        "session.id": row.get("session_id"),
        "run.id": row.get("run_id"),  # only in ledgers that have the column
    }


def _tokens(row: Mapping[str, Any]) -> TokenCounts:
    return TokenCounts(
        prompt_tokens=int(row.get("prompt_tokens") or 0),
        cached_tokens=int(row.get("cached_tokens") or 0),
        cache_write_5m_tokens=int(row.get("cache_write_5m_tokens") or 0),
        cache_write_1h_tokens=int(row.get("cache_write_1h_tokens") or 0),
        completion_tokens=int(row.get("completion_tokens") or 0),
    )


class Increments:
    """Summed increments per series, in the order first seen."""

    def __init__(self) -> None:
        self.values: dict[SeriesKey, Decimal] = {}

    def add(self, metric: str, attributes: Mapping[str, Any], value: Decimal | int | float) -> None:
        if not value:
            return
        key = (metric, _attributes(attributes))
        self.values[key] = self.values.get(key, Decimal(0)) + Decimal(value)

    def usage_row(
        self, row: Mapping[str, Any], prices: PriceTable, baselines: list[Baseline], extra: Mapping[str, str]
    ) -> None:
        common = _common(row, extra)
        tokens = _tokens(row)
        for kind, count in (
            ("input", tokens.uncached_input),
            ("output", tokens.completion_tokens),
            ("cacheRead", tokens.cached_tokens),
            ("cacheCreation", tokens.cache_write_5m_tokens + tokens.cache_write_1h_tokens),
        ):
            self.add(TOKEN_USAGE, {**common, "type": kind}, count)
        prompt_size = tokens.prompt_tokens  # one row is one request: its own prompt picks the tier
        cost = prices.exact_cost(str(row.get("model")), tokens, prompt_size=prompt_size)
        if cost is None:
            self.add(UNPRICED_CALLS, {**extra, "provider": row.get("provider"), "model": row.get("model")}, 1)
        else:
            self.add(COST_USAGE, common, cost)
            for baseline in baselines:
                model = baseline.model_for(row.get("phase")) if row.get("provider") == GLM else None
                # Claude's own tokens cost the same in both worlds; GLM's are priced at the phase's Claude model
                alone = cost if model is None else prices.exact_cost(model, tokens, prompt_size=prompt_size)
                if alone is not None:
                    self.add(COST_BASELINE, {**common, "baseline": baseline.name, "baseline.model": model}, alone)
        if row.get("provider") == GLM:
            status = {**extra, **{k: common[k] for k in ("model", "story", "phase", "tool", "session.id", "run.id")},
                      "status": row.get("status")}
            self.add(DELEGATION_CALLS, status, 1)
            self.add(DELEGATION_ATTEMPTS, status, int(row.get("attempt") or 0))
            if row.get("latency_ms") is not None:
                self.add(DELEGATION_DURATION, status, Decimal(int(row["latency_ms"])) / 1000)

    def refusal_row(self, row: Mapping[str, Any], extra: Mapping[str, str]) -> None:
        attributes = {**extra, "cap": row.get("cap"), "story": row.get("story"), "source": row.get("source"),
                      "session.id": row.get("session_id"), "run.id": row.get("run_id")}
        self.add(BUDGET_REFUSALS, attributes, 1)
