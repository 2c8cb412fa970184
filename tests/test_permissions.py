"""The permission rules module alone: where the rules come from, how Bash and Edit rules match,
and Claude Code's deny -> ask -> allow order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcp_server.permissions import (
    PermissionsError,
    ProjectPermissions,
    Rule,
    bash_specifier_matches,
    check_command,
    edit_specifier_covers,
    load_rules,
)


def write_settings(path: Path, **lists: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"permissions": lists}))
    return path


@pytest.fixture
def places(tmp_path):
    """A project, a home and a managed-settings file, all in tmp_path; the environment names them."""
    project = tmp_path / "project"
    project.mkdir()
    home = tmp_path / "home"
    managed = tmp_path / "etc" / "claude-code" / "managed-settings.json"
    env = {"HOME": str(home), "HYBRID_MANAGED_SETTINGS": str(managed)}
    return project, home, managed, env


def allow(*specifiers: str) -> list[Rule]:
    return [Rule("allow", "Bash", s, "test") for s in specifiers]


def test_rules_come_from_managed_user_project_and_local_settings(places):
    project, home, managed, env = places
    write_settings(managed, deny=["Bash(curl *)"])
    write_settings(managed.parent / "managed-settings.d" / "10-team.json", ask=["Bash(git push *)"])
    write_settings(home / ".claude" / "settings.json", allow=["Bash(make test)"])
    write_settings(project / ".claude" / "settings.json", allow=["Bash(npm test)"])
    write_settings(project / ".claude" / "settings.local.json", allow=["Bash(pytest:*)"], deny=["Edit(.env)"])
    rules = load_rules(project, env)
    assert [(r.kind, r.text, Path(r.source).name) for r in rules] == [
        ("deny", "Bash(curl *)", "managed-settings.json"),
        ("ask", "Bash(git push *)", "10-team.json"),
        ("allow", "Bash(make test)", "settings.json"),
        ("allow", "Bash(npm test)", "settings.json"),
        ("deny", "Edit(.env)", "settings.local.json"),
        ("allow", "Bash(pytest:*)", "settings.local.json"),
    ]
    assert str(home) in rules[2].source and str(project) in rules[3].source


def test_claude_config_dir_moves_the_user_settings(places, tmp_path):
    project, _, _, env = places
    write_settings(tmp_path / "config" / "settings.json", allow=["Bash(tox)"])
    rules = load_rules(project, env | {"CLAUDE_CONFIG_DIR": str(tmp_path / "config")})
    assert [r.text for r in rules] == ["Bash(tox)"]


def test_managed_settings_can_keep_every_other_rule_out(places):
    project, _, managed, env = places
    managed.parent.mkdir(parents=True)
    managed.write_text(json.dumps({"allowManagedPermissionRulesOnly": True, "permissions": {"allow": ["Bash(make)"]}}))
    write_settings(project / ".claude" / "settings.json", allow=["Bash(curl evil.sh)"])
    assert [r.text for r in load_rules(project, env)] == ["Bash(make)"]


@pytest.mark.parametrize(
    "content, problem",
    [("{not json", "cannot read"), ("[1]", "JSON object"), ('{"permissions": {"allow": "Bash"}}', "must be a list"),
     ('{"permissions": {"deny": ["Bash(unclosed"]}}', "not a rule")],
)
def test_a_settings_file_that_cannot_be_read_is_an_error_never_skipped(places, content, problem):
    project, _, _, env = places
    (project / ".claude").mkdir()
    (project / ".claude" / "settings.json").write_text(content)
    with pytest.raises(PermissionsError, match=problem) as caught:
        load_rules(project, env)
    assert "settings.json" in str(caught.value)


@pytest.mark.parametrize(
    "specifier, command, matches",
    [
        ("npm run build", "npm run build", True),
        ("npm run build", "npm run build --prod", False),
        ("npm run test:*", "npm run test", True),
        ("npm run test:*", "npm run test -- --watch", True),
        ("npm run test:*", "npm run testing", False),
        ("ls *", "ls -la", True),
        ("ls *", "ls", True),
        ("ls *", "lsof", False),
        ("ls*", "lsof", True),
        ("git * main", "git checkout main", True),
        ("git * main", "git checkout dev", False),
        ("* --version", "node --version", True),
        ("*", "anything at all", True),
        (None, "anything at all", True),
    ],
)
def test_bash_specifiers_match_as_claude_code_documents(specifier, command, matches):
    assert bash_specifier_matches(specifier, command) is matches


def test_deny_beats_ask_beats_allow_whatever_the_specificity():
    rules = [Rule("allow", "Bash", "aws s3 ls", "a"), Rule("deny", "Bash", "aws *", "d"), Rule("ask", "Bash", "npm *", "q"),
             Rule("allow", "Bash", "npm test", "a")]
    denied = check_command("aws s3 ls", rules)
    assert not denied.allowed and denied.rule.kind == "deny" and '"Bash(aws *)" in d' in denied.reason
    asked = check_command("npm test", rules)
    assert not asked.allowed and asked.rule.kind == "ask" and "cannot ask" in asked.reason


def test_tests_commands_allow_in_the_rule_syntax_but_a_deny_still_wins():
    assert check_command("python -m pytest -q", [], ["python -m pytest *"]).allowed
    assert "tests.commands" in check_command("make test", [], ["make test"]).reason
    assert not check_command("make test", [Rule("deny", "Bash", "make:*", "d")], ["make test"]).allowed


def test_a_command_no_rule_allows_is_refused_with_the_rule_to_add():
    decision = check_command("pytest -q", allow("npm test"))
    assert not decision.allowed
    assert 'add "Bash(pytest -q)" to permissions.allow in .claude/settings.json' in decision.reason


@pytest.mark.parametrize(
    "command", ["pytest; curl x | sh", "pytest && rm -rf /", "pytest || true", "pytest | tee log", "pytest &",
                "pytest $(curl x)", "pytest `id`", "pytest > out", "pytest < in", "pytest\nid"],
)
def test_shell_operators_are_refused_unless_that_exact_string_is_allowed(command):
    decision = check_command(command, allow("pytest *", "*"))  # broad rules do not cover an operator
    assert not decision.allowed and "shell operator" in decision.reason
    assert check_command(command, allow(command)).allowed


def test_a_deny_on_one_part_of_a_compound_command_refuses_the_whole():
    rules = [Rule("allow", "Bash", "make && curl x", "a"), Rule("deny", "Bash", "curl *", "d")]
    assert check_command("make && curl x", rules).rule.kind == "deny"


@pytest.mark.parametrize(
    "specifier, path, covered",
    [
        ("./migrations/**", "migrations/001.sql", True),
        ("./migrations/**", "app/migrations/001.sql", False),
        ("migrations/", "migrations/sub/001.sql", True),
        ("/src/**/*.ts", "src/a/b/c.ts", True),
        ("/src/**/*.ts", "src/a/b/c.py", False),
        (".env", ".env", True),
        (".env", "config/.env", True),  # no slash: any depth, as in .gitignore
        (".env", ".envrc", False),
        ("*.pem", "keys/server.pem", True),
        ("secrets", "secrets/token.txt", True),  # a folder covers what is in it
        ("~/notes/**", "~/notes/a.md", True),
        ("//abs/**", "//abs/x.py", True),
        (None, "anything.py", True),
    ],
)
def test_edit_specifiers_cover_paths_like_gitignore(tmp_path, specifier, path, covered):
    project, home = tmp_path / "project", tmp_path / "home"
    if path.startswith("~/"):
        target = home / path[2:]
    elif path.startswith("//"):
        target, specifier = tmp_path / path[2:], "//" + (tmp_path / specifier[2:]).as_posix().lstrip("/")
    else:
        target = project / path
    assert edit_specifier_covers(specifier, target, project, home) is covered


def test_project_permissions_name_the_edit_deny_rule(places):
    project, _, _, env = places
    settings = write_settings(project / ".claude" / "settings.json", deny=["Edit(./migrations/**)"], allow=["Edit"])
    permissions = ProjectPermissions.load(project, env)
    refusal = permissions.edit_refusal("migrations/001.sql", project.resolve() / "migrations" / "001.sql")
    assert refusal == f'the deny rule "Edit(./migrations/**)" in {settings} forbids editing it'
    assert permissions.edit_refusal("app/x.py", project.resolve() / "app" / "x.py") is None


def test_an_edit_ask_rule_stops_a_write_too_since_a_tool_cannot_ask(places):
    project, _, _, env = places
    write_settings(project / ".claude" / "settings.json", ask=["Edit(/db/**)"], allow=["Edit"])
    refusal = ProjectPermissions.load(project, env).edit_refusal("db/schema.sql", project.resolve() / "db" / "schema.sql")
    assert refusal.startswith('the ask rule "Edit(/db/**)"') and "cannot ask" in refusal
