"""Turns parsed operations into the final content of each file, in memory.

Paths are checked first (a bad path is a hard refusal, never repaired), then edits are
applied in order against the file as it stands after the reply's earlier operations.
An edit that does not apply is a reply problem: GLM gets one chance to repair it.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Mapping

from mcp_server.delegation.protocol import FileDelete, FileEdit, FileWrite, Operation, ReplyFormatError
from mcp_server.delegation.writes import confine

# What a test file looks like, in the layouts the tools meet (pytest, go, jest/vitest).
TEST_FOLDERS = frozenset({"test", "tests", "__tests__"})
TEST_NAME_SUFFIXES = ("_test", ".test", ".spec")


class EditError(ReplyFormatError):
    """A SEARCH/REPLACE edit does not match the file; the message says how to fix it."""


def _loose(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.split("\n"))


def apply_edit(current: str, edit: FileEdit) -> str:
    count = current.count(edit.search)
    if count == 1:
        return current.replace(edit.search, edit.replace, 1)
    if count > 1:
        raise EditError(
            f"the SEARCH text for {edit.path} matches {count} places; include more surrounding lines so it matches one"
        )
    # Models often drop trailing spaces; accept a match that differs only there, line for line.
    lines, wanted = current.split("\n"), _loose(edit.search).rstrip("\n").split("\n")
    loose_lines = [line.rstrip() for line in lines]
    starts = [i for i in range(len(lines) - len(wanted) + 1) if loose_lines[i : i + len(wanted)] == wanted]
    if len(starts) == 1:
        start = starts[0]
        new_lines = edit.replace.removesuffix("\n").split("\n") if edit.replace else []
        return "\n".join(lines[:start] + new_lines + lines[start + len(wanted) :])
    raise EditError(
        f"the SEARCH text for {edit.path} was not found; copy the current lines exactly, or send the whole file"
    )


def _check_scope(root: Path, relative: str, write_under: str | None) -> None:
    if write_under is None:
        return
    base = confine(root, write_under, purpose="write")
    target = confine(root, relative, purpose="write")
    if base not in target.parents:
        raise ReplyFormatError(
            f"{relative} is outside {PurePosixPath(write_under).as_posix()}/, the only folder this tool may write"
        )


def resolve(root: Path, operations: list[Operation], *, write_under: str | None = None) -> dict[str, bytes | None]:
    """{relative path: new bytes, or None to delete}, in first-touched order."""
    root = Path(root).resolve()
    canonical: dict[str, str] = {}
    for op in operations:  # every path is vetted before any content is looked at
        canonical[op.path] = confine(root, op.path, purpose="write").relative_to(root).as_posix()
    for op in operations:
        _check_scope(root, op.path, write_under)

    contents: dict[str, str | None] = {}
    for op in operations:
        path = canonical[op.path]
        if isinstance(op, FileWrite):
            contents[path] = op.content
            continue
        if path in contents:
            current = contents[path]
        else:
            target = root / path
            current = target.read_bytes().decode("utf-8", errors="surrogateescape") if target.is_file() else None
        if current is None:
            verb = "edit" if isinstance(op, FileEdit) else "delete"
            raise EditError(f"cannot {verb} {path}: the file does not exist (use a file block to create it)")
        contents[path] = None if isinstance(op, FileDelete) else apply_edit(current, op)
    return {
        path: None if text is None else text.encode("utf-8", errors="surrogateescape") for path, text in contents.items()
    }


def is_test_path(relative: str) -> bool:
    """A file under a test folder, or named test_*, *_test.*, *.test.* or *.spec.*."""
    pure = PurePosixPath(relative)
    folders = {part.casefold() for part in pure.parts[:-1]}
    name, stem = pure.name.casefold(), pure.stem.casefold()
    return bool(folders & TEST_FOLDERS) or name.startswith("test_") or stem.endswith(TEST_NAME_SUFFIXES)


def refuse_test_removal(changes: Mapping[str, bytes | None]) -> None:
    """In a fix round, tests may be fixed but never deleted or emptied to make them pass."""
    for path, content in changes.items():
        if is_test_path(path) and (content is None or not content.strip()):
            raise ReplyFormatError(
                f"{path} is a test file: tests must not be deleted or emptied to make them pass; fix the code instead"
            )
