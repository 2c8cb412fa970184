"""The user's Claude Code permission rules, read and applied the way Claude Code applies them.

The GLM tools run a test command and write files on the user's behalf, so they obey the same
rules Claude Code would (code.claude.com/docs/en/permissions):

- Rules come from every settings file that applies to the project: managed settings
  (``/etc/claude-code/managed-settings.json`` on Linux, plus ``managed-settings.d/*.json``),
  the user's ``~/.claude/settings.json``, the project's ``.claude/settings.json`` and
  ``.claude/settings.local.json``. Their ``permissions.deny``, ``ask`` and ``allow`` lists merge.
- Evaluation is deny, then ask, then allow; the first match decides, whatever the specificity.
- ``Bash(...)``: an exact command; ``prefix:*`` (the command or the command followed by
  arguments); ``*`` anywhere matching any text, where a lone trailing `` *`` also matches the bare
  command, and ``Bash`` or ``Bash(*)`` matches every command.
- ``Edit(...)``: gitignore-style paths; a deny or ask rule stops a GLM write (a tool cannot ask). ``//p`` is absolute, ``~/p`` is under the home folder,
  ``/p`` and ``./p`` are relative to the project; a pattern without a slash matches at any depth.

A settings file that cannot be read is an error, never skipped: skipping it could drop a deny.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Literal, Mapping

from mcp_server.errors import HybridError

Kind = Literal["deny", "ask", "allow"]
EVALUATION_ORDER: tuple[Kind, ...] = ("deny", "ask", "allow")
MANAGED_SETTINGS_VARIABLE = "HYBRID_MANAGED_SETTINGS"  # where managed settings are (the tests point it elsewhere)
MANAGED_SETTINGS = {
    "darwin": "/Library/Application Support/ClaudeCode/managed-settings.json",
    "win32": r"C:\Program Files\ClaudeCode\managed-settings.json",
}
LINUX_MANAGED_SETTINGS = "/etc/claude-code/managed-settings.json"
PROJECT_SETTINGS = (Path(".claude") / "settings.json", Path(".claude") / "settings.local.json")
# What a shell would treat as more than one plain command: sequences, pipes, background jobs,
# substitutions, redirections and line breaks.
SHELL_OPERATORS = ("&&", "||", ";", "|", "&", "$(", "`", ">", "<", "\n", "\r")
_RULE = re.compile(r"^(?P<tool>[A-Za-z][A-Za-z0-9_-]*)(?:\((?P<specifier>.*)\))?$", re.DOTALL)
_SEGMENT_SPLIT = re.compile(r"&&|\|\||[;|&\n\r]")


class PermissionsError(HybridError):
    """A settings file's permission rules cannot be read; the message names the file."""


@dataclass(frozen=True)
class Rule:
    kind: Kind
    tool: str
    specifier: str | None  # None: the bare tool name, every use of it
    source: str  # the settings file it came from, or "tests.commands in .claude/hybrid.yaml"

    @property
    def text(self) -> str:
        return self.tool if self.specifier is None else f"{self.tool}({self.specifier})"

    def described(self) -> str:
        return f'the {self.kind} rule "{self.text}" in {self.source}'


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # for a refusal: the whole one-line message
    rule: Rule | None = None


# --- where the rules are -------------------------------------------------------------------------


def managed_settings_path(environ: Mapping[str, str]) -> Path:
    override = (environ.get(MANAGED_SETTINGS_VARIABLE) or "").strip()
    if override:
        return Path(override)
    return Path(MANAGED_SETTINGS.get(sys.platform, LINUX_MANAGED_SETTINGS))


def home_folder(environ: Mapping[str, str]) -> Path:
    home = (environ.get("HOME") or "").strip()
    return Path(home) if home else Path(os.path.expanduser("~"))


def user_settings_path(environ: Mapping[str, str]) -> Path:
    config_dir = (environ.get("CLAUDE_CONFIG_DIR") or "").strip()
    return (Path(config_dir) if config_dir else home_folder(environ) / ".claude") / "settings.json"


def settings_files(project_root: Path, environ: Mapping[str, str]) -> tuple[list[Path], list[Path]]:
    """(managed files, the other files), in Claude Code's order; missing files are left out later."""
    managed = managed_settings_path(environ)
    drop_ins = managed.parent / "managed-settings.d"
    managed_files = [managed, *(sorted(drop_ins.glob("*.json")) if drop_ins.is_dir() else [])]
    others = [user_settings_path(environ), *(project_root / name for name in PROJECT_SETTINGS)]
    return managed_files, others


