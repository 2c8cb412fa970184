"""The ledger, summed: usage per (story, phase, provider, model, price-tier bucket, UTC hour),
so a million rows become a few thousand groups and no Python loop sees a single row; and the
Claude Code sessions that ran the selected stories. Read-only: a report never changes the ledger.

The sums come from the ledger's running totals (``usage_total``, kept by triggers:
mcp_server/ledger_totals.py) when they are bucketed by this price table's tiers; the hours that a
--since/--until window cuts are summed from their rows. Else (a ledger whose totals were never
given the tiers, or other tiers) every row is summed with a GROUP BY, as before the totals.

Every query of a report runs in one read transaction, so they all see the same ledger. The
ledger's ``usage_version`` (bumped by a trigger on every change of a usage row) says whether it
changed since the last report: when it did not, the answers are taken from the cache's
``ledger`` section instead of summing again.
"""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

from mcp_server.ledger_faults import timeout_s
from mcp_server.ledger_totals import has_totals, tiers
from mcp_server.monitor.inputs import TestRunGroup, UsageGroup
from mcp_server.usage import agent_totals
from mcp_server.pricing import PriceTable, TokenCounts

_SUMS = (
    "COUNT(*), SUM(prompt_tokens), SUM(cached_tokens), SUM(cache_write_5m_tokens),"
    " SUM(cache_write_1h_tokens), SUM(completion_tokens), MIN(ts), MAX(ts), SUM(status = 'ok:partial-usage')"
)

_TOTAL_SUMS = (
    "SUM(calls), SUM(prompt_tokens), SUM(cached_tokens), SUM(cache_write_5m_tokens),"
    " SUM(cache_write_1h_tokens), SUM(completion_tokens), MIN(first_ts), MAX(last_ts), SUM(partial)"
)
_LAST = chr(0x10FFFF)  # after every character: hour + _LAST is past every ts in that hour


def connect(path: Path) -> sqlite3.Connection:
    # read-only: a report never creates or changes the ledger; used by one thread at a time
    conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True, timeout=timeout_s(), check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={int(timeout_s() * 1000)}")
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
        self.path = path
        self.conn = connect(path)
        self.conn.execute("BEGIN")  # one snapshot: the version and every answer belong together
        self.answers: dict[str, Any] | None = None
        self.changed = False
        self._totals_match: bool | None = None
        self.version = version = _version(self.conn)
        if memo is not None and version is not None:
            if memo.get("version") != version:
                memo.clear()
                memo.update(version=version, answers={})
                self.changed = True
            self.answers = memo["answers"]

    def totals_match(self, prices: PriceTable) -> bool:
        """Whether the ledger keeps running totals bucketed by ``prices``' tiers (else the raw
        rows are summed)."""
        if self._totals_match is None:
            try:
                self._totals_match = has_totals(self.conn) and tiers(self.conn) == tuple(prices.thresholds)
            except sqlite3.DatabaseError:
                self._totals_match = False
        return self._totals_match

    def rows(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        return self.rows_of_parts([(sql, params)])

    def rows_of_parts(self, parts: Sequence[tuple[str, Sequence[Any]]]) -> list[Sequence[Any]]:
        """The rows of every (sql, params) part, in order. Two or more parts run on two
        connections at once (SQLite lets go of Python's lock while it works) when both see the
        same version of the ledger; else one after the other."""
        key = json.dumps([[sql, list(params)] for sql, params in parts])
        if self.answers is not None and key in self.answers:
            return self.answers[key]
        rows = self._run_parts(parts)
        if self.answers is not None:
            self.answers[key] = rows
            self.changed = True
        return rows

    def _run_parts(self, parts: Sequence[tuple[str, Sequence[Any]]]) -> list[Sequence[Any]]:
        other = self._second_connection() if len(parts) > 1 else None
        if other is None:
            return [row for sql, params in parts for row in self._run(self.conn, sql, params)]
        half = (len(parts) + 1) // 2
        try:
            with ThreadPoolExecutor(1) as pool:
                later = pool.submit(lambda: [row for sql, params in parts[half:] for row in self._run(other, sql, params)])
                first = [row for sql, params in parts[:half] for row in self._run(self.conn, sql, params)]
                return first + later.result()
        finally:
            other.close()

    def _second_connection(self) -> sqlite3.Connection | None:
        if self.version is None:
            return None  # no way to tell that it sees the same ledger
        conn = connect(self.path)
        conn.execute("BEGIN")
        if _version(conn) == self.version:
            return conn
        conn.close()
        return None

    @staticmethod
    def _run(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        return conn.execute(sql, params).fetchall()

    def close(self) -> None:
        self.conn.close()


def _version(conn: sqlite3.Connection) -> list[Any] | None:
    """(ledger id, version, last row id); None for a ledger without ``usage_version`` yet."""
    try:
        row = conn.execute("SELECT ledger, version FROM usage_version WHERE id = 1").fetchone()
        last = conn.execute("SELECT MAX(id) FROM usage").fetchone()[0]
    except sqlite3.DatabaseError:
        return None
    return [*(row or ("", 0)), last]


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
            partial=int(partial or 0),
        )
        for story, phase, provider, model, bucket, hour, calls, p, c, w5, w1, o, first, last, partial in rows
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
    split_at: str | None = None,
) -> list[UsageGroup]:
    """Usage summed per (story, phase, provider, model, price tier, hour). ``unattributed_only``
    keeps rows without a story: of the given ``sessions``, or, with ``sessions`` None, rows that
    have no session id (GLM calls and older rows; a time window decides for those). ``split_at``
    (a story id) splits the stories' rows in two halves, summed at once."""
    if unattributed_only:
        story_parts: list[tuple[str, list[str]]] = [("story IS NULL", [])]
        extra = [f"session_id IN ({', '.join('?' for _ in sessions)})" if sessions else "session_id IS NULL"]
        extra_params = list(sessions or [])
    else:
        # by story, so that no group is split between parts: two halves summed at once
        story_parts = [("story IS NULL", [])]
        story_parts += [("story < ?", [split_at]), ("story >= ?", [split_at])] if split_at else [("story IS NOT NULL", [])]
        extra, extra_params = [], []
    parts = []
    for clause, clause_params in story_parts:
        if ledger.totals_match(prices):
            parts += _total_parts([clause, *extra], [*clause_params, *extra_params], prices, since, until)
            continue
        where, params = _where(since, until, [clause, *extra])
        sql = (
            f"SELECT story, phase, provider, model, {prices.bucket_sql()} AS bucket, substr(ts, 1, 13) AS hour, {_SUMS}"
            f" FROM usage {where} GROUP BY story, phase, provider, model, bucket, hour"
        )
        parts.append((sql, [*clause_params, *extra_params, *params]))
    return _groups(ledger.rows_of_parts(parts))  # errors: load_input names the file


