"""The budget guard: a PreToolUse hook on Agent and the GLM tools that blocks (exit 2) at a cap.

Prices by hand (mcp_server/data/prices.yaml): glm-4.7 input $0.60/M, so 1,000,000 prompt tokens
cost $0.60. One captured claude-opus-5-5 message (1000 input, 300 cache read, 200 cache write 5m,
50 output) costs (1000*4 + 300*0.2 + 200*5 + 50*20)/1e6 = $0.00606.
"""

from __future__ import annotations

import sys
import time

import pytest

from mcp_server.ledger import UsageRow
from mcp_server.usage.hook import budget
from tests.test_hooks import SECRET, Session, run_hook, run_record

GLM_IMPLEMENT = "mcp__plugin_hybrid_glm__implement"


@pytest.fixture
def session(tmp_path) -> Session:
    return Session(tmp_path)


def configure(session: Session, text: str) -> None:
    (session.project / ".claude").mkdir(exist_ok=True)
    (session.project / ".claude" / "hybrid.yaml").write_text(text)


def record(session: Session, *rows: UsageRow) -> None:
    ledger = session.ledger()
    try:
        for row in rows:
            ledger.record(row)
    finally:
        ledger.close()


def glm_call(session: Session, story="01.2", **fields) -> dict:
    return session.payload("PreToolUse", tool_name=GLM_IMPLEMENT, tool_input={"story": story, "instructions": "x"}, **fields)


def agent_call(session: Session, prompt: str) -> dict:
    return session.payload("PreToolUse", tool_name="Agent", tool_input={"prompt": prompt, "subagent_type": "hybrid:backend-dev"})


def guard(session: Session, payload, **env: str):
    """The hooks.json command in a fresh process, with this interpreter standing in for the venv."""
    return run_record(session, "budget", payload, HYBRID_PYTHON=sys.executable, **env)


def test_story_cap_blocks_with_cap_spend_and_how_to_raise(session):
    session.install_captured()
    configure(session, "budget:\n  per_story_usd: 0.50\n")
    record(
        session,
        UsageRow("glm", "glm-4.7", story="01.2", prompt_tokens=700_000),  # $0.42
        UsageRow("anthropic", "claude-opus-5-5", story="01.2", prompt_tokens=20_000),  # $0.08
        UsageRow("glm", "glm-4.7", story="01.3", prompt_tokens=5_000_000),  # another story
    )
    done = guard(session, glm_call(session))
    assert done.returncode == 2
    message = done.stderr.decode()
    assert message.strip() == (
        "hybrid budget: budget.per_story_usd is $0.50; story 01.2 has spent $0.5000 "
        "(Claude $0.0800 + GLM $0.4200). Raise or remove it under budget: in .claude/hybrid.yaml "
        "(or HYBRID_BUDGET_PER_STORY_USD)."
    )
    # an Agent call for the story is held back too, by its prompt prefix
    assert guard(session, agent_call(session, "[story 01.2 P4] refactor")).returncode == 2
    assert session.log == ""
    ledger = session.ledger()
    try:  # each block is in the ledger, for the telemetry
        assert [(r["cap"], r["story"], r["source"]) for r in ledger.rows_after("budget_refusal", 0, 99, 99)] == [
            ("budget.per_story_usd", "01.2", "hook")] * 2
    finally:
        ledger.close()


def test_under_the_cap_passes(session):
    session.install_captured()
    configure(session, "budget:\n  per_story_usd: 0.50\n  per_run_usd: 100\n")
    record(session, UsageRow("glm", "glm-4.7", story="01.2", prompt_tokens=800_000))  # $0.48
    assert guard(session, glm_call(session)).returncode == 0
    assert guard(session, glm_call(session, story="01.3")).returncode == 0
    assert guard(session, agent_call(session, "[story 01.2 P3] go")).returncode == 0
    # no prefix: only the run cap applies
    record(session, UsageRow("glm", "glm-4.7", story="01.2", prompt_tokens=800_000))
    assert guard(session, agent_call(session, "Implement story 01.2")).returncode == 0
    assert guard(session, agent_call(session, "[story 01.2 P3] go")).returncode == 2
    assert session.log == ""


