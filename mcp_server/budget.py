"""Budget caps from the config, checked against the ledger's spend before a model call."""

from __future__ import annotations

from dataclasses import dataclass

from mcp_server.delegation.errors import DelegationError
from mcp_server.ledger import Ledger
from mcp_server.pricing import PriceTable, TokenCounts

RAISE_HINT = "raise or remove it under `budget:` in .claude/hybrid.yaml"


class BudgetExceeded(DelegationError):
    """A call would take a story or the run over its cap; no request was sent."""


@dataclass(frozen=True)
class Spend:
    usd: float
    unpriced_models: tuple[str, ...]


def spend(ledger: Ledger, prices: PriceTable, *, story: str | None = None, since: str | None = None) -> Spend:
    """Claude and GLM together. Unpriced models are listed, not counted as free."""
    usd, unpriced = 0.0, []
    for totals in ledger.totals_by_model(story=story, since=since):
        cost = prices.cost(
            totals.model,
            TokenCounts(
                prompt_tokens=totals.prompt_tokens,
                cached_tokens=totals.cached_tokens,
                cache_write_5m_tokens=totals.cache_write_5m_tokens,
                cache_write_1h_tokens=totals.cache_write_1h_tokens,
                completion_tokens=totals.completion_tokens,
            ),
        )
        if cost is None:
            unpriced.append(totals.model)
        else:
            usd += cost
    return Spend(usd=usd, unpriced_models=tuple(unpriced))


def check_budget(
    *,
    per_story_usd: float | None,
    per_run_usd: float | None,
    ledger: Ledger,
    prices: PriceTable,
    story: str,
    run_started_at: str,
    estimate_usd: float,
) -> None:
    """Raise BudgetExceeded when spend so far plus this call's estimate passes a cap.

    The run is everything recorded in this project since the MCP server started,
    which Claude Code does once per session.
    """
    caps = (
        ("budget.per_story_usd", per_story_usd, f"story {story}", {"story": story}),
        ("budget.per_run_usd", per_run_usd, "this run", {"since": run_started_at}),
    )
    for name, cap, scope, query in caps:
        if cap is None:
            continue
        spent = spend(ledger, prices, **query).usd
        if spent + estimate_usd > cap:
            raise BudgetExceeded(
                f"{name} is ${cap:.2f}; {scope} has spent ${spent:.4f} and this call may cost up to "
                f"${estimate_usd:.4f}, so it was not sent. To continue, {RAISE_HINT}."
            )
