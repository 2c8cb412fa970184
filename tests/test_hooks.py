"""The usage-recording hooks: captured CLI sessions into the ledger, cursors, attribution, robustness.

Token sums are worked out by hand from tests/fixtures/claude-code-2.1.330. Every assistant
message there reports input 1000, cache creation 200, cache read 300, output 50, so one message
is prompt_tokens 1500 (all input), cached 300, cache_write_5m 200, completion 50.
- Captured session: main loop (claude-opus-5-5) msg_3 (written 3 times) + msg_13 = 2 messages;
  three subagents (claude-haiku-5-5) with 2 messages each = 6 messages.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from mcp_server.launcher import STAMP
from mcp_server.ledger import Ledger, ledger_path
from mcp_server.pricing import PriceTable, TokenCounts
from mcp_server.usage import hook, transcripts
from mcp_server.usage.hook import budget, events

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "claude-code-2.1.330"
HOOKS_JSON = REPO / "hooks" / "hooks.json"
CAPTURED_SESSION = "0d4b3008-2647-4e96-ba95-762b8c4ec43e"
WORKFLOW_SESSION = "36323854-a512-4f60-81cf-d9382920f959"
CAPTURED_AGENTS = ("abc32a8b04146f279", "acdb031702f800775", "adb1693e8c9691509")
ONE = {"prompt": 1500, "cached": 300, "write_5m": 200, "completion": 50}


def per_messages(n: int, model: str) -> dict:
    return {"model": model, "calls": n, **{key: n * value for key, value in ONE.items()}}


# --- helpers shared with tests/test_budget_guard.py ------------------------------------------


class Session:
    """A throwaway HOME with Claude Code's transcript layout, and a project beside it."""

    def __init__(self, tmp: Path):
        self.home = tmp / "home"
        self.project = tmp / "project"
        (self.project / ".claude" / "checkpoints").mkdir(parents=True)  # a project that uses the plugin
        self.transcripts = self.home / ".claude" / "projects" / "-home-dev-project"
        self.transcripts.mkdir(parents=True)

    # paths
    def main_path(self, session: str) -> Path:
        return self.transcripts / f"{session}.jsonl"

    def agent_path(self, session: str, agent: str, workflow: str | None = None) -> Path:
        base = self.transcripts / session / "subagents"
        return (base / "workflows" / workflow if workflow else base) / f"agent-{agent}.jsonl"

    def localize(self, payload: dict) -> dict:
        text = json.dumps(payload)
        text = text.replace("/home/dev/.claude", str(self.home / ".claude")).replace("/home/dev/project", str(self.project))
        return json.loads(text)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE_", "HYBRID_"))}
        env.update(CLAUDE_PROJECT_DIR=str(self.project), CLAUDE_PLUGIN_ROOT=str(REPO), **extra)
        return env

    def ledger(self) -> Ledger:
        return Ledger(ledger_path(self.project))

    @property
    def log(self) -> str:
        path = self.project / ".claude" / "hybrid" / "hooks.log"
        return path.read_text() if path.exists() else ""

    # content
    def install_captured(self) -> None:
        """The captured session's transcripts where the CLI had them."""
        shutil.copy(FIXTURES / "main-transcript.jsonl", self.main_path(CAPTURED_SESSION))
        for agent in CAPTURED_AGENTS:
            target = self.agent_path(CAPTURED_SESSION, agent)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(FIXTURES / f"subagent-agent-{agent}.jsonl", target)
            shutil.copy(FIXTURES / f"subagent-agent-{agent}.meta.json", target.with_suffix(".meta.json"))

    def payload(self, event: str, session: str = CAPTURED_SESSION, **fields) -> dict:
        base = {"session_id": session, "transcript_path": str(self.main_path(session)), "cwd": str(self.project), "hook_event_name": event}
        base.update(fields)
        return base


def fixture_lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines(keepends=True)


def agent_lines(source_agent: str, *, agent: str, session: str, tag: str, prompt: str) -> list[str]:
    """A subagent transcript built from a captured one: new ids, a new prompt."""
    lines = []
    for line in fixture_lines(f"subagent-agent-{source_agent}.jsonl"):
        line = line.replace(source_agent, agent).replace(CAPTURED_SESSION, session)
        line = re.sub(r'"(msg_\d+)"', rf'"\1_{tag}"', line)
        line = re.sub(r'"requestRef": "([^"]+)"', rf'"requestRef": "\1-{tag}"', line)
        lines.append(line.replace('"content": "Implement story 01.2"', f'"content": {json.dumps(prompt)}'))
    return lines


def main_lines(session: str, tag: str) -> list[str]:
    lines = []
    for line in fixture_lines("main-transcript.jsonl"):
        line = line.replace(CAPTURED_SESSION, session)
        lines.append(re.sub(r'"(msg_\d+)"', rf'"\1_{tag}"', line))
    return lines


