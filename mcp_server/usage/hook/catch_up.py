"""Catch-up: every transcript of a session from its cursor, and the project's other recent
sessions, one of which may have been killed before its own Stop hook ran."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from mcp_server.ledger import Ledger
from mcp_server.usage.hook.plan import Pass, apply, plan_transcript
from mcp_server.usage.hook.project import HookError, payload_text

# A session killed before its Stop hook (a crash, a kill -9) is read by the next session's Stop.
EARLIER_SESSIONS_MAX = 5
EARLIER_SESSIONS_MAX_AGE_S = 48 * 3600


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
    main_path = payload_text(payload, "transcript_path")
    session_id = payload_text(payload, "session_id")
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


def unfinished_sessions(ledger: Ledger, current_session: str) -> list[tuple[str, str]]:
    """(main transcript, session id) of this project's other recent sessions that the ledger
    knows of, newest first: a session killed before its Stop hook left lines nobody read.

    Wherever their transcripts are: the ledger is the project's, so every session its cursors
    name ran here, even one whose transcripts are in another folder (another HOME, or the
    project opened by another path, which Claude Code files under another folder name)."""
    mains: dict[str, str] = {}
    for path, session_id in ledger.known_transcripts():
        if not session_id or session_id == current_session:
            continue
        marker = os.sep + session_id + os.sep
        # <folder>/<session>/subagents/.../agent-<id>.jsonl belongs to <folder>/<session>.jsonl
        main = path.split(marker)[0] + os.sep + session_id + ".jsonl" if marker in path else path
        if os.path.basename(main) == session_id + ".jsonl":
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
