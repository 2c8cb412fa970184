"""The ledger's running totals: ``usage_total`` holds the usage rows summed per (story, phase,
provider, model, price-tier bucket, UTC hour, session), kept by triggers in the same transaction
as every insert, update and delete of a usage row, so it never drifts from the rows. A report
sums a few thousand of these instead of a million rows.

The bucket is how many of ``usage_tier``'s thresholds a row's prompt is above: the thresholds
are the price table's (data, not code), written by a process that has the price table
(:func:`use_tiers`); until then the table is empty and every row is in bucket 0. A reader whose
price table has other thresholds than ``usage_tier`` must sum the raw rows instead.

Standard library only: the hooks open the ledger on every tool call. Additive: a ledger from
before these tables gets them, filled from its rows once (:func:`migrate`), and columns other
branches add to ``usage`` are left alone.
"""

from __future__ import annotations

import sqlite3
from typing import Sequence

KEY = ("story", "phase", "provider", "model", "bucket", "hour", "session_id")
SUMMED = ("prompt_tokens", "cached_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens", "completion_tokens")
PARTIAL = "status = 'ok:partial-usage'"  # a request whose transcript never got its final usage

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS usage_tier (tokens INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS usage_total (
    story TEXT,
    phase TEXT,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    hour TEXT NOT NULL,
    session_id TEXT,
    calls INTEGER NOT NULL DEFAULT 0,
    {", ".join(f"{name} INTEGER NOT NULL DEFAULT 0" for name in SUMMED)},
    partial INTEGER NOT NULL DEFAULT 0,
    first_ts TEXT,
    last_ts TEXT
);
CREATE INDEX IF NOT EXISTS usage_total_key ON usage_total({", ".join(KEY)});
"""


def _key_of(row: str) -> dict[str, str]:
    """The key's SQL expressions over a usage row (``NEW`` or ``OLD`` in a trigger, a table name
    in a query)."""
    return {
        "story": f"{row}.story",
        "phase": f"{row}.phase",
        "provider": f"{row}.provider",
        "model": f"{row}.model",
        "bucket": f"(SELECT COUNT(*) FROM usage_tier WHERE {row}.prompt_tokens > tokens)",
        "hour": f"substr({row}.ts, 1, 13)",
        "session_id": f"{row}.session_id",
    }


def _match(row: str) -> str:
    # IS, not =: story, phase and session may be NULL; SQLite uses the index for IS as for =
    return " AND ".join(f"{name} IS {expression}" for name, expression in _key_of(row).items())


def _hour_rows(row: str) -> str:
    """The usage rows of ``row``'s group (the ts index finds its hour)."""
    key = _key_of(row)
    same = " AND ".join(f"u.{name} IS {key[name]}" for name in ("story", "phase", "provider", "model", "session_id"))
    return (
        f"FROM usage u WHERE u.ts >= {key['hour']} AND u.ts < {key['hour']} || char(1114111) AND {same}"
        f" AND (SELECT COUNT(*) FROM usage_tier WHERE u.prompt_tokens > tokens) = {key['bucket']}"
    )


def _add(row: str) -> str:
    key = _key_of(row)
    return f"""
    INSERT INTO usage_total ({", ".join(KEY)}, first_ts, last_ts)
    SELECT {", ".join(key.values())}, {row}.ts, {row}.ts WHERE NOT EXISTS (SELECT 1 FROM usage_total WHERE {_match(row)});
    UPDATE usage_total SET calls = calls + 1, {", ".join(f"{name} = {name} + {row}.{name}" for name in SUMMED)},
        partial = partial + ({row}.{PARTIAL}),
        first_ts = min(first_ts, {row}.ts), last_ts = max(last_ts, {row}.ts)
    WHERE {_match(row)};"""


def _remove(row: str) -> str:
    # first/last are looked up again only when the row removed was the group's first or last
    return f"""
    UPDATE usage_total SET calls = calls - 1, {", ".join(f"{name} = {name} - {row}.{name}" for name in SUMMED)},
        partial = partial - ({row}.{PARTIAL}),
        first_ts = CASE WHEN first_ts = {row}.ts THEN (SELECT MIN(u.ts) {_hour_rows(row)}) ELSE first_ts END,
        last_ts = CASE WHEN last_ts = {row}.ts THEN (SELECT MAX(u.ts) {_hour_rows(row)}) ELSE last_ts END
    WHERE {_match(row)};
    DELETE FROM usage_total WHERE calls <= 0 AND {_match(row)};"""


TRIGGERS = f"""
CREATE TRIGGER IF NOT EXISTS usage_total_insert AFTER INSERT ON usage BEGIN{_add("NEW")}
END;
CREATE TRIGGER IF NOT EXISTS usage_total_delete AFTER DELETE ON usage BEGIN{_remove("OLD")}
END;
CREATE TRIGGER IF NOT EXISTS usage_total_update AFTER UPDATE OF {", ".join(("ts", "provider", "model", "story", "phase", "session_id", "status", *SUMMED))} ON usage BEGIN{_remove("OLD")}{_add("NEW")}
END;
"""

def _rebuild(thresholds: Sequence[int]) -> list[str]:
    """The statements that sum the totals again from the rows, bucketed by ``thresholds`` (as
    literals: a million rows each looking up ``usage_tier`` would take longer)."""
    bucket = " + ".join(f"(prompt_tokens > {int(t)})" for t in thresholds) or "0"
    key = {**_key_of("usage"), "bucket": f"({bucket})"}
    return [
        "DELETE FROM usage_total",
        f"INSERT INTO usage_total ({', '.join(KEY)}, calls, {', '.join(SUMMED)}, partial, first_ts, last_ts)"
        f" SELECT {', '.join(key.values())}, COUNT(*), {', '.join(f'SUM({name})' for name in SUMMED)}, SUM({PARTIAL}),"
        " MIN(ts), MAX(ts)"
        " FROM usage GROUP BY 1, 2, 3, 4, 5, 6, 7",
    ]


def has_totals(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'usage_total'").fetchone() is not None


def migrate(conn: sqlite3.Connection, schema: str) -> None:
    """Create the ledger's schema (``schema``) and the totals. A ledger without ``usage_total``
    yet gets its totals summed from its rows, in the transaction that adds the triggers, so no
    row is missed or counted twice (two processes migrating at once: the second rebuilds)."""
    if has_totals(conn):
        conn.executescript(schema + SCHEMA + TRIGGERS)
        return
    try:
        known = tiers(conn)
    except sqlite3.OperationalError:  # no usage_tier yet either: one bucket until tiers are written
        known = ()
    conn.executescript("BEGIN IMMEDIATE;" + schema + SCHEMA + TRIGGERS + ";".join(_rebuild(known)) + ";COMMIT;")


def tiers(conn: sqlite3.Connection) -> tuple[int, ...]:
    return tuple(row[0] for row in conn.execute("SELECT tokens FROM usage_tier ORDER BY tokens"))


def use_tiers(conn: sqlite3.Connection, thresholds: Sequence[int]) -> bool:
    """Bucket the totals by ``thresholds`` (the price table's); re-sums them from the rows, once,
    when they were bucketed by others. True when they were re-summed."""
    wanted = tuple(sorted({int(t) for t in thresholds}))
    if tiers(conn) == wanted:
        return False
    conn.execute("BEGIN IMMEDIATE")
    try:
        if tiers(conn) != wanted:
            conn.execute("DELETE FROM usage_tier")
            conn.executemany("INSERT INTO usage_tier (tokens) VALUES (?)", [(t,) for t in wanted])
            for statement in _rebuild(wanted):
                conn.execute(statement)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return True