def run_hook(session: Session, action: str, payload, **env: str) -> int:
    """The hook in this process (fast): what record.py calls."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return hook.main(action, stdin=io.BytesIO(raw), environ=session.env(**env))


def run_record(session: Session, action: str, payload, **env: str) -> subprocess.CompletedProcess:
    """The hook as Claude Code runs it: the hooks.json command line, in a fresh process."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return subprocess.run(
        ["python3", str(REPO / "hooks" / "record.py"), action], input=raw, capture_output=True,
        env=session.env(**env), cwd=session.project, timeout=60,
    )


def hook_config() -> dict:
    return json.loads(HOOKS_JSON.read_text())["hooks"]


def matcher_matches(matcher: str | None, tool: str | None) -> bool:
    """Claude Code's rule: none/"*" matches all; names and a|b are exact; anything else a regex."""
    if not matcher or matcher == "*":
        return True
    if re.fullmatch(r"[A-Za-z0-9_|]+", matcher):
        return tool in matcher.split("|")
    return re.search(matcher, tool or "") is not None


def dispatch(session: Session, payload: dict, **env: str) -> list[subprocess.CompletedProcess]:
    """Run every hooks.json command that Claude Code would run for this payload, as it would."""
    done = []
    for group in hook_config().get(payload["hook_event_name"], []):
        if not matcher_matches(group.get("matcher"), payload.get("tool_name")):
            continue
        for handler in group["hooks"]:
            command = handler["command"].replace("${CLAUDE_PLUGIN_ROOT}", str(REPO))
            done.append(
                subprocess.run(
                    ["sh", "-c", command], input=json.dumps(payload).encode(), capture_output=True,
                    env=session.env(**env), cwd=session.project, timeout=60,
                )
            )
    return done


def replay(session: Session, name: str, before=None, **env: str) -> None:
    for index, line in enumerate(fixture_lines(name)):
        payload = session.localize(json.loads(line)["payload"])
        if before:
            before(index, payload)
        for done in dispatch(session, payload, **env):
            assert done.returncode == 0, done.stderr


def totals(session: Session, **where) -> dict[str, dict]:
    clauses = " AND ".join(f"{k} IS ?" for k in where) or "1"
    with sqlite3.connect(ledger_path(session.project)) as db:
        rows = db.execute(
            "SELECT model, COUNT(*), SUM(prompt_tokens), SUM(cached_tokens), SUM(cache_write_5m_tokens),"
            f" SUM(completion_tokens) FROM usage WHERE {clauses} GROUP BY model",
            list(where.values()),
        ).fetchall()
    return {
        model: {"model": model, "calls": calls, "prompt": prompt, "cached": cached, "write_5m": w5, "completion": out}
        for model, calls, prompt, cached, w5, out in rows
    }


def snapshot(session: Session) -> tuple:
    with sqlite3.connect(ledger_path(session.project)) as db:
        return (
            db.execute("SELECT * FROM usage ORDER BY dedup_key").fetchall(),
            db.execute("SELECT * FROM transcript_cursor ORDER BY path").fetchall(),
        )


@pytest.fixture
def session(tmp_path) -> Session:
    return Session(tmp_path)


# --- hooks.json -------------------------------------------------------------------------------


def test_hooks_json_commands():
    config = hook_config()
    assert set(config) == {"SessionStart", "SubagentStop", "Stop", "SessionEnd", "PostToolUse", "PreToolUse"}
    [[first_start]] = [group["hooks"] for group in config.pop("SessionStart")]
    assert first_start["command"] == 'sh "${CLAUDE_PLUGIN_ROOT}/hooks/first-start.sh"' and first_start["timeout"] <= 5
    for event, groups in config.items():
        for group in groups:
            for handler in group["hooks"]:
                assert handler["type"] == "command" and "async" not in handler  # async runs die at exit
                assert 0 < handler["timeout"] <= 10
                prefix = 'python3 "${CLAUDE_PLUGIN_ROOT}/hooks/record.py" '
                # The budget guard's command first skips Python altogether when no budget is set.
                command = handler["command"].split("; ")[-1]
                assert command.startswith(prefix)
                assert command[len(prefix):] in hook.HANDLERS
    assert config["SessionEnd"][0]["hooks"][0]["timeout"] <= 2  # SessionEnd hooks share 1.5 s
    assert events.SESSION_END_SECONDS < 1.5 and events.STOP_SECONDS < config["Stop"][0]["hooks"][0]["timeout"]



