"""The GLM simulator's answers for the bundled example: real, working code per story and tool.

Replies live as plain files in ``examples/settings-epic.glm/<story>/<variant>/``, laid out as
they land in the project. Variants show the loops a real run has:
``implement.broken`` is a first attempt whose tests fail (the fix round sends ``implement``),
``implement.round1`` passes the tests but has what the review sends back (the next round,
whose instructions carry the review's issues, gets ``implement``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mcp_server.delegation.prompts import ROLES
from mcp_server.delegation.protocol import FileWrite, render_reply
from mcp_server.demo.chat_sim import ErrorReply, Reply, Request

STORY_HEADER = re.compile(r"^## Story \((?P<path>[^)]+)\)", re.MULTILINE)
FIX_REQUEST = "The tests failed after your change"


def _tool_of(system_prompt: str) -> str | None:
    return next((tool for tool, role in ROLES.items() if system_prompt.startswith(role)), None)


def _story_of(user_message: str, known: list[str]) -> str | None:
    header = STORY_HEADER.search(user_message)
    if not header:
        return None
    name = Path(header.group("path")).name
    return next((story for story in sorted(known, key=len, reverse=True) if name.startswith(story)), None)


def _variant(folder: Path, tool: str, messages: list[dict[str, Any]]) -> Path:
    if tool != "implement":
        return folder / tool
    last = str(messages[-1].get("content", ""))
    asked_for_changes = "review issue" in str(messages[1].get("content", "")).lower()
    if last.startswith(FIX_REQUEST) or asked_for_changes:
        return folder / "implement"
    for first_try in ("implement.broken", "implement.round1"):
        if (folder / first_try).is_dir():
            return folder / first_try
    return folder / "implement"


def _files(variant: Path) -> list[FileWrite]:
    return [
        FileWrite(path.relative_to(variant).as_posix(), path.read_text(encoding="utf-8"))
        for path in sorted(variant.rglob("*"))
        if path.is_file()
    ]


class CannedGlm:
    """A responder for ChatSim: looks at the role and the story in the prompt, answers with files."""

    def __init__(self, replies_dir: Path):
        self.replies_dir = Path(replies_dir)
        self.stories = [p.name for p in self.replies_dir.iterdir() if p.is_dir()]

    def __call__(self, request: Request) -> Reply | ErrorReply:
        messages = request.body.get("messages") or []
        if len(messages) < 2:
            return ErrorReply(400, "1214", "simulator: expected a system and a user message")
        tool = _tool_of(str(messages[0].get("content", "")))
        story = _story_of(str(messages[1].get("content", "")), self.stories)
        variant = _variant(self.replies_dir / (story or "-"), tool or "-", messages)
        if tool is None or story is None or not variant.is_dir():
            return Reply(f"I have no files for this request (tool {tool}, story {story}).")
        text = render_reply(_files(variant), prose=f"Here are the files for story {story}.")
        prompt_chars = len(json.dumps(messages))
        return Reply(text, prompt_tokens=prompt_chars // 4, completion_tokens=len(text) // 4)
