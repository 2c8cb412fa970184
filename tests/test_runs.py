"""Runs as records: the migration of a ledger from before run ids, and the run id on every row.

Every run id below is worked out by hand from the rule in mcp_server/ledger_runs.py: a row with a
story belongs to its story's latest run started at or before it; a row without one to its
session's latest run started at or before it, else to its session's first run.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mcp_server import ledger_runs, ledger_spool
from mcp_server.delegation.usage_record import record_or_spool
from mcp_server.ledger import Ledger, UsageRow
from tests.support import ledger_locked
from tests.test_ledger_totals import raw_sums, totals

FIXTURE = Path(__file__).parent / "fixtures" / "ledger-before-runs.sql"
OLD_COLUMNS = (
    "id, ts, provider, model, story, phase, tool, agent_type, agent_id, session_id, prompt_tokens, cached_tokens,"
    " cache_write_5m_tokens, cache_write_1h_tokens, completion_tokens, reasoning_tokens, latency_ms, status, attempt,"
    " cost_usd, dedup_key"
)


def old_ledger(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        db.executescript(FIXTURE.read_text())
    return path


def snapshot(path: Path) -> dict[str, list]:
    with sqlite3.connect(path) as db:
        return {
            "usage": db.execute(f"SELECT {OLD_COLUMNS} FROM usage ORDER BY id").fetchall(),
            "cursors": db.execute("SELECT * FROM transcript_cursor ORDER BY path").fetchall(),
            "refusals": db.execute("SELECT * FROM budget_refusal ORDER BY id").fetchall(),
            "phases": db.execute("SELECT * FROM agent_phase ORDER BY key").fetchall(),
            "tiers": db.execute("SELECT * FROM usage_tier ORDER BY tokens").fetchall(),
        }


def test_a_ledger_from_before_run_ids_keeps_every_row_and_its_totals(tmp_path):
    path = old_ledger(tmp_path / "usage.db")
    before, totals_before = snapshot(path), totals(path)
    assert len(before["usage"]) == 300 and totals_before  # the fixture: 300 rows, their totals by trigger
    with sqlite3.connect(path) as db:
        assert "run_id" not in [c[1] for c in db.execute("PRAGMA table_info(usage)")]

    ledger = Ledger(path)
    assert ledger.stories() == ledger.stories()  # opening migrates
    ledger.close()
    assert snapshot(path) == before  # every row, cursor, refusal and phase as it was
    assert totals(path) == totals_before == raw_sums(path, (100_000,))  # the totals untouched, still the rows' sums
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM usage WHERE run_id IS NULL").fetchone() == (300,)
    Ledger(path).close()  # a second open migrates nothing again
    assert snapshot(path) == before


def test_rows_written_after_the_migration_get_their_run_and_keep_the_totals_right(tmp_path):
    path = old_ledger(tmp_path / "usage.db")
    ledger = Ledger(path)
    run = ledger.start_run(engine="claude", stories=["01.2"], session_id="s9")
    ledger.record(UsageRow(provider="glm", model="glm-4.7", story="01.2", phase="P3", prompt_tokens=10, completion_tokens=5))
    ledger.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT run_id FROM usage ORDER BY id DESC LIMIT 1").fetchone() == (run,)
    assert totals(path) == raw_sums(path, (100_000,))


def ts(minute: int) -> str:
    return f"2026-12-02T10:{minute:02d}:00.000+00:00"


def run_ids(path: Path) -> dict[str, str | None]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT dedup_key, run_id FROM usage ORDER BY id").fetchall())


def start(ledger: Ledger, run_id: str, stories: list[str], session: str | None, minute: int, engine: str = "hybrid") -> None:
    ledger_runs.start_run(ledger._connection(), engine=engine, stories=stories, session_id=session,
                          started_at=ts(minute), run_id=run_id)


def row(key: str, minute: int, story: str | None = None, session: str | None = None, provider: str = "anthropic") -> UsageRow:
    return UsageRow(provider=provider, model="claude-haiku-5-5", story=story, session_id=session, prompt_tokens=100,
                    completion_tokens=10, dedup_key=key, ts=ts(minute))


def test_each_row_gets_the_run_it_was_spent_in(tmp_path):
    path = tmp_path / "usage.db"
    ledger = Ledger(path)
    ledger.record_message(row("early-main", 0, session="s1"))  # the turn that started run A, read before it started
    start(ledger, "A", ["01.2", "01.3"], "s1", 1)
    start(ledger, "B", ["01.4"], "s2", 2, engine="claude")  # another session, other stories, at the same time
    ledger.record_message(row("a-01.2", 3, "01.2", "s1"))
    ledger.record_message(row("a-01.3-glm", 3, "01.3", provider="glm"))  # GLM rows carry no session
    ledger.record_message(row("b-01.4", 3, "01.4", "s1"))  # the story decides, not the session
    ledger.record_message(row("main-s1", 4, session="s1"))
    ledger.record_message(row("main-s2-before", 0, session="s2"))  # before s2's first run: that run
    ledger.record_message(row("nobody", 4))  # no story, no session: no run
    ledger.record_message(row("01.2-before-any-run", 0, "01.2"))  # not in a run's time
    start(ledger, "C", ["01.2"], "s1", 10)  # 01.2 again, in a later run
    ledger.record_message(row("late-read-of-A", 5, "01.2", "s1"))  # read by a Stop pass after C started
    ledger.record_message(row("c-01.2", 11, "01.2", "s1"))
    ledger.record_message(row("main-s1-later", 12, session="s1"))
    ledger.record(UsageRow(provider="glm", model="glm-4.7", story="01.3", dedup_key="given", ts=ts(11), run_id="X"))
    assert run_ids(path) == {
        "early-main": "A", "a-01.2": "A", "a-01.3-glm": "A", "b-01.4": "B", "main-s1": "A", "main-s2-before": "B",
        "nobody": None, "01.2-before-any-run": None, "late-read-of-A": "A", "c-01.2": "C", "main-s1-later": "C",
        "given": "X",
    }
    assert ledger.run_of("01.3", ts=ts(20)) == "A" and ledger.run_of(None, session_id="s2", ts=ts(20)) == "B"
    ledger.close()


def test_a_later_copy_of_a_message_keeps_its_run(tmp_path):
    ledger = Ledger(tmp_path / "usage.db")
    start(ledger, "A", ["01.2"], "s1", 1)
    ledger.record_message(row("m1", 2, "01.2", "s1"))
    bigger = row("m1", 2, "01.2", "s1")
    bigger.completion_tokens = 99
    ledger.record_message(bigger)
    assert run_ids(tmp_path / "usage.db") == {"m1": "A"}
    ledger.close()


def test_start_run_refuses_an_unknown_engine_and_ids_sort_by_start(tmp_path):
    ledger = Ledger(tmp_path / "usage.db")
    with pytest.raises(ValueError, match="engine=glm: the engines are hybrid, claude"):
        ledger.start_run(engine="glm", stories=["01.2"])
    first = ledger_runs.new_run_id(__import__("datetime").datetime(2026, 12, 2, 9, 5, 1, tzinfo=__import__("datetime").timezone.utc))
    assert first.startswith("20261202-090501-") and len(first) == len("20261202-090501-abcd")
    ledger.close()


def test_a_glm_row_spooled_while_the_ledger_is_locked_keeps_its_run_id(tmp_path, monkeypatch):
    monkeypatch.setenv("HYBRID_LEDGER_TIMEOUT_S", "0.2")
    path = tmp_path / "usage.db"
    ledger = Ledger(path)
    start(ledger, "A", ["01.2"], None, 1)
    start(ledger, "B", ["01.2"], None, 30)  # by the time the spool is merged, 01.2 is in another run
    ledger.close()
    glm = UsageRow(provider="glm", model="glm-4.7", story="01.2", phase="P3", prompt_tokens=7, completion_tokens=3,
                   ts=ts(5), run_id="A")  # the delegation looked its run up when the call began
    with ledger_locked(path):
        notices = record_or_spool(path, glm)
    assert any("spooled" in line for line in notices) and ledger_spool.pending(path)
    ledger = Ledger(path)
    assert [(r.story, r.run_id, r.prompt_tokens) for r in ledger.rows()] == [("01.2", "A", 7)]
    ledger.close()