def first_start_note(data: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {"PATH": "/usr/bin:/bin", "CLAUDE_PLUGIN_DATA": str(data), "CLAUDE_PLUGIN_ROOT": str(REPO), **env}
    return subprocess.run(["sh", str(REPO / "hooks" / "first-start.sh")], capture_output=True, text=True,
                          env=environ, timeout=10)


def test_first_start_hook_tells_claude_the_glm_tools_are_still_installing(tmp_path):
    note = first_start_note(tmp_path)
    assert note.returncode == 0 and "mcp__plugin_hybrid_glm__" in note.stdout and "hybrid --help" in note.stdout
    assert first_start_note(tmp_path, HYBRID_PYTHON="/usr/bin/python3").stdout == ""
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / STAMP).write_text("built\n")  # the name the launcher writes
    assert first_start_note(tmp_path).stdout == ""  # every later session: silent, no context spent


def test_first_start_hook_hands_the_plugin_data_dir_to_bash_commands(tmp_path):
    """Bash commands get no CLAUDE_PLUGIN_DATA; without it bin/hybrid would build a second venv."""
    data, env_file = tmp_path / "it's data", tmp_path / "session-env.sh"
    assert first_start_note(data, CLAUDE_ENV_FILE=str(env_file)).returncode == 0
    shown = subprocess.run(["sh", "-c", f'. "{env_file}"; printf %s "$HYBRID_PLUGIN_DATA"'],
                           capture_output=True, text=True, timeout=10)
    assert shown.stdout == str(data)

@pytest.mark.parametrize(
    "tool, guarded",
    [
        ("Agent", True),
        ("Task", True),
        ("mcp__plugin_hybrid_glm__implement", True),
        ("mcp__plugin_hybrid_glm__write_tests", True),
        ("mcp__plugin_hybrid_glm__refactor", True),
        ("mcp__plugin_hybrid_glm__write_docs", True),
        ("mcp__plugin_hybrid_glm__checkpoint_write", True),  # a phase start, in workflow mode too
        ("Workflow", True),
        ("mcp__plugin_hybrid_glm__checkpoint_read", False),
        ("mcp__plugin_hybrid_glm__implement_more", False),
        ("ListAgents", False),
        ("SendAgentMessage", False),
        ("Read", False),
    ],
)
def test_budget_matcher(tool, guarded):
    [group] = hook_config()["PreToolUse"]
    assert matcher_matches(group["matcher"], tool) is guarded
    assert (tool in budget.GUARDED_TOOLS) is guarded


# --- the captured sessions, end to end --------------------------------------------------------


def test_captured_session_into_the_ledger_without_double_count(session):
    session.install_captured()
    replay(session, "hook-payloads.jsonl")
    assert totals(session) == {
        "claude-opus-5-5": per_messages(2, "claude-opus-5-5"),  # msg_3 (3 copies) + msg_13
        "claude-haiku-5-5": per_messages(6, "claude-haiku-5-5"),  # 3 agents x 2
    }
    assert totals(session, agent_type="main") == {"claude-opus-5-5": per_messages(2, "claude-opus-5-5")}
    assert totals(session, agent_type="hybrid:backend-dev")["claude-haiku-5-5"]["calls"] == 6
    # no prefix and no running phase in that run: unattributed, not guessed
    assert totals(session, story=None, phase=None) == totals(session)
    with sqlite3.connect(ledger_path(session.project)) as db:
        ids = dict(db.execute("SELECT agent_id, COUNT(*) FROM usage GROUP BY agent_id").fetchall())
        assert ids == {None: 2, **{agent: 2 for agent in CAPTURED_AGENTS}}
        assert db.execute("SELECT COUNT(*) FROM usage WHERE provider != 'anthropic' OR cost_usd IS NOT NULL"
                          " OR session_id != ?", (CAPTURED_SESSION,)).fetchone() == (0,)
    assert session.log == ""


def test_captured_session_costs_what_the_cli_said(session):
    """Re-priced from the ledger's tokens, the run costs the CLI's own cost-state total."""
    session.install_captured()
    replay(session, "hook-payloads.jsonl")
    [cost_state] = [json.loads(l) for l in fixture_lines("main-transcript.jsonl") if '"cost-state"' in l]
    prices, ledger = PriceTable.load(), session.ledger()
    cost = sum(
        prices.cost(t.model, TokenCounts(t.prompt_tokens, t.cached_tokens, t.cache_write_5m_tokens, t.cache_write_1h_tokens, t.completion_tokens))
        for t in ledger.totals_by_model()
    )
    ledger.close()
    assert cost == pytest.approx(cost_state["totalCostUSD"])  # 0.013038


def test_captured_session_replayed_twice_changes_nothing(session):
    session.install_captured()
    replay(session, "hook-payloads.jsonl")
    before = snapshot(session)
    replay(session, "hook-payloads.jsonl")
    assert snapshot(session) == before


