"""A GLM call's ledger row: recorded, or kept in the ledger's spool when the ledger cannot take it.

GLM's answer is paid for, so its row is never dropped: a locked or unwritable ledger gets it
later, when the next process that opens the ledger merges the spool (mcp_server/ledger_spool.py).
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict
from pathlib import Path

from mcp_server import ledger_spool
from mcp_server.delegation.glm import Completion
from mcp_server.ledger import Ledger, UsageRow, utc_now
from mcp_server.pricing import PriceTable, TokenCounts


def glm_usage_row(
    completion: Completion | None, prices: PriceTable, *, requested_model: str, story: str,
    phase: str | None, tool: str, status: str, attempts: int, run_id: str | None,
) -> UsageRow:
    """The ledger row of one GLM call: its tokens and cost as GLM reported them, or a row with
    no tokens for a call that failed after sending (``completion`` None), under the model asked for."""
    usage = completion.usage if completion else None
    tokens = TokenCounts(
        prompt_tokens=usage.prompt_tokens if usage else 0,
        cached_tokens=usage.cached_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
    )
    model = completion.model if completion else requested_model
    return UsageRow(
        provider="glm", model=model, story=story, phase=phase, tool=tool,
        prompt_tokens=tokens.prompt_tokens, cached_tokens=tokens.cached_tokens,
        completion_tokens=tokens.completion_tokens, reasoning_tokens=usage.reasoning_tokens if usage else 0,
        latency_ms=int(completion.latency_s * 1000) if completion else None,
        status=status, attempt=attempts, cost_usd=prices.request_cost(model, tokens), run_id=run_id,
    )


def record_or_spool(path: Path, row: UsageRow) -> list[str]:
    """Record ``row``. A ledger that cannot take it (locked, unwritable) gets it later: the
    row goes to the spool. Returns the lines the user must see (empty: recorded, nothing to say)."""
    ledger = Ledger(path)
    try:
        ledger.record(row)
        return ledger.notices
    except (sqlite3.Error, OSError) as error:
        values = asdict(row)
        values["ts"] = values["ts"] or utc_now()
        values["dedup_key"] = values["dedup_key"] or ledger_spool.spool_key()
        spooled = ledger_spool.append(path, values)
        return [*ledger.notices, f"usage only spooled to {spooled} ({error}); it is merged when the ledger can be written"]
    finally:
        ledger.close()


def run_of_story(path: Path, story: str) -> str | None:
    """The run ``story`` is in now (mcp_server/ledger_runs.py), looked up when a GLM call begins,
    so that its rows carry it even when the ledger is locked by then and they must be spooled."""
    if not Path(path).exists():
        return None
    ledger = Ledger(path)
    try:
        return ledger.run_of(story)
    except (sqlite3.Error, OSError):
        return None  # the row's run is then looked up when it is written or merged
    finally:
        ledger.close()
