"""The SQLite usage ledger: one row per model call, from the GLM tools and from the hooks.

Standard library only: the hooks import this on every tool call.
Token convention for every provider: ``prompt_tokens`` is all input, cache reads
(``cached_tokens``) and cache writes included; ``completion_tokens`` includes reasoning.

Rows from the hooks (provider ``anthropic``, read from Claude Code's transcripts) leave
``cost_usd`` NULL on purpose: reports and budget checks re-price every row from its tokens
with the current price table, so a corrected price applies to past usage too.
``budget_refusal`` has one row per call a budget cap stopped (``cap`` is the setting,
``source`` "server" for a GLM request, "hook" for a blocked tool call): no model was called.
The hooks also keep two small tables here: ``transcript_cursor`` (how far each transcript has
been read, and the attribution decided for it) and ``agent_phase`` (the phase an agent, or a
session's main loop, marked ``running`` through the checkpoint tool). ``usage_version`` is kept
by triggers: a number that every change of a usage row raises, so a report can tell that the
ledger has not changed since it last summed it. ``usage_total`` holds the rows' running totals,
kept by triggers too (mcp_server/ledger_totals.py).
``run``, ``run_story`` and ``session_run`` are the pilot runs; every usage row's ``run_id`` is the
run it was spent in (mcp_server/ledger_runs.py).
``reservation`` holds the budget room of GLM requests in flight, so every MCP server process on
the project sees it; ``agent_report`` the agent totals the main transcripts report.
``test_run`` holds the test outcome of each GLM tool call that ran its tests (first attempt, fix
rounds, end): mcp_server/ledger_test_runs.py.

Faults: every SQLite error comes out as a LedgerError naming the file (it is also a
sqlite3.Error, for callers that catch those). A file that is not a readable database is moved
aside (kept, never deleted) and a new ledger started. A row that cannot be written goes to the
spool (mcp_server/ledger_spool.py) and is merged, once, when the ledger can be written again.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

from mcp_server import ledger_runs, ledger_spool, ledger_test_runs, ledger_totals
from mcp_server.ledger_connection import LedgerConnection
from mcp_server.ledger_faults import LedgerError  # noqa: F401 (re-exported)

LEDGER_RELATIVE = Path(".claude") / "hybrid" / "usage.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    story TEXT,
    phase TEXT,
    tool TEXT,
    agent_type TEXT,
    agent_id TEXT,
    session_id TEXT,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_5m_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    latency_ms INTEGER,
    status TEXT NOT NULL DEFAULT 'ok',
    attempt INTEGER NOT NULL DEFAULT 1,
    cost_usd REAL,
    dedup_key TEXT UNIQUE,
    run_id TEXT
);
CREATE INDEX IF NOT EXISTS usage_story ON usage(story);
CREATE INDEX IF NOT EXISTS usage_ts ON usage(ts);
CREATE INDEX IF NOT EXISTS usage_session ON usage(session_id);
CREATE TABLE IF NOT EXISTS transcript_cursor (
    path TEXT PRIMARY KEY,
    offset INTEGER NOT NULL DEFAULT 0,
    inode INTEGER,
    story TEXT,
    phase TEXT,
    agent_type TEXT,
    agent_id TEXT,
    session_id TEXT,
    attribution TEXT
);
CREATE TABLE IF NOT EXISTS budget_refusal (
    id INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    cap TEXT NOT NULL,
    story TEXT,
    source TEXT NOT NULL,
    session_id TEXT
);
CREATE TABLE IF NOT EXISTS agent_phase (
    key TEXT PRIMARY KEY,
    story TEXT NOT NULL,
    phase TEXT NOT NULL,
    ts TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_report (
    session_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    source TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    PRIMARY KEY (session_id, agent_id, source)
);
CREATE TABLE IF NOT EXISTS reservation (
    id INTEGER PRIMARY KEY,
    story TEXT NOT NULL,
    usd REAL NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS usage_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    ledger TEXT NOT NULL,
    version INTEGER NOT NULL
);
"""
# Every change of a usage row bumps usage_version, so a report can tell that nothing changed
# since it last summed the ledger without reading the rows again. ``ledger`` is random per
# ledger file, so a ledger made anew never takes up an old one's numbers.
_SCHEMA += "".join(
    f"""CREATE TRIGGER IF NOT EXISTS usage_version_{change.lower()} AFTER {change} ON usage BEGIN
    UPDATE usage_version SET version = version + 1;
    INSERT INTO usage_version (id, ledger, version)
    SELECT 1, lower(hex(randomblob(8))), 1 WHERE NOT EXISTS (SELECT 1 FROM usage_version);
END;
"""
    for change in ("INSERT", "UPDATE", "DELETE")
)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class UsageRow:
    provider: str  # "glm" or "anthropic"
    model: str
    story: str | None = None
    phase: str | None = None
    tool: str | None = None
    agent_type: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    prompt_tokens: int = 0
    cached_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    latency_ms: int | None = None
    status: str = "ok"
    attempt: int = 1
    cost_usd: float | None = None  # None: unpriced (or not priced yet); never a silent 0
    dedup_key: str | None = None
    ts: str = ""
    run_id: str | None = None  # None: looked up when written (mcp_server/ledger_runs.py)


