"""Claude Code hook entry points (hooks/hooks.json -> hooks/record.py -> ``main(action)``).

Actions:
- ``subagent-stop`` (SubagentStop): the agent's transcript, from its cursor, into the ledger.
- ``stop`` / ``session-end`` (Stop, SessionEnd): a catch-up pass over the session's main
  transcript and every subagent transcript, each from its cursor. This picks up the lines a
  subagent wrote after its SubagentStop had run. Stop also catches up the project's other
  recent sessions the ledger knows of, in case one was killed before its own Stop ran.
- ``phase`` (PostToolUse on the checkpoint tool): remembers the phase an agent marked running,
  the attribution fallback for prompts without a ``[story <id> <phase>]`` prefix.
- ``budget`` (PreToolUse on Agent and the GLM tools): the budget guard. With no budget
  configured it returns at once; otherwise it runs mcp_server.usage.guard under the plugin's
  venv and blocks the call (exit 2) when a cap is reached.

A hook never breaks the session: every action returns 0 whatever happens, and logs its own
errors, one line each, to ``<project>/.claude/hybrid/hooks.log`` (never the payload: prompts may
hold secrets); in a project that does not use the plugin, to stderr instead. The one exception is the guard's deliberate 2. Imports: the standard library,
mcp_server.ledger and mcp_server.usage.transcripts only (tests/test_hooks.py checks this).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mcp_server.ledger import Ledger, TranscriptCursor, UsageRow, ledger_path, utc_now
from mcp_server.usage import transcripts

PLUGIN_ROOT = Path(__file__).resolve().parent.parent.parent
LOG_RELATIVE = Path(".claude") / "hybrid" / "hooks.log"
LOG_MAX_BYTES = 1 << 20
PROJECT_CONFIG = Path(".claude") / "hybrid.yaml"

# Seconds of reading a pass may spend before it commits what it has and stops; the rest is
# read by the next pass. Kept under each handler's timeout in hooks.json (SessionEnd hooks
# share 1.5 s in all), so a killed hook never throws away a long read.
STOP_SECONDS = 6.0
SUBAGENT_STOP_SECONDS = 6.0
SESSION_END_SECONDS = 0.8
BUDGET_CATCH_UP_SECONDS = 2.0
# A session killed before its Stop hook (a crash, a kill -9) is read by the next session's Stop.
EARLIER_SESSIONS_MAX = 5
EARLIER_SESSIONS_MAX_AGE_S = 48 * 3600
GUARD_TIMEOUT_SECONDS = 6.0

GLM_TOOL_PREFIX = "mcp__plugin_hybrid_glm__"
GUARDED_GLM_TOOLS = {GLM_TOOL_PREFIX + name for name in ("write_tests", "implement", "refactor", "write_docs")}
AGENT_TOOLS = {"Agent", "Task"}  # "Task" is the tool's former name; the CLI still reports it so in places
# A workflow's agents fire no PreToolUse for Agent: the guard sees the Workflow launch (run cap)
# and each phase start, an agent's checkpoint_write(status="running") (story and run caps).
PHASE_START = GLM_TOOL_PREFIX + "checkpoint_write"
GUARDED_TOOLS = AGENT_TOOLS | GUARDED_GLM_TOOLS | {"Workflow", PHASE_START}
STORY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PHASE_RE = re.compile(r"^[Pp]?([1-7])$")


class HookError(Exception):
    """A payload or environment problem worth one line in hooks.log."""


def main(action: str, stdin=None, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    event, root = action, None
    try:
        raw = (stdin if stdin is not None else sys.stdin.buffer).read()
        payload = json.loads(raw)
        if not isinstance(payload, dict):
            raise HookError("the payload is not a JSON object")
        event = str(payload.get("hook_event_name") or action)[:40]
        root = project_root(payload, env)
        handler = HANDLERS.get(action)
        if handler is None:
            raise HookError(f"unknown action {action[:40]!r}")
        if action in RECORDING and not uses_hybrid(root):
            return 0  # a project where the plugin was never used gets no ledger from its hooks
        return handler(payload, root, env, raw)
    except Exception as error:  # a hook never breaks the session
        log(root or project_root({}, env), event, action, error)
        return 0


def uses_hybrid(root: Path) -> bool:
    """The project has the product's state: checkpoints (a pilot) or .claude/hybrid (a GLM tool)."""
    return (root / ".claude" / "checkpoints").is_dir() or (root / LOG_RELATIVE.parent).is_dir()


