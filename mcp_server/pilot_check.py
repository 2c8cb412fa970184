"""`hybrid pilot-check ARGUMENTS`: /hybrid:pilot's arguments checked before anything runs.

The command runs it first and starts nothing when it fails: an unknown option or a typo
(`max_review_round=3`, `fronted=01.2`, `--dry-run`) is refused with the list of known options,
and a story id without a story file is refused before P1 starts an agent. workflows/pilot.js
refuses unknown options too (it may be called without the command); its KNOWN_OPTIONS and
KNOWN_FLAGS are these (tests/test_pilot_check.py compares them).
"""

from __future__ import annotations

import argparse
import difflib
from pathlib import Path

from mcp_server.cli_grammar import EXIT_NOT_FOUND, EXIT_USAGE, fail, story_list
from mcp_server.config import load_settings, project_root
from mcp_server.errors import HybridError
from mcp_server.ledger_runs import ENGINES
from mcp_server.stories import check_story_id

# option=value words of the command line, and what each takes
KNOWN_OPTIONS = {
    "max_review_rounds": "max_review_rounds=N (review rounds before a story stops, default 2)",
    "frontend": "frontend=<ids> (the UI stories: frontend-dev does their P3)",
    "phases": "phases=P1,P2,... (run only these phases)",
    "engine": "engine=hybrid|claude (who writes the code: GLM, the default, or Claude agents)",
}
PHASES = ("P1", "P2", "P3", "P4", "P5", "P6", "P7")
KNOWN_FLAGS = {"--no-workflow": "--no-workflow (Agent calls instead of the workflow)"}


PROG = "hybrid pilot-check"


class PilotArgumentError(HybridError):
    exit_code = EXIT_USAGE


def known_options() -> str:
    return "; ".join([*KNOWN_OPTIONS.values(), *KNOWN_FLAGS.values()])


def _unknown(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f"{word} (did you mean {close[0]}?)" if close else word


def parse_pilot_line(words: list[str]) -> tuple[list[str], dict[str, str], list[str]]:
    """(story ids, options, flags) of a pilot command line; PilotArgumentError for an unknown
    option or flag, naming the known ones."""
    stories, options, flags, unknown = [], {}, [], []
    for word in " ".join(words).split():
        if word.startswith("-"):
            (flags if word in KNOWN_FLAGS else unknown).append(word if word in KNOWN_FLAGS else _unknown(word, list(KNOWN_FLAGS)))
        elif "=" in word:
            key, value = word.split("=", 1)
            if key in KNOWN_OPTIONS:
                options[key] = value
            else:
                unknown.append(_unknown(key, list(KNOWN_OPTIONS)) + f" in {word}")
        else:
            stories += story_list(word)
    if unknown:
        raise PilotArgumentError(f"unknown option{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}; "
                                 f"the pilot knows: {known_options()}")
    rounds = options.get("max_review_rounds")
    if rounds is not None and not (rounds.isdigit() and int(rounds) >= 1):
        raise PilotArgumentError(f"max_review_rounds={rounds}: a whole number from 1 up")
    engine = options.get("engine")
    if engine is not None and engine not in ENGINES:
        raise PilotArgumentError(f"engine={engine}: {_unknown(engine, list(ENGINES))} is not an engine; "
                                 f"the engines are {', '.join(ENGINES)}")
    phases = [p for p in story_list(options.get("phases")) if p not in PHASES]
    if phases:
        raise PilotArgumentError(f"phases={options['phases']}: {', '.join(phases)} is not a phase (P1 to P7)")
    for story in story_list(options.get("frontend")):
        if story not in stories:
            raise PilotArgumentError(f"frontend={options['frontend']}: {story} is not one of the stories to run "
                                     f"({', '.join(stories) or 'none given'})")
    for story in stories:
        check_story_id(story)  # StoryIdError: a bad argument, exit 2
    if not stories:
        raise PilotArgumentError(f"no story ids given, e.g. /hybrid:pilot 01.2,01.3; the pilot knows: {known_options()}")
    return stories, options, flags


def main(argv: list[str]) -> int:
    """`hybrid pilot-check [--project DIR] ARGUMENTS...`: the words are the pilot's own, flags
    included, so they are not parsed as this command's options."""
    from mcp_server.checkpoints import story_file_of

    words = list(argv)
    root = project_root()
    if words[:1] == ["--project"] and len(words) > 1:
        root, words = Path(words[1]).resolve(), words[2:]
    try:
        stories, _, _ = parse_pilot_line(words)
        story_glob = load_settings(root).stories.glob
        found, missing = [], []
        for story in stories:
            try:
                found.append(f"{story} {story_file_of(root, story, story_glob).relative_to(root).as_posix()}")
            except HybridError as error:
                missing.append(str(error))
    except HybridError as error:
        return fail(PROG, error)
    if missing:
        return fail(PROG, "nothing started: " + "; ".join(missing) + " (`hybrid stories` lists the story files found)",
                    EXIT_NOT_FOUND)
    print("stories: " + "; ".join(found))
    return 0


def add_subcommand(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    # `hybrid pilot-check ...` is main() above; hybrid's main() hands its words over as they are.
    sub.add_parser("pilot-check", add_help=False,
                   help="/hybrid:pilot's arguments checked before anything runs: known options, a story file per id")
