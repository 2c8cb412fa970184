"""One push: the ledger's new rows -> running totals -> the exporter; the cursor moves only on success.

Each batch is one transaction on telemetry.db: read the rows after the cursor, add them to the
series totals, export the touched series, and only when the exporter says it succeeded, move
the cursor and commit. A failure rolls all of it back and notes the error, so the next push
sends the same rows again: nothing is lost, and nothing is counted twice, since what is sent
is each series' cumulative total, not the increment.

``Background`` runs pushes in a thread of its own while the MCP server runs, and a last one
when it stops: a slow or unreachable collector never holds up a tool call.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Callable

from mcp_server.config import ConfigError, Settings
from mcp_server.errors import HybridError
from mcp_server.ledger import Ledger, ledger_path, utc_now
from mcp_server.pricing import PriceTable, PriceTableError
from mcp_server.telemetry.export import Exporter
from mcp_server.telemetry.series import Increments, baselines_from, unpriced_baselines
from mcp_server.telemetry.state import SOURCES, TelemetryState, state_path

log = logging.getLogger("hybrid.telemetry")

BATCH_ROWS = 2000


@dataclass(frozen=True)
class PushResult:
    rows: int  # ledger rows exported by this push (usage rows and refusals)
    series: int  # series sent
    error: str | None = None
    waiting: int = 0  # rows left for a later push: not settled yet, or after a failure

    @property
    def ok(self) -> bool:
        return self.error is None


class _ExportFailed(Exception):
    pass


class Pusher:
    """Holds the exporter and the open files between pushes (the server makes one push a minute)."""

    def __init__(self, settings: Settings, exporter_factory: Callable[..., Exporter] = Exporter):
        telemetry = settings.telemetry
        if not telemetry.enabled:
            raise ConfigError("telemetry.endpoint is not set: nothing to push to (see docs/telemetry.md)")
        try:
            self.prices = PriceTable.load(settings.prices)
        except PriceTableError as error:
            raise ConfigError(f"prices: {error}") from None
        self.baselines = baselines_from(telemetry.baselines, settings.monitor)
        unpriced = unpriced_baselines(self.baselines, self.prices)
        if unpriced:
            raise ConfigError(f"a baseline model has no price, so its cost cannot be sent: {'; '.join(unpriced)}")
        self.settings = settings
        self.ledger_file = ledger_path(settings.project_root)
        self.state = TelemetryState(state_path(settings.project_root))
        instance, start_ns = self.state.identity()
        try:
            self.exporter = exporter_factory(telemetry, instance, start_ns)
        except BaseException:
            self.state.close()
            raise
        self.point_attributes = dict(telemetry.resource_attributes)

    def close(self) -> None:
        self.exporter.close()
        self.state.close()

    def push(self, settle_s: float = 0.0, now: Callable[[], float] = time.time) -> PushResult:
        if not self.ledger_file.exists():
            return PushResult(0, 0)
        ledger = Ledger(self.ledger_file)
        try:
            latest = {source: ledger.last_id(source) for source in SOURCES}
            with self.state.transaction():
                upto = self.state.settled(latest, now(), settle_s)
            rows = series = 0
            try:
                while True:
                    with self.state.transaction():
                        sent = self._batch(ledger, upto)
                        if sent is None:
                            break
                        rows, series = rows + sent[0], series + sent[1]
            except _ExportFailed as failure:
                self.state.note_error(utc_now(), str(failure))
                return PushResult(rows, series, str(failure), self._left(latest))
            return PushResult(rows, series, None, self._left(latest))
        finally:
            ledger.close()

    def _batch(self, ledger: Ledger, upto: dict[str, int]) -> tuple[int, int] | None:
        """One batch inside the caller's transaction: (rows, series), or None when none is left."""
        cursor = self.state.cursor()
        batch = {source: ledger.rows_after(source, cursor[source], upto[source], BATCH_ROWS) for source in SOURCES}
        if not any(batch.values()):
            return None
        increments = Increments()
        for row in batch["usage"]:
            increments.usage_row(row, self.prices, self.baselines, self.point_attributes)
        for row in batch["budget_refusal"]:
            increments.refusal_row(row, self.point_attributes)
        totals = self.state.add(increments.values)
        outcome = self.exporter.export(totals)
        if not outcome.ok:
            raise _ExportFailed(outcome.error)  # the transaction is rolled back: totals and cursor stay
        self.state.move_cursor({source: rows[-1]["id"] for source, rows in batch.items() if rows})
        count = sum(len(rows) for rows in batch.values())
        self.state.note_success(utc_now(), count)
        return count, len(totals)

    def _left(self, latest: dict[str, int]) -> int:
        cursor = self.state.cursor()
        return sum(max(0, latest[source] - cursor[source]) for source in SOURCES)


def push(settings: Settings, settle_s: float = 0.0) -> PushResult:
    try:
        pusher = Pusher(settings)
        try:
            return pusher.push(settle_s)
        finally:
            pusher.close()
    except sqlite3.Error as error:
        raise HybridError(f"telemetry: {state_path(settings.project_root)} or the ledger: {error}") from None


class Background:
    """Pushes every ``telemetry.interval_s`` in a daemon thread, and once more at ``stop``."""

    def __init__(self, pusher: Pusher):
        self.pusher = pusher
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hybrid-telemetry", daemon=True)
        self._last_error: str | None = None

    def start(self) -> "Background":
        self._thread.start()
        return self

    def _push(self, settle_s: float) -> None:
        try:
            result = self.pusher.push(settle_s)
        except Exception:  # a bug here must never reach a tool call
            log.exception("telemetry push failed")
            return
        if result.error and result.error != self._last_error:
            log.warning("telemetry: push failed, %d row(s) wait for the next one: %s", result.waiting, result.error)
        self._last_error = result.error

    def _run(self) -> None:
        telemetry = self.pusher.settings.telemetry
        while not self._stop.wait(telemetry.interval_s):
            self._push(telemetry.settle_s)

    def stop(self) -> None:
        """The last push: every row there is (the session is over), then the files are closed."""
        self._stop.set()
        self._thread.join()
        self._push(0.0)
        try:
            self.pusher.close()
        except Exception:
            log.exception("telemetry: closing the exporter failed")


def start_background(settings: Settings) -> Background | None:
    """The server's pusher, or None when telemetry is off or cannot start (said in the log)."""
    if not settings.telemetry.enabled:
        return None
    try:
        return Background(Pusher(settings)).start()
    except HybridError as error:
        log.warning("telemetry is configured but off: %s", error)
    except (sqlite3.Error, OSError) as error:  # the server runs on without it
        log.warning("telemetry is configured but off: %s: %s", state_path(settings.project_root), error)
    return None
