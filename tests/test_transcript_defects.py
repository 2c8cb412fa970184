"""The transcript defects seen in the field (../shared/claude-code-facts/README.md, "Known field
defects"), in transcripts shaped like them: requests that never got their final usage, agent
totals the main transcript reports beyond the agent's own transcript, and a killed session whose
transcripts are in another folder."""

from __future__ import annotations

import json
import sqlite3

import pytest

from mcp_server import checkpoints
from mcp_server.cli import main as hybrid
from mcp_server.ledger import ledger_path
from mcp_server.monitor.cli import main as monitor
from mcp_server.usage import transcripts
from tests.support import STORY_01_2
from tests.test_hooks import CAPTURED_AGENTS, Session, agent_lines, main_lines, run_hook, totals

SESSION = "33333333-3333-4333-8333-333333333333"
AGENT = "d1"
TS = "2026-11-30T10:00:0{}.000Z"


def assistant(message_id: str, *, stop_reason, output: int, prompt: int, second: int, final_record: bool) -> dict:
    usage = {"input_tokens": prompt, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": output}
    if final_record:
        usage["iterations"] = [{"input_tokens": prompt, "output_tokens": output}]
    return {
        "type": "assistant", "isSidechain": True, "agentId": AGENT, "sessionId": SESSION, "requestId": f"req_{message_id}",
        "timestamp": TS.format(second),
        "message": {"id": message_id, "model": "claude-haiku-5-5", "role": "assistant", "content": [{"type": "text", "text": "x"}],
                    "stop_reason": stop_reason, "usage": usage},
    }


def jsonl(objs) -> str:
    return "".join(json.dumps(obj) + "\n" for obj in objs)


def defect_session(session: Session) -> None:
    """An agent transcript where msg_a got its final record and msg_b never did (early snapshots
    only: stop_reason null, output 1), and a main transcript whose Agent tool result reports the
    agent's total as the CLI computes it from msg_b's true final usage (2,000 in + 400 out)."""
    prompt = {"type": "user", "isSidechain": True, "agentId": AGENT, "sessionId": SESSION, "timestamp": TS.format(0),
              "message": {"role": "user", "content": "[story 01.2 P3] implement"}}
    agent = session.agent_path(SESSION, AGENT)
    agent.parent.mkdir(parents=True, exist_ok=True)
    agent.write_text(jsonl([
        prompt,
        assistant("msg_a", stop_reason=None, output=1, prompt=1000, second=1, final_record=False),
        assistant("msg_a", stop_reason="tool_use", output=300, prompt=1000, second=2, final_record=True),
        assistant("msg_b", stop_reason=None, output=1, prompt=2000, second=3, final_record=False),
        assistant("msg_b", stop_reason=None, output=1, prompt=2000, second=3, final_record=False),
    ]))
    main_prompt = {"type": "user", "sessionId": SESSION, "timestamp": TS.format(0), "message": {"role": "user", "content": "go"}}
    result = {"type": "user", "sessionId": SESSION, "timestamp": TS.format(5),
              "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "done"}]},
              "toolUseResult": {"status": "completed", "agentId": AGENT, "totalTokens": 2400, "totalToolUseCount": 1}}
    session.main_path(SESSION).write_text(jsonl([main_prompt, result]))


def statuses(session: Session) -> dict[str, tuple[str, int]]:
    with sqlite3.connect(ledger_path(session.project)) as db:
        return {key.split(":")[0]: (status, out) for key, status, out in db.execute("SELECT dedup_key, status, completion_tokens FROM usage")}


@pytest.fixture
def session(tmp_path) -> Session:
    return Session(tmp_path)


def test_a_request_that_never_got_its_final_usage_is_counted_as_a_lower_bound(session, capsys):
    defect_session(session)
    assert run_hook(session, "subagent-stop", session.payload(
        "SubagentStop", SESSION, agent_id=AGENT, agent_transcript_path=str(session.agent_path(SESSION, AGENT)))) == 0
    assert run_hook(session, "stop", session.payload("Stop", SESSION)) == 0
    assert statuses(session) == {"msg_a": ("ok", 300), "msg_b": ("ok:partial-usage", 1)}

    assert hybrid(["usage", "--project", str(session.project)]) == 0
    out = capsys.readouterr().out
    assert "total: ≥$" in out and "≥0." in out
    assert "lower bound (≥): 1 Claude request(s) never got their final usage" in out
    assert f"agent {AGENT}: its agent-tool total is 2,400 tokens, its transcript's last request 2,001 (gap 399)" in out

    (session.project / "docs" / "stories").mkdir(parents=True)
    (session.project / "docs" / "stories" / "01.2-user-roles.md").write_text(STORY_01_2)
    checkpoints.open_checkpoint(session.project, "01.2", "docs/**/{story}*.md")
    assert monitor(["--project", str(session.project)]) == 0
    report = capsys.readouterr().out
    assert "Total Cost: ≥ $" in report and "lower bound: 1 Claude request(s)" in report and "gap 399" in report
    assert monitor(["--project", str(session.project), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals_are_lower_bounds"] is True
    page = session.project / "dashboard.html"
    assert monitor(["--project", str(session.project), "--action", "dashboard", "--output", str(page)]) == 0
    html = page.read_text()
    assert '"lower_bound":true' in html and "lower bound: 1 Claude request(s)" in html


def test_the_final_record_written_late_replaces_the_snapshot_and_closes_the_gap(session, capsys):
    defect_session(session)
    assert run_hook(session, "stop", session.payload("Stop", SESSION)) == 0
    with open(session.agent_path(SESSION, AGENT), "a") as handle:  # backfilled later, as the CLI sometimes does
        handle.write(jsonl([assistant("msg_b", stop_reason="end_turn", output=400, prompt=2000, second=4, final_record=True)]))
    assert run_hook(session, "stop", session.payload("Stop", SESSION)) == 0
    assert statuses(session) == {"msg_a": ("ok", 300), "msg_b": ("ok", 400)}
    assert hybrid(["usage", "--project", str(session.project)]) == 0
    out = capsys.readouterr().out
    assert "≥" not in out and "lower bound" not in out and "gap" not in out


def test_an_equal_sized_final_record_still_replaces_the_snapshot(session):
    defect_session(session)
    assert run_hook(session, "stop", session.payload("Stop", SESSION)) == 0
    with open(session.agent_path(SESSION, AGENT), "a") as handle:
        handle.write(jsonl([assistant("msg_b", stop_reason="end_turn", output=1, prompt=2000, second=4, final_record=True)]))
    assert run_hook(session, "stop", session.payload("Stop", SESSION)) == 0
    assert statuses(session)["msg_b"] == ("ok", 1)


def test_a_task_notification_reports_a_background_agents_total(tmp_path):
    note = "<task-notification>\n<task-id>a7</task-id>\n<status>completed</status>\n<usage>subagent_tokens: 5200\ntool_uses: 3</usage>\n</task-notification>"
    workflow = "<task-notification>\n<task-id>w1</task-id>\n<usage><agent_count>2</agent_count><subagent_tokens>68760</subagent_tokens></usage>\n</task-notification>"
    path = tmp_path / "main.jsonl"
    path.write_text(jsonl([
        {"type": "user", "message": {"role": "user", "content": note}},
        {"type": "attachment", "attachment": {"type": "queued_command", "prompt": workflow}},
    ]))
    chunk = transcripts.read_transcript(str(path))
    assert chunk.agent_reports == {"a7": ("task-notification", 5200)}  # a workflow's sum of agents is not one agent's


def test_a_killed_session_in_another_transcript_folder_is_caught_up(session, tmp_path):
    """Session 1 ran with another HOME (its transcripts elsewhere); a SubagentStop read one agent,
    then it was killed. Session 2's Stop, in the usual folder, reads the rest of session 1."""
    killed, later = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
    elsewhere = tmp_path / "other-home" / ".claude" / "projects" / "-home-dev-project-via-link"
    agent = elsewhere / killed / "subagents" / "agent-a1.jsonl"
    agent.parent.mkdir(parents=True)
    agent.write_text("".join(agent_lines(CAPTURED_AGENTS[0], agent="a1", session=killed, tag="k1", prompt="[story 01.2 P3] go")))
    (elsewhere / f"{killed}.jsonl").write_text("".join(main_lines(killed, "k")))
    payload = {"session_id": killed, "transcript_path": str(elsewhere / f"{killed}.jsonl"), "cwd": str(session.project),
               "hook_event_name": "SubagentStop", "agent_id": "a1", "agent_transcript_path": str(agent)}
    assert run_hook(session, "subagent-stop", payload) == 0
    assert sum(t["calls"] for t in totals(session).values()) == 2

    session.main_path(later).write_text("".join(main_lines(later, "l")))
    assert run_hook(session, "stop", session.payload("Stop", later)) == 0
    # killed: 1 agent x 2 messages + 2 main-loop messages; later: 2 main-loop messages
    assert sum(t["calls"] for t in totals(session, session_id=killed).values()) == 4
    assert sum(t["calls"] for t in totals(session).values()) == 6
