"""Story files: the title and the acceptance criteria, in the conventions found in the wild."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mcp_server.stories import (
    AC,
    StoryFileError,
    any_story_glob,
    find_story_file,
    list_stories,
    natural_key,
    parse_story,
    story_id_from_name,
)
from tests.support import STORY_01_2, make_project

GLOB = "docs/**/{story}*.md"


def story_file(tmp_path: Path, text: str, name: str = "01.5-roles.md") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def ids_and_texts(path: Path) -> list[tuple[str, str]]:
    return [(ac.id, ac.text) for ac in parse_story(path).acceptance_criteria]


def test_section_with_ac_ids_like_the_test_project(tmp_path):
    story = parse_story(story_file(tmp_path, STORY_01_2, "01.2-user-roles.md"))
    assert story.id == "01.2" and story.title == "User Roles"
    assert story.acceptance_criteria == [
        AC("AC-1", "A user can be given the role `admin` or `member`."),
        AC("AC-2", "An unknown role is refused with ValueError."),
    ]


def test_section_items_without_ids_are_numbered_by_position(tmp_path):
    path = story_file(
        tmp_path,
        """\
        # Roles
        ### acceptance criteria
        - [ ] An admin can give a user a role
        - [x] A role can be revoked
        1. Roles are listed
        2) Roles are sorted
        """,
    )
    assert [ac.id for ac in parse_story(path).acceptance_criteria] == ["AC-1", "AC-2", "AC-3", "AC-4"]
    assert ids_and_texts(path)[1] == ("AC-2", "A role can be revoked")


@pytest.mark.parametrize(
    "item, expected_id",
    [
        ("- AC-1: text here", "AC-1"),
        ("- **AC-2**: text here", "AC-2"),
        ("- **AC-3:** text here", "AC-3"),
        ("- AC4 - text here", "AC-4"),
        ("* AC 5. text here", "AC-5"),
        ("1. ac-6 – text here", "AC-6"),
        ("- [ ] AC_7: text here", "AC-7"),
    ],
)
def test_an_item_keeps_its_own_id_normalised(tmp_path, item, expected_id):
    path = story_file(tmp_path, f"## Acceptance Criteria\n{item}\n")
    assert ids_and_texts(path) == [(expected_id, "text here")]


def test_mixed_ids_never_collide(tmp_path):
    path = story_file(tmp_path, "## ACs\n- first\n- AC-1: explicit one\n- third\n")
    assert ids_and_texts(path) == [("AC-2", "first"), ("AC-1", "explicit one"), ("AC-3", "third")]


def test_given_when_then_lines_belong_to_the_ac_above(tmp_path):
    path = story_file(
        tmp_path,
        """\
        ## Acceptance Criteria
        * AC3 - An unknown role is refused
          Given a user
          When the role "root" is assigned
        Then ValueError is raised
        - AC-4: Nested detail
          - with a nested bullet
        ### AC-8: A heading works too
        Given nothing
        """,
    )
    assert ids_and_texts(path) == [
        ("AC-3", 'An unknown role is refused\nGiven a user\nWhen the role "root" is assigned\nThen ValueError is raised'),
        ("AC-4", "Nested detail\nwith a nested bullet"),
        ("AC-8", "A heading works too\nGiven nothing"),
    ]


def test_the_section_ends_at_a_heading_of_the_same_level(tmp_path):
    path = story_file(
        tmp_path,
        """\
        Intro that mentions AC-9: not an AC, because a section exists.

        ## Acceptance Criteria
        - one
        - two

        ## Notes
        - not an AC
        """,
    )
    assert ids_and_texts(path) == [("AC-1", "one"), ("AC-2", "two")]


def test_a_bold_line_can_head_the_section(tmp_path):
    path = story_file(tmp_path, "**Acceptance Criteria:**\n- one\n- two\n\n# Next\n- three\n")
    assert [ac.id for ac in parse_story(path).acceptance_criteria] == ["AC-1", "AC-2"]


def test_ac_lines_anywhere_when_there_is_no_section(tmp_path):
    path = story_file(
        tmp_path,
        """\
        # 01.5: Roles
        Some intro.
        AC-1: First
        Given a thing
        Then a result
        Prose ends it.
        - **AC-2:** Second
        ```
        AC-3: inside a fence, not an AC
        ```
        ### AC-4 - Heading form
        When x
        """,
    )
    assert ids_and_texts(path) == [
        ("AC-1", "First\nGiven a thing\nThen a result"),
        ("AC-2", "Second"),
        ("AC-4", "Heading form\nWhen x"),
    ]


def test_an_empty_section_falls_back_to_ac_lines(tmp_path):
    path = story_file(tmp_path, "## Acceptance Criteria\nSee below.\n\n## Details\nAC-1: the one\n")
    assert ids_and_texts(path) == [("AC-1", "the one")]


def test_a_story_without_acs_has_none(tmp_path):
    assert parse_story(story_file(tmp_path, "# 01.5 Roles\n\nJust prose.\n")).acceptance_criteria == []


def test_a_repeated_id_names_both_lines(tmp_path):
    path = story_file(tmp_path, "## Acceptance Criteria\n- AC-1: a\n- AC-1: b\n")
    with pytest.raises(StoryFileError, match=r"AC-1 appears twice \(lines 2 and 3\)"):
        parse_story(path)


@pytest.mark.parametrize(
    "heading, title",
    [
        ("# 01.5 Roles", "Roles"),
        ("# 01.5: Roles", "Roles"),
        ("# Story 01.5 - Roles", "Roles"),
        ("# Story 7.1: Roles", "Roles"),
        ("# Roles and rights", "Roles and rights"),
        ("## Not a title", "01.5-roles"),
    ],
)
def test_title_is_the_first_heading_without_the_story_id(tmp_path, heading, title):
    assert parse_story(story_file(tmp_path, heading + "\n")).title == title


def test_unreadable_story_file_is_a_clear_error(tmp_path):
    path = tmp_path / "01.5.md"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(StoryFileError, match="cannot read story file"):
        parse_story(path)


@pytest.mark.parametrize(
    "name, story",
    [("01.2-user-roles.md", "01.2"), ("01.2.user-roles.md", "01.2"), ("PROJ-12-login.md", "PROJ-12"),
     ("7.md", "7"), ("glm-api.md", None), ("checkpoints.md", None), ("01a.md", None)],
)
def test_story_id_from_a_file_name(name, story):
    assert story_id_from_name(name) == story


def test_list_stories_finds_story_files_only_in_natural_order(tmp_path):
    root = make_project(tmp_path / "proj")
    stories_dir = root / "docs" / "stories"
    (stories_dir / "01.10-later.md").write_text("# 01.10 Later\n## ACs\n- a\n- b\n- c\n")
    (stories_dir / "01.3.permissions.md").write_text("# Permissions\nAC-1: one\n")
    (root / "docs" / "glm-api.md").write_text("# Not a story\n")
    (root / "docs" / "nested").mkdir()
    (root / "docs" / "nested" / "02.1-deep.md").write_text("# 02.1 Deep\n")
    found = list_stories(root, GLOB)
    assert [(s.id, s.title, len(s.acceptance_criteria)) for s in found] == [
        ("01.2", "User Roles", 2), ("01.3", "Permissions", 1), ("01.10", "Later", 3), ("02.1", "Deep", 0)
    ]
    for story in found:  # both ways of finding a story agree
        assert story.path == find_story_file(root, story.id, GLOB)


def test_any_story_glob_and_natural_order():
    assert any_story_glob("docs/**/{story}*.md") == "docs/**/*.md"
    assert any_story_glob("stories/{story}.md") == "stories/*.md"
    assert sorted(["01.10", "01.2", "1.1", "01.9"], key=natural_key) == ["1.1", "01.2", "01.9", "01.10"]
