"""One transcript: read it from its cursor and work out the rows and the new cursor
(``plan_transcript``, which writes nothing), then write what a hook run planned in one
transaction (``apply``)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from mcp_server.ledger import Ledger, TranscriptCursor, UsageRow
from mcp_server.usage import agent_totals, transcripts


@dataclass
class Pass:
    """The writes one transcript's read asks for; applied together in one transaction."""

    cursor: TranscriptCursor
    rows: list[UsageRow] = field(default_factory=list)
    backfill: bool = False  # the agent's earlier unattributed rows get the cursor's story/phase
    changed: bool = False
    bad_lines: int = 0
    agent_reports: dict[str, tuple[str, int]] = field(default_factory=dict)  # for agent_totals


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
    result.agent_reports = chunk.agent_reports
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
    passes = [p for p in passes if p.changed or p.rows or p.agent_reports]
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
            if item.agent_reports and cursor.session_id:
                agent_totals.record_reports(ledger, cursor.session_id, item.agent_reports)
