"""The two git worktrees of an A/B run: the checks that refuse before anything changes, making
them at the current commit (with the uncommitted changes copied in when asked), and removing
them. Every git call goes through ``git``; a refusal raises ``AbRefused`` before the first
change.

Layout: `<project>/.claude/hybrid/ab/<stamp>/` holds `ab.json` (the manifest: project, commit,
stories, worktrees), one worktree per engine (`claude/`, `hybrid/`), each session's log, and
the comparison (`compare.md`, `compare.json`). It sits under the plugin's own state folder, so
the project's status check and `git status` of the product's state ignore it like the ledger.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

from mcp_server.checkpoints import CHECKPOINTS_RELATIVE
from mcp_server.errors import HybridError
from mcp_server.ledger import LEDGER_RELATIVE

AB_RELATIVE = LEDGER_RELATIVE.parent / "ab"  # .claude/hybrid/ab
MANIFEST = "ab.json"
# The plugin's own state: never a reason to refuse, never copied into a worktree (each side
# starts with no checkpoint and no ledger).
STATE_PREFIXES = (LEDGER_RELATIVE.parent.as_posix() + "/", CHECKPOINTS_RELATIVE.as_posix() + "/")
GIT_TIMEOUT_S = 120
# The project's own settings for the plugin and for Claude Code: when git ignores them they are
# not in a worktree, yet both runs need them (the GLM endpoint, the test command's permission
# rule), so they are copied in.
SETTINGS_FILES = (".claude/hybrid.yaml", ".claude/settings.json", ".claude/settings.local.json")


class AbRefused(HybridError):
    """A project, folder or flag `hybrid ab` cannot use; nothing was changed."""

    exit_code = 2  # like a --dir that cannot be used (docs/cli.md)


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    git_binary = shutil.which("git")
    if git_binary is None:
        raise AbRefused("hybrid ab needs git on PATH")
    done = subprocess.run([git_binary, *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S,
                          env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"})
    if check and done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise AbRefused(f"git {args[0]} failed in {cwd}: {tail[0]}")
    return done


@dataclass(frozen=True)
class Checkout:
    """The project as git sees it: its repository's top folder, the project's place in it, the
    commit, and the changes not in that commit (paths relative to the top folder)."""

    project: Path
    top: Path
    inside: PurePosixPath  # the project folder within the repository ('.' at its top)
    commit: str
    changes: tuple[str, ...] = ()


def inspect(project: Path) -> Checkout:
    """Refuse a folder that is not in a git repository or has no commit yet."""
    if not project.is_dir():
        raise AbRefused(f"--project {project}: no such folder")
    top = git(project, "rev-parse", "--show-toplevel", check=False)
    if top.returncode != 0:
        raise AbRefused(f"{project} is not in a git repository: hybrid ab runs each engine in a git worktree of it (git init, then commit)")
    root = Path(top.stdout.strip()).resolve()
    head = git(project, "rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
    if head.returncode != 0:
        raise AbRefused(f"{root} has no commit yet: commit the project, then run hybrid ab")
    inside = PurePosixPath(project.resolve().relative_to(root).as_posix())
    return Checkout(project.resolve(), root, inside, head.stdout.strip(), tuple(_changes(root)))


def _changes(top: Path) -> list[str]:
    """Tracked files changed (staged or not) and untracked files not ignored, outside the
    plugin's state folders. Renames give their new path."""
    out = git(top, "status", "--porcelain=v1", "-z", "--untracked-files=all").stdout
    entries = out.split("\0")
    paths, i = [], 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        status, path = entry[:2], entry[3:]
        if "R" in status or "C" in status:
            i += 1  # the old path follows
        if not any(f"/{prefix}" in f"/{path}" for prefix in STATE_PREFIXES):
            paths.append(path)
    return sorted(set(paths))


def refuse_changes(checkout: Checkout, include: bool) -> None:
    if checkout.changes and not include:
        shown = ", ".join(checkout.changes[:5]) + (f" and {len(checkout.changes) - 5} more" if len(checkout.changes) > 5 else "")
        raise AbRefused(
            f"{checkout.top} has uncommitted changes ({shown}): commit them, or pass --include-uncommitted "
            "to copy them into both worktrees"
        )


@dataclass
class Worktrees:
    folder: Path  # .claude/hybrid/ab/<stamp>
    checkout: Checkout
    engines: dict[str, Path] = field(default_factory=dict)  # engine -> its worktree
    settings_copied: set[str] = field(default_factory=set)  # ignored settings files copied in

    def project(self, engine: str) -> Path:
        """The project folder inside the engine's worktree."""
        return self.engines[engine] / self.checkout.inside


