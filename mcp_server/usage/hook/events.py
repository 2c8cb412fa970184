"""The handler of each hook action, and ``main``, which reads the payload, picks the handler
and makes sure a hook never breaks the session (see the package docstring)."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from mcp_server.ledger import Ledger, ledger_path
from mcp_server.usage.hook.budget import budget
from mcp_server.usage.hook.catch_up import catch_up, unfinished_sessions
from mcp_server.usage.hook.plan import Pass, apply, plan_transcript
from mcp_server.usage.hook.project import HookError, log, payload_text, project_root, uses_hybrid

# Seconds of reading a pass may spend before it commits what it has and stops; the rest is
# read by the next pass. Kept under each handler's timeout in hooks.json (SessionEnd hooks
# share 1.5 s in all), so a killed hook never throws away a long read.
STOP_SECONDS = 6.0
SUBAGENT_STOP_SECONDS = 6.0
SESSION_END_SECONDS = 0.8
STORY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PHASE_RE = re.compile(r"^[Pp]?([1-7])$")


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


def _note_bad_lines(root: Path, event: str, action: str, passes: list[Pass]) -> None:
    for item in passes:
        if item.bad_lines:
            log(root, event, action, f"skipped {item.bad_lines} unreadable line(s) in {item.cursor.path}")


def subagent_stop(payload: dict, root: Path, env: Mapping[str, str], raw: bytes) -> int:
    path = payload_text(payload, "agent_transcript_path")
    ledger = Ledger(ledger_path(root))
    try:
        try:
            item = plan_transcript(
                ledger, path,
                session_id=payload_text(payload, "session_id", required=False),
                agent_id=payload_text(payload, "agent_id", required=False),
                agent_type=payload_text(payload, "agent_type", required=False),
                deadline=time.monotonic() + SUBAGENT_STOP_SECONDS,
            )
        except FileNotFoundError:
            raise HookError(f"transcript not found: {path}") from None
        apply(ledger, [item])
    finally:
        ledger.close()
    _note_bad_lines(root, "SubagentStop", "subagent-stop", [item])
    return 0


def _catch_up_action(action: str, event: str, seconds: float, earlier_sessions: bool = False) -> Callable[..., int]:
    def handler(payload: dict, root: Path, env: Mapping[str, str], raw: bytes) -> int:
        ledger = Ledger(ledger_path(root))
        deadline = time.monotonic() + seconds
        try:
            passes = catch_up(ledger, payload, seconds=seconds)
            if earlier_sessions:
                for main, session_id in unfinished_sessions(ledger, payload_text(payload, "session_id")):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    other = {"transcript_path": main, "session_id": session_id}
                    passes += catch_up(ledger, other, seconds=remaining)
        finally:
            ledger.close()
            for notice in ledger.notices:  # a corrupt ledger moved aside, spooled rows merged
                log(root, event, action, notice)
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
    agent_id = payload_text(payload, "agent_id", required=False)
    session_id = payload_text(payload, "session_id", required=False)
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


RECORDING = ("subagent-stop", "stop", "session-end", "phase")
HANDLERS: dict[str, Callable[[dict, Path, Mapping[str, str], bytes], int]] = {
    "subagent-stop": subagent_stop,
    "stop": _catch_up_action("stop", "Stop", STOP_SECONDS, earlier_sessions=True),
    "session-end": _catch_up_action("session-end", "SessionEnd", SESSION_END_SECONDS),
    "phase": phase,
    "budget": budget,
}
