"""`hybrid status`, `hybrid checkpoint show` and `hybrid stories`: checkpoints for a person at a terminal.

Reading only: these commands never create or change a checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from mcp_server import checkpoints
from mcp_server.config import load_settings, project_root
from mcp_server.errors import HybridError
from mcp_server.stories import StoryFileError, any_story_glob, parse_story, story_files

Command = Callable[[argparse.Namespace], int]


def add_subcommands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    status = sub.add_parser("status", help="the phases of every story and what comes next")
    status.add_argument("stories", nargs="*", help="story ids, e.g. 01.2 01.3 or 01.2,01.3 (default: every checkpoint)")
    _add_project(status, _status)

    checkpoint = sub.add_parser("checkpoint", help="one story's checkpoint")
    actions = checkpoint.add_subparsers(dest="checkpoint_command", required=True)
    show = actions.add_parser("show", help="print .claude/checkpoints/STORY.yaml once it has been checked")
    show.add_argument("story")
    _add_project(show, _show)

    stories = sub.add_parser("stories", help="the story files found, with their acceptance-criteria counts")
    _add_project(stories, _stories)

    resume = sub.add_parser("resume-args", help="the pilot workflow's arguments that continue the unfinished stories, as JSON")
    resume.add_argument("stories", nargs="*", help="story ids (default: every started story)")
    resume.add_argument("--no-workflow", action="store_true", help=argparse.SUPPRESS)  # /hybrid:resume's own flag
    _add_project(resume, _resume_args)


def _add_project(parser: argparse.ArgumentParser, command: Command) -> None:
    parser.add_argument("--project", help="project directory (default: CLAUDE_PROJECT_DIR or cwd)")
    parser.set_defaults(func=_reporting_errors(command))


def _reporting_errors(command: Command) -> Command:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except HybridError as error:
            print(f"hybrid: {error}", file=sys.stderr)
            return 1

    return run


def _root(args: argparse.Namespace) -> Path:
    return Path(args.project).resolve() if args.project else project_root()


def _status(args: argparse.Namespace) -> int:
    root = _root(args)
    named = [story for item in args.stories for story in item.split(",") if story.strip()]
    listings = checkpoints.list_story_status(root, load_settings(root).stories.glob, named)
    print(checkpoints.status_table(listings, titles=True))
    # Exit 1 for a checkpoint that cannot be read, or a story with neither file nor checkpoint.
    return 1 if any(row.checkpoint is None and not row.not_started for row in listings) else 0


def _resume_args(args: argparse.Namespace) -> int:
    """/hybrid:resume passes this JSON to the workflow as is: no table for the model to parse."""
    root = _root(args)
    named = [story for item in args.stories for story in item.split(",") if story.strip()]
    plan = checkpoints.resume_plan(root, load_settings(root).stories.glob, named)
    print(json.dumps(plan, ensure_ascii=False))
    unknown = [story for story in named if story in plan["left"] and plan["left"][story] == checkpoints.NOT_STARTED]
    if unknown:
        print(f"hybrid: no story file or checkpoint for {', '.join(unknown)}", file=sys.stderr)
        return 1
    if not plan["stories"]:
        print("hybrid: nothing to resume: every story is done, blocked or not started", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    root = _root(args)
    try:
        checkpoint = checkpoints.load_checkpoint(root, args.story)
    except checkpoints.CheckpointNotFound as error:
        print(f"hybrid: {error} (the first checkpoint_read or checkpoint_write creates it)", file=sys.stderr)
        return 1
    # The next action goes first, as a comment, so that `... | tail -1` still shows the latest history
    # line; a long history shows its last lines and the count of the rest.
    print(checkpoints.checkpoint_text(checkpoint, root), end="")
    return 0


def _stories(args: argparse.Namespace) -> int:
    root = _root(args)
    pattern = load_settings(root).stories.glob
    found = story_files(root, pattern)
    if not found:
        print(f"no story files match {any_story_glob(pattern)} under {root}")
        return 1
    rows, broken = [("story", "ACs", "title", "file")], 0
    for story_id, path in found:
        relative = path.relative_to(root).as_posix()
        try:  # one unreadable or malformed file must not hide the others
            story = parse_story(path, story_id)
        except StoryFileError as error:
            broken += 1
            rows.append((story_id, "?", f"cannot be used: {error}", relative))
            continue
        rows.append((story.id, str(len(story.acceptance_criteria)), story.title, relative))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    return 1 if broken else 0
