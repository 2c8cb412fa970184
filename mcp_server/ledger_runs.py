"""Pilot runs in the ledger: which run each usage row belongs to.

Standard library only: the hooks open the ledger on every tool call.

A run starts when `hybrid pilot-check --start` passes (the pilot's first step, run by the main
loop with Bash): a ``run`` row (id, engine, stories, the Claude Code session that started it) and
one ``run_story`` row per story. A usage row gets its run id when it is written:
- a row with a story: the latest run of that story started at or before the row's ``ts``
  (stories of one run run concurrently; two runs in flight at once work on different stories,
  as a story has one checkpoint);
- a row without one (the orchestrating main loop, an agent not attributed): the latest run its
  session started or joined at or before ``ts``, else its session's first (the turns that
  started it). A session joins a run when `/hybrid:resume` continues it (:func:`continue_run`).
The lookup is by ``ts``, not by "the current run", so a Stop hook that reads a transcript late,
or a spooled row merged a day later, still lands in the run it was spent in. The ledger is the
project's (``<project>/.claude/hybrid/usage.db``), so two projects or worktrees never mix.

A ledger from before run ids gets the ``run_id`` column in place (:func:`migrate`); its rows keep
``run_id`` NULL and every running total (ledger_totals) stays as it was: ``run_id`` is not part
of their key, and adding a column rewrites no row.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, timezone

ENGINES = ("hybrid", "claude")

SCHEMA = """
CREATE TABLE IF NOT EXISTS run (
    id TEXT PRIMARY KEY,
    engine TEXT NOT NULL,
    stories TEXT NOT NULL,
    session_id TEXT,
    started_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS session_run (
    session_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    PRIMARY KEY (session_id, started_at, run_id)
);
CREATE TABLE IF NOT EXISTS run_story (
    story TEXT NOT NULL,
    run_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    PRIMARY KEY (story, started_at, run_id)
);
"""

# The run of a row, as SQL over named parameters :run_id, :story, :session_id and :ts.
RUN_OF_ROW = """COALESCE(:run_id,
    (SELECT run_id FROM run_story WHERE story = :story AND started_at <= :ts ORDER BY started_at DESC LIMIT 1),
    (SELECT run_id FROM session_run WHERE session_id = :session_id AND started_at <= :ts ORDER BY started_at DESC LIMIT 1),
    (SELECT run_id FROM session_run WHERE session_id = :session_id ORDER BY started_at LIMIT 1))"""


def _has_run_column(conn: sqlite3.Connection) -> bool:
    return any(column[1] == "run_id" for column in conn.execute("PRAGMA table_info(usage)"))


def migrate(conn: sqlite3.Connection) -> None:
    """The run tables, and ``usage.run_id`` on a ledger from before it (added in place, once:
    two processes opening an old ledger at once check again inside the write lock)."""
    conn.executescript(SCHEMA)
    if not _has_run_column(conn):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if not _has_run_column(conn):
                conn.execute("ALTER TABLE usage ADD COLUMN run_id TEXT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    conn.execute("CREATE INDEX IF NOT EXISTS usage_run ON usage(run_id)")


def new_run_id(now: datetime | None = None) -> str:
    """``YYYYMMDD-HHMMSS-xxxx`` (UTC, then random): sorts by start, unique across processes."""
    now = now or datetime.now(timezone.utc)
    return f"{now.astimezone(timezone.utc):%Y%m%d-%H%M%S}-{os.urandom(2).hex()}"


def start_run(
    conn: sqlite3.Connection, *, engine: str, stories: list[str], session_id: str | None, started_at: str,
    run_id: str | None = None,
) -> str:
    """Record a run; the session's rows that have no run yet (the turns that started it) join it."""
    if engine not in ENGINES:
        raise ValueError(f"engine={engine}: the engines are {', '.join(ENGINES)}")
    run_id = run_id or new_run_id()
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "INSERT INTO run (id, engine, stories, session_id, started_at) VALUES (?, ?, ?, ?, ?)",
            (run_id, engine, ",".join(stories), session_id, started_at),
        )
        conn.executemany(
            "INSERT INTO run_story (story, run_id, started_at) VALUES (?, ?, ?)",
            [(story, run_id, started_at) for story in stories],
        )
        _join(conn, run_id, session_id, started_at)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return run_id


def _join(conn: sqlite3.Connection, run_id: str, session_id: str | None, at: str) -> None:
    """The session's rows from now on are the run's, and so are those it has without a run yet."""
    if session_id:
        conn.execute("INSERT OR IGNORE INTO session_run (session_id, run_id, started_at) VALUES (?, ?, ?)",
                     (session_id, run_id, at))
        conn.execute("UPDATE usage SET run_id = ? WHERE run_id IS NULL AND session_id = ?", (run_id, session_id))


def continue_run(conn: sqlite3.Connection, stories: list[str], session_id: str | None, at: str) -> tuple[str, str] | None:
    """/hybrid:resume: (id, engine) of the latest run of ``stories``, which the resuming session
    joins; None when none of them was ever in a run."""
    marks = ", ".join("?" for _ in stories)
    found = conn.execute(
        f"SELECT run.id, run.engine FROM run_story JOIN run ON run.id = run_story.run_id WHERE run_story.story IN ({marks})"
        " ORDER BY run_story.started_at DESC LIMIT 1", stories,
    ).fetchone() if stories else None
    if found is None:
        return None
    conn.execute("BEGIN IMMEDIATE")
    try:
        _join(conn, found[0], session_id, at)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return found[0], found[1]


def run_of(conn: sqlite3.Connection, *, story: str | None, ts: str, session_id: str | None = None) -> str | None:
    """The run a row of ``story`` (or of ``session_id``) written at ``ts`` belongs to."""
    found = conn.execute(
        f"SELECT {RUN_OF_ROW}", {"run_id": None, "story": story, "session_id": session_id, "ts": ts}
    ).fetchone()
    return found[0] if found else None