def _total_parts(
    clauses: Sequence[str], params: Sequence[Any], prices: PriceTable, since: str | None, until: str | None
) -> list[tuple[str, list[Any]]]:
    """The parts of a ``query_groups`` answered from the ledger's running totals: whole hours
    inside the window from ``usage_total``; the hours of ``since`` and ``until``, which the window
    may cut, from their rows (few, found by the ts index). A row's hour is the start of its ts, so
    an hour after since's is all at or after since, and one before until's all before until."""
    hours, hour_params, edges = [], [], []
    if since:
        hours.append("hour > ?")
        hour_params.append(since[:13])
        edges.append((since, min(until, since[:13] + _LAST) if until else since[:13] + _LAST))
    if until:
        hours.append("hour < ?")
        hour_params.append(until[:13])
        if not since or until[:13] != since[:13]:
            edges.append((max(since, until[:13]) if since else until[:13], until))
    where = " AND ".join([*clauses, *hours]) or "1"
    parts: list[tuple[str, list[Any]]] = [(
        f"SELECT story, phase, provider, model, bucket, hour, {_TOTAL_SUMS} FROM usage_total WHERE {where}"
        " GROUP BY story, phase, provider, model, bucket, hour",
        [*params, *hour_params],
    )]
    for low, high in edges:
        edge_where, edge_params = _where(low, high, clauses)
        parts.append((
            f"SELECT story, phase, provider, model, {prices.bucket_sql()} AS bucket, substr(ts, 1, 13) AS hour, {_SUMS}"
            f" FROM usage {edge_where} GROUP BY story, phase, provider, model, bucket, hour",
            [*params, *edge_params],
        ))
    return parts


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


def agent_gaps(ledger: LedgerReader) -> list[str]:
    """One line per agent whose total, as the main transcript reports it, exceeds its transcript
    (mcp_server/usage/agent_totals.py); asked afresh, as agent reports do not change the usage
    version. None from a ledger older than the check."""
    try:
        rows = ledger.conn.execute(agent_totals.CROSS_CHECK_SQL).fetchall()
    except sqlite3.OperationalError:  # no agent_report table yet
        return []
    return [agent_totals.describe(check) for check in agent_totals.checks(rows) if check.gap > 0]


def test_runs(ledger: LedgerReader, stories: Sequence[str], since: str | None, until: str | None) -> list[TestRunGroup]:
    """The selected stories' tested GLM calls (the ``test_run`` table, mcp_server/ledger_test_runs.py)
    summed per (story, tool, model), within --since/--until. Asked afresh, in the report's
    snapshot: a test run does not change the usage version. None from a ledger older than the
    table (a report opens the ledger read-only, so it never adds it)."""
    if not ledger.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'test_run'").fetchone():
        return []
    where, params = _where(since, until)
    rows = ledger.conn.execute(
        "SELECT story, tool, model, COUNT(*), SUM(first_passed), SUM(fix_rounds), SUM(passed)"
        f" FROM test_run {where} GROUP BY story, tool, model ORDER BY story, tool, model",
        params,
    ).fetchall()
    chosen = set(stories)  # filtered here: a thousand stories would not fit in one IN (...)
    return [TestRunGroup(story, tool, model, int(n), int(first or 0), int(fixes or 0), int(passed or 0))
            for story, tool, model, n, first, fixes, passed in rows if story in chosen]
