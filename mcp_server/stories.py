"""Story ids and story files: the one rule for a valid id, and where a story's markdown lives."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection

from mcp_server.errors import HybridError

ECHO_LIMIT = 100  # characters of a refused story id quoted back
STORY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class StoryIdError(HybridError, ValueError):
    """A story id that could escape a path or confuse a glob."""

    exit_code = 2  # a bad argument (docs/cli.md)


def check_story_id(story: object) -> str:
    if not isinstance(story, str) or not STORY_ID.fullmatch(story) or ".." in story:
        shown = repr(story)
        if len(shown) > ECHO_LIMIT:  # a bad id may be anything, megabytes included: echo its start
            shown = f"{shown[:ECHO_LIMIT]}... ({len(story):,} characters)" if isinstance(story, str) else shown[:ECHO_LIMIT] + "..."
        raise StoryIdError(
            f"story id {shown} is not valid: use letters, digits, '.', '_' or '-' "
            "(at most 64, starting with a letter or digit), for example 01.2"
        )
    return story


# The pipeline's own output folders: P1 writes docs/design/<story>-ux.md, which the default glob
# (docs/**/{story}*.md) also matches. Nothing in them is ever a story file.
OUTPUT_FOLDERS = ("docs/design",)


def is_pipeline_output(relative: str, outputs: Collection[str] = ()) -> bool:
    """A file the pipeline wrote: under an output folder, or one of ``outputs`` (the artifacts
    the checkpoints list, such as the docs P7 wrote)."""
    return relative in outputs or any(relative.startswith(f"{folder}/") for folder in OUTPUT_FOLDERS)


def story_file_candidates(root: Path, story: str, pattern: str, outputs: Collection[str] = ()) -> list[Path]:
    """Every file the configured glob matches for ``story``, sorted, leaving out the pipeline's
    own outputs and anything under .git.

    A match must be followed by a separator, so story ``01.2`` finds ``01.2-user-roles.md``
    and ``01.2.user-roles.md`` but never ``01.23-other.md``.
    """
    check_story_id(story)  # the id rule also keeps glob syntax ('*', '?', '[') out of the pattern
    glob = pattern.replace("{story}", story)  # not str.format: a stray brace must not raise KeyError
    root = Path(root)
    found = []
    for candidate in sorted(root.glob(glob)):
        if not candidate.is_file():
            continue
        rest = candidate.name[len(story):] if candidate.name.startswith(story) else None
        if rest is not None and rest[:1] not in ("", ".", "-", "_", " "):
            continue
        if rest is not None and rest[:1] == "." and rest[1:2].isdigit():
            continue  # 01.2 must not match 01.23.md
        relative = candidate.relative_to(root)
        if ".git" in relative.parts or is_pipeline_output(relative.as_posix(), outputs):
            continue
        found.append(candidate)
    return found


def find_story_file(root: Path, story: str, pattern: str, outputs: Collection[str] = ()) -> Path | None:
    """The first of story_file_candidates (sorted, so the answer is stable); None when there is none.

    When several files match, the first with acceptance criteria wins: the docs P7 writes
    (docs/features/01.2-user-roles.md) share the story's id but have none.
    Only a story without a checkpoint is looked up this way: a checkpoint records its story file
    when it is created, and every later lookup uses that file (checkpoints.story_file_of).
    """
    candidates = story_file_candidates(root, story, pattern, outputs)
    if len(candidates) > 1:  # a story has acceptance criteria; a doc that only shares its id does not
        with_criteria = [path for path in candidates if _has_criteria(path, story)]
        candidates = with_criteria or candidates
    return candidates[0] if candidates else None


def _has_criteria(path: Path, story: str) -> bool:
    try:
        return bool(parse_story(path, story).acceptance_criteria)
    except StoryFileError:
        return False


# --- Story files: title and acceptance criteria -------------------------------------------
#
# The conventions accepted (docs/checkpoints.md shows examples):
# 1. A section headed "Acceptance Criteria" / "Acceptance criteria" / "ACs" (any heading level,
#    any case, or a line that is only **Acceptance Criteria**) whose list items (-, *, +, 1., 1),
#    - [ ] checkboxes) and "### AC-n: ..." headings are the ACs. An item may carry its own id
#    (AC-1: text, **AC-1**: text, AC1 - text); otherwise it is numbered AC-1, AC-2, ... by
#    position. The section ends at the next heading of the same or a higher level.
# 2. Without such a section (or with an empty one): every line that starts with an AC id
#    (AC-1: text), wherever it is.
# In both, Given/When/Then/And/But lines and indented or nested lines belong to the AC above.
# Lines inside ``` fences are never ACs.

ID_PREFIX = re.compile(r"^(?:[A-Za-z]+[-_]?)?\d+(?:\.\d+)*(?=$|[-_. ])")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_AC_SECTION = re.compile(r"^(?:acceptance\s+criteria\b.*|acs?\s*:?)$", re.IGNORECASE)  # not "AC-1: ..."
_BOLD_SECTION = re.compile(r"^\s*\*\*\s*(acceptance\s+criteria|acs?)\s*:?\s*\*\*\s*:?\s*$", re.IGNORECASE)
_LIST_ITEM = re.compile(r"^(?P<indent>\s*)(?:[-*+]|\d+[.)])\s+(?:\[[ xX]\]\s+)?(?P<text>.*)$")
_AC_ID = re.compile(
    r"^\**\s*AC[-_ ]?(?P<number>\d+(?:\.\d+)*)\s*\**\s*(?:[:.)\-\u2013\u2014]\s*)?\**\s*(?P<text>.*)$",
    re.IGNORECASE,
)
_AC_LINE = re.compile(r"^(?:#{1,6}\s+|(?:[-*+]|\d+[.)])\s+(?:\[[ xX]\]\s+)?)?(?P<rest>\**\s*AC[-_ ]?\d.*)$", re.IGNORECASE)
_GHERKIN = re.compile(r"^(?:[-*+]\s+)?\**\s*(?:given|when|then|and|but)\b", re.IGNORECASE)


class StoryFileError(HybridError):
    """A story file that cannot be read or whose acceptance criteria contradict each other."""


@dataclass(frozen=True)
class AC:
    id: str  # normalised: AC-1
    text: str


@dataclass(frozen=True)
class Story:
    id: str
    title: str
    path: Path
    acceptance_criteria: list[AC] = field(default_factory=list)


@dataclass
class _Draft:
    id: str | None
    lines: list[str]
    line_number: int
    indent: int = 0


def story_id_from_name(name: str) -> str | None:
    """The story id a file name starts with (01.2-user-roles.md -> 01.2), or None."""
    match = ID_PREFIX.match(name)
    if match is None or not STORY_ID.fullmatch(match.group(0)):
        return None
    return match.group(0)


def parse_story(path: Path, story: str | None = None) -> Story:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise StoryFileError(f"cannot read story file {path}: {error}") from None
    story_id = story or story_id_from_name(path.name) or path.stem
    lines = _unfenced_lines(text)
    return Story(story_id, _title(lines, story_id, path), path, _acceptance_criteria(lines, path))


def story_files(root: Path, pattern: str, outputs: Collection[str] = ()) -> list[tuple[str, Path]]:
    """(id, file) of every story the glob finds, one per id, in natural id order, unparsed.

    A file counts as a story when its name starts with an id (01.2-x.md, PROJ-12.md); the file
    kept for an id is the one find_story_file picks, so both always agree.
    """
    root = Path(root)
    ids = {
        story_id
        for candidate in root.glob(any_story_glob(pattern))
        if candidate.is_file() and ".git" not in (relative := candidate.relative_to(root)).parts
        and not is_pipeline_output(relative.as_posix(), outputs)
        and (story_id := story_id_from_name(candidate.name)) is not None
    }
    found = ((story_id, find_story_file(root, story_id, pattern, outputs)) for story_id in sorted(ids, key=natural_key))
    return [(story_id, path) for story_id, path in found if path is not None]


def list_stories(root: Path, pattern: str) -> list[Story]:
    """Every story the glob finds, parsed (a file that cannot be parsed raises StoryFileError)."""
    return [parse_story(path, story_id) for story_id, path in story_files(root, pattern)]


def any_story_glob(pattern: str) -> str:
    """The story glob with {story} as a wildcard: docs/**/{story}*.md -> docs/**/*.md."""
    parts = pattern.format(story="*").split("/")
    return "/".join(part if part == "**" else re.sub(r"\*+", "*", part) for part in parts)


def natural_key(text: str) -> list[tuple[int, int | str]]:
    """Sort key that puts 01.2 before 01.10."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part]