def project_root(payload: Mapping, env: Mapping[str, str]) -> Path:
    cwd = payload.get("cwd")
    return Path(env.get("CLAUDE_PROJECT_DIR") or (cwd if isinstance(cwd, str) and cwd else None) or os.getcwd())


def log(root: Path, event: str, action: str, error: BaseException | str) -> None:
    """One line per problem; never the payload, never environment values."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    line = f"{utc_now()} {event} ({action}): {' '.join(text.split())[:500]}\n"
    try:
        if not uses_hybrid(root):  # a log file would make the hooks keep a ledger there from now on
            raise HookError("the project does not use the plugin")
        path = root / LOG_RELATIVE
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if path.stat().st_size > LOG_MAX_BYTES:
                os.replace(path, path.with_name(path.name + ".1"))
        except FileNotFoundError:
            pass
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line)
    except Exception:  # nowhere to log: stderr, which Claude Code shows in debug mode only
        try:
            sys.stderr.write("hybrid hook: " + line)
        except Exception:
            pass


# --- one transcript ---------------------------------------------------------------------------


@dataclass
class Pass:
    """The writes one transcript's read asks for; applied together in one transaction."""

    cursor: TranscriptCursor
    rows: list[UsageRow] = field(default_factory=list)
    backfill: bool = False  # the agent's earlier unattributed rows get the cursor's story/phase
    changed: bool = False
    bad_lines: int = 0


def _running_phase(ledger: Ledger, agent_id: str | None) -> tuple[str, str] | None:
    if not agent_id:
        return None
    key = f"agent:{agent_id}"
    for found, story, phase in ledger.phases(key):
        if found == key:
            return story, phase
    return None


def _meta_agent_type(path: str) -> str | None:
    """``agentType`` from the ``agent-<id>.meta.json`` the CLI writes beside a subagent transcript."""
    try:
        with open(path[: -len(".jsonl")] + ".meta.json", "rb") as handle:
            meta = json.loads(handle.read())
    except (OSError, ValueError):
        return None
    value = meta.get("agentType") if isinstance(meta, dict) else None
    return value if isinstance(value, str) and value else None


def plan_transcript(
    ledger: Ledger,
    path: str,
    *,
    session_id: str | None,
    agent_id: str | None = None,
    agent_type: str | None = None,
    main_loop: bool = False,
    deadline: float | None = None,
) -> Pass:
    """Read ``path`` from its cursor and work out the rows and the new cursor. Writes nothing.

    Raises FileNotFoundError when the transcript is not there.
    """
    stat = os.stat(path)
    cursor = ledger.get_cursor(path)
    if cursor is not None and (cursor.inode != stat.st_ino or stat.st_size < cursor.offset):
        cursor = None  # replaced or truncated: read it again from 0; dedup makes that safe
    result = Pass(cursor=cursor or TranscriptCursor(path=path, inode=stat.st_ino), changed=cursor is None)
    cursor = result.cursor
    if main_loop:
        cursor.agent_type = "main"
    if cursor.session_id is None and session_id:
        cursor.session_id, result.changed = session_id, True
    if cursor.agent_id is None and agent_id:
        cursor.agent_id, result.changed = agent_id, True
    if cursor.agent_type is None:
        cursor.agent_type = agent_type or _meta_agent_type(path)
        result.changed = result.changed or cursor.agent_type is not None
    # An agent whose prompt had no prefix may mark its phase running after our first read
    # (a background agent read by a Stop pass): attribute it then, earlier rows included.
    if cursor.attribution == "none" and not main_loop:
        running = _running_phase(ledger, cursor.agent_id)
        if running:
            cursor.story, cursor.phase, cursor.attribution = running[0], running[1], "running-phase"
            result.backfill = result.changed = True
    if stat.st_size <= cursor.offset:
        return result

    chunk = transcripts.read_transcript(
        path, cursor.offset, find_prompt=cursor.attribution is None, deadline=deadline
    )
    result.bad_lines = chunk.bad_lines
    if chunk.end != cursor.offset:
        cursor.offset, result.changed = chunk.end, True
    if cursor.attribution is None and (chunk.prompt is not None or chunk.messages):
        session_running = None
        if main_loop and cursor.session_id:
            prefix = f"session:{cursor.session_id}:"
            session_running = [(story, phase) for _, story, phase in ledger.phases(prefix)]
        decided = transcripts.decide_attribution(
            chunk.prompt,
            running=None if main_loop else _running_phase(ledger, cursor.agent_id),
            session_running=session_running,
        )
        cursor.story, cursor.phase, cursor.attribution = decided.story, decided.phase, decided.how
        result.changed = True
    for message in chunk.messages.values():
        story, phase, agent_type = cursor.story, cursor.phase, cursor.agent_type
        if main_loop and message.is_sidechain and message.agent_id:
            # An agent's line in the main transcript (older CLIs wrote them there).
            agent_type = None
            story, phase = _running_phase(ledger, message.agent_id) or (None, None)
        result.rows.append(
            transcripts.usage_row(
                message, story=story, phase=phase, agent_type=agent_type,
                agent_id=cursor.agent_id, session_id=cursor.session_id,
            )
        )
    return result