WORKFLOW = "wf_a82227a2-b96"
WORKFLOW_AGENTS = {  # agent id -> (prompt, story, phase)
    "ae17f26a6c24aa0f9": ("[story 01.2 P3] Implement 01.2", "01.2", "P3"),
    "a845bd85d1e1711be": ("[story 01.3 P3] Implement 01.3", "01.3", "P3"),
    "a56c527e3a2b29f26": ("[story 01.2 P5] Review 01.2", "01.2", "P5"),
    "adc3100de2f5d147e": ("Review the run", None, None),  # no prefix: unattributed
}


def test_workflow_run_with_late_subagent_lines(session):
    """The captured workflow run's payloads, with each workflow agent's transcript missing its
    last line at its SubagentStop (as the CLI does); the final Stop picks those lines up."""
    session.main_path(WORKFLOW_SESSION).write_text("".join(main_lines(WORKFLOW_SESSION, "wf")))
    full = {}
    for agent, (prompt, _, _) in WORKFLOW_AGENTS.items():
        full[agent] = agent_lines("abc32a8b04146f279", agent=agent, session=WORKFLOW_SESSION, tag=agent[:4], prompt=prompt)
        path = session.agent_path(WORKFLOW_SESSION, agent, WORKFLOW)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(full[agent][:-1]))  # the last assistant line comes late

    stops = []

    def before(index, payload):
        if payload["hook_event_name"] == "Stop":
            stops.append(index)
            if len(stops) == 2:  # the run's last Stop: by now the late lines are there
                assert totals(session, agent_id=None)["claude-opus-5-5"]["calls"] == 2
                assert sum(t["calls"] for t in totals(session).values()) == 2 + 4
                for agent in WORKFLOW_AGENTS:
                    with open(session.agent_path(WORKFLOW_SESSION, agent, WORKFLOW), "a") as handle:
                        handle.write(full[agent][-1])

    replay(session, "workflow-run-hook-payloads.jsonl", before=before)
    assert len(stops) == 2
    assert totals(session) == {
        "claude-opus-5-5": per_messages(2, "claude-opus-5-5"),
        "claude-haiku-5-5": per_messages(8, "claude-haiku-5-5"),
    }
    for agent, (_, story, phase) in WORKFLOW_AGENTS.items():
        assert totals(session, agent_id=agent, story=story, phase=phase)["claude-haiku-5-5"]["calls"] == 2
    assert totals(session, story="01.2")["claude-haiku-5-5"]["calls"] == 4
    with sqlite3.connect(ledger_path(session.project)) as db:
        types = dict(db.execute("SELECT agent_id, agent_type FROM usage WHERE agent_id IS NOT NULL").fetchall())
        how = dict(db.execute("SELECT agent_id, attribution FROM transcript_cursor").fetchall())
    assert types == {
        "ae17f26a6c24aa0f9": "hybrid:backend-dev", "a845bd85d1e1711be": "hybrid:backend-dev",
        "a56c527e3a2b29f26": "workflow-subagent", "adc3100de2f5d147e": "workflow-subagent",
    }
    assert how == {None: "none", "adc3100de2f5d147e": "none", **{a: "prefix" for a in list(WORKFLOW_AGENTS)[:3]}}
    assert session.log == ""


# --- cursors ----------------------------------------------------------------------------------


def _agent(session: Session, agent: str, lines: list[str], *, prompt="[story 01.2 P3] go", tail: str = "") -> Path:
    path = session.agent_path(CAPTURED_SESSION, agent)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines) + tail)
    return path


def _subagent_stop(session: Session, agent: str, **extra) -> int:
    payload = session.payload(
        "SubagentStop", agent_id=agent, agent_type="hybrid:backend-dev",
        agent_transcript_path=str(session.agent_path(CAPTURED_SESSION, agent)), **extra,
    )
    return run_hook(session, "subagent-stop", payload)


def test_appended_lines_only_add_new_usage(session, monkeypatch):
    lines = agent_lines("abc32a8b04146f279", agent="a1", session=CAPTURED_SESSION, tag="x", prompt="[story 01.2 P3] go")
    path = _agent(session, "a1", lines[:11])  # prompt .. the first assistant line
    offsets = []
    real = transcripts.read_transcript
    monkeypatch.setattr(transcripts, "read_transcript", lambda p, o=0, **kw: offsets.append(o) or real(p, o, **kw))
    assert _subagent_stop(session, "a1") == 0
    assert totals(session)["claude-haiku-5-5"]["calls"] == 1
    first_size = path.stat().st_size
    with open(path, "a") as handle:
        handle.write("".join(lines[11:]))
    assert _subagent_stop(session, "a1") == 0
    assert offsets == [0, first_size]  # the second run started where the first stopped
    assert totals(session) == {"claude-haiku-5-5": per_messages(2, "claude-haiku-5-5")}
    assert _subagent_stop(session, "a1") == 0
    assert offsets == [0, first_size]  # nothing new: the file is not even opened