def _unfenced_lines(text: str) -> list[tuple[int, str]]:
    numbered, fenced = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if not fenced:
            numbered.append((number, line))
    return numbered


def _title(lines: list[tuple[int, str]], story_id: str, path: Path) -> str:
    for _, line in lines:
        if line.startswith("# "):
            title = line[2:].strip().strip("#").strip()
            leading_id = rf"(?:story\s+)?(?:{re.escape(story_id)}|\d+(?:\.\d+)+)\b|story\s+[A-Za-z]*[-_]?\d+(?:\.\d+)*\b"
            title = re.sub(rf"^(?:{leading_id})\s*[:.\-\u2013\u2014]?\s*", "", title, flags=re.IGNORECASE)
            if title:
                return title
    return path.stem


def _acceptance_criteria(lines: list[tuple[int, str]], path: Path) -> list[AC]:
    section = _section_lines(lines)
    drafts = _section_drafts(section) if section is not None else []
    return _number(drafts or _anywhere_drafts(lines), path)


def _section_lines(lines: list[tuple[int, str]]) -> list[tuple[int, str]] | None:
    for index, (_, line) in enumerate(lines):
        heading = _HEADING.match(line)
        if heading and _AC_SECTION.match(heading.group(2)):
            level = len(heading.group(1))
            body = lines[index + 1:]
            for end, (_, other) in enumerate(body):
                deeper = _HEADING.match(other)
                if deeper and len(deeper.group(1)) <= level:
                    return body[:end]
            return body
        if _BOLD_SECTION.match(line):
            body = lines[index + 1:]
            for end, (_, other) in enumerate(body):
                if _HEADING.match(other) or _BOLD_SECTION.match(other):
                    return body[:end]
            return body
    return None


