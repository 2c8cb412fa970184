"""The story file is the story: a checkpoint records the file it was created from and every
later lookup uses it; the pipeline's own outputs (docs/design/<id>-ux.md, the docs P7 writes)
are never taken for a story; several matches are named by `hybrid stories`."""

from __future__ import annotations

import json

import pytest

from mcp_server import cli as hybrid_cli
from mcp_server.checkpoints import CheckpointError, Update, open_checkpoint, story_file_of, write_checkpoint
from mcp_server.config import load_settings
from mcp_server.delegation.context import gather_context
from mcp_server.delegation.errors import DelegationError

GLOB = "docs/**/{story}*.md"
UX = "# 01.2 User Roles: UX\n\n## Flows\n\nAn admin opens the roles page.\n"
P7_DOC = "# User roles\n\nRoles group what members may do.\n"


def add(project, relative: str, text: str):
    path = project / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def hybrid_json(capsys, project, *argv: str):
    code = hybrid_cli.main([*argv, "--project", str(project), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_a_design_document_sorting_first_is_never_the_story(project):
    add(project, "docs/design/01.2-ux.md", UX)  # docs/design sorts before docs/stories
    checkpoint = open_checkpoint(project, "01.2", GLOB)
    assert checkpoint.data["story_file"] == "docs/stories/01.2-user-roles.md"
    assert checkpoint.data["title"] == "User Roles" and len(checkpoint.ac_ids) == 2


def test_a_checkpoint_deleted_to_start_over_is_rebuilt_from_the_story_not_the_outputs(project):
    open_checkpoint(project, "01.2", GLOB)
    write_checkpoint(project, "01.2", Update(phase="P1", status="done", agent="ux-designer",
                                             artifacts=["docs/design/01.2-ux.md"]), GLOB)
    add(project, "docs/design/01.2-ux.md", UX)
    add(project, "docs/features/01.2-user-roles.md", P7_DOC)  # what P7 writes: the id, no criteria
    (project / ".claude" / "checkpoints" / "01.2.yaml").unlink()
    rebuilt = open_checkpoint(project, "01.2", GLOB)
    assert rebuilt.data["story_file"] == "docs/stories/01.2-user-roles.md"


def test_every_later_lookup_uses_the_file_the_checkpoint_recorded(project):
    open_checkpoint(project, "01.2", GLOB)
    # A file added later that sorts first and has criteria of its own: the glob would now pick it.
    add(project, "docs/01.2-draft.md", "# 01.2 Draft\n\n## Acceptance Criteria\n- AC-1: something else\n")
    assert story_file_of(project, "01.2", GLOB) == project / "docs" / "stories" / "01.2-user-roles.md"
    gathered = gather_context(load_settings(project, environ={}), "01.2", [])
    assert gathered.story_path == "docs/stories/01.2-user-roles.md" and "assign roles" in gathered.story_text


def test_a_recorded_story_file_that_is_gone_or_a_design_document_is_one_clear_error(project):
    open_checkpoint(project, "01.2", GLOB)
    (project / "docs" / "stories" / "01.2-user-roles.md").rename(project / "docs" / "stories" / "gone.md")
    with pytest.raises(DelegationError, match="story file docs/stories/01.2-user-roles.md, recorded in 01.2.yaml, is gone"):
        gather_context(load_settings(project, environ={}), "01.2", [])
    path = project / ".claude" / "checkpoints" / "01.2.yaml"
    path.write_text(path.read_text().replace("docs/stories/01.2-user-roles.md", "docs/design/01.2-ux.md"))
    add(project, "docs/design/01.2-ux.md", UX)
    with pytest.raises(CheckpointError, match="created from docs/design/01.2-ux.md, a design document, not the story"):
        story_file_of(project, "01.2", GLOB)


def test_hybrid_stories_names_the_file_used_and_the_others_that_match(capsys, project):
    add(project, "docs/design/01.2-ux.md", UX)
    add(project, "docs/features/01.2-user-roles.md", P7_DOC)
    code, [entry] = hybrid_json(capsys, project, "stories")
    assert code == 0 and entry["file"] == "docs/stories/01.2-user-roles.md" and entry["criteria"] == 2
    assert entry["also_matching"] == ["docs/features/01.2-user-roles.md"]  # docs/design is not even a candidate
    assert hybrid_cli.main(["stories", "--project", str(project)]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert line.startswith("01.2") and "docs/stories/01.2-user-roles.md; 1 more matches its id, not used: " \
        "docs/features/01.2-user-roles.md" in line
    code, [row] = hybrid_json(capsys, project, "status")
    assert row["title"] == "User Roles"
