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


# --- hybrid run-start and hybrid runs -------------------------------------------------------------

from mcp_server import cli as hybrid_cli  # noqa: E402
from tests.support import tree_snapshot  # noqa: E402


def hybrid(capsys, *words: str) -> tuple[int, str, str]:
    code = hybrid_cli.main(list(words))
    out, err = capsys.readouterr()
    return code, out, err


def test_run_start_records_the_run_and_prints_the_workflows_args(capsys, project, monkeypatch):
    import json

    monkeypatch.setenv("CLAUDE_CODE_SESSION_ID", "s-main")
    code, out, err = hybrid(capsys, "run-start", "--project", str(project), "01.2", "engine=claude", "max_review_rounds=3")
    assert (code, err) == (0, "")
    run_line, args_line = out.splitlines()
    started = json.loads(args_line.removeprefix("workflow args: "))
    # engine.claude_models is not set: each phase takes the primary baseline's model (sonnet-writes: Sonnet writes the code)
    assert started == {"run": run_line.split()[1], "engine": "claude", "models": {p: "sonnet" for p in ("P2", "P3", "P4", "P7")}}
    assert run_line == f"run: {started['run']} engine=claude"
    with sqlite3.connect(project / ".claude" / "hybrid" / "usage.db") as db:
        assert db.execute("SELECT id, engine, stories, session_id FROM run").fetchall() == [(started["run"], "claude", "01.2", "s-main")]
    (project / ".claude" / "hybrid.yaml").write_text("engine:\n  claude_models: {P3: claude-sonnet-5-5, P7: opus}\n")
    code, out, _ = hybrid(capsys, "run-start", "--project", str(project), "01.2", "engine=claude")
    assert json.loads(out.splitlines()[1].removeprefix("workflow args: "))["models"] == {
        "P2": "sonnet", "P3": "sonnet", "P4": "sonnet", "P7": "opus"}
    code, out, _ = hybrid(capsys, "run-start", "--project", str(project), "01.2")
    assert json.loads(out.splitlines()[1].removeprefix("workflow args: ")) == {"run": out.split()[1], "engine": "hybrid"}


def test_run_start_refuses_a_bad_engine_or_model_and_changes_nothing(capsys, project):
    before = tree_snapshot(project)
    code, out, err = hybrid(capsys, "run-start", "--project", str(project), "01.2", "engine=glm")
    assert (code, out) == (2, "") and err.count("\n") == 1 and "the engines are hybrid, claude" in err
    assert tree_snapshot(project) == before
    (project / ".claude").mkdir(exist_ok=True)
    for setting, problem in (("{P3: gpt-5}", "engine.claude_models: P3: 'gpt-5' is not a Claude model"),
                             ("{P5: sonnet}", "engine.claude_models.P5.[key]: Input should be 'P2', 'P3', 'P4' or 'P7'")):
        (project / ".claude" / "hybrid.yaml").write_text(f"engine:\n  claude_models: {setting}\n")
        code, out, err = hybrid(capsys, "run-start", "--project", str(project), "01.2", "engine=claude")
        assert (code, out) == (2, "") and err.count("\n") == 1 and problem in err, err
    assert not (project / ".claude" / "hybrid").exists()


def fixed_runs(project: Path) -> None:
    """Run A (hybrid, 01.2): glm-4.7 1,000,000 in + 100,000 out = $0.60 + $0.22 = $0.82; two Claude
    Haiku 5.5 calls of 50,000 in + 10,000 out = 2 x ($0.005 + $0.005) = $0.02; A = $0.84.
    Run B (claude, 01.3): Haiku 100,000 in (the base tier: not above 100,000) + 1,000,000 out =
    $0.01 + $0.50 = $0.51, and one call of a model with no price (listed, never $0)."""
    ledger = Ledger(project / ".claude" / "hybrid" / "usage.db")
    start(ledger, "A", ["01.2"], "s1", 1)
    start(ledger, "B", ["01.3"], "s1", 20, engine="claude")
    ledger.record(UsageRow(provider="glm", model="glm-4.7", story="01.2", prompt_tokens=1_000_000,
                           completion_tokens=100_000, ts=ts(2)))
    for minute in (3, 9):
        ledger.record(UsageRow(provider="anthropic", model="claude-haiku-5-5", story="01.2", session_id="s1",
                               prompt_tokens=50_000, completion_tokens=10_000, ts=ts(minute)))
    ledger.record(UsageRow(provider="anthropic", model="claude-haiku-5-5", story="01.3", session_id="s1",
                           prompt_tokens=100_000, completion_tokens=1_000_000, ts=ts(25)))
    ledger.record(UsageRow(provider="anthropic", model="claude-mystery", story="01.3", session_id="s1",
                           prompt_tokens=10, completion_tokens=10, ts=ts(26)))
    ledger.close()


