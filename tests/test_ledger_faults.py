"""A ledger that is locked, corrupt or unwritable loses no row and breaks no command: rows wait
in the spool and are merged once, a corrupt file is kept aside, and every error is one line
naming the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mcp_server import checkpoints, ledger_spool
from mcp_server.delegation.usage_record import record_or_spool
from mcp_server.ledger import Ledger, LedgerError, UsageRow, ledger_path
from mcp_server.usage import guard
from tests.support import REPO, ledger_locked, make_project

FAST = {"HYBRID_LEDGER_TIMEOUT_S": "0.2"}


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("HYBRID_LEDGER_TIMEOUT_S", "0.2")
    return make_project(tmp_path / "proj")


def glm_row(tokens: int = 100) -> UsageRow:
    return UsageRow(provider="glm", model="glm-4.7", story="01.2", phase="P3", prompt_tokens=tokens, completion_tokens=10)


def all_rows(path):
    ledger = Ledger(path)
    try:
        return ledger.rows()
    finally:
        ledger.close()


def run_cli(project, *args, module="mcp_server.cli"):
    env = {**os.environ, **FAST, "PYTHONPATH": str(REPO), "CLAUDE_PROJECT_DIR": str(project)}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env, cwd=project)


def one_line_naming(stderr: str, path) -> bool:
    lines = stderr.strip().splitlines()
    return len(lines) == 1 and str(path) in lines[0] and "Traceback" not in stderr and "internal error" not in stderr


def test_a_row_the_locked_ledger_cannot_take_is_spooled_and_merged_exactly_once(project):
    path = ledger_path(project)
    with ledger_locked(path):
        notices = record_or_spool(path, glm_row(100))
        notices += record_or_spool(path, glm_row(200))
    assert all("usage only spooled" in line and "locked" in line for line in notices)
    assert ledger_spool.pending(path)
    spooled = ledger_spool.spool_path(path).read_bytes()
    assert sorted(row.prompt_tokens for row in all_rows(path)) == [100, 200]
    assert not ledger_spool.pending(path)
    # A merge that committed but died before emptying the spool runs again: nothing doubles.
    ledger_spool.spool_path(path).write_bytes(spooled)
    assert sorted(row.prompt_tokens for row in all_rows(path)) == [100, 200]


def test_a_torn_spool_line_is_kept_aside_not_lost(project):
    path = ledger_path(project)
    path.parent.mkdir(parents=True)
    ledger_spool.append(path, {**glm_row().__dict__, "dedup_key": "spool:a", "ts": "2026-12-01T00:00:00+00:00"})
    with open(ledger_spool.spool_path(path), "ab") as spool:
        spool.write(b'{"provider": "gl')
    assert len(all_rows(path)) == 1
    assert (path.parent / "usage.db.spool.jsonl.bad").read_bytes() == b'{"provider": "gl\n'


def test_a_corrupt_ledger_is_kept_aside_and_a_new_one_started(project):
    path = ledger_path(project)
    path.parent.mkdir(parents=True)
    garbage = b"this is not SQLite\n" * 500
    path.write_bytes(garbage)
    ledger = Ledger(path)
    try:
        ledger.record(glm_row())
        [notice] = ledger.notices
    finally:
        ledger.close()
    [aside] = path.parent.glob("usage.db.corrupt-*")
    assert aside.read_bytes() == garbage
    assert str(path) in notice and aside.name in notice and "new ledger" in notice
    assert len(all_rows(path)) == 1


def test_a_ledger_damaged_under_a_running_process_is_moved_aside_and_its_row_spooled(project):
    path = ledger_path(project)
    record_or_spool(path, glm_row())
    ledger = Ledger(path)
    ledger.rows()
    path.write_bytes(b"\0" * 8192)  # damaged while open
    for name in ("usage.db-wal", "usage.db-shm"):
        (path.parent / name).unlink(missing_ok=True)
    with pytest.raises(LedgerError):
        ledger.rows()
    ledger.close()
    assert record_or_spool(path, glm_row(7)) == []  # the next open starts a new ledger
    assert [row.prompt_tokens for row in all_rows(path)] == [7]
    assert list(path.parent.glob("usage.db.corrupt-*"))


def test_hybrid_usage_on_a_locked_ledger_is_one_line_naming_the_file(project):
    path = ledger_path(project)
    with ledger_locked(path):
        done = run_cli(project, "usage", "--project", str(project))
    assert done.returncode == 1  # docs/cli.md: a ledger that cannot be used is nothing to show
    assert one_line_naming(done.stderr, path) and "locked" in done.stderr


def test_hybrid_usage_on_a_corrupt_ledger_says_it_was_moved_aside(project):
    path = ledger_path(project)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage" * 100)
    done = run_cli(project, "usage", "--project", str(project))
    assert done.returncode == 0, done.stderr
    assert one_line_naming(done.stderr, path) and "kept as usage.db.corrupt-" in done.stderr
    assert "total: $0.0000" in done.stdout


def test_hybrid_report_on_a_locked_or_corrupt_ledger_is_one_line_naming_the_file(project):
    path = ledger_path(project)
    checkpoints.open_checkpoint(project, "01.2", "docs/**/{story}*.md")
    record_or_spool(path, glm_row())
    with ledger_locked(path):
        done = run_cli(project, "report", "--project", str(project))
    assert done.returncode == 1 and one_line_naming(done.stderr, path), done.stderr
    path.write_bytes(b"garbage" * 100)
    for name in ("usage.db-wal", "usage.db-shm"):
        (path.parent / name).unlink(missing_ok=True)
    done = run_cli(project, "report", "--project", str(project))
    assert done.returncode == 1 and one_line_naming(done.stderr, path), done.stderr


def test_the_budget_guard_on_a_locked_ledger_names_the_file(project, capsys, monkeypatch):
    (project / ".claude" / "hybrid.yaml").parent.mkdir(exist_ok=True)
    (project / ".claude" / "hybrid.yaml").write_text("budget:\n  per_story_usd: 1\n")
    payload = {"tool_name": "mcp__plugin_hybrid_glm__implement", "tool_input": {"story": "01.2"}, "cwd": str(project)}
    monkeypatch.setenv("CLAUDE_PROJECT_DIR", str(project))
    monkeypatch.setattr(sys, "stdin", type("In", (), {"buffer": type("B", (), {"read": lambda self: json.dumps(payload).encode()})()})())
    with ledger_locked(ledger_path(project)):
        assert guard.main() == 1  # the hook logs it and lets the call through
    assert one_line_naming(capsys.readouterr().err, ledger_path(project))