_COLUMNS = [f.name for f in fields(UsageRow)]


@dataclass(frozen=True)
class ModelTotals:
    provider: str
    model: str
    prompt_tokens: int
    cached_tokens: int
    cache_write_5m_tokens: int
    cache_write_1h_tokens: int
    completion_tokens: int
    calls: int
    partial: int = 0  # calls whose transcript never got their final usage: the totals are lower bounds


@dataclass
class TranscriptCursor:
    """How far a transcript has been read (bytes, complete lines only) and whose usage it holds.

    ``attribution`` is how story/phase were decided: "prefix", "running-phase",
    "session-phase" or "none"; NULL while the transcript's prompt has not been seen yet.
    """

    path: str
    offset: int = 0
    inode: int | None = None
    story: str | None = None
    phase: str | None = None
    agent_type: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    attribution: str | None = None


_CURSOR_COLUMNS = [f.name for f in fields(TranscriptCursor)]
# A row given no run id gets the run it was spent in (mcp_server/ledger_runs.py).
_INSERT = (
    f"INSERT INTO usage ({', '.join(_COLUMNS)}) VALUES "
    f"({', '.join(ledger_runs.RUN_OF_ROW if name == 'run_id' else f':{name}' for name in _COLUMNS)})"
)
_UPSERT = (
    f"{_INSERT} ON CONFLICT(dedup_key) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _COLUMNS if name not in ("dedup_key", "ts", "run_id"))
    + ", run_id = COALESCE(excluded.run_id, usage.run_id)"
    + " WHERE excluded.completion_tokens + excluded.prompt_tokens > usage.completion_tokens + usage.prompt_tokens"
    # the copy with the final usage replaces an early snapshot even when no count grew
    + " OR (usage.status = 'ok:partial-usage' AND excluded.status = 'ok')"
)