def test_hybrid_runs_lists_each_run_with_its_cost(capsys, project):
    import json

    (project / "docs" / "stories" / "01.3-more.md").write_text("# 01.3 More\n\n## Acceptance Criteria\n- AC-1: it works\n")
    fixed_runs(project)
    code, out, err = hybrid(capsys, "runs", "--project", str(project), "--json")
    assert (code, err) == (0, "")
    runs = json.loads(out)
    assert [(r["run"], r["engine"], r["stories"], r["started_at"], r["ended_at"], r["calls"]) for r in runs] == [
        ("A", "hybrid", ["01.2"], ts(1), ts(9), 3), ("B", "claude", ["01.3"], ts(20), ts(26), 2)]
    assert [round(r["usd"], 10) for r in runs] == [0.84, 0.51]
    assert (round(runs[0]["glm_usd"], 10), round(runs[0]["claude_usd"], 10)) == (0.82, 0.02)
    assert (runs[0]["unpriced_models"], runs[1]["unpriced_models"]) == ([], ["claude-mystery"])
    code, out, _ = hybrid(capsys, "runs", "--project", str(project))
    assert code == 0 and out.splitlines()[1:] == [
        "A                     hybrid  01.2                 2026-12-02 10:01  2026-12-02 10:09      $0.8400",
        "B                     claude  01.3                 2026-12-02 10:20  2026-12-02 10:26     $0.5100*",
        "* unpriced, not included: claude-mystery",
    ], out
    code, out, _ = hybrid(capsys, "runs", "--project", str(project), "--stories", "01.3", "--json")
    assert [r["run"] for r in json.loads(out)] == ["B"]


def test_hybrid_runs_follows_the_cli_grammar(capsys, project):
    code, out, err = hybrid(capsys, "runs", "--project", str(project))
    assert (code, out) == (1, "") and err.startswith("hybrid: no runs recorded yet:") and err.count("\n") == 1
    code, out, err = hybrid(capsys, "runs", "--project", str(project), "--stories", "99.9")
    assert (code, out) == (1, "") and err == "hybrid: unknown story 99.9; known: 01.2\n"
    empty = Ledger(project / ".claude" / "hybrid" / "usage.db")
    assert empty.rows() == []  # a ledger with no run yet
    empty.close()
    assert hybrid(capsys, "runs", "--project", str(project), "--json")[:2] == (0, "[]\n")
    code, out, err = hybrid(capsys, "runs", "--project", str(project))
    assert (code, out) == (1, "") and "no runs recorded yet" in err


# --- the run id on checkpoint history lines ---------------------------------------------------------

from datetime import datetime, timezone  # noqa: E402

from mcp_server import checkpoints  # noqa: E402
from mcp_server.checkpoints import HISTORY_HEADER, Update  # noqa: E402
from mcp_server.checkpoints.history_file import read_split  # noqa: E402

GLOB = "docs/**/{story}*.md"


def at(minute: int) -> datetime:
    return datetime(2026, 12, 2, 10, minute, tzinfo=timezone.utc)


def history_lines(project: Path, story: str = "01.2") -> list[str]:
    text = checkpoints.checkpoint_path(project, story).read_text()
    return text.split(HISTORY_HEADER + "\n", 1)[1].splitlines()