def test_partial_last_line_waits_until_complete(session):
    lines = agent_lines("abc32a8b04146f279", agent="a1", session=CAPTURED_SESSION, tag="x", prompt="[story 01.2 P3] go")
    last = lines[-1]
    path = _agent(session, "a1", lines[:-1], tail=last[:100])
    _subagent_stop(session, "a1")
    assert totals(session)["claude-haiku-5-5"]["calls"] == 1
    cursor = session.ledger().get_cursor(str(path))
    assert cursor.offset == path.stat().st_size - 100
    with open(path, "a") as handle:
        handle.write(last[100:])
    _subagent_stop(session, "a1")
    assert totals(session)["claude-haiku-5-5"]["calls"] == 2


def test_stop_pass_picks_up_late_subagent_lines(session):
    session.install_captured()
    agent = CAPTURED_AGENTS[0]
    path = session.agent_path(CAPTURED_SESSION, agent)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))
    _subagent_stop(session, agent)
    assert totals(session)["claude-haiku-5-5"]["calls"] == 1
    with open(path, "a") as handle:
        handle.write(lines[-1])
    assert run_hook(session, "stop", session.payload("Stop")) == 0
    # the late line, the two other agents (never stopped) and the main loop
    assert totals(session) == {
        "claude-opus-5-5": per_messages(2, "claude-opus-5-5"),
        "claude-haiku-5-5": per_messages(6, "claude-haiku-5-5"),
    }


def test_every_pass_twice_changes_nothing(session):
    session.install_captured()
    agent = CAPTURED_AGENTS[1]
    steps = [
        ("subagent-stop", session.payload("SubagentStop", agent_id=agent, agent_transcript_path=str(session.agent_path(CAPTURED_SESSION, agent)))),
        ("stop", session.payload("Stop")),
        ("session-end", session.payload("SessionEnd", reason="other")),
        ("phase", session.payload("PostToolUse", tool_name="mcp__plugin_hybrid_glm__checkpoint_write",
                                  tool_input={"story": "01.2", "phase": "P3", "status": "running"})),
    ]
    for action, payload in steps:
        assert run_hook(session, action, payload) == 0
        before = snapshot(session)
        assert run_hook(session, action, payload) == 0
        assert snapshot(session) == before, action


def test_replaced_or_truncated_transcript_is_read_again_without_double_count(session):
    lines = agent_lines("abc32a8b04146f279", agent="a1", session=CAPTURED_SESSION, tag="x", prompt="[story 01.2 P3] go")
    path = _agent(session, "a1", lines)
    _subagent_stop(session, "a1")
    path.write_text("".join(lines[:11]))  # shorter than the cursor
    _subagent_stop(session, "a1")
    assert session.ledger().get_cursor(str(path)).offset == path.stat().st_size
    path.unlink()
    _agent(session, "a1", lines)  # a new file (new inode), same content
    _subagent_stop(session, "a1")
    assert totals(session) == {"claude-haiku-5-5": per_messages(2, "claude-haiku-5-5")}


def test_a_growing_copy_replaces_the_smaller_one_across_passes(session):
    path = _agent(session, "a1", [json.dumps({"type": "user", "message": {"role": "user", "content": "[story 1 P3] x"}}) + "\n"])

    def copy(output):
        return json.dumps({"type": "assistant", "requestId": "r", "sessionId": CAPTURED_SESSION, "agentId": "a1", "timestamp": "2026-11-23T22:48:27.000Z",
                           "message": {"id": "m", "model": "claude-opus-5-5", "usage": {"input_tokens": 10, "output_tokens": output}}}) + "\n"

    with open(path, "a") as handle:
        handle.write(copy(5))
    _subagent_stop(session, "a1")
    with open(path, "a") as handle:
        handle.write(copy(80) + copy(60))
    _subagent_stop(session, "a1")
    assert totals(session)["claude-opus-5-5"]["completion"] == 80
    assert totals(session)["claude-opus-5-5"]["calls"] == 1


# --- attribution ------------------------------------------------------------------------------


def _phase(session: Session, story, phase, status, agent=None, session_id=CAPTURED_SESSION) -> int:
    payload = session.payload(
        "PostToolUse", session=session_id, tool_name="mcp__plugin_hybrid_glm__checkpoint_write",
        tool_input={"story": story, "phase": phase, "status": status},
    )
    if agent:
        payload.update(agent_id=agent, agent_type="hybrid:backend-dev")
    return run_hook(session, "phase", payload)


def _cursor(session: Session, path: Path):
    ledger = session.ledger()
    try:
        return ledger.get_cursor(str(path))
    finally:
        ledger.close()


def test_attribution_by_prefix(session):
    lines = agent_lines("abc32a8b04146f279", agent="a1", session=CAPTURED_SESSION, tag="x", prompt="[story 02.1 P4] refactor")
    path = _agent(session, "a1", lines)
    _phase(session, "09.9", "P2", "running", agent="a1")  # the prefix wins over the running phase
    _subagent_stop(session, "a1")
    assert totals(session, story="02.1", phase="P4")["claude-haiku-5-5"]["calls"] == 2
    assert _cursor(session, path).attribution == "prefix"


