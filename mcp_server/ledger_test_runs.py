"""The ledger's ``test_run`` table: one row per GLM tool call that ran its test command.

Each row says whether the tests passed at the first attempt (GLM's first code, before any fix
round), how many fix rounds the call used, and whether the tests passed in the end; with the
call's story, phase, tool and model (the model GLM answered as). It is the record behind the
report's per-model scorecard (mcp_server/monitor/scorecard.py), written by the delegation where
it runs the tests (mcp_server/delegation/run.py).

Additive, like every table of the ledger: ``CREATE TABLE IF NOT EXISTS`` runs on every open, so
an older ledger gets the table, empty, the first time a process opens it for writing, and a
report reading a ledger that has none yet reads no test runs. Standard library only: the
ledger, which the hooks import, creates it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, fields
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS test_run (
    id INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    story TEXT NOT NULL,
    phase TEXT,
    tool TEXT NOT NULL,
    model TEXT NOT NULL,
    first_passed INTEGER NOT NULL,
    fix_rounds INTEGER NOT NULL DEFAULT 0,
    passed INTEGER NOT NULL,
    run_id TEXT
);
"""


@dataclass(frozen=True)
class CallTests:
    """The test command of one GLM tool call (not named Test*: pytest would collect it)."""

    story: str
    phase: str | None
    tool: str
    model: str
    first_passed: bool
    fix_rounds: int
    passed: bool
    ts: str = ""
    run_id: str | None = None  # the pilot run the call was in (mcp_server/ledger_runs.py)


COLUMNS = [f.name for f in fields(CallTests)]
INSERT = f"INSERT INTO test_run ({', '.join(COLUMNS)}) VALUES ({', '.join(f':{name}' for name in COLUMNS)})"
SELECT = f"SELECT {', '.join(COLUMNS)} FROM test_run ORDER BY id"


def values(run: CallTests, now: str) -> dict[str, Any]:
    """The row's column values; ``now`` when the run has no timestamp of its own."""
    row = asdict(run)
    row.update(ts=run.ts or now, first_passed=int(run.first_passed), passed=int(run.passed))
    return row


def from_row(row: sqlite3.Row | tuple) -> CallTests:
    named = dict(zip(COLUMNS, row))
    return CallTests(**{**named, "first_passed": bool(named["first_passed"]), "passed": bool(named["passed"])})
