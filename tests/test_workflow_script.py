"""workflows/pilot.js's own logic, run by node with a scripted agent(): arguments, the review
loop, stops, resume. (The real CLI runs it in tests/e2e/test_workflow.py.)"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.support import REPO

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed (the README's install needs it anyway)")
CHANGES = {"verdict": "REQUEST_CHANGES", "score": 5, "issues": [{"severity": "major", "file": "a.py", "line": 3, "text": "wrong"}]}
MINOR = {"verdict": "APPROVED", "score": 8, "issues": [{"severity": "minor", "file": "a.py", "line": 1, "text": "naming"}]}


def run(tmp_path, args, **answers):
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"args": args, "answers": answers}))
    done = subprocess.run([NODE, str(REPO / "tests" / "js" / "run_workflow.mjs"), str(REPO / "workflows" / "pilot.js"), str(case)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    return out["result"], [call["label"] for call in out["calls"]], out


def test_a_clean_story_runs_every_phase_but_p4(tmp_path):
    result, labels, out = run(tmp_path, "01.2")
    assert labels == ["P1 01.2", "P2 01.2", "P3 01.2", "P5 01.2", "P6 01.2", "P7 01.2"]
    assert result["stories"][0]["status"] == "done" and result["stories"][0]["phases_run"] == ["P1", "P2", "P3", "P5", "P6", "P7"]
    assert all(call["schema"] for call in out["calls"])  # every phase answers with data
    assert all(call["prompt"].startswith(f"[story 01.2 {call['label'][:2]}]") for call in out["calls"])


def test_review_loop_from_data_and_p4_only_after_an_approval_with_issues(tmp_path):
    result, labels, out = run(tmp_path, {"stories": ["01.3"]}, **{"P5 01.3": [CHANGES, MINOR]})
    assert labels == ["P1 01.3", "P2 01.3", "P3 01.3", "P5 01.3", "P3 01.3", "P5 01.3", "P4 01.3", "P6 01.3", "P7 01.3"]
    second_p3 = [c for c in out["calls"] if c["label"] == "P3 01.3"][1]
    assert "Fix these review issues" in second_p3["prompt"] and "a.py:3 wrong" in second_p3["prompt"]
    assert [c["prompt"] for c in out["calls"] if c["label"] == "P5 01.3"][1].endswith("review round 2 of 2 (the last).")
    assert not any("Test command" in c["prompt"] for c in out["calls"])  # none was given
    assert result["stories"][0]["review_rounds"] == 2 and result["stories"][0]["refactored"] is True


def test_the_last_round_asking_for_changes_stops_the_story(tmp_path):
    result, labels, _ = run(tmp_path, "01.3 max_review_rounds=1", **{"P5 01.3": [CHANGES]})
    assert labels == ["P1 01.3", "P2 01.3", "P3 01.3", "P5 01.3"]
    assert result["stories"][0]["status"] == "failed" and "review rounds exhausted" in result["stories"][0]["reason"]


def test_a_failed_phase_or_a_failed_ac_stops_that_story_only(tmp_path):
    result, labels, _ = run(tmp_path, "01.2,01.3", **{
        "P3 01.2": [{"status": "failed", "summary": "tests still fail"}],
        "P6 01.3": [{"ac_results": [{"id": "AC-1", "pass": False, "evidence": "no"}]}],
    })
    by_story = {s["story"]: s for s in result["stories"]}
    assert by_story["01.2"]["status"] == "failed" and by_story["01.2"]["reason"] == "P3 failed: tests still fail"
    assert "P5 01.2" not in labels
    assert by_story["01.3"]["status"] == "failed" and by_story["01.3"]["reason"] == "QA failed AC-1" and "P7 01.3" not in labels


def test_an_agent_that_returns_nothing_stops_its_story(tmp_path):
    result, labels, _ = run(tmp_path, "01.2", **{"P2 01.2": ["null"]})
    assert labels == ["P1 01.2", "P2 01.2"] and result["stories"][0]["status"] == "failed"


def test_resume_skips_what_the_checkpoints_show_done(tmp_path):
    result, labels, _ = run(tmp_path, {"stories": ["01.2"], "resume": {"01.2": {"done": ["P1", "P2", "P3"], "round": 2}}})
    assert labels == ["P5 01.2", "P6 01.2", "P7 01.2"]
    p5 = result["stories"][0]
    assert p5["review_rounds"] == 2 and p5["phases_run"] == ["P5", "P6", "P7"]


@pytest.mark.parametrize("args, problem", [
    ("01.2 max_review_rounds=abc", "max_review_rounds must be a whole number >= 1"),
    ("01.2 max_review_rounds=0", "max_review_rounds must be a whole number >= 1"),
    ("01.2 phases=P3,P9", "unknown phases: P9"),
    ("", "no story ids given"),
    ("../x", "not story ids: ../x"),
    ("01.2 --no-workflow", "--no-workflow"),
    ("01.2 frontend=01.3", "a developer is named for stories not in the run: 01.3"),
    ({"stories": ["01.2"], "developer": {"01.2": "ux-designer"}}, "backend-dev or frontend-dev, not ux-designer"),
])
def test_bad_arguments_start_nothing_and_say_why(tmp_path, args, problem):
    result, labels, _ = run(tmp_path, args)
    assert labels == [] and problem in result["error"]


def test_phases_option_runs_only_those(tmp_path):
    result, labels, _ = run(tmp_path, "01.2,01.3 phases=P1,P2")
    assert sorted(labels) == ["P1 01.2", "P1 01.3", "P2 01.2", "P2 01.3"]
    assert [s["story"] for s in result["stories"]] == ["01.2", "01.3"]


def test_frontend_names_the_ui_stories_p3_developer(tmp_path):
    _, _, out = run(tmp_path, "01.2,01.3 frontend=01.3")
    p3 = {call["label"]: call["agentType"] for call in out["calls"] if call["label"].startswith("P3")}
    assert p3 == {"P3 01.2": "hybrid:backend-dev", "P3 01.3": "hybrid:frontend-dev"}


def test_the_checked_test_command_reaches_every_phase_that_runs_the_tests(tmp_path):
    line = "01.2 max_review_rounds=1"
    result, labels, out = run(tmp_path, {"line": line, "test_command": "python3 -m unittest"}, **{"P5 01.2": [MINOR]})
    assert result["stories"][0]["status"] == "done" and "P4 01.2" in labels
    told = {call["label"][:2] for call in out["calls"] if call["prompt"].endswith("\nTest command: `python3 -m unittest`")}
    assert told == {"P3", "P4", "P5", "P6"}
    _, labels, _ = run(tmp_path, {"line": "01.2", "test_command": " "})
    assert labels == []


def test_a_resumed_later_round_sends_p3_to_the_review_in_the_checkpoint(tmp_path):
    _, labels, out = run(tmp_path, {"stories": ["01.2"], "resume": {"01.2": {"done": ["P1", "P2"], "round": 2}}})
    [p3] = [call["prompt"] for call in out["calls"] if call["label"] == "P3 01.2"]
    assert "review round 2" in p3 and "in the checkpoint" in p3


def test_engine_claude_runs_the_same_phases_with_claude_agents_on_their_models(tmp_path):
    models = {"P2": "sonnet", "P3": "sonnet", "P4": "haiku", "P7": "haiku"}
    args = {"line": "01.3,01.4 engine=claude frontend=01.4", "run": "20261202-100000-abcd", "models": models}
    result, labels, out = run(tmp_path, args, **{"P5 01.3": [CHANGES, MINOR]})
    hybrid, hybrid_labels, hybrid_out = run(tmp_path, "01.3,01.4 frontend=01.4", **{"P5 01.3": [CHANGES, MINOR]})
    assert labels == hybrid_labels  # the same phases and review loop
    assert (result["run"], result["engine"], hybrid["engine"]) == ("20261202-100000-abcd", "claude", "hybrid")
    agents = {(c["label"], c["agentType"], c["model"]) for c in out["calls"]}
    assert ("P2 01.3", "hybrid:claude-test-writer", "sonnet") in agents
    assert ("P3 01.3", "hybrid:claude-backend-dev", "sonnet") in agents and ("P3 01.4", "hybrid:claude-frontend-dev", "sonnet") in agents
    assert ("P4 01.3", "hybrid:claude-senior-dev", "haiku") in agents and ("P7 01.4", "hybrid:claude-tech-writer", "haiku") in agents
    assert ("P1 01.3", "hybrid:ux-designer", None) in agents and ("P5 01.3", "hybrid:code-reviewer", None) in agents
    assert not any("GLM" in c["prompt"] for c in out["calls"]) and all("GLM" in c["prompt"] for c in hybrid_out["calls"]
                                                                       if c["label"][:2] in ("P2", "P3", "P7"))
    assert {c["model"] for c in hybrid_out["calls"]} == {None} and not any("claude-" in c["agentType"] for c in hybrid_out["calls"])


@pytest.mark.parametrize("args, problem", [
    ("01.2 engine=glm", "engine=glm: the engines are hybrid, claude"),
    ({"stories": "01.2", "engine": "claude", "models": {"P5": "opus"}}, "models: P5=opus"),
    ({"stories": "01.2", "engine": "claude", "models": {"P3": "claude-sonnet-5-5"}}, "models: P3=claude-sonnet-5-5"),
])
def test_a_bad_engine_or_model_starts_no_agent(tmp_path, args, problem):
    result, labels, _ = run(tmp_path, args)
    assert labels == [] and problem in result["error"], result
