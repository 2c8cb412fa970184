"""`hybrid ab IDS`: the stories run by each engine in its own git worktree of the project (in
parallel unless --sequential), then `hybrid report --compare` over the two. `hybrid ab --remove
DIR` removes an earlier run's worktrees and folder. Everything is checked before the first
change: a project outside git, with no commit, or with uncommitted changes (unless
--include-uncommitted), an unknown story, a bad setting, no Claude Code CLI.

Exit codes (docs/cli.md): 0 both sessions finished and the comparison is printed; 1 an unknown
story, a session that failed or a comparison with nothing to compare; 2 a refusal or bad flag.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from mcp_server.ab.worktrees import AB_RELATIVE, AbRefused, Checkout, cleanup, create, inspect, refuse_changes, remove, write_manifest
from mcp_server.cli_grammar import EXIT_NOT_FOUND, check_known, story_list
from mcp_server.config import load_settings, project_root
from mcp_server.errors import HybridError
from mcp_server.pricing import PriceTable, PriceTableError
from mcp_server.stories import story_files


def add_subcommand(sub: argparse._SubParsersAction) -> None:
    ab = sub.add_parser("ab", help="run stories Claude-only and hybrid, each in its own git worktree, and compare what each measured",
                        description="Runs `/hybrid:pilot IDS engine=claude` and `engine=hybrid` in two git worktrees of the "
                                    "project at its current commit, then prints `hybrid report --compare` over them (docs/cli.md).")
    ab.add_argument("stories", nargs="*", help="story ids: 01.2,01.3 or 01.2 01.3")
    ab.add_argument("--project", help="project directory (default: CLAUDE_PROJECT_DIR or cwd); a git repository with a commit")
    ab.add_argument("--sequential", action="store_true", help="run the two engines one after the other (default: at once)")
    ab.add_argument("--include-uncommitted", action="store_true",
                    help="copy uncommitted changes (changed and untracked files) into both worktrees instead of refusing")
    ab.add_argument("--cleanup", action="store_true",
                    help="after the report, remove the worktrees' checkouts; each side's ledger and checkpoints stay in the A/B folder")
    ab.add_argument("--remove", metavar="DIR", help="remove an earlier A/B folder (.claude/hybrid/ab/<stamp>) and its worktrees, then stop")
    ab.add_argument("--dir", help="the A/B folder to create (default: .claude/hybrid/ab/<UTC stamp> in the project)")
    ab.add_argument("--claude", help="the Claude Code CLI to run (default: found as `hybrid demo` finds it)")
    ab.add_argument("--installed-plugin", action="store_true",
                    help="use the plugin as installed in Claude Code (default: load this plugin's folder with --plugin-dir)")
    ab.add_argument("--timeout", type=float, default=3600, help="seconds each session may take (default 3600)")
    ab.add_argument("--json", action="store_true", help="print the comparison as JSON")
    ab.set_defaults(func=main)


def _say(text: str) -> None:
    print(f"hybrid ab: {text}", file=sys.stderr)


def _claude(args: argparse.Namespace, say: Callable[[str], None]) -> str:
    if args.claude:
        path = Path(args.claude).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise AbRefused(f"--claude {args.claude}: not an executable file")
        return str(path.resolve())
    from mcp_server.demo.run import find_claude

    return find_claude(say)


def _folder(args: argparse.Namespace, checkout: Checkout) -> Path:
    if args.dir:
        return Path(args.dir).expanduser().resolve()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = checkout.project / AB_RELATIVE
    folder, n = base / stamp, 1
    while folder.exists():
        n += 1
        folder = base / f"{stamp}-{n}"
    return folder


def main(args: argparse.Namespace, say: Callable[[str], None] = _say) -> int:
    if args.remove:
        if args.stories:
            raise AbRefused("--remove DIR takes no story ids")
        for path in remove(Path(args.remove).expanduser().resolve()):
            say(f"removed the worktree {path}")
        say(f"removed {args.remove}")
        return 0
    stories = story_list(args.stories)
    if not stories:
        raise AbRefused("name the stories to run: hybrid ab 01.2,01.3")
    root = Path(args.project).resolve() if args.project else project_root()
    settings = load_settings(root)
    try:
        prices = PriceTable.load(settings.prices)
    except PriceTableError as error:
        raise AbRefused(f"prices: {error}") from None
    check_known(stories, [story for story, _ in story_files(root, settings.stories.glob)])
    checkout = inspect(root)
    refuse_changes(checkout, args.include_uncommitted)
    claude = _claude(args, say)
    folder = _folder(args, checkout)
    from mcp_server.ab.sessions import ENGINES, run_sessions, user_environment

    made = create(checkout, folder, ENGINES, stories)
    say(f"worktrees at {checkout.commit[:12]} in {folder}" + (f", with {len(checkout.changes)} uncommitted file(s)" if checkout.changes else ""))
    if made.settings_copied:
        say(f"copied into both, as git ignores them: {', '.join(sorted(made.settings_copied))}")
    environment = user_environment()
    outcomes = run_sessions(
        claude, {engine: made.project(engine) for engine in ENGINES}, stories,
        env_for=lambda engine: dict(environment), parallel=not args.sequential,
        plugin_dir=None if args.installed_plugin else _plugin_root(), timeout_s=args.timeout, log_dir=folder, say=say,
    )
    write_manifest(made, stories, sessions={e: {"returncode": o.returncode, "seconds": round(o.seconds, 1), "problem": o.problem}
                                            for e, o in outcomes.items()}, parallel=not args.sequential)
    mode = "at once" if not args.sequential else "one after the other"
    note = f"hybrid ab at commit {checkout.commit[:12]}: A ran engine=claude, B engine=hybrid, {mode}"
    code = 0 if all(o.ok for o in outcomes.values()) else EXIT_NOT_FOUND
    code = max(code, write_comparison(folder, made.project("claude"), made.project("hybrid"), prices, settings, stories, note, args.json))
    if args.cleanup:
        for path in cleanup(folder):
            say(f"removed the worktree {path} (its ledger and checkpoints stay there)")
    say(f"the A/B folder: {folder} (hybrid ab --remove {folder} removes it)")
    return code


def _plugin_root() -> Path:
    from mcp_server.demo.run import PLUGIN_ROOT

    return PLUGIN_ROOT


def write_comparison(folder: Path, a: Path, b: Path, prices: PriceTable, settings, stories, note: str, as_json: bool,
                     out=None) -> int:
    """compare.md and compare.json in the folder, and one of them on stdout; 1 when there is
    nothing to compare (a side with no ledger or checkpoint: its session failed early)."""
    from mcp_server.compare.cli import build_comparison
    from mcp_server.compare.render import render_markdown, report_json

    try:
        comparison = build_comparison(str(a), str(b), prices, settings, stories=stories, note=note)
    except HybridError as error:
        _say(f"no comparison: {error}")
        return EXIT_NOT_FOUND
    markdown, data = render_markdown(comparison), report_json(comparison)
    (folder / "compare.md").write_text(markdown, encoding="utf-8")
    (folder / "compare.json").write_text(data, encoding="utf-8")
    (out or sys.stdout).write(data if as_json else markdown)
    return 0