def test_attribution_falls_back_to_the_running_phase(session):
    lines = agent_lines("abc32a8b04146f279", agent="a1", session=CAPTURED_SESSION, tag="x", prompt="Implement it")
    path = _agent(session, "a1", lines)
    _phase(session, "01.4", 3, "running", agent="a1")  # phase given as a number is accepted
    _subagent_stop(session, "a1")
    assert totals(session, story="01.4", phase="P3")["claude-haiku-5-5"]["calls"] == 2
    assert _cursor(session, path).attribution == "running-phase"


def test_unattributed_otherwise(session):
    lines = agent_lines("abc32a8b04146f279", agent="a1", session=CAPTURED_SESSION, tag="x", prompt="Implement story 01.2")
    _agent(session, "a1", lines)
    _phase(session, "01.2", "P3", "running", agent="another-agent")  # someone else's phase
    _phase(session, "01.2", "P3", "running")  # the main loop's: not used for agents
    _subagent_stop(session, "a1")
    assert totals(session, story=None, phase=None, agent_type="hybrid:backend-dev")["claude-haiku-5-5"]["calls"] == 2


def test_a_phase_marked_running_after_the_first_read_attributes_the_agent_later(session):
    lines = agent_lines("abc32a8b04146f279", agent="a1", session=CAPTURED_SESSION, tag="x", prompt="Implement it")
    session.main_path(CAPTURED_SESSION).write_text("".join(fixture_lines("main-transcript.jsonl")))
    path = _agent(session, "a1", lines[:11])
    run_hook(session, "stop", session.payload("Stop"))  # a background agent read mid-run
    assert totals(session, agent_id="a1", story=None)["claude-haiku-5-5"]["calls"] == 1
    _phase(session, "01.4", "P3", "running", agent="a1")
    with open(path, "a") as handle:
        handle.write("".join(lines[11:]))
    _subagent_stop(session, "a1")
    assert totals(session, agent_id="a1") == {"claude-haiku-5-5": per_messages(2, "claude-haiku-5-5")}
    assert totals(session, agent_id="a1", story="01.4", phase="P3")["claude-haiku-5-5"]["calls"] == 2
    assert totals(session, agent_type="main", story=None)["claude-opus-5-5"]["calls"] == 2  # main untouched


@pytest.mark.parametrize(
    "writes, expected",
    [
        ([], (None, None, "none")),
        ([("01.2", "P1", "running")], ("01.2", "P1", "session-phase")),
        ([("01.2", "P1", "running"), ("01.3", "P1", "running")], (None, None, "none")),  # two: no guess
        ([("01.2", "P1", "running"), ("01.2", "P1", "done")], (None, None, "none")),  # finished
        ([("01.2", "P1", "running"), ("01.3", "P1", "running"), ("01.3", "P1", "done")], ("01.2", "P1", "session-phase")),
    ],
)
def test_main_loop_attribution(session, writes, expected):
    session.main_path(CAPTURED_SESSION).write_text("".join(fixture_lines("main-transcript.jsonl")))
    for story, phase, status in writes:
        assert _phase(session, story, phase, status) == 0
    _phase(session, "07.7", "P2", "running", session_id="another-session")
    run_hook(session, "stop", session.payload("Stop"))
    story, phase, how = expected
    assert totals(session, agent_type="main", story=story, phase=phase)["claude-opus-5-5"]["calls"] == 2
    assert _cursor(session, session.main_path(CAPTURED_SESSION)).attribution == how


def test_main_loop_prefix(session):
    lines = main_lines(CAPTURED_SESSION, "p")
    lines = [l.replace("Run the pilot for stories: 01.2,01.3,01.4\\n", "[story 05.1 P1] design it") for l in lines]
    session.main_path(CAPTURED_SESSION).write_text("".join(lines))
    run_hook(session, "stop", session.payload("Stop"))
    assert totals(session, agent_type="main", story="05.1", phase="P1")["claude-opus-5-5"]["calls"] == 2


# --- a hook never breaks the session ----------------------------------------------------------

SECRET = "sk-" + "ant-SECRET-in-a-prompt-0123456789"  # split: no key-shaped literal in the repo


