"""The ledger, summed in SQL: usage per (story, phase, provider, model, price-tier bucket, UTC
hour), so a million rows become a few thousand groups and no Python loop sees a single row; and
the Claude Code sessions that ran the selected stories. Read-only: a report never changes the
ledger.

Every query of a report runs in one read transaction, so they all see the same ledger. The
ledger's ``usage_version`` (bumped by a trigger on every change of a usage row) says whether it
changed since the last report: when it did not, the answers are taken from the cache's
``ledger`` section instead of summing a million rows again.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Sequence

from mcp_server.monitor.inputs import MonitorInputError, UsageGroup
from mcp_server.pricing import PriceTable, TokenCounts

_SUMS = (
    "COUNT(*), SUM(prompt_tokens), SUM(cached_tokens), SUM(cache_write_5m_tokens),"
    " SUM(cache_write_1h_tokens), SUM(completion_tokens), MIN(ts), MAX(ts)"
)


def connect(path: Path) -> sqlite3.Connection:
    # read-only: a report never creates or changes the ledger
    conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True, timeout=10)
    conn.execute("PRAGMA busy_timeout=10000")
    for pragma in ("PRAGMA threads=4", "PRAGMA cache_size=-262144", "PRAGMA temp_store=MEMORY"):
        try:
            conn.execute(pragma)
        except sqlite3.Error:
            pass
    return conn


class LedgerReader:
    """The report's queries over one snapshot of the ledger, answered from ``memo`` (the cache's
    ``ledger`` section, changed in place) when the ledger has not changed since they were asked."""

    def __init__(self, path: Path, memo: dict[str, Any] | None = None):
        self.conn = connect(path)
        self.conn.execute("BEGIN")  # one snapshot: the version and every answer belong together
        self.answers: dict[str, Any] | None = None
        self.changed = False
        version = self._version()
        if memo is not None and version is not None:
            if memo.get("version") != version:
                memo.clear()
                memo.update(version=version, answers={})
                self.changed = True
            self.answers = memo["answers"]

    def _version(self) -> list[Any] | None:
        """(ledger id, version, last row id); None for a ledger without ``usage_version`` yet."""
        try:
            row = self.conn.execute("SELECT ledger, version FROM usage_version WHERE id = 1").fetchone()
            last = self.conn.execute("SELECT MAX(id) FROM usage").fetchone()[0]
        except sqlite3.DatabaseError:
            return None
        return [*(row or ("", 0)), last]

    def rows(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        key = json.dumps([sql, list(params)])
        if self.answers is not None and key in self.answers:
            return self.answers[key]
        rows = self._run(sql, params)
        if self.answers is not None:
            self.answers[key] = rows
            self.changed = True
        return rows

    def _run(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        return self.conn.execute(sql, params).fetchall()

    def close(self) -> None:
        self.conn.close()


def _groups(rows: Sequence[tuple]) -> list[UsageGroup]:
    return [
        UsageGroup(
            story=story,
            phase=phase,
            provider=provider,
            model=model,
            bucket=int(bucket or 0),
            hour=hour or "",
            calls=int(calls),
            tokens=TokenCounts(int(p or 0), int(c or 0), int(w5 or 0), int(w1 or 0), int(o or 0)),
            first_ts=first or "",
            last_ts=last or "",
        )
        for story, phase, provider, model, bucket, hour, calls, p, c, w5, w1, o, first, last in rows
    ]


def _where(since: str | None, until: str | None, extra: Sequence[str] = ()) -> tuple[str, list[str]]:
    clauses, params = list(extra), []
    if since:
        clauses.append("ts >= ?")
        params.append(since)
    if until:
        clauses.append("ts < ?")
        params.append(until)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params


def query_groups(
    ledger: LedgerReader,
    prices: PriceTable,
    since: str | None,
    until: str | None,
    *,
    unattributed_only: bool = False,
    sessions: Sequence[str] | None = None,
) -> list[UsageGroup]:
    """Usage summed per (story, phase, provider, model, price tier, hour). ``unattributed_only``
    keeps rows without a story: of the given ``sessions``, or, with ``sessions`` None, rows that
    have no session id (GLM calls and older rows; a time window decides for those)."""
    extra = ["story IS NULL"] if unattributed_only else []
    if unattributed_only:
        extra.append(f"session_id IN ({', '.join('?' for _ in sessions)})" if sessions else "session_id IS NULL")
    where, params = _where(since, until, extra)
    if unattributed_only and sessions:
        params = [*sessions, *params]
    sql = (
        f"SELECT story, phase, provider, model, {prices.bucket_sql()} AS bucket, substr(ts, 1, 13) AS hour, {_SUMS}"
        f" FROM usage {where} GROUP BY story, phase, provider, model, bucket, hour"
    )
    try:
        return _groups(ledger.rows(sql, params))
    except sqlite3.DatabaseError as error:
        raise MonitorInputError(f"the usage ledger cannot be read: {error}") from None


def sessions_of(
    ledger: LedgerReader, stories: Sequence[str], since: str | None, until: str | None
) -> tuple[list[str], list[str]]:
    """The sessions with usage of the selected stories, and the other stories they ran."""
    marks = ", ".join("?" for _ in stories)
    where, params = _where(since, until, [f"story IN ({marks})", "session_id IS NOT NULL"])
    sessions = [row[0] for row in ledger.rows(f"SELECT DISTINCT session_id FROM usage {where}", [*stories, *params])]
    if not sessions:
        return [], []
    others = ledger.rows(
        f"SELECT DISTINCT story FROM usage WHERE session_id IN ({', '.join('?' for _ in sessions)})"
        f" AND story IS NOT NULL AND story NOT IN ({marks})",
        [*sessions, *stories],
    )
    return sorted(sessions), sorted(row[0] for row in others)
