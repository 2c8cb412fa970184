"""/hybrid:pilot --no-workflow in the real Claude Code CLI: the Agent-call orchestration, with the
agents, MCP tools, checkpoints, hooks and ledger. (The workflow mode: test_workflow.py.)

The scripted fake model plays the orchestrator and the agents by the plugin's own instructions;
the fake GLM returns the example's real code. What is asserted are the real files, the real
checkpoints and the real ledger, against what the fakes reported.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml

from mcp_server.demo.run import prepare_project, run_session
from tests.e2e.conftest import CountingGlm, ledger, session_env
from tests.fakes.fake_anthropic import Review, Scenario, fake_claude, reported_usage
from tests.fakes.fake_glm import FakeGlm

STORIES = ("01.2", "01.3")
CHANGES = Review("REQUEST_CHANGES", 6, ({"severity": "major", "file": "settings/permissions.py", "line": 7,
                                         "text": "grants live in a module-level dict shared by every store"},))


@pytest.fixture(scope="module")
def pilot(claude, tmp_path_factory):
    """One pilot run for the module's assertions: 01.3's first review asks for changes."""
    project = prepare_project(tmp_path_factory.mktemp("pilot"))
    glm_responder = CountingGlm()
    scenario = Scenario(reviews={"01.3": [CHANGES, Review("APPROVED", 9)]})
    with fake_claude(scenario) as anthropic, FakeGlm(responder=glm_responder) as glm:
        run = run_session(claude, project, f"/hybrid:pilot {','.join(STORIES)} --no-workflow",
                          session_env(tmp_path_factory.mktemp("home"), anthropic.base_url, glm.base_url), timeout_s=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return {"project": project, "run": run, "claude": reported_usage(anthropic), "glm": glm_responder.reported}


def checkpoint(project: Path, story: str) -> tuple[dict, list[str]]:
    text = (project / ".claude" / "checkpoints" / f"{story}.yaml").read_text()
    history = [line for line in text.splitlines() if line[:2] in {f"P{n}" for n in range(1, 8)} and line[2] == ":"]
    return yaml.safe_load(text), history


def test_the_orchestrator_launched_the_agents_itself_round_by_round(pilot):
    orchestrator_turns = sum(1 for reported in pilot["claude"].values() if reported.label == "orchestrator")
    assert orchestrator_turns >= 2 * 7  # a checkpoint_list and a launch per round, then the report


def test_glm_wrote_the_code_and_the_story_tests_pass(pilot):
    project = pilot["project"]
    for path in ("settings/roles.py", "settings/permissions.py", "tests/test_roles.py", "tests/test_permissions.py",
                 "docs/features/01.2-user-roles.md", "docs/features/01.3-permissions.md", "docs/design/01.2-ux.md"):
        assert (project / path).is_file(), path
    # Round 2 of 01.3 fixed what the review found: no module-level grants any more.
    assert "_GRANTS" not in (project / "settings" / "permissions.py").read_text()
    tests = subprocess.run(["python3", "-m", "unittest", "-q", "tests.test_roles", "tests.test_permissions"],
                           cwd=project, capture_output=True, text=True)
    assert tests.returncode == 0, tests.stderr


def test_checkpoints_show_every_phase_done_with_the_seeds_history_lines(pilot):
    for story in STORIES:
        data, history = checkpoint(pilot["project"], story)
        statuses = {phase: value["status"] for phase, value in data["phases"].items()}
        assert {statuses[p] for p in ("P1", "P2", "P3", "P5", "P6", "P7")} == {"done"}, statuses
        assert statuses["P4"] == "skipped"  # both reviews ended clean: no refactor
        assert history[-1].startswith("P7: ✓ tech-writer ")
        assert all(result["result"] == "pass" for result in data["qa"]["results"])
    data, history = checkpoint(pilot["project"], "01.3")
    assert data["phases"]["P3"]["iteration"] == 2 and data["phases"]["P5"]["iteration"] == 2
    assert [r["verdict"] for r in data["reviews"]] + [data["review"]["verdict"]] == ["REQUEST_CHANGES", "APPROVED"]
    assert [line.split()[:2] for line in history] == [
        ["P1:", "✓"], ["P2:", "✓"], ["P3:", "✓"], ["P5:", "✓"], ["P3:", "↻"], ["P3:", "✓"], ["P5:", "✓"], ["P4:", "–"], ["P6:", "✓"], ["P7:", "✓"]
    ]


def test_ledger_claude_rows_equal_what_the_fake_model_reported_token_for_token(pilot):
    rows = [row for row in ledger(pilot["project"]) if row["provider"] == "anthropic"]
    by_message = {row["dedup_key"].split(":")[0]: row for row in rows}
    assert len(by_message) == len(rows)  # nothing counted twice
    reported = pilot["claude"]
    assert set(by_message) == set(reported)
    for message_id, expected in reported.items():
        row = by_message[message_id]
        assert (row["model"], row["prompt_tokens"], row["cached_tokens"], row["completion_tokens"]) == (
            expected.model, expected.prompt_tokens, expected.cached_tokens, expected.completion_tokens), message_id


def test_claude_usage_is_attributed_to_the_story_and_phase_that_spent_it(pilot):
    rows = {row["dedup_key"].split(":")[0]: row for row in ledger(pilot["project"]) if row["provider"] == "anthropic"}
    for message_id, expected in pilot["claude"].items():
        row = rows[message_id]
        if expected.label == "orchestrator":
            assert (row["story"], row["phase"], row["agent_type"]) == (None, None, "main")
        else:
            assert f"{row['story']} {row['phase']}" == expected.label, message_id
    phases = Counter((row["story"], row["phase"]) for row in rows.values() if row["story"])
    assert {phase for _, phase in phases} == {"P1", "P2", "P3", "P5", "P6", "P7"}


def test_ledger_glm_rows_equal_what_the_fake_glm_reported(pilot):
    rows = [row for row in ledger(pilot["project"]) if row["provider"] == "glm"]
    assert Counter((r["model"], r["prompt_tokens"], r["cached_tokens"], r["completion_tokens"]) for r in rows) == Counter(pilot["glm"])
    assert Counter((r["story"], r["phase"]) for r in rows) == Counter({
        ("01.2", "P2"): 1, ("01.2", "P3"): 1, ("01.2", "P7"): 1,
        ("01.3", "P2"): 1, ("01.3", "P3"): 2, ("01.3", "P7"): 1,  # P3 twice: the review's round
    })
