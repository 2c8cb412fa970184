"""`hybrid test-command`: what /hybrid:pilot runs once before any phase."""

from __future__ import annotations

import json

import pytest

from mcp_server.cli import main
from mcp_server.permission_cli import find_test_command
from tests.support import allow_commands


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"package.json": json.dumps({"scripts": {"test": "vitest run"}})}, ("npm test", "package.json")),
        ({"package.json": json.dumps({"scripts": {"test": 'echo "Error: no test specified" && exit 1'}})}, None),
        ({"Makefile": "build:\n\tcc x.c\ntest: build\n\t./run\n"}, ("make test", "Makefile")),
        ({"pyproject.toml": "[tool.pytest.ini_options]\naddopts = '-q'\n"}, ("python3 -m pytest", "pyproject.toml")),
        ({"pyproject.toml": "[project]\nname = 'x'\n"}, None),
        ({"Cargo.toml": "[package]\n"}, ("cargo test", "Cargo.toml")),
        ({"go.mod": "module x\n"}, ("go test ./...", "go.mod")),
        ({"tests/test_a.py": ""}, ("python3 -m unittest", "tests/")),
        ({"src/a.py": ""}, None),
    ],
)
def test_the_test_command_is_found_in_the_projects_own_files(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert find_test_command(tmp_path, []) == expected


def test_tests_commands_come_first(tmp_path):
    (tmp_path / "Makefile").write_text("test:\n\ttrue\n")
    assert find_test_command(tmp_path, ["python -m pytest -q *"]) == ("python -m pytest -q", "tests.commands in .claude/hybrid.yaml")


def test_an_unallowed_command_gets_one_line_with_the_rule_to_add(project, capsys):
    (project / "tests").mkdir()
    (project / "tests" / "test_roles.py").write_text("")
    assert main(["test-command", "--project", str(project)]) == 1
    out = capsys.readouterr().out
    assert out == ('hybrid: the GLM tools may not run the test command "python3 -m unittest" yet: add '
                   '"Bash(python3 -m unittest *)" to permissions.allow in .claude/settings.json, then run the pilot again\n')
    # The rule it names lets the command, and the story-sized runs of it, through.
    allow_commands(project, "python3 -m unittest *")
    assert main(["test-command", "--project", str(project)]) == 0
    assert capsys.readouterr().out.startswith("test command: python3 -m unittest (from tests/; allowed by the allow rule")
    assert main(["test-command", "--project", str(project), "python3 -m unittest -q tests.test_roles"]) == 0


def test_a_deny_rule_is_named(project, capsys):
    allow_commands(project, "make *", deny=("Bash(make test)",))
    (project / "Makefile").write_text("test:\n\ttrue\n")
    assert main(["test-command", "--project", str(project)]) == 1
    assert 'the deny rule "Bash(make test)"' in capsys.readouterr().out


def test_no_test_command_found_says_where_to_name_one(project, capsys):
    assert main(["test-command", "--project", str(project)]) == 1
    assert "name it under tests.commands in .claude/hybrid.yaml" in capsys.readouterr().out
