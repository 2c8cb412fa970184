"""Claude Code transcript reading: usage per API message, deduplicated, from a byte offset.

Standard library only (the hooks import this on every run). One reader for every transcript,
main loop and subagents alike; no database access here (mcp_server.usage.hook does that).

- Only complete lines (ending in ``\\n``) are consumed: a line the CLI is still writing is
  left for the next pass, and ``Chunk.end`` is the offset just after the last complete line.
- Lines are prefiltered on raw bytes before ``json.loads``, so a 100 MB transcript costs one
  scan plus a parse of the lines that can carry usage.
- Dedup rule, in one place: an API message is ``message.id`` + ``requestId`` (or
  ``requestRef``). The CLI writes one message as several ``assistant`` lines, one per content
  block, and in streamed sessions ``output_tokens`` can grow between copies: keep the largest.
- Final usage: a copy whose ``stop_reason`` is null and that has no ``usage.iterations`` array
  is an early snapshot. A message whose copies are all early snapshots never got its final usage (a known Claude
  Code defect in subagent transcripts): its row is marked ``ok:partial-usage``, a lower bound.
- Agent totals the main transcript reports (the Agent tool's ``toolUseResult.totalTokens``, a
  ``<task-notification>``'s ``subagent_tokens``) are collected for a cross-check.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

from mcp_server.ledger import UsageRow

# The prompt prefix the orchestrator puts on every agent prompt: "[story 01.2 P3] ...".
# At the start of a line, not only of the text: a workflow agent's prompt arrives after the
# harness's preamble ("... The computed task text follows:\n  [story 01.2 P1] ...").
PREFIX_RE = re.compile(r"^\s*\[story ([A-Za-z0-9][A-Za-z0-9._-]{0,63}) (P[1-7])\]", re.MULTILINE)
CHUNK_BYTES = 8 << 20
SYNTHETIC_MODEL = "<synthetic>"
PARTIAL_USAGE = "ok:partial-usage"  # the row's status when no copy carried the final usage
TASK_ID_RE = re.compile(r"<task-id>\s*([A-Za-z0-9_.:-]{1,128})\s*</task-id>")
SUBAGENT_TOKENS_RE = re.compile(r"<subagent_tokens>\s*(\d{1,15})\s*</subagent_tokens>|subagent_tokens:\s*(\d{1,15})")
# A slash command is logged as a wrapper line, then its expanded text as the next user line.
_COMMAND_WRAPPER = "<command-"


@dataclass
class Message:
    """One API response's usage, as the transcript reports it."""

    dedup_key: str
    model: str
    ts: str
    session_id: str | None
    agent_id: str | None
    is_sidechain: bool
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    output_tokens: int = 0
    thinking_tokens: int = 0
    final: bool = True  # some copy carried the response's final usage

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def size(self) -> int:
        """The order used to keep the largest copy (the same as Ledger.record_message)."""
        return self.prompt_tokens + self.output_tokens


@dataclass
class Chunk:
    """What one read from ``start`` found. ``end`` is where the next read starts."""

    start: int
    end: int
    messages: dict[str, Message] = field(default_factory=dict)
    prompt: str | None = None  # the first user prompt text, when asked for and present
    bad_lines: int = 0  # candidate lines that were not JSON objects
    skipped: int = 0  # assistant lines with no usable usage (synthetic, no id)
    complete: bool = True  # False when a deadline stopped the read early
    # agent id -> (source, tokens): the totals the transcript reports for agents it launched
    agent_reports: dict[str, tuple[str, int]] = field(default_factory=dict)


def parse_prefix(text: str | None) -> tuple[str, str] | None:
    """(story, phase) from a "[story <id> <P1-P7>]" prompt prefix, or None."""
    if not text:
        return None
    match = PREFIX_RE.search(text)
    return (match.group(1), match.group(2)) if match else None