def _where(
    *, story: str | None = None, phase: str | None = None, since: str | None = None, run_id: str | None = None
) -> tuple[str, list[str]]:
    """The WHERE clause of a totals query: equal story, phase and run, ``ts >= since``."""
    clauses, params = [], []
    for clause, value in (("story = ?", story), ("phase = ?", phase), ("ts >= ?", since), ("run_id = ?", run_id)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params


def ledger_path(project_root: Path) -> Path:
    return Path(project_root) / LEDGER_RELATIVE


class Ledger(LedgerConnection):
    """One connection per instance; safe to share across asyncio tasks of one thread.
    The connection, its faults and the spool's merge: mcp_server/ledger_connection.py."""

    SCHEMA = _SCHEMA + ledger_test_runs.SCHEMA

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        ledger_totals.migrate(conn, self.SCHEMA)  # the tables, and the running totals kept by triggers
        ledger_runs.migrate(conn)  # the runs, and usage.run_id on a ledger from before them

    def _merge_spooled(self, spooled: list[dict]) -> None:
        with self.transaction():
            for values in spooled:
                row = {name: values.get(name) for name in _COLUMNS}
                row["dedup_key"] = row["dedup_key"] or ledger_spool.spool_key()
                row["ts"] = row["ts"] or utc_now()
                self.execute(_UPSERT, row)

    def record(self, row: UsageRow) -> int:
        values = asdict(row)
        values["ts"] = values["ts"] or utc_now()
        cursor = self.execute(_INSERT, values)
        return int(cursor.lastrowid)

    def record_test_run(self, run: ledger_test_runs.CallTests) -> int:
        cursor = self.execute(ledger_test_runs.INSERT, ledger_test_runs.values(run, utc_now()))
        return int(cursor.lastrowid)

    def test_runs(self) -> list[ledger_test_runs.CallTests]:
        return [ledger_test_runs.from_row(row) for row in self.fetchall(ledger_test_runs.SELECT)]

    def record_message(self, row: UsageRow) -> None:
        """Insert a row keyed by ``dedup_key``; a later copy replaces it only if larger.

        Claude Code writes one API message as several transcript lines, and in
        streamed sessions the output count can grow between copies.
        """
        if not row.dedup_key:
            raise ValueError("record_message needs a dedup_key")
        values = asdict(row)
        values["ts"] = values["ts"] or utc_now()
        self.execute(_UPSERT, values)

    def totals_by_model(
        self, *, story: str | None = None, since: str | None = None, phase: str | None = None
    ) -> list[ModelTotals]:
        where, params = _where(story=story, phase=phase, since=since)
        rows = self.fetchall(
            "SELECT provider, model, SUM(prompt_tokens), SUM(cached_tokens),"
            " SUM(cache_write_5m_tokens), SUM(cache_write_1h_tokens), SUM(completion_tokens),"
            f" COUNT(*), SUM(status = 'ok:partial-usage') FROM usage {where}"
            " GROUP BY provider, model ORDER BY provider, model",
            params,
        )
        return [ModelTotals(*row) for row in rows]

    def totals_by_bucket(
        self, bucket_sql: str, *, story: str | None = None, since: str | None = None, run_id: str | None = None
    ) -> list[tuple[str, str, int, int, int, int, int, int]]:
        """(provider, model, bucket, prompt, cached, write_5m, write_1h, completion) summed per
        ``bucket_sql``, an SQL expression over a row (the price table's tier of its prompt size)."""
        where, params = _where(story=story, since=since, run_id=run_id)
        return self.fetchall(
            f"SELECT provider, model, {bucket_sql} AS bucket, SUM(prompt_tokens), SUM(cached_tokens),"
            " SUM(cache_write_5m_tokens), SUM(cache_write_1h_tokens), SUM(completion_tokens)"
            f" FROM usage {where} GROUP BY provider, model, bucket ORDER BY provider, model, bucket",
            params,
        )

    def start_run(self, *, engine: str, stories: list[str], session_id: str | None = None) -> str:
        """Record a new pilot run (mcp_server/ledger_runs.py) and return its id."""
        try:
            return ledger_runs.start_run(
                self._connection(), engine=engine, stories=stories, session_id=session_id, started_at=utc_now()
            )
        except sqlite3.Error as error:
            raise self._error(error) from None

    def continue_run(self, stories: list[str], *, session_id: str | None = None) -> tuple[str, str] | None:
        """(id, engine) of the stories' latest run, which ``session_id`` joins (/hybrid:resume)."""
        try:
            return ledger_runs.continue_run(self._connection(), stories, session_id, utc_now())
        except sqlite3.Error as error:
            raise self._error(error) from None

    def run_of(self, story: str | None, *, session_id: str | None = None, ts: str = "") -> str | None:
        """The run a row of ``story`` (or of ``session_id``) written at ``ts`` (default now) belongs to."""
        params = {"run_id": None, "story": story, "session_id": session_id, "ts": ts or utc_now()}
        return self.fetchall(f"SELECT {ledger_runs.RUN_OF_ROW}", params)[0][0]

    def use_tiers(self, thresholds: tuple[int, ...]) -> bool:
        """Bucket the running totals by the price table's tier ``thresholds`` (re-summed once
        when they change)."""
        return ledger_totals.use_tiers(self._connection(), thresholds)

    def get_cursor(self, path: str) -> TranscriptCursor | None:
        rows = self.fetchall(
            f"SELECT {', '.join(_CURSOR_COLUMNS)} FROM transcript_cursor WHERE path = ?", (path,)
        )
        return TranscriptCursor(*rows[0]) if rows else None

    def put_cursor(self, cursor: TranscriptCursor) -> None:
        """Save a cursor. Two hooks racing on one file is harmless: rows are deduplicated."""
        self.execute(
            f"INSERT OR REPLACE INTO transcript_cursor ({', '.join(_CURSOR_COLUMNS)})"
            f" VALUES ({', '.join('?' for _ in _CURSOR_COLUMNS)})",
            [getattr(cursor, name) for name in _CURSOR_COLUMNS],
        )

    def set_phase(self, key: str, story: str, phase: str, ts: str = "") -> None:
        self.execute(
            "INSERT INTO agent_phase (key, story, phase, ts) VALUES (?, ?, ?, ?) ON CONFLICT(key)"
            " DO UPDATE SET story = excluded.story, phase = excluded.phase, ts = excluded.ts",
            (key, story, phase, ts or utc_now()),
        )

    def clear_phase(self, key: str) -> None:
        self.execute("DELETE FROM agent_phase WHERE key = ?", (key,))

    def phases(self, key_prefix: str) -> list[tuple[str, str, str]]:
        """(key, story, phase) for every key that starts with ``key_prefix``."""
        return self.fetchall(
            "SELECT key, story, phase FROM agent_phase WHERE substr(key, 1, ?) = ? ORDER BY key",
            (len(key_prefix), key_prefix),
        )

    def attribute_unattributed(self, *, session_id: str, agent_id: str, story: str, phase: str) -> int:
        """Give an agent's unattributed Claude rows the story and phase learnt later."""
        cursor = self.execute(
            "UPDATE usage SET story = ?, phase = ? WHERE provider = 'anthropic' AND session_id = ?"
            " AND agent_id = ? AND story IS NULL AND phase IS NULL",
            (story, phase, session_id, agent_id),
        )
        return cursor.rowcount

    def known_transcripts(self) -> list[tuple[str, str | None]]:
        """(path, session_id) of every transcript a hook has read."""
        return self.fetchall("SELECT path, session_id FROM transcript_cursor")

    def session_started_at(self, session_id: str) -> str | None:
        """The earliest ``ts`` recorded for a Claude Code session, or None."""
        rows = self.fetchall("SELECT MIN(ts) FROM usage WHERE session_id = ?", (session_id,))
        return rows[0][0] if rows else None

    def stories(self) -> list[str]:
        """Every story id some usage row is attributed to."""
        cursor = self._connection().execute("SELECT DISTINCT story FROM usage WHERE story IS NOT NULL")
        return [row[0] for row in cursor.fetchall()]

    def record_refusal(self, *, cap: str, story: str | None, source: str, session_id: str | None = None) -> None:
        self._connection().execute(
            "INSERT INTO budget_refusal (ts, cap, story, source, session_id) VALUES (?, ?, ?, ?, ?)",
            (utc_now(), cap, story, source, session_id),
        )

    def last_id(self, table: str) -> int:
        """The largest row id of ``table`` ("usage" or "budget_refusal"), 0 when empty."""
        if table not in ("usage", "budget_refusal"):
            raise ValueError(f"no such ledger table: {table}")
        return int(self._connection().execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0])

    def rows_after(self, table: str, after_id: int, upto_id: int, limit: int) -> list[dict[str, object]]:
        """Raw rows of ``table`` with ``after_id < id <= upto_id``, oldest first, every column
        the file has (so columns added later, such as a run id, come along)."""
        if table not in ("usage", "budget_refusal"):
            raise ValueError(f"no such ledger table: {table}")
        cursor = self._connection().execute(
            f"SELECT * FROM {table} WHERE id > ? AND id <= ? ORDER BY id LIMIT ?", (after_id, upto_id, limit)
        )
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def rows(self, *, story: str | None = None) -> list[UsageRow]:
        where, params = ("WHERE story = ?", [story]) if story is not None else ("", [])
        rows = self.fetchall(f"SELECT {', '.join(_COLUMNS)} FROM usage {where} ORDER BY id", params)
        return [UsageRow(**dict(zip(_COLUMNS, row))) for row in rows]


def monotonic_ms(start: float) -> int:
    return int((time.monotonic() - start) * 1000)
