"""What every `hybrid` and `hybrid-monitor` command shares: the version, the story-list form,
the check that named stories exist, and the exit codes (docs/cli.md has the table).

Messages go to stderr, one line each; stdout carries only what the command was asked for.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

from mcp_server.errors import HybridError

EXIT_OK = 0
EXIT_NOT_FOUND = 1  # nothing to show: an unknown story, no ledger or checkpoint yet, a file that cannot be used
EXIT_USAGE = 2  # a bad argument or setting: a flag, .claude/hybrid.yaml, --prices, an output that cannot be written

PLUGIN_MANIFEST = Path(__file__).resolve().parents[1] / ".claude-plugin" / "plugin.json"
_SEPARATORS = re.compile(r"[\s,]+")


class UnknownStory(HybridError):
    """A story id with no story file, checkpoint or ledger row."""


@lru_cache(maxsize=1)
def version() -> str:
    """The plugin's version, from the one place that states it (an installed plugin has no
    package metadata: its code runs from the plugin folder)."""
    try:
        return str(json.loads(PLUGIN_MANIFEST.read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError):
        return "unknown"


def add_version(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")


def story_list(values: str | Sequence[str] | None) -> list[str]:
    """`01.2,01.3`, `01.2 01.3` and `"01.2, 01.3"` alike: ids in the order given, once each."""
    if values is None:
        return []
    items = [values] if isinstance(values, str) else list(values)
    found: list[str] = []
    for item in items:
        for story in _SEPARATORS.split(str(item)):
            if story and story not in found:
                found.append(story)
    return found


def check_known(named: Iterable[str], known: Iterable[str]) -> None:
    """Raise UnknownStory, naming the known ids, for the named ids that are not among them (and
    StoryIdError, exit 2, for one that is not an id at all)."""
    from mcp_server.stories import check_story_id

    named = [check_story_id(story) for story in named]
    known = list(known)
    unknown = [story for story in named if story not in known]
    if unknown:
        listed = ", ".join(known) if known else "none yet (hybrid stories lists the story files found)"
        plural = "ies" if len(unknown) > 1 else "y"
        raise UnknownStory(f"unknown stor{plural} {', '.join(unknown)}; known: {listed}")


def known_stories(root: Path, story_glob: str) -> list[str]:
    """Every id the project knows: its story files, its checkpoints and its ledger's stories."""
    from mcp_server.checkpoints import checkpoints_dir
    from mcp_server.ledger import Ledger, ledger_path
    from mcp_server.stories import natural_key, story_files

    ids = {story for story, _ in story_files(root, story_glob)}
    ids.update(path.stem for path in checkpoints_dir(root).glob("*.yaml"))
    if ledger_path(root).is_file():
        ledger = Ledger(ledger_path(root))
        ids.update(ledger.stories())
        for notice in ledger.notices:  # this first opening may have moved a corrupt ledger aside
            print(f"hybrid: {notice}", file=sys.stderr)
    return sorted(ids, key=natural_key)


def exit_code(error: BaseException) -> int:
    """EXIT_USAGE for a bad argument or setting, EXIT_NOT_FOUND for anything else the user can fix."""
    return int(getattr(error, "exit_code", EXIT_NOT_FOUND))


def fail(prog: str, error: BaseException | str, code: int | None = None) -> int:
    print(f"{prog}: {error}", file=sys.stderr)
    return exit_code(error) if code is None and not isinstance(error, str) else (code or EXIT_NOT_FOUND)


def print_json(value: object) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))