def normalize_ts(value: object) -> str:
    """The transcript's ``...Z`` timestamps in the ledger's ``...+00:00`` form ("" if absent)."""
    if not isinstance(value, str) or not value:
        return ""
    return value[:-1] + "+00:00" if value.endswith("Z") else value


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def message_from_line(obj: dict) -> Message | None:
    """The usage of one ``assistant`` line, or None when it has none worth counting."""
    msg = obj.get("message")
    if not isinstance(msg, dict):
        return None
    usage, model, message_id = msg.get("usage"), msg.get("model"), msg.get("id")
    if not isinstance(usage, dict) or not isinstance(model, str) or not model or model == SYNTHETIC_MODEL:
        return None
    if not isinstance(message_id, str) or not message_id:
        return None  # cannot be deduplicated: better uncounted than counted twice
    request = obj.get("requestId") or obj.get("requestRef") or ""
    # Cache writes: the 5m/1h breakdown when present; whatever part of the total it does not
    # explain is priced as 5m, the default TTL (the CLI does the same: its cost-state agrees).
    total_write = _int(usage.get("cache_creation_input_tokens"))
    breakdown = usage.get("cache_creation") if isinstance(usage.get("cache_creation"), dict) else {}
    write_1h = _int(breakdown.get("ephemeral_1h_input_tokens"))
    write_5m = _int(breakdown.get("ephemeral_5m_input_tokens"))
    write_5m += max(0, total_write - write_5m - write_1h)
    details = usage.get("output_tokens_details") if isinstance(usage.get("output_tokens_details"), dict) else {}
    agent_id = obj.get("agentId")
    session_id = obj.get("sessionId")
    return Message(
        dedup_key=f"{message_id}:{request if isinstance(request, str) else ''}",
        model=model,
        ts=normalize_ts(obj.get("timestamp")),
        session_id=session_id if isinstance(session_id, str) and session_id else None,
        agent_id=agent_id if isinstance(agent_id, str) and agent_id else None,
        is_sidechain=obj.get("isSidechain") is True,
        input_tokens=_int(usage.get("input_tokens")),
        cache_read_tokens=_int(usage.get("cache_read_input_tokens")),
        cache_write_5m_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
        output_tokens=_int(usage.get("output_tokens")),
        thinking_tokens=_int(details.get("thinking_tokens")),
        # the defect's early snapshot says stop_reason: null; a line without the key is taken as final
        final=msg.get("stop_reason", "") is not None or isinstance(usage.get("iterations"), list),
    )


def agent_report(obj: dict) -> tuple[str, str, int] | None:
    """(agent id, source, tokens) when a main-transcript line reports an agent's total: the
    Agent tool's result (``toolUseResult``), or a ``<task-notification>`` of an agent launched
    in the background. A workflow's notification (``agent_count``) sums many agents: skipped."""
    result = obj.get("toolUseResult")
    if isinstance(result, dict):
        agent_id, tokens = result.get("agentId"), result.get("totalTokens")
        if isinstance(agent_id, str) and agent_id and isinstance(tokens, int) and tokens >= 0:
            return agent_id, "agent-tool", tokens
    text = json.dumps(obj.get("message") or obj.get("attachment") or "")
    if "<task-notification>" not in text or "agent_count" in text:
        return None
    task, tokens = TASK_ID_RE.search(text), SUBAGENT_TOKENS_RE.search(text)
    if task and tokens:
        return task.group(1), "task-notification", int(tokens.group(1) or tokens.group(2))
    return None


def prompt_text(obj: dict) -> str | None:
    """The text a ``user`` line carries, if it is a prompt (not a tool result or a command wrapper)."""
    msg = obj.get("message")
    content = msg.get("content") if isinstance(msg, dict) else None
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = "".join(
            block.get("text", "") for block in content
            if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
        )
    else:
        return None
    if not text.strip() or text.lstrip().startswith(_COMMAND_WRAPPER):
        return None
    return text


