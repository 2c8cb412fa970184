"""The ledger, summed in SQL: usage per (story, phase, provider, model, price-tier bucket, UTC
hour), so a million rows become a few thousand groups and no Python loop sees a single row; and
the Claude Code sessions that ran the selected stories. Read-only: a report never changes the
ledger.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Sequence

from mcp_server.ledger_faults import timeout_s
from mcp_server.usage import agent_totals
from mcp_server.monitor.inputs import UsageGroup
from mcp_server.pricing import PriceTable, TokenCounts

_SUMS = (
    "COUNT(*), SUM(prompt_tokens), SUM(cached_tokens), SUM(cache_write_5m_tokens),"
    " SUM(cache_write_1h_tokens), SUM(completion_tokens), MIN(ts), MAX(ts), SUM(status = 'ok:partial-usage')"
)


def connect(path: Path) -> sqlite3.Connection:
    # read-only: a report never creates or changes the ledger
    conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True, timeout=timeout_s())
    conn.execute(f"PRAGMA busy_timeout={int(timeout_s() * 1000)}")
    for pragma in ("PRAGMA threads=4", "PRAGMA cache_size=-262144", "PRAGMA temp_store=MEMORY"):
        try:
            conn.execute(pragma)
        except sqlite3.Error:
            pass
    return conn


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
    conn: sqlite3.Connection,
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
    return _groups(conn.execute(sql, params).fetchall())  # errors: load_input names the file


def sessions_of(
    conn: sqlite3.Connection, stories: Sequence[str], since: str | None, until: str | None
) -> tuple[list[str], list[str]]:
    """The sessions with usage of the selected stories, and the other stories they ran."""
    marks = ", ".join("?" for _ in stories)
    where, params = _where(since, until, [f"story IN ({marks})", "session_id IS NOT NULL"])
    sessions = [row[0] for row in conn.execute(f"SELECT DISTINCT session_id FROM usage {where}", [*stories, *params])]
    if not sessions:
        return [], []
    others = conn.execute(
        f"SELECT DISTINCT story FROM usage WHERE session_id IN ({', '.join('?' for _ in sessions)})"
        f" AND story IS NOT NULL AND story NOT IN ({marks})",
        [*sessions, *stories],
    )
    return sorted(sessions), sorted(row[0] for row in others)


def agent_gaps(conn: sqlite3.Connection) -> list[str]:
    """One line per agent whose total, as the main transcript reports it, exceeds its transcript
    (mcp_server/usage/agent_totals.py); none from a ledger older than the check."""
    try:
        rows = conn.execute(agent_totals.CROSS_CHECK_SQL).fetchall()
    except sqlite3.OperationalError:  # no agent_report table yet
        return []
    return [agent_totals.describe(check) for check in agent_totals.checks(rows) if check.gap > 0]
