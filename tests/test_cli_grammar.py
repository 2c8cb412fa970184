"""One grammar for `hybrid` and `hybrid-monitor` (docs/cli.md): --version, story lists in any of
the three forms, --json on every read command, an unknown story as one line with the known ids
and exit 1, messages on stderr, a bad setting as one line with its dotted key and exit 2."""

from __future__ import annotations

import json
import re

import pytest

from mcp_server import cli as hybrid_cli
from mcp_server.cli_grammar import EXIT_NOT_FOUND, EXIT_USAGE, story_list, version
from mcp_server.monitor import cli as monitor_cli
from tests.support import REPO, STORY_01_2
from tests.test_monitor_builders import scripted_run

FORMS = (["01.2,01.3"], ["01.2", "01.3"], ["01.2, 01.3"], ["01.2,", "01.3"])


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("CLAUDE_PROJECT_DIR", raising=False)
    root = scripted_run(tmp_path / "project")
    (root / "docs" / "stories").mkdir(parents=True)
    (root / "docs" / "stories" / "01.2.md").write_text(STORY_01_2)  # the files its checkpoints record
    (root / "docs" / "stories" / "01.3.md").write_text("# 01.3 Permissions\n\n## Acceptance Criteria\n- AC-1: x\n")
    return root


def call(capsys, main, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as done:  # argparse's --version and usage errors
        code = done.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("main", [hybrid_cli.main, monitor_cli.main])
def test_version_is_the_plugin_version(capsys, main):
    manifest = json.loads((REPO / ".claude-plugin" / "plugin.json").read_text())
    code, out, _ = call(capsys, main, "--version")
    assert code == 0 and re.fullmatch(r"(hybrid|hybrid-monitor) \S+\n", out) and version() == manifest["version"]
    assert out.split()[1] == manifest["version"]


@pytest.mark.parametrize("form", FORMS)
def test_every_story_list_form_means_the_same(capsys, project, form):
    assert story_list(form) == ["01.2", "01.3"]
    code, out, _ = call(capsys, hybrid_cli.main, "status", *form, "--project", str(project), "--json")
    assert code == 0 and [row["story"] for row in json.loads(out)] == ["01.2", "01.3"]
    code, out, _ = call(capsys, monitor_cli.main, "--project", str(project), "--json", "--stories", *form)
    assert code == 0 and json.loads(out)["stories"] == ["01.2", "01.3"]
    code, out, _ = call(capsys, hybrid_cli.main, "usage", "--story", *form, "--project", str(project), "--json")
    assert code == 0 and [entry["story"] for entry in json.loads(out)] == ["01.2", "01.3"]
    code, out, _ = call(capsys, hybrid_cli.main, "resume-args", *form, "--project", str(project))
    assert code == 0 and set(json.loads(out)["stories"]) <= {"01.2", "01.3"}


def test_the_slash_commands_pass_their_arguments_on_in_a_form_the_cli_takes():
    for name in ("status", "resume", "report"):
        text = (REPO / "commands" / f"{name}.md").read_text()
        assert "$ARGUMENTS" in text, name


def test_every_read_command_has_json(capsys, project):
    for argv in (["status"], ["stories"], ["usage"], ["checkpoint", "show", "01.2"]):
        code, out, err = call(capsys, hybrid_cli.main, *argv, "--project", str(project), "--json")
        assert code == 0 and err == "", (argv, err)
        json.loads(out)
    code, out, _ = call(capsys, hybrid_cli.main, "usage", "--project", str(project), "--json")
    usage = json.loads(out)
    assert usage["usd"] > 0 and {"provider", "model", "calls", "usd"} <= set(usage["models"][0])
    code, out, _ = call(capsys, hybrid_cli.main, "checkpoint", "show", "01.2", "--project", str(project), "--json")
    shown = json.loads(out)
    assert shown["file"] == ".claude/checkpoints/01.2.yaml" and shown["data"]["story"] == "01.2" and "history" in shown


@pytest.mark.parametrize("argv", [
    ["usage", "--story", "99.9"], ["status", "99.9"], ["resume-args", "99.9"], ["report", "--stories", "99.9"],
])
def test_an_unknown_story_is_one_line_naming_the_known_ones(capsys, project, argv):
    code, out, err = call(capsys, hybrid_cli.main, *argv, "--project", str(project))
    prog = "hybrid report" if argv[0] == "report" else "hybrid"
    assert (code, out) == (EXIT_NOT_FOUND, "") and err == f"{prog}: unknown story 99.9; known: 01.2, 01.3\n"


def test_a_config_error_is_one_line_with_the_dotted_key_and_the_same_exit_everywhere(capsys, project):
    (project / ".claude" / "hybrid.yaml").write_text("glm:\n  base_ur: https://example.test\n")
    for main, argv in ((hybrid_cli.main, ["status"]), (hybrid_cli.main, ["stories"]), (hybrid_cli.main, ["usage"]),
                       (hybrid_cli.main, ["resume-args"]),
                       (hybrid_cli.main, ["report"]), (monitor_cli.main, [])):
        code, out, err = call(capsys, main, *argv, "--project", str(project))
        assert (code, out) == (EXIT_USAGE, ""), (argv, code, err)
        assert err.count("\n") == 1 and "glm.base_ur is not a setting (did you mean glm.base_url?)" in err, err
    (project / ".claude" / "hybrid.yaml").write_text("glm: [\n")
    code, _, err = call(capsys, hybrid_cli.main, "status", "--project", str(project))
    assert code == EXIT_USAGE and err.count("\n") == 1 and "not valid YAML at line 2" in err and "^" not in err


def test_empty_project_messages_name_cli_commands_on_stderr(capsys, tmp_path):
    for argv, command in ((["status"], "hybrid stories"), (["stories"], "Acceptance Criteria"),
                          (["usage"], "hybrid demo")):
        code, out, err = call(capsys, hybrid_cli.main, *argv, "--project", str(tmp_path))
        assert (code, out) == (EXIT_NOT_FOUND, "") and command in err and err.count("\n") == 1, err
        assert "checkpoint_read" not in err and "GLM tool" not in err


def test_the_exit_code_table_is_documented_where_the_help_points():
    text = (REPO / "docs" / "cli.md").read_text()
    for code in ("| 0 |", "| 1 |", "| 2 |"):
        assert code in text