def scan_lines(data: bytes, chunk: Chunk, *, find_prompt: bool) -> None:
    """Fold complete lines (``data`` holds no partial line) into ``chunk``."""
    for line in data.split(b"\n"):
        is_assistant = b'"assistant"' in line
        wants_prompt = find_prompt and chunk.prompt is None and b'"user"' in line
        reports = b'"totalTokens"' in line or b"subagent_tokens" in line
        if not (is_assistant or wants_prompt or reports):
            continue
        try:
            obj = json.loads(line)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError
            chunk.bad_lines += 1
            continue
        if not isinstance(obj, dict):
            chunk.bad_lines += 1
            continue
        kind = obj.get("type")
        if kind == "assistant":
            message = message_from_line(obj)
            if message is None:
                chunk.skipped += 1
                continue
            kept = chunk.messages.get(message.dedup_key)
            if kept is not None:
                message.final = message.final or kept.final
            if kept is None or message.size > kept.size:
                chunk.messages[message.dedup_key] = message
            else:
                kept.final = message.final
            continue
        if kind == "user" and wants_prompt:
            chunk.prompt = prompt_text(obj)
        if reports:
            found = agent_report(obj)
            if found:
                chunk.agent_reports[found[0]] = found[1:]


def read_transcript(
    path: str, offset: int = 0, *, find_prompt: bool = False, deadline: float | None = None
) -> Chunk:
    """Read ``path`` from byte ``offset`` to its last complete line (or until ``deadline``,
    a ``time.monotonic()`` value, checked between chunks of CHUNK_BYTES)."""
    chunk = Chunk(start=offset, end=offset)
    carry = b""
    with open(path, "rb") as handle:
        handle.seek(offset)
        while True:
            data = handle.read(CHUNK_BYTES)
            if not data:
                break
            buffer = carry + data if carry else data
            cut = buffer.rfind(b"\n")
            if cut < 0:  # one line longer than a chunk: keep reading
                carry = buffer
                continue
            scan_lines(buffer[:cut], chunk, find_prompt=find_prompt)
            chunk.end += cut + 1
            carry = buffer[cut + 1 :]
            if deadline is not None and time.monotonic() > deadline:
                chunk.complete = False
                break
    return chunk


def first_timestamp(path: str, limit: int = 1 << 16) -> str | None:
    """The first ``timestamp`` in a transcript's first ``limit`` bytes (when the session began)."""
    with open(path, "rb") as handle:
        head = handle.read(limit)
    for line in head.split(b"\n"):  # a cut last line fails to parse and is skipped
        if b'"timestamp"' not in line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        ts = normalize_ts(obj.get("timestamp")) if isinstance(obj, dict) else ""
        if ts:
            return ts
    return None


@dataclass(frozen=True)
class Attribution:
    story: str | None
    phase: str | None
    how: str  # "prefix", "running-phase", "session-phase" or "none"


def decide_attribution(
    prompt: str | None,
    *,
    running: tuple[str, str] | None = None,
    session_running: list[tuple[str, str]] | None = None,
) -> Attribution:
    """The attribution order: the prompt's prefix; else the phase the agent marked running;
    else (main loop only: pass ``session_running``) the one phase its session has running;
    else none. Never a guess."""
    prefixed = parse_prefix(prompt)
    if prefixed:
        return Attribution(*prefixed, "prefix")
    if running:
        return Attribution(running[0], running[1], "running-phase")
    if session_running is not None and len(set(session_running)) == 1:
        story, phase = session_running[0]
        return Attribution(story, phase, "session-phase")
    return Attribution(None, None, "none")


def usage_row(
    message: Message,
    *,
    story: str | None,
    phase: str | None,
    agent_type: str | None,
    agent_id: str | None,
    session_id: str | None,
) -> UsageRow:
    """The ledger row for one message. ``cost_usd`` stays NULL: reports re-price from tokens."""
    return UsageRow(
        provider="anthropic",
        model=message.model,
        story=story,
        phase=phase,
        agent_type=agent_type,
        agent_id=message.agent_id or agent_id,
        session_id=message.session_id or session_id,
        prompt_tokens=message.prompt_tokens,
        cached_tokens=message.cache_read_tokens,
        cache_write_5m_tokens=message.cache_write_5m_tokens,
        cache_write_1h_tokens=message.cache_write_1h_tokens,
        completion_tokens=message.output_tokens,
        reasoning_tokens=message.thinking_tokens,
        status="ok" if message.final else PARTIAL_USAGE,
        dedup_key=message.dedup_key,
        ts=message.ts,
    )
