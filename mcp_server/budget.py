"""Budget caps from the config, checked against the ledger's spend before a model call.

The server checks every GLM request against ledger spend plus the estimates of the requests
still in flight (mcp_server/delegation/inflight.py), so parallel calls cannot each see the same
room under a cap. Standard library and pydantic only: the hook guard imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from mcp_server.delegation.errors import DelegationError
from mcp_server.ledger import Ledger
from mcp_server.pricing import PriceTable, TokenCounts

RAISE_HINT = "raise or remove it under `budget:` in .claude/hybrid.yaml"
PRICE_HINT = "add their prices under `prices:` in .claude/hybrid.yaml (data/prices.yaml's shape), or remove the cap"


class BudgetExceeded(DelegationError):
    """A call would take a story or the run over its cap; no request was sent.

    ``cap`` names the setting that stopped it (``budget.per_story_usd`` or ``budget.per_run_usd``)."""

    def __init__(self, message: str, *, cap: str = ""):
        super().__init__(message)
        self.cap = cap


@dataclass(frozen=True)
class Spend:
    usd: float
    unpriced_models: tuple[str, ...]
    by_provider: Mapping[str, float] = field(default_factory=dict)  # "anthropic"/"glm" -> USD
    by_model: Mapping[tuple[str, str], float | None] = field(default_factory=dict)  # None: unpriced


def spend(
    ledger: Ledger, prices: PriceTable, *, story: str | None = None, since: str | None = None, run_id: str | None = None
) -> Spend:
    """Claude and GLM together. Unpriced models are listed, not counted as free.

    Every row is re-priced from its tokens, per price tier: rows are summed in SQL by
    (provider, model, tier bucket), so a request's own prompt size picks its tier.
    """
    usd, unpriced, by_provider, by_model = 0.0, [], {}, {}
    rows = ledger.totals_by_bucket(prices.bucket_sql(), story=story, since=since, run_id=run_id)
    for provider, model, bucket, prompt, cached, write_5m, write_1h, completion in rows:
        cost = prices.cost(
            model,
            TokenCounts(
                prompt_tokens=prompt or 0,
                cached_tokens=cached or 0,
                cache_write_5m_tokens=write_5m or 0,
                cache_write_1h_tokens=write_1h or 0,
                completion_tokens=completion or 0,
            ),
            prompt_size=prices.bucket_prompt_size(bucket),
        )
        if cost is None:
            if model not in unpriced:
                unpriced.append(model)
            by_model[(provider, model)] = None
        else:
            usd += cost
            by_provider[provider] = by_provider.get(provider, 0.0) + cost
            by_model[(provider, model)] = (by_model.get((provider, model)) or 0.0) + cost
    return Spend(usd=usd, unpriced_models=tuple(unpriced), by_provider=by_provider, by_model=by_model)


def unpriced_message(setting: str, cap: float, scope: str, models: tuple[str, ...]) -> str:
    """A cap cannot be checked against spend it cannot price: never counted as $0, it stops the call."""
    return (f"{setting} is {usd(cap)}, but {scope} has calls to {', '.join(models)}, which have no price, "
            f"so what it spent is unknown. To continue, {PRICE_HINT}.")


def usd(value: float) -> str:
    """Cents when the amount is whole cents ($0.50), else enough digits to be exact ($0.004)."""
    return f"${value:.2f}" if round(value, 2) == value else f"${value:.8f}".rstrip("0")


def check_budget(
    *,
    per_story_usd: float | None,
    per_run_usd: float | None,
    ledger: Ledger | None,
    prices: PriceTable,
    story: str,
    run_started_at: str,
    estimate_usd: float,
    run_id: str | None = None,
    reserved_story_usd: float = 0.0,
    reserved_run_usd: float = 0.0,
) -> None:
    """Raise BudgetExceeded when a cap is reached, or when this call's estimate would pass it.

    Spent is the ledger's spend plus what requests in flight have reserved (``ledger`` None:
    nothing recorded yet). A cap is reached at spent >= cap, as the hook guard has it; a call
    is refused also when spent + its estimate > cap. The run is the pilot run the story is in
    (``run_id``, `hybrid runs`); outside one, everything recorded in this project since the MCP
    server started, which Claude Code does once per session.
    """
    run_scope, run_query = (f"run {run_id}", {"run_id": run_id}) if run_id else ("this run", {"since": run_started_at})
    caps = (
        ("budget.per_story_usd", per_story_usd, f"story {story}", {"story": story}, reserved_story_usd),
        ("budget.per_run_usd", per_run_usd, run_scope, run_query, reserved_run_usd),
    )
    for name, cap, scope, query, reserved in caps:
        if cap is None:
            continue
        recorded = spend(ledger, prices, **query) if ledger is not None else Spend(0.0, ())
        if recorded.unpriced_models:
            raise BudgetExceeded(
                unpriced_message(name, cap, scope, recorded.unpriced_models) + " This call was not sent.", cap=name
            )
        spent = recorded.usd + reserved
        if spent >= cap or spent + estimate_usd > cap:
            in_flight = f" (${reserved:.4f} of it held by calls still running)" if reserved else ""
            raise BudgetExceeded(
                f"{name} is {usd(cap)}; {scope} has spent ${spent:.4f}{in_flight} and this call may cost up to "
                f"${estimate_usd:.4f}, so it was not sent. To continue, {RAISE_HINT}.",
                cap=name,
            )