def _read_settings(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise PermissionsError(f"cannot read the permission rules in {path}: {error}; fix or remove the file") from None
    if not isinstance(data, dict):
        raise PermissionsError(f"cannot read the permission rules in {path}: the file must hold a JSON object")
    return data


def parse_rule(text: str, kind: Kind, source: str) -> Rule:
    found = _RULE.match(text.strip()) if isinstance(text, str) else None
    if not found:
        raise PermissionsError(f'{source}: permissions.{kind} holds {text!r}, which is not a rule like "Bash(npm test)"')
    return Rule(kind, found.group("tool"), found.group("specifier"), source)


def _rules_in(path: Path) -> tuple[list[Rule], bool]:
    """The file's rules, and whether it sets allowManagedPermissionRulesOnly."""
    data = _read_settings(path)
    permissions = data.get("permissions") or {}
    if not isinstance(permissions, dict):
        raise PermissionsError(f"cannot read the permission rules in {path}: `permissions` must be an object")
    rules = []
    for kind in EVALUATION_ORDER:
        entries = permissions.get(kind) or []
        if not isinstance(entries, list):
            raise PermissionsError(f"cannot read the permission rules in {path}: permissions.{kind} must be a list")
        rules.extend(parse_rule(entry, kind, str(path)) for entry in entries)
    return rules, data.get("allowManagedPermissionRulesOnly") is True


def load_rules(project_root: Path, environ: Mapping[str, str] | None = None) -> list[Rule]:
    """Every rule that applies to the project. Managed settings may keep the others out."""
    env = os.environ if environ is None else environ
    managed_files, other_files = settings_files(Path(project_root), env)
    rules: list[Rule] = []
    managed_only = False
    for path in managed_files:
        found, only = _rules_in(path)
        rules.extend(found)
        managed_only = managed_only or only
    if not managed_only:
        for path in other_files:
            rules.extend(_rules_in(path)[0])
    return rules


# --- Bash rules ----------------------------------------------------------------------------------


def bash_specifier_matches(specifier: str | None, command: str) -> bool:
    command = command.strip()
    if specifier is None or specifier.strip() == "*":
        return True
    specifier = specifier.strip()
    if specifier.endswith(":*") and "*" not in specifier[:-2]:  # the legacy prefix form
        prefix = specifier[:-2].rstrip()
        return command == prefix or command.startswith(prefix + " ")
    if "*" not in specifier:
        return command == specifier
    if specifier.endswith(" *") and specifier.count("*") == 1:  # `ls *`: ls, or ls and arguments
        prefix = specifier[:-2].rstrip()
        return command == prefix or command.startswith(prefix + " ")
    pattern = ".*".join(re.escape(part) for part in specifier.split("*"))
    return re.fullmatch(pattern, command, re.DOTALL) is not None


def shell_operator_in(command: str) -> str | None:
    return next((operator for operator in SHELL_OPERATORS if operator in command), None)


def suggested_rule(command: str) -> str:
    return f"Bash({command.strip()})"


def _first_match(rules: Iterable[Rule], kind: Kind, commands: list[str]) -> Rule | None:
    for rule in rules:
        if rule.kind == kind and rule.tool == "Bash":
            if any(bash_specifier_matches(rule.specifier, command) for command in commands):
                return rule
    return None


def check_command(command: str, rules: list[Rule], test_commands: Iterable[str] = ()) -> Decision:
    """May the GLM tools run ``command``? Deny, then ask, then allow; ``test_commands``
    (tests.commands in .claude/hybrid.yaml) allow in the same syntax as Bash rules."""
    command = command.strip()
    shown = json.dumps(command)
    operator = shell_operator_in(command)
    # A deny or ask rule on any part of a compound command stops the whole of it, as in Claude Code.
    parts = [command, *(part.strip() for part in _SEGMENT_SPLIT.split(command) if part.strip())] if operator else [command]
    for kind in ("deny", "ask"):
        rule = _first_match(rules, kind, parts)  # type: ignore[arg-type]
        if rule is None:
            continue
        if kind == "deny":
            return Decision(False, f"test command {shown} refused: {rule.described()} forbids it", rule)
        return Decision(
            False,
            f"test command {shown} refused: {rule.described()} makes Claude Code ask first, and a GLM tool "
            "cannot ask; run it yourself, or allow it without an ask rule",
            rule,
        )
    allowing = [*rules, *(Rule("allow", "Bash", entry, "tests.commands in .claude/hybrid.yaml") for entry in test_commands)]
    if operator:
        # Only the very string, allowed as it stands, may run with a shell operator in it.
        rule = next((r for r in allowing if r.kind == "allow" and r.tool == "Bash" and (r.specifier or "").strip() == command), None)
        if rule:
            return Decision(True, f"allowed by {rule.described()}", rule)
        return Decision(
            False,
            f"test command {shown} refused: it contains the shell operator {json.dumps(operator)}, which only an allow "
            f"rule for that exact string permits; add {json.dumps(suggested_rule(command))} to permissions.allow "
            "in .claude/settings.json, or pass a plain command",
        )
    rule = _first_match(allowing, "allow", [command])
    if rule:
        return Decision(True, f"allowed by {rule.described()}", rule)
    return Decision(
        False,
        f"test command {shown} refused: no permission rule allows it; add {json.dumps(suggested_rule(command))} to "
        "permissions.allow in .claude/settings.json (or list it under tests.commands in .claude/hybrid.yaml)",
    )


# --- Edit rules ----------------------------------------------------------------------------------


def _glob_regex(pattern: str) -> str:
    """gitignore globbing: ``**`` crosses folders, ``*`` and ``?`` stay within one."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body[:1] == "!" else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def _absolute_pattern(specifier: str, project_root: Path, home: Path) -> str:
    if specifier.startswith("//"):
        return "/" + specifier[2:].lstrip("/")
    if specifier.startswith("~/"):
        return home.as_posix().rstrip("/") + "/" + specifier[2:]
    relative = specifier[2:] if specifier.startswith("./") else specifier.lstrip("/")
    base = project_root.as_posix().rstrip("/")
    anchored = specifier.startswith(("/", "./")) or "/" in relative.rstrip("/")
    return f"{base}/{relative}" if anchored else f"{base}/**/{relative}"


def edit_specifier_covers(specifier: str | None, path: Path, project_root: Path, home: Path) -> bool:
    """Whether an Edit rule's pattern covers ``path`` (absolute): the file, or a folder it is in."""
    if specifier is None or specifier.strip() in ("*", "**"):
        return True
    pattern = _absolute_pattern(specifier.strip().rstrip("/") or "/", project_root, home)
    regex = re.compile(_glob_regex(pattern))
    candidate = PurePosixPath(path.as_posix())
    return any(regex.fullmatch(str(p)) for p in (candidate, *candidate.parents))


def edit_stopped_by(rules: list[Rule], paths: Iterable[Path], project_root: Path, home: Path) -> Rule | None:
    """The first Edit deny rule, else ask rule (a GLM tool cannot ask), that covers any of
    ``paths`` (the same file, as named and as resolved)."""
    paths = list(paths)
    for kind in ("deny", "ask"):
        for rule in rules:
            if rule.kind == kind and rule.tool == "Edit":
                if any(edit_specifier_covers(rule.specifier, path, project_root, home) for path in paths):
                    return rule
    return None


@dataclass(frozen=True)
class ProjectPermissions:
    """The rules that apply to one project, read once per tool call."""

    project_root: Path
    home: Path
    rules: tuple[Rule, ...]

    @classmethod
    def load(cls, project_root: Path, environ: Mapping[str, str] | None = None) -> "ProjectPermissions":
        env = os.environ if environ is None else environ
        root = Path(project_root).resolve()
        return cls(root, home_folder(env), tuple(load_rules(root, env)))

    def command(self, command: str, test_commands: Iterable[str] = ()) -> Decision:
        return check_command(command, list(self.rules), test_commands)

    def edit_refusal(self, relative: str, target: Path) -> str | None:
        """Why GLM may not create, change or delete ``relative`` (resolved: ``target``), or None."""
        named = self.project_root / PurePosixPath(relative)
        rule = edit_stopped_by(list(self.rules), (named, target), self.project_root, self.home)
        if rule is None:
            return None
        if rule.kind == "ask":
            return f"{rule.described()} makes Claude Code ask before editing it, and a GLM tool cannot ask"
        return f"{rule.described()} forbids editing it"
