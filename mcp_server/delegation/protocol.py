"""GLM's reply format: the output contract sent in the prompt, and its parser.

A reply is prose (ignored) around blocks whose marker lines start at column 0:

    === file: app/roles.py ===
    <the whole new file>
    === end file ===

    === edit: app/big_module.py ===
    <<<<<<< SEARCH
    <exact lines now in the file>
    =======
    <their replacement>
    >>>>>>> REPLACE
    === end edit ===

    === delete: app/old.py ===

Markers are whole lines, so code fences, backticks and '===' inside file contents are
just content. docs/glm-protocol.md is the reference; tests/test_protocol.py pins it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OPEN = re.compile(r"^=== (file|edit|delete): *(.+?) *===[ \t]*$")
CLOSE = {"file": re.compile(r"^=== end file ===[ \t]*$"), "edit": re.compile(r"^=== end edit ===[ \t]*$")}
SEARCH, DIVIDER, REPLACE = "<<<<<<< SEARCH", "=======", ">>>>>>> REPLACE"
FENCE = re.compile(r"^(`{3,}|~{3,})[\w.+-]*[ \t]*$")


class ReplyFormatError(ValueError):
    """GLM's reply cannot be used as it is; the message is fit to send back for a repair."""


@dataclass(frozen=True)
class FileWrite:
    path: str
    content: str


@dataclass(frozen=True)
class FileEdit:
    path: str
    search: str
    replace: str


@dataclass(frozen=True)
class FileDelete:
    path: str


Operation = FileWrite | FileEdit | FileDelete


def _clean_path(raw: str) -> str:
    return raw.strip().strip("`'\"").strip()


def _join(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def _unwrap_fence(lines: list[str]) -> list[str]:
    """Drop one fence wrapped around a whole file, as models often add one.

    Only when the opening and closing fences match and nothing between them could
    close the opening one (CommonMark's rule), so a file that merely starts and ends
    with code examples keeps them.
    """
    if len(lines) < 2:
        return lines
    opening = FENCE.match(lines[0])
    if not opening or lines[-1].strip() != opening.group(1):
        return lines
    marker = opening.group(1)
    closes = re.compile(rf"^{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$")
    if any(closes.match(line) for line in lines[1:-1]):
        return lines
    return lines[1:-1]


def _parse_edit(path: str, lines: list[str]) -> list[FileEdit]:
    edits, index = [], 0
    while index < len(lines):
        if not lines[index].strip():
            index += 1
            continue
        if lines[index].rstrip() != SEARCH:
            raise ReplyFormatError(f"edit block for {path}: expected '{SEARCH}', found {lines[index][:60]!r}")
        try:
            divider = next(i for i in range(index + 1, len(lines)) if lines[i].rstrip() == DIVIDER)
            end = next(i for i in range(divider + 1, len(lines)) if lines[i].rstrip() == REPLACE)
        except StopIteration:
            raise ReplyFormatError(
                f"edit block for {path}: each '{SEARCH}' needs a '{DIVIDER}' line and a '{REPLACE}' line"
            ) from None
        search = _join(lines[index + 1 : divider])
        if not search.strip():
            raise ReplyFormatError(f"edit block for {path}: the SEARCH part is empty; use a file block to create a file")
        edits.append(FileEdit(path, search, _join(lines[divider + 1 : end])))
        index = end + 1
    if not edits:
        raise ReplyFormatError(f"edit block for {path} holds no SEARCH/REPLACE pair")
    return edits


def parse_reply(text: str) -> list[Operation]:
    """Every operation in the reply, in order. Raises ReplyFormatError when there is none,
    or when a block is malformed or not closed (a reply cut off at max_tokens ends so)."""
    lines = (text or "").replace("\r\n", "\n").split("\n")
    operations: list[Operation] = []
    index = 0
    while index < len(lines):
        opened = OPEN.match(lines[index])
        index += 1
        if not opened:
            continue
        kind, path = opened.group(1), _clean_path(opened.group(2))
        if not path:
            raise ReplyFormatError(f"a '=== {kind}: ... ===' line has no path")
        if kind == "delete":
            operations.append(FileDelete(path))
            continue
        close = CLOSE[kind]
        end = next((i for i in range(index, len(lines)) if close.match(lines[i])), None)
        if end is None:
            raise ReplyFormatError(
                f"the {kind} block for {path} is not closed with '=== end {kind} ===' "
                "(was the reply cut off? send fewer or smaller files, or use edits)"
            )
        body = lines[index:end]
        if kind == "file":
            operations.append(FileWrite(path, _join(_unwrap_fence(body))))
        else:
            operations.extend(_parse_edit(path, body))
        index = end + 1
    if not operations:
        raise ReplyFormatError("the reply holds no '=== file: <path> ===' or '=== edit: <path> ===' block")
    return operations


def render_reply(operations: list[Operation], prose: str = "") -> str:
    """The reply text a well-behaved model sends for these operations (used by tests and the demo)."""
    def ended(text: str) -> str:
        return text if text.endswith("\n") or not text else text + "\n"

    parts = [prose] if prose else []
    for op in operations:
        if isinstance(op, FileWrite):
            parts.append(f"=== file: {op.path} ===\n{ended(op.content)}=== end file ===")
        elif isinstance(op, FileEdit):
            parts.append(
                f"=== edit: {op.path} ===\n{SEARCH}\n{ended(op.search)}{DIVIDER}\n"
                f"{ended(op.replace)}{REPLACE}\n=== end edit ==="
            )
        else:
            parts.append(f"=== delete: {op.path} ===")
    return "\n\n".join(parts) + "\n"


OUTPUT_CONTRACT = """\
# How to reply
Reply with file blocks only; text outside blocks is ignored. Marker lines start at column 0.

To create or replace a whole file (write the complete file, never an excerpt):
=== file: relative/path/from/project/root.ext ===
<complete file content, exactly as it should be on disk, no surrounding code fence>
=== end file ===

To change part of a large existing file, use one or more SEARCH/REPLACE pairs; SEARCH must
copy the current lines exactly (including indentation) and match only one place:
=== edit: relative/path.ext ===
<<<<<<< SEARCH
<exact current lines>
=======
<replacement lines>
>>>>>>> REPLACE
=== end edit ===

To delete a file:
=== delete: relative/path.ext ===

Paths are relative to the project root; never absolute, never containing '..', never under
.git/ or .claude/."""


def output_contract() -> str:
    return OUTPUT_CONTRACT


def repair_request(error: Exception) -> str:
    return (
        f"Your reply could not be used: {error}. Nothing was written. Send the complete answer "
        f"again, strictly in the required format.\n\n{OUTPUT_CONTRACT}"
    )