def _section_drafts(section: list[tuple[int, str]]) -> list[_Draft]:
    drafts: list[_Draft] = []
    item_indent: int | None = None
    for number, line in section:
        item = _LIST_ITEM.match(line)
        indent = len(item.group("indent")) if item else 0
        if item and (item_indent is None or indent <= item_indent) and not _is_gherkin(item.group("text")):
            item_indent = indent
            ac_id, text = _split_id(item.group("text"))
            drafts.append(_Draft(ac_id, [text], number, indent))
        elif not item and (ac_line := _ac_line(line)) is not None:  # "### AC-1: ..." or a bare "AC-1: ..."
            ac_id, text = _split_id(ac_line)
            drafts.append(_Draft(ac_id, [text], number, 0))
        elif drafts and _continues(line, drafts[-1]):
            drafts[-1].lines.append(_strip_bullet(line))
    return drafts


def _anywhere_drafts(lines: list[tuple[int, str]]) -> list[_Draft]:
    drafts: list[_Draft] = []
    current: _Draft | None = None
    for number, line in lines:
        ac_line = _ac_line(line)
        if ac_line is not None:
            ac_id, text = _split_id(ac_line)
            current = _Draft(ac_id, [text], number, len(line) - len(line.lstrip()))
            drafts.append(current)
        elif current is not None and line.strip() and _continues(line, current):
            current.lines.append(_strip_bullet(line))
        elif current is not None and line.strip():
            current = None  # prose after an AC ends it
    return drafts


def _ac_line(line: str) -> str | None:
    """The text from the AC id on, when the line starts (after any bullet or #) with one."""
    match = _AC_LINE.match(line.strip())
    return match.group("rest") if match and _AC_ID.match(match.group("rest")) else None


def _continues(line: str, draft: _Draft) -> bool:
    if not line.strip():
        return False
    indent = len(line) - len(line.lstrip())
    return indent > draft.indent or _is_gherkin(line.strip())


def _is_gherkin(text: str) -> bool:
    return bool(_GHERKIN.match(text.strip()))


def _strip_bullet(line: str) -> str:
    item = _LIST_ITEM.match(line)
    return (item.group("text") if item else line).strip()


def _split_id(text: str) -> tuple[str | None, str]:
    match = _AC_ID.match(text.strip())
    if match is None:
        return None, text.strip()
    return f"AC-{match.group('number')}", match.group("text").strip().strip("*").strip()


def _number(drafts: list[_Draft], path: Path) -> list[AC]:
    seen: dict[str, int] = {}
    for draft in drafts:
        if draft.id is None:
            continue
        if draft.id in seen:
            raise StoryFileError(
                f"{path}: {draft.id} appears twice (lines {seen[draft.id]} and {draft.line_number}); give each AC its own id"
            )
        seen[draft.id] = draft.line_number
    criteria = []
    for position, draft in enumerate(drafts, start=1):
        ac_id = draft.id
        if ac_id is None:
            number = position
            while f"AC-{number}" in seen:
                number += 1
            ac_id = f"AC-{number}"
            seen[ac_id] = draft.line_number
        text = "\n".join(line for line in draft.lines if line)
        criteria.append(AC(ac_id, text))
    return criteria
