"""Budget room held by GLM requests in flight, so parallel calls cannot overspend a cap.

A cap is checked against the ledger's spend, but a request's row is recorded only when it
ends: four parallel calls would all see the same room. Each request therefore reserves its
estimate before it is sent and gives it back once its row is recorded (or it failed).

The reservations live in the ledger (table ``reservation``), and the check and the reservation
happen in one BEGIN IMMEDIATE transaction: every MCP server process on the project (one per
Claude Code session) sees the others' requests in flight, and two checks never interleave.
A reservation whose process is gone (killed mid-call) or that outlived its expiry no longer
holds anything.
"""

from __future__ import annotations

import logging
import os
import socket
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import AsyncIterator, Callable

import anyio
import anyio.to_thread

from mcp_server.budget import BudgetExceeded
from mcp_server.ledger import Ledger, LedgerError, utc_now

log = logging.getLogger("hybrid.inflight")

Check = Callable[[Ledger, float, float], None]


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def expire(ledger: Ledger) -> None:
    host, now = socket.gethostname(), utc_now()
    for ident, held_host, pid, expires_at in ledger.fetchall("SELECT id, host, pid, expires_at FROM reservation"):
        if expires_at < now or (held_host == host and not _process_alive(pid)):
            ledger.execute("DELETE FROM reservation WHERE id = ?", (ident,))


def reserved(ledger: Ledger, story: str) -> tuple[float, float]:
    """(held for ``story``, held for the run) in USD, by every process on this ledger."""
    [(for_story, for_run)] = ledger.fetchall(
        "SELECT COALESCE(SUM(CASE WHEN story = ? THEN usd END), 0), COALESCE(SUM(usd), 0) FROM reservation",
        (story,),
    )
    return float(for_story), float(for_run)


class InFlight:
    """The reservations of one project's ledger; ``hold_s`` is how long one may live at most
    (a tool call's whole GLM deadline, and some)."""

    def __init__(self, ledger_path: Path, hold_s: float):
        self.ledger_path = Path(ledger_path)
        self.hold_s = hold_s

    def _check_and_hold(self, story: str, estimate_usd: float, check: Check) -> int:
        ledger = Ledger(self.ledger_path)
        try:
            return self._hold(ledger, story, estimate_usd, check)
        except LedgerError as error:
            raise BudgetExceeded(f"the budget cannot be checked: {error}. This call was not sent.") from None
        finally:
            ledger.close()

    def _hold(self, ledger: Ledger, story: str, estimate_usd: float, check: Check) -> int:
        with ledger.transaction():
            expire(ledger)
            check(ledger, *reserved(ledger, story))
            expires_at = (datetime.now(timezone.utc) + timedelta(seconds=self.hold_s)).isoformat(timespec="milliseconds")
            cursor = ledger.execute(
                "INSERT INTO reservation (story, usd, host, pid, expires_at) VALUES (?, ?, ?, ?, ?)",
                (story, estimate_usd, socket.gethostname(), os.getpid(), expires_at),
            )
            return int(cursor.lastrowid)

    def _release(self, ident: int) -> None:
        ledger = Ledger(self.ledger_path)
        try:
            ledger.execute("DELETE FROM reservation WHERE id = ?", (ident,))
        except LedgerError as error:  # it expires on its own; until then it only holds room back
            log.warning("budget reservation %s not released: %s", ident, error)
        finally:
            ledger.close()

    def reserved(self, story: str) -> tuple[float, float]:
        ledger = Ledger(self.ledger_path)
        try:
            expire(ledger)
            return reserved(ledger, story)
        finally:
            ledger.close()

    @asynccontextmanager
    async def reserve(self, story: str, estimate_usd: float, check: Check) -> AsyncIterator[None]:
        """Run ``check(ledger, reserved_for_story, reserved_for_run)`` in a worker thread (it reads
        the ledger and raises BudgetExceeded), then hold ``estimate_usd`` until the block ends."""
        ident = await anyio.to_thread.run_sync(self._check_and_hold, story, estimate_usd, check)
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):  # a cancelled call must still give its room back
                await anyio.to_thread.run_sync(self._release, ident)
