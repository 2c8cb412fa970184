"""What the scripted model reads of a request, and what it is told to decide.

A Conversation is the part of a Messages request the script looks at; a Scenario is what the
scripted Claude decides where a real one would judge (reviews per story and round, delays). The
helpers below read a checkpoint_read result and build the tool calls every agent makes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from mcp_server.demo.anthropic_sim import Turn
from mcp_server.demo.tool_readiness import TOOL, glm_tools_offered, is_wait
from mcp_server.usage.transcripts import parse_prefix

COMMAND = re.compile(r"<command-name>/hybrid:(?P<name>pilot|resume|pilot-agents)</command-name>")
COMMAND_ARGS = re.compile(r"<command-args>(?P<args>.*?)</command-args>", re.DOTALL)
WORKING_DIRECTORY = re.compile(r"Primary working directory: (?P<path>[^\n\\]+)")
# The agent files of engine=claude say so: their agents write the code themselves.
CLAUDE_ONLY = "of a Claude-only team"

@dataclass(frozen=True)
class Review:
    verdict: str
    score: float
    issues: tuple[dict[str, Any], ...] = ()


CLEAN = Review("APPROVED", 9)


@dataclass
class Scenario:
    """What the scripted Claude decides, where a real one would judge."""

    # Each story runs its own tests: stories in flight at once share the tree, and one story's
    # half-done code must not fail another's run. {modules} are the story's test modules.
    test_command: str = "python3 -m unittest -q {modules}"
    reviews: dict[str, list[Review]] = field(default_factory=dict)  # story -> one per round
    max_review_rounds: int = 2
    phase_delay_s: dict[tuple[str, str], float] = field(default_factory=dict)  # (story, phase) -> seconds
    # An interpreter with coverage.py: QA then measures the story's code coverage with it.
    coverage_python: str | None = None

    def review(self, story: str, round_number: int) -> Review:
        rounds = self.reviews.get(story, [])
        return rounds[round_number - 1] if round_number <= len(rounds) else CLEAN


# --- Reading a request --------------------------------------------------------------------------


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])


def _text(block: dict[str, Any]) -> str:
    if block.get("type") == "text":
        return str(block.get("text", ""))
    content = block.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(str(part.get("text", "")) for part in content or [] if isinstance(part, dict))


@dataclass
class Conversation:
    """The parts of a Messages request the script reads."""

    first_user: list[str]
    calls: list[tuple[str, dict[str, Any], str]]  # every earlier tool call: name, input, result text
    working_directory: str = "."
    structured_output: bool = False  # a workflow's agent(…, {schema}) offers the StructuredOutput tool
    last_user: str = ""
    glm_tools: bool = True  # the plugin's MCP server has connected: its tools are offered
    reports_status: bool = False  # the StructuredOutput schema is the workflow's {status, summary}
    claude_only: bool = False  # an engine=claude agent (claude-*.md): it writes the code itself
    model: str = ""  # the model the request is for

    @classmethod
    def of(cls, body: dict[str, Any]) -> "Conversation":
        messages = body.get("messages") or []
        users = [m for m in messages if m.get("role") == "user"]
        first = [_text(b) for b in _blocks(users[0])] if users else []
        results = {
            block.get("tool_use_id"): _text(block)
            for message in users
            for block in _blocks(message)
            if block.get("type") == "tool_result"
        }
        calls = [
            (block["name"], block.get("input") or {}, results.get(block.get("id"), ""))
            for message in messages
            if message.get("role") == "assistant"
            for block in _blocks(message)
            if block.get("type") == "tool_use"
        ]
        where = WORKING_DIRECTORY.search(json.dumps(messages, ensure_ascii=False))
        tools = {tool.get("name"): tool for tool in body.get("tools") or []}
        last = "\n".join(_text(b) for b in _blocks(users[-1])) if users else ""
        schema = (tools.get("StructuredOutput") or {}).get("input_schema") or {}
        return cls(first, calls, where.group("path").strip() if where else ".", "StructuredOutput" in tools, last,
                   glm_tools_offered(body), "status" in (schema.get("properties") or {}),
                   CLAUDE_ONLY in json.dumps(body.get("system") or "", ensure_ascii=False), str(body.get("model") or ""))

    def waits(self) -> int:
        return sum(1 for name, arguments, _ in self.calls if is_wait(name, arguments))

    def without_waits(self) -> "Conversation":
        return replace(self, calls=[call for call in self.calls if not is_wait(call[0], call[1])])

    def prefix(self) -> tuple[str, str] | None:
        """(story, phase) of an agent's `[story <id> <phase>]` prompt; the hooks read it the same way."""
        return next((found for found in map(parse_prefix, self.first_user) if found), None)

    def command(self) -> tuple[str, str] | None:
        joined = "\n".join(self.first_user)
        found = COMMAND.search(joined)
        if not found:
            return None
        args = COMMAND_ARGS.search(joined)
        return found.group("name"), (args.group("args").strip() if args else "")

    def result_of(self, name: str) -> str:
        return next((result for call, _, result in reversed(self.calls) if call == name), "")


def checkpoint_of(read_result: str) -> dict[str, Any]:
    """The data of a checkpoint_read result (a comment line, then the YAML file)."""
    try:
        data = yaml.safe_load(read_result)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# --- Tool calls and checkpoint readings every agent uses ---------------------------------------

def call(tool: str, **arguments: Any) -> Turn:
    return Turn(tool_calls=((tool, arguments),))


def write_phase(story: str, phase: str, status: str, agent: str | None = None, **extra: Any) -> Turn:
    extra = {key: value for key, value in extra.items() if value not in (None, [], "")}
    return call(f"{TOOL}checkpoint_write", story=story, phase=phase, status=status, agent=agent, **extra)


def artifacts(checkpoint: dict[str, Any], *phases: str) -> list[str]:
    found: list[str] = []
    for phase in phases:
        found.extend((checkpoint.get("phases") or {}).get(phase, {}).get("artifacts") or [])
    return list(dict.fromkeys(found))


def test_command(checkpoint: dict[str, Any], scenario: "Scenario") -> str:
    """The story's own test command: its P2 test files as unittest modules."""
    tests = [path for path in artifacts(checkpoint, "P2") if path.endswith(".py")]
    modules = " ".join(path[:-3].replace("/", ".") for path in tests) or "discover -s tests -t ."
    return scenario.test_command.format(modules=modules)


def review_issues(checkpoint: dict[str, Any]) -> list[dict[str, Any]]:
    reviews = [*(checkpoint.get("reviews") or []), checkpoint.get("review") or {}]
    return next((r.get("issues") or [] for r in reversed(reviews) if r), [])


def issue_lines(issues: list[dict[str, Any]]) -> str:
    return "; ".join(f"{i.get('severity')} {i.get('file')}:{i.get('line')} {i.get('text')}" for i in issues)

