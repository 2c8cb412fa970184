"""/hybrid:pilot engine=claude against engine=hybrid in the real Claude Code CLI: the same stories
through the same workflow and review loop, once with GLM writing the code and once with Claude
agents writing it themselves (a measured Claude-only run).

The scripted Claude of the claude-* agents writes the example's real files with Claude Code's
Write tool (mcp_server/demo/claude_writers.py). What is asserted: both runs finish the same
stories with the same checkpoints; the Claude-only run sent GLM nothing and its files came from
Write calls in its agents' transcripts; each ledger equals what its fakes reported, token for
token; and every ledger row and history line carries its run's id.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml

from mcp_server.demo.glm_replies import CannedGlm
from mcp_server.demo.run import prepare_project, replies_dir, run_session
from tests.e2e.conftest import CountingGlm, ledger, session_env
from tests.fakes.fake_anthropic import Review, Scenario, fake_claude, reported_usage
from tests.fakes.fake_glm import FakeGlm

STORIES = ("01.2", "01.3")
CHANGES = Review("REQUEST_CHANGES", 6, ({"severity": "major", "file": "settings/permissions.py", "line": 7,
                                         "text": "grants live in a module-level dict shared by every store"},))
WRITTEN = ("settings/roles.py", "settings/permissions.py", "tests/test_roles.py", "tests/test_permissions.py",
           "docs/features/01.2-user-roles.md", "docs/features/01.3-permissions.md")


def pilot(claude, tmp_path_factory, engine: str) -> dict:
    project = prepare_project(tmp_path_factory.mktemp(engine))
    home = tmp_path_factory.mktemp(f"home-{engine}")
    if engine == "claude":  # P3 on Haiku; the other phases default to the primary baseline's model (Sonnet)
        (project / ".claude" / "hybrid.yaml").write_text("engine:\n  claude_models: {P3: haiku}\n")
    glm_responder = CountingGlm()
    scenario = Scenario(reviews={"01.3": [CHANGES, Review("APPROVED", 9)]})
    with fake_claude(scenario) as anthropic, FakeGlm(responder=glm_responder) as glm:
        run = run_session(claude, project, f"/hybrid:pilot {','.join(STORIES)} engine={engine}",
                          session_env(home, anthropic.base_url, glm.base_url), timeout_s=900)
        assert not anthropic.errors, anthropic.errors
        glm_requests = len(glm.requests)
    assert run.returncode == 0, run.stderr[-3000:]
    return {"project": project, "home": home, "claude": reported_usage(anthropic), "glm": glm_responder.reported,
            "glm_requests": glm_requests, "served": list(anthropic.served)}


@pytest.fixture(scope="module")
def runs(claude, tmp_path_factory):
    return {engine: pilot(claude, tmp_path_factory, engine) for engine in ("hybrid", "claude")}


def checkpoint(project: Path, story: str) -> tuple[dict, list[str]]:
    text = (project / ".claude" / "checkpoints" / f"{story}.yaml").read_text()
    history = [line for line in text.splitlines() if line[:1] == "P" and line[2:3] == ":"]
    return yaml.safe_load(text), history


def run_table(project: Path) -> list[tuple]:
    with sqlite3.connect(project / ".claude" / "hybrid" / "usage.db") as db:
        return db.execute("SELECT id, engine, stories FROM run").fetchall()


def test_both_engines_finish_the_same_stories_through_the_same_phases(runs):
    for engine, done in runs.items():
        project = done["project"]
        for story in STORIES:
            data, history = checkpoint(project, story)
            assert {p: v["status"] for p, v in data["phases"].items()} == {
                "P1": "done", "P2": "done", "P3": "done", "P4": "skipped", "P5": "done", "P6": "done", "P7": "done"}, engine
        tests = subprocess.run(["python3", "-m", "unittest", "-q", "tests.test_roles", "tests.test_permissions"],
                               cwd=project, capture_output=True, text=True)
        assert tests.returncode == 0, (engine, tests.stderr)
    marks = {engine: [[line.split()[:2] for line in checkpoint(done["project"], s)[1]] for s in STORIES] for engine, done in runs.items()}
    assert marks["claude"] == marks["hybrid"]  # the review loop too: 01.3 went back to P3 once in both
    assert ["P3:", "↻"] in marks["claude"][1]
    for path in WRITTEN:  # the same files, whoever wrote them
        assert (runs["claude"]["project"] / path).read_text() == (runs["hybrid"]["project"] / path).read_text(), path


def test_the_claude_only_run_sent_glm_nothing_and_recorded_claude_agents(runs):
    claude = runs["claude"]
    assert claude["glm_requests"] == 0 and claude["glm"] == []
    assert not [row for row in ledger(claude["project"]) if row["provider"] == "glm"]
    agents = {checkpoint(claude["project"], s)[0]["phases"][p]["agent"] for s in STORIES for p in ("P2", "P3", "P7")}
    assert agents == {"claude-test-writer", "claude-backend-dev", "claude-tech-writer"}
    assert runs["hybrid"]["glm_requests"] > 0


def transcript_writes(home: Path) -> dict[str, set[str]]:
    """agentType -> the files its Write tool calls wrote, from every subagent transcript."""
    found: dict[str, set[str]] = {}
    for path in home.rglob("agent-*.jsonl"):
        meta = path.with_name(path.name[: -len(".jsonl")] + ".meta.json")
        agent_type = json.loads(meta.read_text()).get("agentType", "?") if meta.exists() else "?"
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            content = (entry.get("message") or {}).get("content") if entry.get("type") == "assistant" else None
            for block in content if isinstance(content, list) else []:
                if block.get("type") == "tool_use" and block.get("name") in ("Write", "Edit"):
                    found.setdefault(agent_type, set()).add(block["input"]["file_path"])
    return found


def test_the_claude_agents_wrote_the_files_with_claudes_own_tools(runs):
    claude = runs["claude"]
    writes = transcript_writes(claude["home"])
    by_claude_agents = {Path(path).resolve().relative_to(claude["project"].resolve()).as_posix()
                        for agent_type, paths in writes.items() if "claude-" in agent_type for path in paths}
    assert set(WRITTEN) <= by_claude_agents, writes
    hybrid_writes = transcript_writes(runs["hybrid"]["home"])
    assert not [a for a in hybrid_writes if "claude-" in a]  # in the hybrid run only the UX designer writes
    assert all(path.endswith("-ux.md") for paths in hybrid_writes.values() for path in paths)


def test_each_agent_ran_on_its_configured_model(runs):
    models = Counter((s.label.split()[-1], s.model) for s in runs["claude"]["served"] if s.label != "orchestrator")
    assert {model for (phase, model) in models if phase == "P3"} == {"claude-haiku-5-5"}  # engine.claude_models.P3
    assert {model for (phase, model) in models if phase in ("P2", "P7")} == {"claude-sonnet-5-5"}  # the baseline's


def test_each_ledger_equals_its_fakes_token_for_token_with_the_run_id_on_every_row(runs):
    for engine, done in runs.items():
        rows = ledger(done["project"])
        (run_id, run_engine, stories), = run_table(done["project"])
        assert (run_engine, stories) == (engine, ",".join(STORIES))
        assert {row["run_id"] for row in rows} == {run_id}, engine  # every row, the orchestrator's too
        claude = {row["dedup_key"].split(":")[0]: row for row in rows if row["provider"] == "anthropic"}
        assert len(claude) == len([row for row in rows if row["provider"] == "anthropic"])
        assert set(claude) == set(done["claude"]), engine
        for message_id, expected in done["claude"].items():
            row = claude[message_id]
            assert (row["model"], row["prompt_tokens"], row["cached_tokens"], row["completion_tokens"]) == (
                expected.model, expected.prompt_tokens, expected.cached_tokens, expected.completion_tokens), message_id
        glm = Counter((r["model"], r["prompt_tokens"], r["cached_tokens"], r["completion_tokens"])
                      for r in rows if r["provider"] == "glm")
        assert glm == Counter(done["glm"]), engine
        for story in STORIES:
            assert all(line.endswith(f" run={run_id}") for line in checkpoint(done["project"], story)[1]), engine


def test_hybrid_runs_lists_each_projects_run_with_its_engine(runs, capsys):
    from mcp_server import cli as hybrid_cli

    for engine, done in runs.items():
        assert hybrid_cli.main(["runs", "--json", "--project", str(done["project"])]) == 0
        (run,) = json.loads(capsys.readouterr().out)
        assert (run["engine"], run["stories"]) == (engine, list(STORIES)) and run["usd"] > 0
        assert (run["glm_usd"] > 0) == (engine == "hybrid") and run["claude_usd"] > 0


def test_the_agent_call_fallback_takes_the_same_switch(claude, tmp_path):
    """/hybrid:pilot 01.2 engine=claude --no-workflow: /hybrid:pilot-agents launches the claude-*
    agents itself, each Agent call on its phase's model, and GLM is never asked."""
    project, home = prepare_project(tmp_path / "agents"), tmp_path / "home"
    home.mkdir()
    with fake_claude(Scenario()) as anthropic, FakeGlm(responder=CannedGlm(replies_dir())) as glm:
        run = run_session(claude, project, "/hybrid:pilot 01.2 engine=claude --no-workflow",
                          session_env(home, anthropic.base_url, glm.base_url), timeout_s=600)
        assert not anthropic.errors, anthropic.errors
        asked_glm = len(glm.requests)
    assert run.returncode == 0, run.stderr[-3000:]
    data, history = checkpoint(project, "01.2")
    assert {p: v["status"] for p, v in data["phases"].items()} == {
        "P1": "done", "P2": "done", "P3": "done", "P4": "skipped", "P5": "done", "P6": "done", "P7": "done"}
    assert asked_glm == 0 and not [row for row in ledger(project) if row["provider"] == "glm"]
    launched = set()
    for path in home.rglob("*.jsonl"):
        if "subagents" in path.parts:
            continue
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            content = (entry.get("message") or {}).get("content") if entry.get("type") == "assistant" else None
            for block in content if isinstance(content, list) else []:
                if block.get("type") == "tool_use" and block.get("name") == "Agent":
                    launched.add((block["input"]["prompt"].split("]")[0] + "]", block["input"]["subagent_type"],
                                  block["input"].get("model")))
    assert launched == {
        ("[story 01.2 P1]", "hybrid:ux-designer", None), ("[story 01.2 P2]", "hybrid:claude-test-writer", "sonnet"),
        ("[story 01.2 P3]", "hybrid:claude-backend-dev", "sonnet"), ("[story 01.2 P5]", "hybrid:code-reviewer", None),
        ("[story 01.2 P6]", "hybrid:qa-agent", None), ("[story 01.2 P7]", "hybrid:claude-tech-writer", "sonnet"),
    }
    (run_id, engine, stories), = run_table(project)
    assert (engine, stories) == ("claude", "01.2") and {row["run_id"] for row in ledger(project)} == {run_id}
