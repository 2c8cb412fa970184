"""Whether the plugin's glm tools are in a session yet, and what the scripted model does until they are.

In `-p` mode Claude Code waits only about 10 s for MCP servers before the first turn. On a busy
machine the plugin's server connects later (25 s was measured at a load of 15 on 2 cores), and
its tools join the session then: a workflow or agent started before that has no glm tools, and
every checkpoint and GLM call of it fails with "No such tool available". So the scripted
orchestrator, like a model that reads its tool list, first waits for the tools with Bash
`sleep`, a bounded number of times, and says so plainly if they never come; an agent that finds
one of its tools missing stops and reports the phase failed, as its instructions say for a
refused call.
"""

from __future__ import annotations

import re
from typing import Any

from mcp_server.demo.anthropic_sim import Turn

TOOL = "mcp__plugin_hybrid_glm__"
# CLI 2.1.330 defers MCP tools behind tool search: the main loop sees their names in a
# "deferred tools are now available" text, repeated with the new names when a server connects.
DEFERRED = "deferred tools are now available"
LISTED = re.compile(rf"^{TOOL}checkpoint_write$", re.MULTILINE)
MISSING = "No such tool available"
WAIT_SECONDS = 5
MAX_WAITS = 24  # two minutes, as long as the session environment's MCP_TIMEOUT lets the server connect
WAIT = {"command": f"sleep {WAIT_SECONDS}", "description": "Wait for the hybrid plugin's glm tools to connect"}


def _texts(body: dict[str, Any]) -> list[str]:
    system = body.get("system")
    blocks = [{"text": system}] if isinstance(system, str) else list(system or [])
    for message in body.get("messages") or []:
        content = message.get("content")
        blocks += [{"text": content}] if isinstance(content, str) else list(content or [])
    return [block["text"] for block in blocks if isinstance(block, dict) and isinstance(block.get("text"), str)]


def glm_tools_offered(body: dict[str, Any]) -> bool:
    """The request offers the glm tools, loaded or deferred."""
    if any(str(tool.get("name", "")).startswith(TOOL) for tool in body.get("tools") or []):
        return True
    return any(DEFERRED in text and LISTED.search(text) for text in _texts(body))


def is_wait(name: str, arguments: dict[str, Any]) -> bool:
    return name == "Bash" and arguments == WAIT


def wait_for_glm_tools(waits_so_far: int) -> Turn:
    """One more wait, or, after MAX_WAITS, the line that says why nothing was started."""
    if waits_so_far < MAX_WAITS:
        return Turn(tool_calls=(("Bash", dict(WAIT)),))
    return Turn(text=f"Not started: the hybrid plugin's glm tools ({TOOL}*) did not connect within "
                     f"{MAX_WAITS * WAIT_SECONDS} s. Its MCP server's log is in ~/.cache/claude-cli-nodejs/; "
                     "see docs/install.md.")


def missing_tool(results: list[str]) -> str:
    """The first "No such tool available" error among a conversation's tool results, or ""."""
    found = next((result for result in results if MISSING in result), "")
    return re.sub(r"</?tool_use_error>", "", found).strip()