@pytest.mark.parametrize("action", ["subagent-stop", "stop", "session-end", "phase", "budget"])
@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json " + SECRET.encode(),
        b'["a list", "' + SECRET.encode() + b'"]',
        json.dumps({"hook_event_name": "SubagentStop", "prompt": SECRET}).encode(),
        json.dumps({"hook_event_name": "PostToolUse", "tool_input": "x" + SECRET, "session_id": 3}).encode(),
        b"\xff\xfe\x00garbage",
    ],
)
def test_malformed_payload_exits_0_and_logs(session, action, raw):
    if action == "budget":  # the guard's fast path would return before reading anything
        (session.project / ".claude").mkdir(exist_ok=True)
        (session.project / ".claude" / "hybrid.yaml").write_text("budget:\n  per_run_usd: 1\n")
    assert run_hook(session, action, raw) == 0
    log = session.log
    try:
        is_object = isinstance(json.loads(raw), dict)
    except ValueError:
        is_object = False
    if action == "budget" and is_object:
        assert log == ""  # no tool_name: not a guarded call, nothing to say
    else:
        assert len(log.splitlines()) == 1, log
    assert SECRET not in log


def test_malformed_payload_through_the_real_command(session):
    done = run_record(session, "subagent-stop", b"{not json " + SECRET.encode())
    assert done.returncode == 0 and done.stdout == b""
    [line] = session.log.splitlines()
    assert "(subagent-stop)" in line and "JSONDecodeError" in line and SECRET not in line


def test_unknown_action_and_no_action(session):
    assert run_record(session, "explode", b"{}").returncode == 0
    assert run_record(session, "", b"{}").returncode == 0
    assert session.log.count("unknown action") == 2


def test_missing_transcript_is_logged(session):
    payload = session.payload("SubagentStop", agent_id="a1", agent_transcript_path=str(session.transcripts / "nope.jsonl"))
    assert run_record(session, "subagent-stop", payload).returncode == 0
    assert run_record(session, "stop", session.payload("Stop")).returncode == 0
    log = session.log.splitlines()
    assert len(log) == 2 and all("transcript not found" in line for line in log)
    assert log[0].split()[1] == "SubagentStop" and log[1].split()[1] == "Stop"


def test_unusable_ledger_location(session):
    session.install_captured()
    (session.project / ".claude").mkdir(exist_ok=True)
    (session.project / ".claude" / "hybrid").write_text("a file where the ledger's folder should be")
    done = run_record(session, "stop", session.payload("Stop"))
    assert done.returncode == 0
    assert b"hybrid hook:" in done.stderr  # nowhere to log: stderr, never a failure


def test_ledger_that_cannot_be_opened(session):
    session.install_captured()
    ledger_path(session.project).mkdir(parents=True)  # a folder where the database should be
    done = run_record(session, "stop", session.payload("Stop"))
    assert done.returncode == 0
    assert "LedgerError: usage ledger" in session.log and "usage.db" in session.log


def test_garbage_lines_in_a_transcript(session):
    session.install_captured()
    agent = CAPTURED_AGENTS[2]
    path = session.agent_path(CAPTURED_SESSION, agent)
    lines = path.read_text().splitlines(keepends=True)
    junk = ['{"type": "assistant", "message": {"id": "cut\n', "\x00\x01 binary assistant\n", '"assistant"\n', "[]\n"]
    path.write_text("".join(lines[:5] + junk + lines[5:]))
    payload = session.payload("SubagentStop", agent_id=agent, agent_transcript_path=str(path))
    assert run_record(session, "subagent-stop", payload).returncode == 0
    assert totals(session) == {"claude-haiku-5-5": per_messages(2, "claude-haiku-5-5")}
    assert "skipped 2 unreadable line(s)" in session.log


def test_session_end_is_bounded(session, monkeypatch):
    """SessionEnd hooks share 1.5 s: a pass out of time commits what it read and stops."""
    session.install_captured()
    monkeypatch.setattr(events, "SESSION_END_SECONDS", -1.0)  # out of time from the start
    monkeypatch.setitem(hook.HANDLERS, "session-end", events._catch_up_action("session-end", "SessionEnd", -1.0))
    assert run_hook(session, "session-end", session.payload("SessionEnd")) == 0
    first = sum(t["calls"] for t in totals(session).values())
    assert 0 < first < 8
    assert run_hook(session, "stop", session.payload("Stop")) == 0
    assert sum(t["calls"] for t in totals(session).values()) == 8


# --- imports on the hook path -----------------------------------------------------------------

IMPORT_PROBE = r"""
import io, json, sys
sys.path.insert(0, sys.argv[1])
from mcp_server.usage import hook
for action, payload in json.loads(sys.argv[2]):
    hook.main(action, stdin=io.BytesIO(json.dumps(payload).encode()))
print(json.dumps(sorted(sys.modules)))
"""