def test_environment_variable_sets_a_cap(session):
    record(session, UsageRow("glm", "glm-4.7", story="01.2", prompt_tokens=1_000_000))
    done = guard(session, glm_call(session), HYBRID_BUDGET_PER_STORY_USD="0.6")
    assert done.returncode == 2 and b"$0.60; story 01.2 has spent $0.6000" in done.stderr
    assert guard(session, glm_call(session), HYBRID_BUDGET_PER_STORY_USD="0.61").returncode == 0


def test_run_cap_counts_claude_and_glm_since_the_session_began(session):
    """The session's transcripts are read before the check (no Stop has run yet)."""
    # main loop: 2 opus messages = $0.01212; 3 agents: 6 haiku messages = $0.000918 (the CLI's
    # own total for the session, $0.013038). The session began at 22:48:26.882.
    session.install_captured()
    configure(session, "budget:\n  per_run_usd: 0.02\n")
    record(
        session,
        UsageRow("glm", "glm-4.7", prompt_tokens=10_000, ts="2026-11-23T22:48:29.000+00:00"),  # $0.006, in this run
        UsageRow("glm", "glm-4.7", prompt_tokens=9_000_000, ts="2026-11-22T10:00:00.000+00:00"),  # an earlier run
    )
    assert guard(session, glm_call(session)).returncode == 0  # 0.013038 + 0.006 < 0.02
    record(session, UsageRow("glm", "glm-4.7", prompt_tokens=5_000, ts="2026-11-23T22:49:00.000+00:00"))
    done = guard(session, agent_call(session, "no prefix here"))
    assert done.returncode == 2
    message = done.stderr.decode()
    assert message.startswith("hybrid budget: budget.per_run_usd is $0.02; this run (since 2026-11-23 22:48:26 UTC)")
    assert "has spent $0.0220 (Claude $0.0130 + GLM $0.0090)" in message
    assert session.log == ""
    assert "HYBRID_BUDGET_PER_RUN_USD" in message


def test_in_a_pilot_run_the_run_cap_counts_that_run(session):
    """The story's pilot run (`hybrid runs`) is the run: a row from before it does not count."""
    configure(session, "budget:\n  per_run_usd: 0.02\n")
    record(session, UsageRow("glm", "glm-4.7", story="01.2", prompt_tokens=9_000_000, ts="2026-11-22T10:00:00.000+00:00"))
    ledger = session.ledger()
    try:
        run = ledger.start_run(engine="hybrid", stories=["01.2"])
    finally:
        ledger.close()
    record(session, UsageRow("glm", "glm-4.7", story="01.2", prompt_tokens=10_000))  # $0.006, in the run
    assert guard(session, glm_call(session)).returncode == 0
    record(session, UsageRow("glm", "glm-4.7", story="01.2", prompt_tokens=30_000))  # $0.018 more
    done = guard(session, glm_call(session))
    assert done.returncode == 2, done.stderr
    assert done.stderr.decode().startswith(
        f"hybrid budget: budget.per_run_usd is $0.02; run {run} has spent $0.0240 (Claude $0.0000 + GLM $0.0240)")


def test_spend_with_no_price_is_never_counted_as_0_it_blocks(session):
    configure(session, "budget:\n  per_story_usd: 0.10\n")
    record(
        session,
        UsageRow("glm", "glm-4.7", story="01.2", prompt_tokens=100_000),  # $0.06, under the cap
        UsageRow("anthropic", "claude-mystery-9", story="01.2", prompt_tokens=1),
    )
    done = guard(session, glm_call(session))
    assert done.returncode == 2
    assert done.stderr.decode().strip() == (
        "hybrid budget: budget.per_story_usd is $0.10, but story 01.2 has calls to claude-mystery-9, which have "
        "no price, so what it spent is unknown. To continue, add their prices under `prices:` in "
        ".claude/hybrid.yaml (data/prices.yaml's shape), or remove the cap."
    )
    configure(session, "budget:\n  per_story_usd: 0.10\nprices:\n  claude-mystery-9: {input: 1.0, output: 5.0}\n")
    assert guard(session, glm_call(session)).returncode == 0  # priced now: $0.060001, under the cap


