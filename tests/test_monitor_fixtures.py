"""The captured Claude Code 2.1.330 sessions (tests/fixtures/claude-code-2.1.330), through the
hooks as Claude Code runs them, into the ledger, into the report: no message counted twice.

Every captured assistant message reports input 1000, cache creation 200 (5m), cache read 300,
output 50: prompt 1,500. Priced by hand:
  claude-haiku-5-5: 1,000 x 0.10 + 300 x 0.01 + 200 x 0.125 + 50 x 0.50 = 153 µ$
  claude-opus-5-5:  1,000 x 4.00 + 300 x 0.20 + 200 x 5.00 + 50 x 20.0 = 6,060 µ$
The captured session: main loop 2 opus messages (msg_3 written 3 times + msg_13) + 3 subagents x 2
haiku messages = 12,120 + 918 = 13,038 µ$, the CLI's own cost-state total ($0.013038).
"""

from __future__ import annotations

import json

import pytest

from mcp_server.monitor import main

from tests.test_hooks import (
    WORKFLOW,
    WORKFLOW_AGENTS,
    WORKFLOW_SESSION,
    Session,
    agent_lines,
    fixture_lines,
    main_lines,
    replay,
)
from tests.test_monitor_builders import finished, review, write_checkpoint


@pytest.fixture
def session(tmp_path, monkeypatch):
    monkeypatch.delenv("CLAUDE_PROJECT_DIR", raising=False)
    return Session(tmp_path)


def checkpoints(root, *stories):
    for story in stories:
        write_checkpoint(root, finished(
            story, times={"P1": ("10:00", "10:05"), "P3": ("10:05", "10:20"), "P5": ("10:20", "10:30")},
            acs=1, qa=["pass"], current_review=review(9), coverage=(90.0, "coverage.xml"),
        ))


def report(capsys, root) -> dict:
    code = main(["--project", str(root), "--json", "--no-cache"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    data.pop("generated_at")
    return data


def test_captured_session_through_the_hooks_into_the_report(capsys, session):
    session.install_captured()
    replay(session, "hook-payloads.jsonl")
    checkpoints(session.project, "01.2")
    data = report(capsys, session.project)
    [cost_state] = [json.loads(line) for line in fixture_lines("main-transcript.jsonl") if '"cost-state"' in line]
    assert data["orchestration"]["total_usd"] == round(cost_state["totalCostUSD"], 6) == 0.013038
    assert data["totals"]["tokens"]["claude"] == {"calls": 8, "input": 12_000, "cached": 2_400, "cache_writes": 1_600, "output": 400}
    assert data["per_story"][0]["cost"] == {"data": False}  # nothing was attributed to 01.2 in that run
    replay(session, "hook-payloads.jsonl")  # every hook again: nothing new
    assert report(capsys, session.project) == data


def test_workflow_run_attributed_per_story_and_phase(capsys, session):
    session.main_path(WORKFLOW_SESSION).write_text("".join(main_lines(WORKFLOW_SESSION, "wf")))
    for agent, (prompt, _, _) in WORKFLOW_AGENTS.items():
        path = session.agent_path(WORKFLOW_SESSION, agent, WORKFLOW)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(agent_lines("abc32a8b04146f279", agent=agent, session=WORKFLOW_SESSION, tag=agent[:4], prompt=prompt)))
    replay(session, "workflow-run-hook-payloads.jsonl")
    checkpoints(session.project, "01.2", "01.3")
    data = report(capsys, session.project)
    stories = {row["story"]: row["cost"] for row in data["per_story"]}
    assert stories["01.2"]["claude_usd"] == 0.000612  # [story 01.2 P3] and [story 01.2 P5]: 4 x 153 µ$
    assert stories["01.2"]["tokens"]["claude"] == {"calls": 4, "input": 6_000, "cached": 1_200, "cache_writes": 800, "output": 200}
    assert stories["01.3"]["claude_usd"] == 0.000306
    phases = {row["phase"]: row["cost"] for row in data["per_phase"]}
    assert phases["P3"]["claude_usd"] == 0.000612 and phases["P5"]["claude_usd"] == 0.000306
    # the main loop (2 opus messages) and the agent without a [story ...] prefix (2 haiku)
    assert data["orchestration"]["total_usd"] == 0.012426
    assert data["totals"]["total_usd"] == 0.013344 and data["totals"]["glm_usd"] == 0.0
    replay(session, "workflow-run-hook-payloads.jsonl")
    assert report(capsys, session.project) == data