def test_hooks_import_only_the_stdlib_ledger_and_usage(session):
    session.install_captured()
    agent = CAPTURED_AGENTS[0]
    steps = [
        ["subagent-stop", session.payload("SubagentStop", agent_id=agent, agent_transcript_path=str(session.agent_path(CAPTURED_SESSION, agent)))],
        ["stop", session.payload("Stop")],
        ["session-end", session.payload("SessionEnd")],
        ["phase", session.payload("PostToolUse", tool_name="mcp__plugin_hybrid_glm__checkpoint_write", tool_input={"story": "1", "phase": "P1", "status": "running"})],
        ["budget", session.payload("PreToolUse", tool_name="Agent", tool_input={"prompt": "[story 1 P1] x"})],  # no budget configured
    ]
    done = subprocess.run(
        ["python3", "-c", IMPORT_PROBE, str(REPO), json.dumps(steps)], capture_output=True, text=True,
        env=session.env(), cwd=session.project, timeout=60, check=True,
    )
    modules = set(json.loads(done.stdout))
    ours = {m for m in modules if m == "mcp_server" or m.startswith("mcp_server.")}
    ledger = {"mcp_server.ledger", "mcp_server.ledger_totals", "mcp_server.ledger_connection", "mcp_server.ledger_faults", "mcp_server.ledger_spool", "mcp_server.ledger_test_runs", "mcp_server.ledger_runs", "mcp_server.errors"}
    hook_modules = {f"mcp_server.usage.hook.{name}" for name in ("project", "plan", "catch_up", "budget", "events")}
    usage = {"mcp_server.usage", "mcp_server.usage.hook", "mcp_server.usage.transcripts", "mcp_server.usage.agent_totals"}
    assert ours == {"mcp_server", *ledger, *usage} | hook_modules
    heavy = {"yaml", "pydantic", "httpx", "mcp", "anyio", "jsonschema", "subprocess", "asyncio"}
    assert not modules & heavy, modules & heavy
    assert session.log == ""
    assert totals(session)["claude-haiku-5-5"]["calls"] == 6


def test_usage_package_init_stays_empty():
    assert (REPO / "mcp_server" / "usage" / "__init__.py").read_text().strip() == ""


def test_a_session_killed_before_its_stop_is_caught_up_by_the_next_sessions_stop(session):
    """The first session's SubagentStop read one agent; then the CLI was killed: its main
    transcript and a second agent were never read. The next session's Stop reads them."""
    killed, later = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
    for agent, tag in (("a1", "k1"), ("a2", "k2")):
        path = session.agent_path(killed, agent)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(agent_lines(CAPTURED_AGENTS[0], agent=agent, session=killed, tag=tag, prompt="[story 01.2 P3] go")))
    session.main_path(killed).write_text("".join(main_lines(killed, "k")))
    assert run_hook(session, "subagent-stop", session.payload(
        "SubagentStop", killed, agent_id="a1", agent_transcript_path=str(session.agent_path(killed, "a1")))) == 0
    assert sum(t["calls"] for t in totals(session).values()) == 2

    session.main_path(later).write_text("".join(main_lines(later, "l")))
    assert run_hook(session, "stop", session.payload("Stop", later)) == 0
    counted = totals(session)
    # killed: 2 agents x 2 messages + 2 main-loop messages; later: 2 main-loop messages
    assert sum(t["calls"] for t in counted.values()) == 8
    assert totals(session, story="01.2", phase="P3")["claude-haiku-5-5"]["calls"] == 4
    before = snapshot(session)
    assert run_hook(session, "stop", session.payload("Stop", later)) == 0
    assert snapshot(session) == before  # read once, counted once


def test_a_project_that_never_used_the_plugin_gets_no_ledger(tmp_path):
    bare = Session(tmp_path)
    shutil.rmtree(bare.project / ".claude")
    bare.install_captured()
    assert run_hook(bare, "stop", bare.payload("Stop")) == 0
    assert not (bare.project / ".claude").exists()
    # Nor does a hook's own error there: a hooks.log would turn the ledger on for good.
    assert run_hook(bare, "subagent-stop", b"{not json") == 0
    assert not (bare.project / ".claude").exists()


def test_without_a_budget_the_guard_command_starts_no_python(session, tmp_path):
    """The hooks.json command for PreToolUse, as Claude Code runs it, with a python3 on PATH that
    would leave a trace: with no budget set it never runs; with one, it does."""
    shim = tmp_path / "bin"
    shim.mkdir()
    trace = tmp_path / "python-ran"
    (shim / "python3").write_text(f"#!/bin/sh\ntouch {trace}\nexit 0\n")
    (shim / "python3").chmod(0o755)
    payload = session.payload("PreToolUse", tool_name="Agent", tool_input={"prompt": "[story 01.2 P1] x"})
    path = f"{shim}:{os.environ['PATH']}"
    assert all(done.returncode == 0 for done in dispatch(session, payload, PATH=path))
    assert not trace.exists()
    (session.project / ".claude" / "hybrid.yaml").write_text("budget:\n  per_run_usd: 1\n")
    assert all(done.returncode == 0 for done in dispatch(session, payload, PATH=path))
    assert trace.exists()