def create(checkout: Checkout, folder: Path, engines: Sequence[str], stories: Sequence[str]) -> Worktrees:
    """One detached worktree per engine at the commit, the changes copied in, and the manifest."""
    if folder.exists():
        raise AbRefused(f"{folder} already exists")
    folder.mkdir(parents=True)
    made = Worktrees(folder, checkout)
    try:
        for engine in engines:
            path = folder / engine
            git(checkout.top, "worktree", "add", "--detach", str(path), checkout.commit)
            made.engines[engine] = path
            for relative in checkout.changes:
                _copy_change(checkout.top / relative, path / relative)
            for state in (LEDGER_RELATIVE.parent, CHECKPOINTS_RELATIVE):  # committed state: each side starts afresh
                shutil.rmtree(made.project(engine) / state, ignore_errors=True)
            for name in SETTINGS_FILES:
                source, target = checkout.project / name, made.project(engine) / name
                if source.is_file() and not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, target)
                    made.settings_copied.add(name)
    except BaseException:
        remove_worktrees(checkout.top, made.engines.values())
        shutil.rmtree(folder, ignore_errors=True)
        raise
    write_manifest(made, stories)
    return made


def _copy_change(source: Path, target: Path) -> None:
    if not source.exists() and not source.is_symlink():  # deleted in the working tree
        target.unlink(missing_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() or target.is_symlink():
        target.unlink()
    shutil.copy2(source, target, follow_symlinks=False)


def write_manifest(made: Worktrees, stories: Sequence[str], **extra: Any) -> None:
    data = {
        "project": str(made.checkout.project),
        "repository": str(made.checkout.top),
        "commit": made.checkout.commit,
        "stories": list(stories),
        "worktrees": {engine: str(path) for engine, path in made.engines.items()},
        "projects": {engine: str(made.project(engine)) for engine in made.engines},
        "included_uncommitted": list(made.checkout.changes),
        "settings_copied": sorted(made.settings_copied),
        **extra,
    }
    (made.folder / MANIFEST).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AbRefused(f"{folder} is not a hybrid ab folder (it has no {MANIFEST}); nothing removed") from None
    except (OSError, ValueError) as error:
        raise AbRefused(f"{path} cannot be read ({error}); nothing removed") from None
    if not isinstance(data, dict) or not isinstance(data.get("worktrees"), dict) or not isinstance(data.get("repository"), str):
        raise AbRefused(f"{path} is not a hybrid ab manifest; nothing removed")
    return data


def remove_worktrees(top: Path, paths) -> None:
    for path in paths:
        if Path(path).exists():
            git(top, "worktree", "remove", "--force", str(path), check=False)
    git(top, "worktree", "prune", check=False)


def keep_records(project: Path, target: Path) -> None:
    """A side's ledger and checkpoints, copied to ``target`` in the same places."""
    ledger = project / LEDGER_RELATIVE
    if ledger.is_file():
        (target / LEDGER_RELATIVE).parent.mkdir(parents=True, exist_ok=True)
        source = sqlite3.connect(ledger.resolve().as_uri() + "?mode=ro", uri=True)
        copy = sqlite3.connect(target / LEDGER_RELATIVE)
        try:
            source.backup(copy)  # the WAL included, one consistent copy
        finally:
            copy.close()
            source.close()
    checkpoints = project / CHECKPOINTS_RELATIVE
    if checkpoints.is_dir():
        shutil.copytree(checkpoints, target / CHECKPOINTS_RELATIVE)


def cleanup(folder: Path) -> list[str]:
    """Remove the worktrees of an A/B folder, keeping each side's records in its place (the
    folder then reads as two projects with a ledger and checkpoints, and nothing else)."""
    data = read_manifest(folder)
    top = Path(data["repository"])
    removed = []
    for engine, path in data["worktrees"].items():
        path = Path(path)
        project = Path(data.get("projects", {}).get(engine, path))
        if not path.exists():
            continue
        kept = folder / f".{engine}-records"
        shutil.rmtree(kept, ignore_errors=True)
        keep_records(project, kept / project.relative_to(path) if project.is_relative_to(path) else kept)
        remove_worktrees(top, [path])
        shutil.rmtree(path, ignore_errors=True)
        if kept.exists():
            kept.rename(path)
        removed.append(str(path))
    return removed


def remove(folder: Path) -> list[str]:
    """Remove an A/B folder whole: its worktrees (from git too) and everything in it."""
    data = read_manifest(folder)
    paths = [Path(p) for p in data["worktrees"].values()]
    remove_worktrees(Path(data["repository"]), paths)
    shutil.rmtree(folder)
    return [str(p) for p in paths]