def apply(ledger: Ledger, passes: list[Pass]) -> None:
    """All the writes of one hook run, in one transaction (none at all when nothing changed)."""
    passes = [p for p in passes if p.changed or p.rows]
    if not passes:
        return
    with ledger.transaction():
        for item in passes:
            for row in item.rows:
                ledger.record_message(row)
            cursor = item.cursor
            if item.backfill and cursor.session_id and cursor.agent_id:
                ledger.attribute_unattributed(
                    session_id=cursor.session_id, agent_id=cursor.agent_id, story=cursor.story, phase=cursor.phase
                )
            ledger.put_cursor(cursor)


def _note_bad_lines(root: Path, event: str, action: str, passes: list[Pass]) -> None:
    for item in passes:
        if item.bad_lines:
            log(root, event, action, f"skipped {item.bad_lines} unreadable line(s) in {item.cursor.path}")


def _text(payload: Mapping, key: str, *, required: bool = True) -> str | None:
    value = payload.get(key)
    if isinstance(value, str) and value:
        return value
    if required:
        raise HookError(f"the payload has no usable {key!r}")
    return None


# --- actions ----------------------------------------------------------------------------------


def subagent_stop(payload: dict, root: Path, env: Mapping[str, str], raw: bytes) -> int:
    path = _text(payload, "agent_transcript_path")
    ledger = Ledger(ledger_path(root))
    try:
        try:
            item = plan_transcript(
                ledger, path,
                session_id=_text(payload, "session_id", required=False),
                agent_id=_text(payload, "agent_id", required=False),
                agent_type=_text(payload, "agent_type", required=False),
                deadline=time.monotonic() + SUBAGENT_STOP_SECONDS,
            )
        except FileNotFoundError:
            raise HookError(f"transcript not found: {path}") from None
        apply(ledger, [item])
    finally:
        ledger.close()
    _note_bad_lines(root, "SubagentStop", "subagent-stop", [item])
    return 0


def subagent_transcripts(main_path: str, session_id: str) -> list[tuple[str, str]]:
    """(path, agent_id) of every subagent transcript of a session, workflow agents included:
    ``<dir>/<session>/subagents/agent-*.jsonl`` and ``.../subagents/workflows/*/agent-*.jsonl``."""
    base = os.path.join(os.path.dirname(main_path), session_id, "subagents")
    folders = [base]
    try:
        with os.scandir(os.path.join(base, "workflows")) as entries:
            folders += sorted(entry.path for entry in entries if entry.is_dir())
    except OSError:
        pass
    found = []
    for folder in folders:
        try:
            with os.scandir(folder) as entries:
                names = sorted(e.name for e in entries if e.name.startswith("agent-") and e.name.endswith(".jsonl"))
        except OSError:
            continue
        found += [(os.path.join(folder, name), name[len("agent-") : -len(".jsonl")]) for name in names]
    return found


