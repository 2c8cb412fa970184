"""`hybrid status`, `hybrid checkpoint show`, `hybrid stories` and `hybrid resume-args`:
checkpoints for a person at a terminal, or as JSON with --json.

Reading only: these commands never create or change a checkpoint (resume-args records, in the
ledger, that the resuming session continues the stories' run). Exit codes: docs/cli.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Callable

from mcp_server import checkpoints
from mcp_server.cli_grammar import EXIT_NOT_FOUND, check_known, fail, known_stories, print_json, story_list
from mcp_server.config import load_settings, project_root
from mcp_server.errors import HybridError
from mcp_server.stories import any_story_glob, parse_story, story_file_candidates, story_files

Command = Callable[[argparse.Namespace], int]


def add_subcommands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    status = sub.add_parser("status", help="the phases of every story and what comes next")
    status.add_argument("stories", nargs="*", help="story ids: 01.2,01.3 or 01.2 01.3 (default: every story)")
    _add_project(status, _status, json_help="one object per story: phases, next action, problem")

    checkpoint = sub.add_parser("checkpoint", help="one story's checkpoint")
    actions = checkpoint.add_subparsers(dest="checkpoint_command", required=True)
    show = actions.add_parser("show", help="print .claude/checkpoints/STORY.yaml once it has been checked")
    show.add_argument("story")
    _add_project(show, _show, json_help="the checkpoint's data and history as JSON")

    stories = sub.add_parser("stories", help="the story files found, with their acceptance-criteria counts")
    _add_project(stories, _stories, json_help="one object per story file: id, title, criteria, file, the other files matching its id")

    resume = sub.add_parser("resume-args", help="the pilot workflow's arguments that continue the unfinished stories, as JSON")
    resume.add_argument("stories", nargs="*", help="story ids: 01.2,01.3 or 01.2 01.3 (default: every started story)")
    resume.add_argument("--no-workflow", action="store_true", help=argparse.SUPPRESS)  # /hybrid:resume's own flag
    _add_project(resume, _resume_args)


def _add_project(parser: argparse.ArgumentParser, command: Command, json_help: str | None = None) -> None:
    parser.add_argument("--project", help="project directory (default: CLAUDE_PROJECT_DIR or cwd)")
    if json_help:
        parser.add_argument("--json", action="store_true", help=json_help)
    parser.set_defaults(func=_reporting_errors(command))


def _reporting_errors(command: Command) -> Command:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except HybridError as error:
            return fail("hybrid", error)

    return run


def _named(root: Path, story_glob: str, values: list[str]) -> list[str]:
    named = story_list(values)
    check_known(named, known_stories(root, story_glob))
    return named


def _root(args: argparse.Namespace) -> Path:
    return Path(args.project).resolve() if args.project else project_root()


def _status(args: argparse.Namespace) -> int:
    root = _root(args)
    story_glob = load_settings(root).stories.glob
    listings = checkpoints.list_story_status(root, story_glob, _named(root, story_glob, args.stories))
    if args.json:
        print_json([_status_json(listing) for listing in listings])
    elif not listings:
        print(f"hybrid: no stories yet: no story file matches {any_story_glob(story_glob)} and no checkpoint is under "
              f"{checkpoints.CHECKPOINTS_RELATIVE.as_posix()}/ (add a story file and check it with `hybrid stories`, "
              "or try `hybrid demo`)", file=sys.stderr)
        return EXIT_NOT_FOUND
    else:
        print(checkpoints.status_table(listings, titles=True))
    # Exit 1 for a checkpoint that cannot be read, or a story with neither file nor checkpoint.
    return 1 if any(row.checkpoint is None and not row.not_started for row in listings) else 0


def _status_json(listing: checkpoints.CheckpointListing) -> dict[str, object]:
    checkpoint = listing.checkpoint
    return {
        "story": listing.story,
        "title": checkpoint.data["title"] if checkpoint else listing.title,
        "phases": {name: phase["status"] for name, phase in checkpoint.phases.items()} if checkpoint else None,
        "next": checkpoints.next_action(checkpoint) if checkpoint else None,
        "not_started": listing.not_started,
        "problem": None if checkpoint or listing.not_started else listing.problem,
    }


def _resume_args(args: argparse.Namespace) -> int:
    """/hybrid:resume passes this JSON to the workflow as is: no table for the model to parse."""
    root = _root(args)
    story_glob = load_settings(root).stories.glob
    named = _named(root, story_glob, args.stories)
    plan = checkpoints.resume_plan(root, story_glob, named)
    if plan["stories"]:  # the resumed stories go on in their run, with its engine
        from mcp_server.runs import SESSION_VARIABLE, resume

        plan.update(resume(root, plan["stories"], os.environ.get(SESSION_VARIABLE) or None))
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
        print(f"hybrid: {error} (`/hybrid:pilot {args.story}` creates it; `hybrid status` lists the stories)",
              file=sys.stderr)
        return EXIT_NOT_FOUND
    if args.json:
        print_json({"file": checkpoint.path.relative_to(root).as_posix(), "next": checkpoints.next_action(checkpoint),
                    "data": checkpoint.data, "history": [dataclasses.asdict(entry) for entry in checkpoint.history]})
        return 0
    # The next action goes first, as a comment, so that `... | tail -1` still shows the latest history
    # line; a long history shows its last lines and the count of the rest.
    print(checkpoints.checkpoint_text(checkpoint, root), end="")
    return 0


def _stories(args: argparse.Namespace) -> int:
    root = _root(args)
    pattern = load_settings(root).stories.glob
    outputs = checkpoints.pipeline_outputs(root)
    found = story_files(root, pattern, outputs)
    if not found:
        print(f"hybrid: no story files match {any_story_glob(pattern)} under {root}: a story is a Markdown file named "
              "after its id (01.2-user-roles.md) with an Acceptance Criteria section (README, Your own project)",
              file=sys.stderr)
        return EXIT_NOT_FOUND
    entries = [_story_entry(root, story_id, pattern, outputs) for story_id, _ in found]
    if args.json:
        print_json(entries)
    else:
        rows = [("story", "ACs", "title", "file")] + [
            (e["story"], "?" if e["problem"] else str(e["criteria"]),
             f"cannot be used: {e['problem']}" if e["problem"] else str(e["title"]), _file_cell(e)) for e in entries]
        widths = [max(len(row[column]) for row in rows) for column in range(3)]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    return EXIT_NOT_FOUND if any(e["problem"] for e in entries) else 0


def _story_entry(root: Path, story_id: str, pattern: str, outputs: set[str]) -> dict[str, object]:
    """The file the pipeline uses for a story (its checkpoint's, else the first match) and the
    other files that match its id."""
    candidates = [path.relative_to(root).as_posix() for path in story_file_candidates(root, story_id, pattern, outputs)]
    entry: dict[str, object] = {"story": story_id, "criteria": None, "title": None, "file": candidates[0],
                                "recorded": checkpoints.checkpoint_path(root, story_id).is_file(), "problem": None}
    try:  # one unreadable or malformed file must not hide the others
        path = checkpoints.story_file_of(root, story_id, pattern)
        entry["file"] = path.relative_to(root).as_posix()
        story = parse_story(path, story_id)
        entry.update(criteria=len(story.acceptance_criteria), title=story.title)
    except HybridError as error:
        entry["problem"] = str(error)
    entry["also_matching"] = [name for name in candidates if name != entry["file"]]
    entry["recorded"] = entry["recorded"] and entry["file"] != candidates[0]  # its checkpoint's, not the glob's first
    return entry


def _file_cell(entry: dict[str, object]) -> str:
    cell = str(entry["file"])
    if entry["recorded"]:
        cell += " (recorded in its checkpoint)"
    others = entry["also_matching"]
    if others:
        cell += f"; {len(others)} more match{'es' if len(others) == 1 else ''} its id, not used: {', '.join(others)}"
    return cell
