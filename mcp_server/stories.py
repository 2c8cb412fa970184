"""Story ids and story files: the one rule for a valid id, and where a story's markdown lives."""

from __future__ import annotations

import re
from pathlib import Path

from mcp_server.errors import HybridError

STORY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class StoryIdError(HybridError, ValueError):
    """A story id that could escape a path or confuse a glob."""


def check_story_id(story: object) -> str:
    if not isinstance(story, str) or not STORY_ID.fullmatch(story) or ".." in story:
        raise StoryIdError(
            f"story id {story!r} is not valid: use letters, digits, '.', '_' or '-' "
            "(at most 64, starting with a letter or digit), for example 01.2"
        )
    return story


def find_story_file(root: Path, story: str, pattern: str) -> Path | None:
    """The first file matching the configured glob (sorted, so the answer is stable).

    A match must be followed by a separator, so story ``01.2`` finds ``01.2-user-roles.md``
    and ``01.2.user-roles.md`` but never ``01.23-other.md``.
    """
    check_story_id(story)  # the id rule also keeps glob syntax ('*', '?', '[') out of the pattern
    glob = pattern.format(story=story)
    root = Path(root)
    for candidate in sorted(root.glob(glob)):
        if not candidate.is_file():
            continue
        rest = candidate.name[len(story):] if candidate.name.startswith(story) else None
        if rest is not None and rest[:1] not in ("", ".", "-", "_", " "):
            continue
        if rest is not None and rest[:1] == "." and rest[1:2].isdigit():
            continue  # 01.2 must not match 01.23.md
        if ".git" in candidate.relative_to(root).parts:
            continue
        return candidate
    return None
