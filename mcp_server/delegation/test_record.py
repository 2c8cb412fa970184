"""A GLM tool call's test outcome in the ledger's ``test_run`` table: passed at the first
attempt or not, the fix rounds used, passed at the end (mcp_server/ledger_test_runs.py).

It is the record behind the scorecard's first-attempt pass rate and fix rounds. Unlike a usage
row it costs nothing to lose, so a ledger that cannot take it is said in the result's note and
the call goes on; it is never spooled.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mcp_server.ledger import Ledger
from mcp_server.ledger_test_runs import CallTests


def record_tests(path: Path, run: CallTests) -> list[str]:
    """Record ``run``; the lines the user must see (empty: recorded, nothing to say)."""
    ledger = Ledger(path)
    try:
        ledger.record_test_run(run)
        return ledger.notices
    except (sqlite3.Error, OSError) as error:
        return [*ledger.notices, f"the test outcome was not recorded in {path} ({error}); the scorecard misses this call"]
    finally:
        ledger.close()