def catch_up(ledger: Ledger, payload: Mapping, *, seconds: float) -> list[Pass]:
    """Every transcript of the session from its cursor: subagents first, then the main loop."""
    main_path = _text(payload, "transcript_path")
    session_id = _text(payload, "session_id")
    deadline = time.monotonic() + seconds
    passes: list[Pass] = []
    try:
        for path, agent_id in subagent_transcripts(main_path, session_id):
            try:
                passes.append(plan_transcript(ledger, path, session_id=session_id, agent_id=agent_id, deadline=deadline))
            except FileNotFoundError:
                continue
            if time.monotonic() > deadline:
                return passes  # the rest waits for the next pass
        try:
            passes.append(plan_transcript(ledger, main_path, session_id=session_id, main_loop=True, deadline=deadline))
        except FileNotFoundError:
            raise HookError(f"transcript not found: {main_path}") from None
    finally:
        apply(ledger, passes)  # whatever was read is kept, even when the pass stops early
    return passes


def unfinished_sessions(ledger: Ledger, current_main: str, current_session: str) -> list[tuple[str, str]]:
    """(main transcript, session id) of this project's other recent sessions that the ledger
    knows of, newest first: a session killed before its Stop hook left lines nobody read."""
    folder, mains = os.path.dirname(current_main), {}
    for path, session_id in ledger.known_transcripts():
        if not session_id or session_id == current_session:
            continue
        marker = os.sep + session_id + os.sep
        # <folder>/<session>/subagents/.../agent-<id>.jsonl belongs to <folder>/<session>.jsonl
        main = path.split(marker)[0] + os.sep + session_id + ".jsonl" if marker in path else path
        if os.path.dirname(main) == folder:
            mains[session_id] = main
    recent = []
    for session_id, main in mains.items():
        try:
            modified = os.stat(main).st_mtime
        except OSError:
            continue
        if time.time() - modified < EARLIER_SESSIONS_MAX_AGE_S:
            recent.append((modified, main, session_id))
    return [(main, session_id) for _, main, session_id in sorted(recent, reverse=True)[:EARLIER_SESSIONS_MAX]]


def _catch_up_action(action: str, event: str, seconds: float, earlier_sessions: bool = False) -> Callable[..., int]:
    def handler(payload: dict, root: Path, env: Mapping[str, str], raw: bytes) -> int:
        ledger = Ledger(ledger_path(root))
        deadline = time.monotonic() + seconds
        try:
            passes = catch_up(ledger, payload, seconds=seconds)
            if earlier_sessions:
                current = (_text(payload, "transcript_path"), _text(payload, "session_id"))
                for main, session_id in unfinished_sessions(ledger, *current):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    other = {"transcript_path": main, "session_id": session_id}
                    passes += catch_up(ledger, other, seconds=remaining)
        finally:
            ledger.close()
        _note_bad_lines(root, event, action, passes)
        return 0

    return handler


def _phase_name(value: object) -> str | None:
    match = PHASE_RE.match(str(value).strip()) if isinstance(value, (str, int)) else None
    return f"P{match.group(1)}" if match else None


