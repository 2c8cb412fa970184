"""What GLM gets to read: the story's markdown and the context files, within a token budget.

Claude passes paths, never contents; the files are read here, confined to the project.
Truncation is always visible to the model, so it never mistakes a cut file for a whole one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mcp_server.config import Settings
from mcp_server.delegation.errors import DelegationError
from mcp_server.delegation.writes import confine
from mcp_server.checkpoints import story_file_of
from mcp_server.errors import HybridError

# The story is the spec: it may use up to this share of the budget before files.
STORY_SHARE = 0.5


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


def truncate(text: str, max_chars: int) -> tuple[str, bool]:
    """Cut at a line boundary and say so, with how much was kept."""
    if len(text) <= max_chars:
        return text, False
    kept = text[:max_chars]
    if "\n" in kept:
        kept = kept[: kept.rindex("\n") + 1]
    total_lines = text.count("\n") + 1
    kept_lines = kept.count("\n")
    marker = f"\n[... truncated by hybrid: {kept_lines} of {total_lines} lines shown ...]\n"
    return kept + marker, True


def _read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


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
    story_text, _ = truncate(_read_text(story_file), int(budget_chars * STORY_SHARE))
    remaining = budget_chars - len(story_text)

    resolved: list[tuple[str, Path]] = []
    for relative in dict.fromkeys(context_files):  # keep order, drop repeats
        path = confine(root, relative, purpose="read")
        if not path.is_file():
            raise DelegationError(f"context file {relative!r} does not exist in the project")
        resolved.append((path.relative_to(root).as_posix(), path))

    files, omitted = [], []
    for relative, path in resolved:
        if remaining < 200:
            omitted.append(relative)
            continue
        text, cut = truncate(_read_text(path), remaining)
        files.append(ContextFile(relative, text, cut))
        remaining -= len(text)
    return GatheredContext(
        story_path=story_file.relative_to(root).as_posix(),
        story_text=story_text,
        files=tuple(files),
        omitted=tuple(omitted),
    )
