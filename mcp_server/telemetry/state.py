"""What has been exported: ``.claude/hybrid/telemetry.db``, beside the ledger, never inside it.

A file of its own so that a push, which holds a write lock while it waits for the collector,
never holds up a hook writing the ledger. It keeps:
- ``cursor``: the last ledger row id exported, per ledger table;
- ``series``: each series' running total (what the metrics say, and send again and again:
  cumulative values, so a collector that gets one push twice counts nothing twice);
- ``sighting``: when a ledger id was first seen, so the server sends only rows that settled;
- ``info``: this exporter's instance id and start time, the last success and the last error.
Standard library only.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Iterator

from mcp_server.ledger import LEDGER_RELATIVE
from mcp_server.telemetry.series import Attributes, SeriesKey

STATE_RELATIVE = LEDGER_RELATIVE.parent / "telemetry.db"
SOURCES = ("usage", "budget_refusal")  # the ledger tables that are exported

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cursor (source TEXT PRIMARY KEY, last_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS series (
    metric TEXT NOT NULL,
    attributes TEXT NOT NULL,
    total TEXT NOT NULL,
    PRIMARY KEY (metric, attributes)
);
CREATE TABLE IF NOT EXISTS sighting (seen_at REAL NOT NULL, source TEXT NOT NULL, last_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def state_path(project_root: Path) -> Path:
    return Path(project_root) / STATE_RELATIVE


@dataclass(frozen=True)
class Status:
    path: Path
    cursor: dict[str, int]
    series: int
    instance_id: str | None
    last_success: str | None
    last_error: str | None
    last_error_at: str | None
    exported_rows: int


class TelemetryState:
    def __init__(self, path: Path, lock_timeout_s: float = 60):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A second pusher waits for the first (which holds the lock for at most its HTTP deadline).
        self._conn = sqlite3.connect(self.path, timeout=lock_timeout_s, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator["TelemetryState"]:
        """BEGIN IMMEDIATE: one pusher at a time; everything is undone unless the block ends well."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # --- info ---------------------------------------------------------------------------------

    def _info(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM info WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_info(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO info (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def identity(self) -> tuple[str, int]:
        """(instance id, start time in ns): fixed for the life of this file, so that every push
        continues the same cumulative series (and two machines never share one)."""
        instance, start = self._info("instance_id"), self._info("start_ns")
        if instance is None or start is None:
            instance, start = str(uuid.uuid4()), str(time.time_ns())
            self._set_info("instance_id", instance)
            self._set_info("start_ns", start)
        return instance, int(start)

    def note_success(self, when: str, rows: int) -> None:
        self._set_info("last_success", when)
        self._set_info("exported_rows", str(int(self._info("exported_rows") or 0) + rows))

    def note_error(self, when: str, message: str) -> None:
        self._set_info("last_error", message)
        self._set_info("last_error_at", when)

    # --- cursor and settling ------------------------------------------------------------------

    def cursor(self) -> dict[str, int]:
        known = dict(self._conn.execute("SELECT source, last_id FROM cursor").fetchall())
        return {source: int(known.get(source, 0)) for source in SOURCES}

    def move_cursor(self, positions: dict[str, int]) -> None:
        for source, last_id in positions.items():
            self._conn.execute(
                "INSERT INTO cursor (source, last_id) VALUES (?, ?)"
                " ON CONFLICT(source) DO UPDATE SET last_id = excluded.last_id",
                (source, last_id),
            )

    def settled(self, latest: dict[str, int], now: float, settle_s: float) -> dict[str, int]:
        """The last id per source that has been in the ledger for ``settle_s``: rows the hooks
        may still correct (a growing output count, a story learnt later) wait that long."""
        for source, last_id in latest.items():
            seen = self._conn.execute(
                "SELECT 1 FROM sighting WHERE source = ? AND last_id >= ?", (source, last_id)
            ).fetchone()
            if not seen:  # only the first sighting of an id counts (and an idle ledger adds nothing)
                self._conn.execute(
                    "INSERT INTO sighting (seen_at, source, last_id) VALUES (?, ?, ?)", (now, source, last_id)
                )
        if settle_s <= 0:
            settled = dict(latest)
        else:
            settled = {
                source: int(self._conn.execute(
                    "SELECT COALESCE(MAX(last_id), 0) FROM sighting WHERE source = ? AND seen_at <= ?",
                    (source, now - settle_s),
                ).fetchone()[0])
                for source in latest
            }
        # Older sightings say nothing new once a later one has settled.
        for source, last_id in settled.items():
            self._conn.execute("DELETE FROM sighting WHERE source = ? AND last_id < ?", (source, last_id))
        return settled

    # --- series -------------------------------------------------------------------------------

    def add(self, increments: dict[SeriesKey, Decimal]) -> dict[SeriesKey, Decimal]:
        """Add to the running totals; returns the new totals of the series touched."""
        totals = {}
        for (metric, attributes), value in increments.items():
            encoded = json.dumps(attributes)
            row = self._conn.execute(
                "SELECT total FROM series WHERE metric = ? AND attributes = ?", (metric, encoded)
            ).fetchone()
            total = (Decimal(row[0]) if row else Decimal(0)) + value
            self._conn.execute(
                "INSERT INTO series (metric, attributes, total) VALUES (?, ?, ?)"
                " ON CONFLICT(metric, attributes) DO UPDATE SET total = excluded.total",
                (metric, encoded, str(total)),
            )
            totals[(metric, attributes)] = total
        return totals

    def totals(self) -> dict[SeriesKey, Decimal]:
        return {
            (metric, _decode(attributes)): Decimal(total)
            for metric, attributes, total in self._conn.execute("SELECT metric, attributes, total FROM series")
        }

    def status(self) -> Status:
        return Status(
            path=self.path,
            cursor=self.cursor(),
            series=int(self._conn.execute("SELECT COUNT(*) FROM series").fetchone()[0]),
            instance_id=self._info("instance_id"),
            last_success=self._info("last_success"),
            last_error=self._info("last_error"),
            last_error_at=self._info("last_error_at"),
            exported_rows=int(self._info("exported_rows") or 0),
        )


def _decode(text: str) -> Attributes:
    return tuple((str(name), str(value)) for name, value in json.loads(text))