def phase(payload: dict, root: Path, env: Mapping[str, str], raw: bytes) -> int:
    """PostToolUse on checkpoint_write: remember who marked which phase running.

    Keyed ``agent:<agent_id>`` for an agent (its last running phase stays its fallback), and
    ``session:<session_id>:<story>:<phase>`` for the main loop, removed again when that
    phase is written with any other status (the main-loop fallback needs "not yet finished").
    """
    tool_input = payload.get("tool_input")
    if not isinstance(tool_input, dict):
        raise HookError("the payload has no tool_input object")
    story, phase_name = tool_input.get("story"), _phase_name(tool_input.get("phase"))
    if not (isinstance(story, str) and STORY_RE.match(story) and phase_name):
        return 0  # not a phase write we can use; the tool itself reports bad input
    running = tool_input.get("status") == "running"
    agent_id = _text(payload, "agent_id", required=False)
    session_id = _text(payload, "session_id", required=False)
    if not agent_id and not session_id:
        raise HookError("the payload has neither agent_id nor session_id")
    ledger = Ledger(ledger_path(root))
    try:
        with ledger.transaction():
            if agent_id:
                if running:
                    ledger.set_phase(f"agent:{agent_id}", story, phase_name)
            else:
                key = f"session:{session_id}:{story}:{phase_name}"
                if running:
                    ledger.set_phase(key, story, phase_name)
                else:
                    ledger.clear_phase(key)
    finally:
        ledger.close()
    return 0


# --- budget guard (fast path here; the real check in mcp_server.usage.guard) -----------------


def budget_configured(root: Path, env: Mapping[str, str]) -> bool:
    """Cheap and conservative: a HYBRID_BUDGET_* variable, or the word in the project config."""
    if any(name.startswith("HYBRID_BUDGET_") and value.strip() for name, value in env.items()):
        return True
    try:
        return b"budget" in (root / PROJECT_CONFIG).read_bytes()
    except OSError:
        return False


def guard_python(env: Mapping[str, str]) -> str | None:
    """An interpreter that has the plugin's dependencies, without ever building one here."""
    preset = env.get("HYBRID_PYTHON", "").strip()
    if preset:
        return preset if os.path.exists(preset) else None
    from mcp_server import launcher  # stdlib only; knows where the MCP server built the venv

    venv_python = launcher.venv_python(launcher.plugin_data_dir(PLUGIN_ROOT) / "venv")
    if venv_python.exists():
        return str(venv_python)
    from importlib.util import find_spec

    if find_spec("yaml") and find_spec("pydantic"):  # a development interpreter
        return sys.executable
    return None


def budget(payload: dict, root: Path, env: Mapping[str, str], raw: bytes) -> int:
    if not budget_configured(root, env):
        return 0
    tool = payload.get("tool_name")
    if tool not in GUARDED_TOOLS:
        return 0
    tool_input = payload.get("tool_input")
    if tool == PHASE_START and not (isinstance(tool_input, dict) and tool_input.get("status") == "running"):
        return 0  # recording a result is never blocked: only starting a phase is
    # The main loop's own spend is otherwise only read at Stop: bring the ledger up to date.
    ledger = Ledger(ledger_path(root))
    try:
        catch_up(ledger, payload, seconds=BUDGET_CATCH_UP_SECONDS)
    except Exception as error:
        log(root, "PreToolUse", "budget", error)
    finally:
        ledger.close()
    python = guard_python(env)
    if python is None:
        raise HookError("budget not checked: the plugin's Python environment is not built yet")
    import subprocess

    child_env = dict(env)
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGIN_ROOT), env.get("PYTHONPATH", "")]))
    child_env.setdefault("CLAUDE_PROJECT_DIR", str(root))
    try:
        done = subprocess.run(
            [python, "-m", "mcp_server.usage.guard"],
            input=raw, capture_output=True, env=child_env, timeout=GUARD_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise HookError(f"budget not checked: the guard took over {GUARD_TIMEOUT_SECONDS:g} s") from None
    message = done.stderr.decode("utf-8", "replace").strip()
    if done.returncode == 2 and message:
        sys.stderr.write(message + "\n")
        return 2
    if done.returncode != 0:
        raise HookError(f"budget not checked: the guard exited {done.returncode}: {message[-300:]}")
    return 0


RECORDING = ("subagent-stop", "stop", "session-end", "phase")
HANDLERS: dict[str, Callable[[dict, Path, Mapping[str, str], bytes], int]] = {
    "subagent-stop": subagent_stop,
    "stop": _catch_up_action("stop", "Stop", STOP_SECONDS, earlier_sessions=True),
    "session-end": _catch_up_action("session-end", "SessionEnd", SESSION_END_SECONDS),
    "phase": phase,
    "budget": budget,
}