def test_history_lines_carry_the_run_that_wrote_them(project):
    write = lambda phase, status, minute: checkpoints.write_checkpoint(project, "01.2", Update(phase, status), GLOB, at(minute))
    write("P1", "running", 0)
    write("P1", "done", 0)  # before any run: a line without one, as every line before run ids
    ledger = Ledger(project / ".claude" / "hybrid" / "usage.db")
    start(ledger, "20261202-100100-aaaa", ["01.2"], "s1", 1)
    ledger.close()
    write("P2", "done", 2)
    start_b = Ledger(project / ".claude" / "hybrid" / "usage.db")
    start(start_b, "20261202-100500-bbbb", ["01.2"], "s1", 5, engine="claude")
    start_b.close()
    write("P3", "done", 6)
    lines = history_lines(project)
    assert [line.split(" ", 1)[0] + " " + line.rsplit(" ", 1)[-1] for line in lines] == [
        "P1: " + lines[0].rsplit(" ", 1)[-1], "P2: run=20261202-100100-aaaa", "P3: run=20261202-100500-bbbb"]
    assert " run=" not in lines[0]
    loaded = checkpoints.load_checkpoint(project, "01.2")
    assert [entry.run for entry in loaded.history] == [None, "20261202-100100-aaaa", "20261202-100500-bbbb"]
    split = read_split(checkpoints.checkpoint_path(project, "01.2"))  # the long-history reader takes them too
    assert split is not None and [entry.run for entry in split.tail] == [None, "20261202-100100-aaaa", "20261202-100500-bbbb"]
    write("P5", "running", 7)  # a write copies the earlier lines as they were
    assert history_lines(project)[:3] == lines


def test_a_history_line_with_a_malformed_run_is_refused_by_name(project):
    checkpoints.write_checkpoint(project, "01.2", Update("P1", "done"), GLOB, at(0))
    path = checkpoints.checkpoint_path(project, "01.2")
    path.write_text(path.read_text() + "P2: ✓ test-writer 10:05 run=\n")
    with pytest.raises(checkpoints.CheckpointError, match="then optionally run=<id>"):
        checkpoints.load_checkpoint(project, "01.2")


def test_a_resumed_session_continues_the_stories_run_with_its_engine(capsys, project, monkeypatch):
    import json

    ledger = Ledger(project / ".claude" / "hybrid" / "usage.db")
    start(ledger, "20261202-100100-aaaa", ["01.2"], "s1", 1, engine="claude")
    ledger.close()
    checkpoints.write_checkpoint(project, "01.2", Update("P1", "done"), GLOB, at(2))  # unfinished: P2 next
    monkeypatch.setenv("CLAUDE_CODE_SESSION_ID", "s2")
    code, out, err = hybrid(capsys, "resume-args", "--project", str(project), "01.2")
    assert (code, err) == (0, "")
    plan = json.loads(out)
    assert (plan["stories"], plan["run"], plan["engine"]) == (["01.2"], "20261202-100100-aaaa", "claude")
    assert plan["models"] == {p: "sonnet" for p in ("P2", "P3", "P4", "P7")}
    ledger = Ledger(project / ".claude" / "hybrid" / "usage.db")
    ledger.record_message(row("resume-main", 30, session="s2"))  # the resuming orchestrator's turn
    assert run_ids(project / ".claude" / "hybrid" / "usage.db") == {"resume-main": "20261202-100100-aaaa"}
    ledger.close()


def test_resuming_stories_that_were_never_in_a_run_starts_a_hybrid_one(capsys, project):
    import json

    checkpoints.write_checkpoint(project, "01.2", Update("P1", "done"), GLOB, at(2))
    code, out, _ = hybrid(capsys, "resume-args", "--project", str(project), "01.2")
    plan = json.loads(out)
    assert code == 0 and plan["engine"] == "hybrid" and "models" not in plan
    with sqlite3.connect(project / ".claude" / "hybrid" / "usage.db") as db:
        assert db.execute("SELECT id, engine, stories FROM run").fetchall() == [(plan["run"], "hybrid", "01.2")]


def test_claude_models_default_to_the_primary_baselines_model_per_phase(project):
    from mcp_server.config import load_settings
    from mcp_server.engine import agent_models, claude_models

    (project / ".claude").mkdir(exist_ok=True)
    (project / ".claude" / "hybrid.yaml").write_text(
        "monitor:\n  baseline: {P2: claude-sonnet-5-5, P7: claude-opus-5-5}\nengine:\n  claude_models: {P7: haiku}\n")
    settings = load_settings(project)
    assert settings.monitor.baseline_model("P2") == "claude-sonnet-5-5"
    assert claude_models(settings) == {"P2": "claude-sonnet-5-5", "P3": "claude-haiku-5-5", "P4": "claude-haiku-5-5", "P7": "haiku"}
    assert agent_models(settings) == {"P2": "sonnet", "P3": "haiku", "P4": "haiku", "P7": "haiku"}