def test_no_budget_does_nothing_fast(session, monkeypatch):
    import subprocess

    def no_subprocess(*args, **kwargs):
        raise AssertionError("the guard must not start anything without a budget")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    payload = glm_call(session)
    started = time.perf_counter()
    for _ in range(20):
        assert run_hook(session, "budget", payload) == 0
    assert (time.perf_counter() - started) / 20 < 0.005
    configure(session, "glm:\n  thinking: false\n")  # a project config without a budget
    assert run_hook(session, "budget", payload) == 0
    assert not (session.project / ".claude" / "hybrid").exists()  # no ledger opened, nothing logged


def test_budget_section_with_no_caps_passes(session):
    session.install_captured()
    configure(session, "budget:\n  per_story_usd: null\n  per_run_usd: null\n")
    record(session, UsageRow("glm", "glm-4.7", story="01.2", prompt_tokens=9_000_000))
    assert guard(session, glm_call(session)).returncode == 0
    assert session.log == ""


@pytest.mark.parametrize("raw", [b"", b"{oops " + SECRET.encode(), b"[1, 2]", b'{"tool_name": 5}'])
def test_malformed_payload_exits_0(session, raw):
    configure(session, "budget:\n  per_story_usd: 0\n  per_run_usd: 0\n")
    assert guard(session, raw).returncode == 0
    assert SECRET not in session.log


def test_other_tools_are_not_checked(session):
    configure(session, "budget:\n  per_run_usd: 0\n")
    session.install_captured()
    payload = session.payload("PreToolUse", tool_name="Read", tool_input={"file_path": "x"})
    assert guard(session, payload).returncode == 0


def test_a_broken_config_never_blocks(session):
    configure(session, "budget:\n  per_story_usd: -3\n")
    record(session, UsageRow("glm", "glm-4.7", story="01.2", prompt_tokens=9_000_000))
    assert guard(session, glm_call(session)).returncode == 0
    assert "budget not checked" in session.log and "per_story_usd" in session.log


def test_no_interpreter_for_the_guard_never_blocks(session, monkeypatch):
    configure(session, "budget:\n  per_story_usd: 0\n")
    monkeypatch.setattr(budget, "guard_python", lambda env: None)
    assert run_hook(session, "budget", glm_call(session)) == 0
    assert "the plugin's Python environment is not built yet" in session.log


def test_guard_finds_the_plugin_venv(tmp_path, monkeypatch):
    """Where the launcher built it for the MCP server; never built from a hook."""
    data = tmp_path / "plugin-data"
    python = data / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    monkeypatch.setenv("CLAUDE_PLUGIN_DATA", str(data))  # as Claude Code sets it for hooks
    assert budget.guard_python({"CLAUDE_PLUGIN_DATA": str(data)}) == str(python)
    assert budget.guard_python({"HYBRID_PYTHON": sys.executable}) == sys.executable
    assert budget.guard_python({"HYBRID_PYTHON": str(tmp_path / "missing")}) is None


def test_exactly_at_the_cap_blocks(session):
    configure(session, "budget:\n  per_story_usd: 0.6\n")
    record(session, UsageRow("glm", "glm-4.7", story="01.2", prompt_tokens=1_000_000))
    assert guard(session, glm_call(session)).returncode == 2


def test_in_workflow_mode_a_phase_start_and_a_workflow_launch_are_guarded(session):
    """Workflow agents fire no PreToolUse for Agent: the guard holds their phase starts
    (checkpoint_write running) to the story cap, and the Workflow launch to the run cap."""
    session.install_captured()
    configure(session, "budget:\n  per_story_usd: 0.50\n  per_run_usd: 0.60\n")
    record(session, UsageRow("glm", "glm-4.7", story="01.2", prompt_tokens=1_000_000))  # $0.60
    start = {"story": "01.2", "phase": "P5", "status": "running", "agent": "code-reviewer"}
    started = guard(session, session.payload("PreToolUse", tool_name=budget.PHASE_START, tool_input=start))
    assert started.returncode == 2 and "story 01.2 has spent $0.6000" in started.stderr.decode()
    # Recording a result is never blocked: the work is done and paid for.
    finished = dict(start, status="done")
    assert guard(session, session.payload("PreToolUse", tool_name=budget.PHASE_START, tool_input=finished)).returncode == 0
    launch = session.payload("PreToolUse", tool_name="Workflow", tool_input={"name": "hybrid:pilot", "args": "01.3"})
    launched = guard(session, launch)
    assert launched.returncode == 2 and "budget.per_run_usd is $0.60" in launched.stderr.decode()
