"""Budget room held by GLM requests in flight, so parallel calls cannot overspend a cap.

A cap is checked against the ledger's spend, but a request's row is recorded only when it
ends: four parallel calls would all see the same room. Each request therefore reserves its
estimate before it is sent and gives it back once its row is recorded (or it failed).
"""

from __future__ import annotations

import itertools
from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable

import anyio
import anyio.to_thread


class InFlight:
    """Estimates of GLM requests sent and not yet in the ledger, per story and for the run.

    One per server and project, shared by every tool call. The lock spans check-and-reserve
    (the ledger read awaits a worker thread) and every release, so a check never misses a
    request that is neither reserved nor recorded: rows are recorded before their release.
    """

    def __init__(self) -> None:
        self._lock = anyio.Lock()
        self._held: dict[int, tuple[str, float]] = {}  # ticket -> (story, estimate)
        self._tickets = itertools.count()

    def reserved(self, story: str) -> tuple[float, float]:
        """(held for ``story``, held for the run), in USD; summed afresh so no float drift builds up."""
        return (
            sum(usd for held_story, usd in self._held.values() if held_story == story),
            sum(usd for _, usd in self._held.values()),
        )

    @asynccontextmanager
    async def reserve(
        self, story: str, estimate_usd: float, check: Callable[[float, float], None]
    ) -> AsyncIterator[None]:
        """Run ``check(reserved_for_story, reserved_for_run)`` in a worker thread (it reads the
        ledger and raises BudgetExceeded), then hold ``estimate_usd`` until the block ends."""
        async with self._lock:
            await anyio.to_thread.run_sync(check, *self.reserved(story))
            ticket = next(self._tickets)
            self._held[ticket] = (story, estimate_usd)
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):  # a cancelled call must still give its room back
                async with self._lock:
                    del self._held[ticket]
