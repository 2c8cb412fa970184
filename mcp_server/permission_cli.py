"""`hybrid test-command`: the project's test command, and whether the GLM tools may run it.

/hybrid:pilot runs this once, before any phase: where no rule allows the command, the user gets
one line with the rule to add, instead of every P3 and P4 call being refused later.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from mcp_server.config import load_settings, project_root
from mcp_server.permissions import ProjectPermissions

NPM_PLACEHOLDER = "no test specified"  # what `npm init` puts in scripts.test
PYTEST_MARKERS = (("pyproject.toml", "[tool.pytest"), ("setup.cfg", "[tool:pytest]"), ("tox.ini", "[pytest]"),
                  ("pytest.ini", ""), ("conftest.py", ""))
TEST_FOLDERS = ("tests", "test")
CONFIGURED = "tests.commands in .claude/hybrid.yaml"


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _base_command(entry: str) -> str:
    """A tests.commands entry as the command it stands for: `pytest *` and `pytest:*` are `pytest`."""
    return re.split(r":?\*", entry, maxsplit=1)[0].strip()


def _npm_test(root: Path) -> str | None:
    try:
        scripts = json.loads(_text(root / "package.json") or "{}").get("scripts") or {}
    except (ValueError, AttributeError):
        return None
    test = scripts.get("test") if isinstance(scripts, dict) else None
    return "npm test" if isinstance(test, str) and NPM_PLACEHOLDER not in test else None


def find_test_command(root: Path, configured: list[str]) -> tuple[str, str] | None:
    """(command, where it was found), from the configuration or the project's own files."""
    for entry in configured:
        if _base_command(entry):
            return _base_command(entry), CONFIGURED
    npm = _npm_test(root)
    if npm:
        return npm, "package.json"
    for name in ("Makefile", "makefile", "GNUmakefile"):
        if re.search(r"^test\s*:", _text(root / name), re.MULTILINE):
            return "make test", name
    for name, marker in PYTEST_MARKERS:
        if (root / name).is_file() and marker in _text(root / name):
            return "python3 -m pytest", name
    if (root / "Cargo.toml").is_file():
        return "cargo test", "Cargo.toml"
    if (root / "go.mod").is_file():
        return "go test ./...", "go.mod"
    for folder in TEST_FOLDERS:
        if any((root / folder).glob("test*.py")):
            return "python3 -m unittest", f"{folder}/"
    return None


def _test_command(args: argparse.Namespace) -> int:
    root = Path(args.project).resolve() if args.project else project_root()
    settings = load_settings(root)
    if args.command:
        command, found_in = args.command.strip(), "the command line"
    else:
        found = find_test_command(root, settings.tests.commands)
        if found is None:
            print(
                f"hybrid: no test command found in {root} (package.json, Makefile, pyproject.toml, tests/): name it "
                'under tests.commands in .claude/hybrid.yaml, such as ["python -m pytest -q"]'
            )
            return 1
        command, found_in = found
    decision = ProjectPermissions.load(root).command(command, settings.tests.commands)
    if decision.allowed:
        print(f"test command: {command} (from {found_in}; {decision.reason})")
        return 0
    if decision.rule is None:  # nothing decided: say which rule lets the story-sized runs through too
        rule = json.dumps(f"Bash({command} *)")
        print(f"hybrid: the GLM tools may not run the test command {json.dumps(command)} yet: "
              f"add {rule} to permissions.allow in .claude/settings.json, then run the pilot again")
    else:
        print(f"hybrid: {decision.reason}")
    return 1


def add_subcommands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    check = sub.add_parser(
        "test-command", help="the project's test command, and whether your permission rules let the GLM tools run it"
    )
    check.add_argument("command", nargs="?", help="check this command instead of finding the project's")
    check.add_argument("--project", help="project directory (default: CLAUDE_PROJECT_DIR or cwd)")
    check.set_defaults(func=_test_command)
