"""What GLM gets to read: the story's markdown and the context files, within a token budget.

Claude passes paths, never contents; the files are read here, confined to the project.
Truncation is always visible to the model, so it never mistakes a cut file for a whole one.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

from mcp_server.config import Settings
from mcp_server.delegation.errors import DelegationError
from mcp_server.delegation.writes import confine
from mcp_server.checkpoints import story_file_of
from mcp_server.errors import HybridError

# The story is the spec: it may use up to this share of the budget before files.
STORY_SHARE = 0.5
# UTF-8 takes at most 4 bytes a character: reading this many bytes per character wanted is enough.
MAX_BYTES_PER_CHAR = 4
PRIVATE_KEY_MARK = b"PRIVATE KEY-----"


@dataclass(frozen=True)
class ContextFile:
    path: str
    text: str
    truncated: bool


@dataclass(frozen=True)
class GatheredContext:
    story_path: str
    story_text: str
    files: tuple[ContextFile, ...]
    omitted: tuple[str, ...]  # files that did not fit at all

    def render(self) -> str:
        parts = [f"## Story ({self.story_path})\n\n{self.story_text}"]
        for item in self.files:
            parts.append(f"## File: {item.path}\n\n{item.text}")
        if self.omitted:
            parts.append(
                "## Files not shown (context budget exhausted)\n\n"
                + "\n".join(f"- {path}" for path in self.omitted)
            )
        return "\n\n".join(parts)


def truncate(text: str, total_lines: int | None, max_chars: int) -> tuple[str, bool]:
    """Cut at a line boundary and say so, with how much was kept. ``total_lines``: the whole
    file's, when ``text`` is only its first part."""
    if len(text) <= max_chars and total_lines is None:
        return text, False
    kept = text[:max_chars]
    if "\n" in kept and len(text) > max_chars:
        kept = kept[: kept.rindex("\n") + 1]
    total_lines = total_lines if total_lines is not None else text.count("\n") + 1
    kept_lines = kept.count("\n")
    marker = f"\n[... truncated by hybrid: {kept_lines} of {total_lines} lines shown ...]\n"
    return kept + marker, True


def _read_text(path: Path, max_chars: int) -> tuple[str, int | None]:
    """At most ``max_chars`` characters' worth of the file, and the whole file's line count when
    it is longer (counted in chunks): a 200 MB file costs its read time, never its size in memory."""
    limit = max(0, max_chars) * MAX_BYTES_PER_CHAR + MAX_BYTES_PER_CHAR
    with open(path, "rb") as handle:
        head = handle.read(limit)
        if len(head) < limit:
            return head.decode("utf-8", errors="replace"), None
        lines = head.count(b"\n")
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
    text = head.decode("utf-8", errors="replace")[:max_chars + 1]
    return text, lines + 1


def _sensitive(settings: Settings, relative: str, path: Path) -> str | None:
    """Why a context file must not go to GLM, or None."""
    if any(fnmatchcase(relative, pattern) for pattern in settings.context.allow):
        return None
    for part in PurePosixPath(relative).parts:
        for pattern in settings.context.refuse:
            if fnmatchcase(part.casefold(), pattern.casefold()):
                return f"{part!r} matches {pattern!r} in context.refuse"
    with open(path, "rb") as handle:
        if PRIVATE_KEY_MARK in handle.read(64 * 1024):
            return "it holds a private key"
    return None


def gather_context(settings: Settings, story: str, context_files: list[str]) -> GatheredContext:
    root = settings.project_root
    try:  # the file the story's checkpoint recorded; never a design document or other output
        story_file = story_file_of(root, story, settings.stories.glob)
    except HybridError as error:
        pattern = settings.stories.glob.replace("{story}", story)
        hint = "" if "recorded in" in str(error) else (
            f" (nothing in the project matches {pattern}; set `stories.glob` in .claude/hybrid.yaml "
            "if your stories live elsewhere)")
        raise DelegationError(f"{error}{hint}") from None
    budget_chars = settings.context.max_tokens * settings.context.chars_per_token
    story_share = int(budget_chars * STORY_SHARE)
    story_text, _ = truncate(*_read_text(story_file, story_share), story_share)
    remaining = budget_chars - len(story_text)

    resolved: list[tuple[str, Path]] = []
    for relative in dict.fromkeys(context_files):  # keep order, drop repeats
        path = confine(root, relative, purpose="read")
        if not path.is_file():
            raise DelegationError(f"context file {relative!r} does not exist in the project")
        inside = path.relative_to(root).as_posix()
        why = _sensitive(settings, relative, path) or _sensitive(settings, inside, path)
        if why:
            raise DelegationError(
                f"context file {relative!r} refused: {why}; it may hold secrets, so it is not sent to GLM "
                "(list it under context.allow in .claude/hybrid.yaml to send it anyway)"
            )
        resolved.append((inside, path))

    files, omitted = [], []
    for relative, path in resolved:
        if remaining < 200:
            omitted.append(relative)
            continue
        text, cut = truncate(*_read_text(path, remaining), remaining)
        files.append(ContextFile(relative, text, cut))
        remaining -= len(text)
    return GatheredContext(
        story_path=story_file.relative_to(root).as_posix(),
        story_text=story_text,
        files=tuple(files),
        omitted=tuple(omitted),
    )
