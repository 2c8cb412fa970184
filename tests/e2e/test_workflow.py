"""/hybrid:pilot's default engine, the plugin workflow, in the real Claude Code CLI.

Three stories pipelined with no barrier; 01.3's first review asks for changes, 01.4's approval
lists a minor issue (so only 01.4 gets a P4 refactor). Then a run killed after P3 is resumed
from its checkpoints and finishes without redoing what was done.

The example project allows its test command as a user would, with a rule in its
.claude/settings.json; without that rule the pilot stops before any phase, with one line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from mcp_server.demo.glm_replies import CannedGlm
from mcp_server.demo.run import ALLOWED_TOOLS, prepare_project, replies_dir, run_session
from mcp_server.demo.script import Conversation
from tests.e2e.conftest import ledger, session_env
from tests.fakes.fake_anthropic import Review, Scenario, fake_claude, reported_usage
from tests.fakes.fake_glm import FakeGlm

STORIES = ("01.2", "01.3", "01.4")
CHANGES = Review("REQUEST_CHANGES", 6, ({"severity": "major", "file": "settings/permissions.py", "line": 7,
                                         "text": "grants live in a module-level dict shared by every store"},))
MINOR = Review("APPROVED", 8, ({"severity": "minor", "file": "settings/org_profile.py", "line": 17,
                                "text": "update() sets any attribute it is given"},))
PHASES = ("P1", "P2", "P3", "P4", "P5", "P6", "P7")


def checkpoint(project: Path, story: str) -> dict:
    return yaml.safe_load((project / ".claude" / "checkpoints" / f"{story}.yaml").read_text())


def history(project: Path, story: str) -> list[str]:
    lines = (project / ".claude" / "checkpoints" / f"{story}.yaml").read_text().splitlines()
    return [line.split()[0][:-1] + " " + line.split()[1] for line in lines if line[:1] == "P" and line[2:3] == ":"]


@pytest.fixture(scope="module")
def pipelined(claude, tmp_path_factory):
    project = prepare_project(tmp_path_factory.mktemp("workflow"))
    scenario = Scenario(reviews={"01.3": [CHANGES, Review("APPROVED", 9)], "01.4": [MINOR]})
    with fake_claude(scenario) as anthropic, FakeGlm(responder=CannedGlm(replies_dir())) as glm:
        run = run_session(claude, project, f"/hybrid:pilot {','.join(STORIES)}",
                          session_env(tmp_path_factory.mktemp("home"), anthropic.base_url, glm.base_url),
                          timeout_s=900)
        assert not anthropic.errors, anthropic.errors
    assert run.returncode == 0, run.stderr[-3000:]
    assert "# Hybrid AI Batch Report" in run.result["result"], run.result  # the report ran at the end
    # The orchestrator's waits for the plugin's tools to connect (only on a busy machine).
    waits = max((Conversation.of(body).waits() for body in anthropic.requests), default=0)
    return project, reported_usage(anthropic), [label for label in (s.label for s in anthropic.served)], waits


def test_the_example_allows_its_test_command_in_its_project_settings_as_a_user_would(pipelined):
    project, _, _, _ = pipelined
    settings = json.loads((project / ".claude" / "settings.json").read_text())
    assert settings == {"permissions": {"allow": ["Bash(python3 -m unittest *)"]}}
    # P3's implement ran the story's tests under that rule, and they passed.
    for story in STORIES:
        assert "tests passed" in checkpoint(project, story)["phases"]["P3"]["summary"]


def test_the_slash_command_ran_the_workflow_and_then_the_report(pipelined):
    project, reported, labels, waits = pipelined
    # The orchestrator made a handful of calls: check the arguments and the test command, record the run, launch the workflow,
    # wait, run the report; and, on a busy machine, its waits for the plugin's tools to connect.
    assert labels.count("orchestrator") - waits <= 8
    assert {label.split()[0] for label in labels if label != "orchestrator"} == set(STORIES)


def test_01_3_went_back_to_p3_once_and_was_reviewed_twice(pipelined):
    project, _, _, _ = pipelined
    data = checkpoint(project, "01.3")
    assert data["phases"]["P3"]["iteration"] == 2 and data["phases"]["P3"]["status"] == "done"
    assert [r["verdict"] for r in data["reviews"]] + [data["review"]["verdict"]] == ["REQUEST_CHANGES", "APPROVED"]
    assert history(project, "01.3").count("P3 ↻") == 1 and history(project, "01.3").count("P5 ✓") == 2


def test_p4_ran_only_where_a_review_had_issues(pipelined):
    project, _, labels, _ = pipelined
    p4 = {story: checkpoint(project, story)["phases"]["P4"]["status"] for story in STORIES}
    assert p4 == {"01.2": "skipped", "01.3": "skipped", "01.4": "done"}  # a clean review skips it
    assert [label for label in labels if label.endswith("P4")] and all(l.startswith("01.4") for l in labels if l.endswith("P4"))


def test_every_story_reached_p7_and_its_tests_pass(pipelined):
    project, _, _, _ = pipelined
    for story in STORIES:
        assert checkpoint(project, story)["phases"]["P7"]["status"] == "done"
        assert history(project, story)[-1] == "P7 ✓"
    tests = subprocess.run(["python3", "-m", "unittest", "discover", "-s", "tests", "-t", ".", "-q"], cwd=project,
                           capture_output=True, text=True)
    assert tests.returncode == 0, tests.stderr


def test_ledger_attribution_is_right_per_story_and_phase(pipelined):
    project, reported, _, _ = pipelined
    rows = {r["dedup_key"].split(":")[0]: r for r in ledger(project) if r["provider"] == "anthropic"}
    assert set(rows) == set(reported)  # every answer counted, once
    for message_id, expected in reported.items():
        row = rows[message_id]
        assert (row["prompt_tokens"], row["cached_tokens"], row["completion_tokens"]) == (
            expected.prompt_tokens, expected.cached_tokens, expected.completion_tokens)
        shown = "orchestrator" if row["story"] is None else f"{row['story']} {row['phase']}"
        assert shown == expected.label, message_id
    glm = Counter((r["story"], r["phase"]) for r in ledger(project) if r["provider"] == "glm")
    assert glm[("01.3", "P3")] == 2 and glm[("01.4", "P4")] == 1 and glm[("01.2", "P4")] == 0


def run_until(claude: str, project: Path, prompt: str, env: dict, done, timeout_s: float = 300) -> None:
    """Start a session and SIGKILL it (and its children) as soon as ``done()`` holds."""
    command = [claude, "-p", prompt, "--output-format", "json", "--allowedTools", ALLOWED_TOOLS, "--plugin-dir",
               str(Path(__file__).resolve().parents[2])]
    process = subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + timeout_s
    try:
        while not done():
            assert process.poll() is None, "the session ended before the kill point"
            assert time.monotonic() < deadline, "the kill point never came"
            time.sleep(0.1)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)


def test_a_run_killed_after_p3_resumes_without_redoing_finished_phases(claude, tmp_path):
    project = prepare_project(tmp_path / "resume")
    slow_review = {(story, "P5"): 4.0 for story in STORIES}  # time to kill the run while P5 is under way

    def p3_done_everywhere() -> bool:
        try:
            return all(checkpoint(project, s)["phases"]["P3"]["status"] == "done" for s in STORIES)
        except (OSError, TypeError, KeyError):
            return False

    with fake_claude(Scenario(phase_delay_s=slow_review)) as anthropic, FakeGlm(responder=CannedGlm(replies_dir())) as glm:
        env = session_env(tmp_path / "home", anthropic.base_url, glm.base_url)
        (tmp_path / "home").mkdir()
        run_until(claude, project, f"/hybrid:pilot {','.join(STORIES)}", env, p3_done_everywhere)
        before = {s: history(project, s) for s in STORIES}
        served_before, glm_before = len(anthropic.served), len(glm.requests)
        assert all(checkpoint(project, s)["phases"]["P7"]["status"] == "pending" for s in STORIES)

        resumed = run_session(claude, project, f"/hybrid:resume {','.join(STORIES)}", env, timeout_s=900)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert not anthropic.errors, anthropic.errors
        after_labels = [s.label for s in anthropic.served[served_before:]]
        glm_after = glm.requests[glm_before:]

    for story in STORIES:
        data = checkpoint(project, story)
        assert all(data["phases"][p]["status"] == "done" for p in PHASES if p != "P4"), data["phases"]
        lines = history(project, story)
        assert lines[: len(before[story])] == before[story]  # nothing finished was written again
        for phase in ("P1", "P2", "P3"):
            assert lines.count(f"{phase} ✓") == 1, lines
    # The resumed run started no agent for a finished phase, and asked GLM for no tests or code.
    assert not [label for label in after_labels if label.split()[-1] in ("P1", "P2", "P3")], Counter(after_labels)
    prompts = [request.body["messages"][0]["content"] for request in glm_after]
    assert prompts and all(content.startswith("You are a technical writer") for content in prompts)
    # The resumed session continued the killed run: one run id on every row of both sessions.
    run_ids = {row["run_id"] for row in ledger(project)}
    assert len(run_ids) == 1 and None not in run_ids, run_ids


def test_a_story_whose_last_review_round_asks_for_changes_stops_failed(claude, tmp_path):
    """max_review_rounds=1: 01.3's only review asks for changes, so its reviewer marks P5
    failed; the workflow stops the story before P4, P6 and P7, and reports why."""
    project = prepare_project(tmp_path / "exhausted")
    (tmp_path / "home").mkdir()
    with fake_claude(Scenario(reviews={"01.3": [CHANGES]}, max_review_rounds=1)) as anthropic, \
            FakeGlm(responder=CannedGlm(replies_dir())) as glm:
        run = run_session(claude, project, "/hybrid:pilot 01.3 max_review_rounds=1",
                          session_env(tmp_path / "home", anthropic.base_url, glm.base_url), timeout_s=600)
        labels = [s.label for s in anthropic.served]
    assert run.returncode == 0, run.stderr[-2000:]
    data = checkpoint(project, "01.3")
    phases = {phase: (value["status"], value["summary"]) for phase, value in data["phases"].items()}
    assert data["phases"]["P5"]["status"] == "failed" and data["phases"]["P6"]["status"] == "pending", (phases, run.result.get("result"))
    assert history(project, "01.3")[-1] == "P5 ✗"
    assert not [label for label in labels if label.split()[-1] in ("P4", "P6", "P7")]


def test_without_a_rule_for_the_test_command_the_pilot_stops_before_any_phase(claude, tmp_path):
    project = prepare_project(tmp_path / "no-rule")
    (project / ".claude" / "settings.json").unlink()
    (tmp_path / "home").mkdir()
    with fake_claude(Scenario()) as anthropic, FakeGlm(responder=CannedGlm(replies_dir())) as glm:
        run = run_session(claude, project, "/hybrid:pilot 01.2",
                          session_env(tmp_path / "home", anthropic.base_url, glm.base_url), timeout_s=300)
        labels = [s.label for s in anthropic.served]
        waits = max((Conversation.of(body).waits() for body in anthropic.requests), default=0)
        asked_glm = len(glm.requests)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.result["result"] == (
        'hybrid: the GLM tools may not run the test command "python3 -m unittest" yet: add '
        '"Bash(python3 -m unittest *)" to permissions.allow in .claude/settings.json, then run the pilot again')
    # Two checks, then the line; and, on a busy machine, the waits for the plugin's tools to connect.
    assert labels == ["orchestrator"] * (3 + waits) and asked_glm == 0
    assert not (project / ".claude" / "checkpoints").exists()
