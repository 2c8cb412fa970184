"""The pilot's arguments are checked before anything runs: `hybrid pilot-check` (which
/hybrid:pilot runs first) and workflows/pilot.js refuse unknown options and typos with the list
of known ones, and ids without a story file before P1 starts an agent."""

from __future__ import annotations

import re

import pytest

from mcp_server import cli as hybrid_cli
from mcp_server.pilot_check import KNOWN_FLAGS, KNOWN_OPTIONS
from tests.support import REPO, tree_snapshot
from tests.test_workflow_script import run as run_workflow


def check(capsys, project, *words: str) -> tuple[int, str, str]:
    code = hybrid_cli.main(["pilot-check", "--project", str(project), *words])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("words, named", [
    (["01.2", "max_review_round=3"], "max_review_round (did you mean max_review_rounds?)"),
    (["01.2", "fronted=01.2"], "fronted (did you mean frontend?)"),
    (["01.2", "--dry-run"], "--dry-run"),
    (["01.2,", "--no-worklfow"], "--no-worklfow (did you mean --no-workflow?)"),
])
def test_an_unknown_option_is_refused_with_the_known_ones_and_nothing_changes(capsys, project, words, named):
    before = tree_snapshot(project)
    code, out, err = check(capsys, project, *words)
    assert (code, out) == (2, "") and err.count("\n") == 1 and named in err, err
    assert "max_review_rounds=N" in err and "frontend=<ids>" in err and "--no-workflow" in err
    assert tree_snapshot(project) == before


def test_a_story_without_a_story_file_is_refused_and_nothing_is_created(capsys, project):
    before = tree_snapshot(project)
    code, out, err = check(capsys, project, "01.2,", "99.9", "frontend=01.2")
    assert (code, out) == (1, "") and "nothing started: no story file for 99.9" in err and err.count("\n") == 1
    assert tree_snapshot(project) == before and not (project / ".claude").exists()


def test_good_arguments_pass_and_name_each_story_file(capsys, project):
    code, out, err = check(capsys, project, "01.2", "max_review_rounds=3", "frontend=01.2", "--no-workflow")
    assert (code, err) == (0, "") and out == "stories: 01.2 docs/stories/01.2-user-roles.md\n"
    for words, problem in ((["01.2", "max_review_rounds=0"], "a whole number from 1 up"),
                           (["01.2", "phases=P1,P9"], "P9 is not a phase"),
                           (["01.2", "frontend=01.3"], "01.3 is not one of the stories to run")):
        assert check(capsys, project, *words)[0] == 2, words


@pytest.mark.parametrize("args, unknown", [
    ("01.2 max_review_round=3", "max_review_round"),
    ("01.2 fronted=01.2", "fronted"),
    ("01.2 --dry-run", "--dry-run"),
    ({"stories": ["01.2"], "max_rounds": 3}, "max_rounds"),
])
def test_the_workflow_refuses_unknown_options_before_any_agent(tmp_path, args, unknown):
    result, labels, _ = run_workflow(tmp_path, args)
    assert labels == [] and f"unknown option: {unknown} (the pilot knows: " in result["error"], result


def test_the_workflow_and_the_cli_know_the_same_options():
    script = (REPO / "workflows" / "pilot.js").read_text()
    options = re.search(r"const KNOWN_OPTIONS = \[(.*?)\]", script).group(1)
    flags = re.search(r"const KNOWN_FLAGS = \[(.*?)\]", script).group(1)
    assert re.findall(r"'([^']+)'", options) == list(KNOWN_OPTIONS)
    assert re.findall(r"'([^']+)'", flags) == list(KNOWN_FLAGS)


def test_the_commands_run_the_check_first():
    for name in ("pilot", "pilot-agents"):
        text = (REPO / "commands" / f"{name}.md").read_text()
        assert '"${CLAUDE_PLUGIN_ROOT}/bin/hybrid" pilot-check $ARGUMENTS' in text, name
    assert "hybrid pilot-check" in (REPO / "workflows" / "pilot.js").read_text().split("phases:")[0]


def test_hybrid_resume_args_output_passes_the_workflows_check(tmp_path, project):
    from mcp_server.checkpoints import open_checkpoint, resume_plan

    open_checkpoint(project, "01.2", "docs/**/{story}*.md")
    plan = resume_plan(project, "docs/**/{story}*.md", ["01.2"])
    result, labels, _ = run_workflow(tmp_path, plan)
    assert "error" not in result and labels[0] == "P1 01.2", result


def test_the_engine_is_checked_with_the_known_ones(capsys, project):
    assert check(capsys, project, "01.2", "engine=claude")[:2] == (0, "stories: 01.2 docs/stories/01.2-user-roles.md\n")
    assert check(capsys, project, "01.2", "engine=hybrid")[0] == 0
    before = tree_snapshot(project)
    code, out, err = check(capsys, project, "01.2", "engine=claud")
    assert (code, out) == (2, "") and err == (
        "hybrid pilot-check: engine=claud: claud (did you mean claude?) is not an engine; the engines are hybrid, claude\n")
    assert tree_snapshot(project) == before
    code, _, err = check(capsys, project, "01.2", "engin=claude")
    assert code == 2 and "engin (did you mean engine?)" in err and "engine=hybrid|claude" in err
