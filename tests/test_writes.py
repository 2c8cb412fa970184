"""Path confinement, edit resolution and all-or-nothing writes, without the server."""

import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mcp_server.delegation.changes import EditError, apply_edit, is_test_path, refuse_test_removal, resolve
from mcp_server.delegation.protocol import FileDelete, FileEdit, FileWrite, ReplyFormatError
from mcp_server.delegation.writes import PathRejected, confine, write_all


@pytest.fixture
def root(tmp_path):
    project = tmp_path / "proj"
    (project / "app").mkdir(parents=True)
    (project / "app" / "a.py").write_text("x = 1\ny = 1\n")
    (project / ".git").mkdir()
    return project


@pytest.mark.parametrize(
    "path, why",
    [
        ("../x.py", "'..'"),
        ("a/../../x.py", "'..'"),
        ("/etc/passwd", "absolute"),
        ("~/x", "absolute"),
        ("C:/x", "absolute"),
        (".git/config", ".git"),
        ("sub/.git/hooks/pre-commit", ".git"),
        (".claude/settings.json", ".claude"),
        # A case-insensitive filesystem (macOS, Windows) opens these as .git/ and .claude/.
        (".GIT/hooks/x", ".git"),
        ("sub/.Git/config", ".git"),
        (".Claude/settings.json", ".claude"),
        ("./.CLAUDE//hybrid.yaml", ".claude"),
        ("a\\b.py", "backslash"),
        ("", "empty"),
        (".", "project root"),
    ],
)
def test_confine_refuses(root, path, why):
    with pytest.raises(PathRejected, match=why if why != "'..'" else r"'\.\.'"):
        confine(root, path, purpose="write")


def test_symlink_out_of_the_project_is_refused(root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(PathRejected, match="symlink"):
        confine(root, "link/x.py", purpose="write")
    (root / "gitlink").symlink_to(root / ".git")
    with pytest.raises(PathRejected, match=".git"):
        confine(root, "gitlink/config", purpose="read")


def test_reads_may_see_claude_folder_but_writes_may_not(root):
    assert confine(root, ".claude/hybrid.yaml", purpose="read") == root.resolve() / ".claude" / "hybrid.yaml"


def test_write_all_creates_replaces_and_deletes(root):
    (root / "app" / "old.py").write_text("gone\n")
    os.chmod(root / "app" / "a.py", 0o755)
    written = write_all(root, {"app/a.py": b"x = 2\n", "app/new/b.py": b"b\nc", "app/old.py": None})
    assert [(w.path, w.lines, w.created, w.deleted) for w in written] == [
        ("app/a.py", 1, False, False), ("app/new/b.py", 2, True, False), ("app/old.py", 0, False, True)
    ]
    assert (root / "app" / "a.py").read_text() == "x = 2\n"
    assert os.stat(root / "app" / "a.py").st_mode & 0o777 == 0o755  # mode kept
    assert not (root / "app" / "old.py").exists()
    assert not [p for p in root.rglob("*") if "hybrid-tmp" in p.name]


def test_a_failure_midway_puts_everything_back(root, monkeypatch):
    before = (root / "app" / "a.py").read_bytes()
    real_replace = os.replace
    calls = []

    def flaky_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky_replace)
    with pytest.raises(OSError, match="disk full"):
        write_all(root, {"app/a.py": b"changed\n", "app/deep/new.py": b"n\n"})
    monkeypatch.setattr(os, "replace", real_replace)
    assert (root / "app" / "a.py").read_bytes() == before
    assert not (root / "app" / "deep").exists()
    assert not [p for p in root.rglob("*") if "hybrid-" in p.name]


def test_one_bad_path_means_nothing_is_written(root):
    with pytest.raises(PathRejected):
        write_all(root, {"app/fine.py": b"1\n", "../evil.py": b"2\n"})
    assert not (root / "app" / "fine.py").exists()


def test_resolve_applies_edits_in_order(root):
    changes = resolve(
        root,
        [
            FileEdit("app/a.py", "x = 1\n", "x = 10\n"),
            FileEdit("./app/a.py", "y = 1\n", "y = 20\n"),
            FileWrite("app/b.py", "b = 1\n"),
            FileEdit("app/b.py", "b = 1\n", "b = 2\n"),
        ],
    )
    assert changes == {"app/a.py": b"x = 10\ny = 20\n", "app/b.py": b"b = 2\n"}


def test_edit_tolerates_trailing_spaces_only():
    assert apply_edit("def f():   \n    return 1\n", FileEdit("f.py", "def f():\n    return 1\n", "def f():\n    return 2\n")) == "def f():\n    return 2\n"
    with pytest.raises(EditError, match="not found"):
        apply_edit("def f():\n  return 1\n", FileEdit("f.py", "def f():\n    return 1\n", "x\n"))


def test_ambiguous_or_missing_edits_are_repairable_errors(root):
    (root / "app" / "dup.py").write_text("a\na\n")
    with pytest.raises(EditError, match="matches 2 places"):
        resolve(root, [FileEdit("app/dup.py", "a\n", "b\n")])
    with pytest.raises(EditError, match="does not exist"):
        resolve(root, [FileEdit("app/none.py", "a\n", "b\n")])
    with pytest.raises(EditError, match="does not exist"):
        resolve(root, [FileDelete("app/none.py")])


def test_scope_outside_write_under_is_a_repairable_error(root):
    with pytest.raises(ReplyFormatError, match="outside tests/"):
        resolve(root, [FileWrite("app/x.py", "1\n")], write_under="tests")
    assert resolve(root, [FileWrite("tests/x.py", "1\n")], write_under="tests/") == {"tests/x.py": b"1\n"}


def test_reads_refuse_git_in_any_case(root):
    with pytest.raises(PathRejected, match=".git"):
        confine(root, ".GiT/config", purpose="read")


# --- generated paths: everything that leaves the project or enters .git/ or .claude/ -----------

SEGMENT = st.sampled_from(["app", "src", "tests", "x.py", "a.b", "-", "_"]) | st.text("abcxyz_-.", min_size=1, max_size=6).filter(
    lambda segment: segment not in (".", "..")
)
NAME = st.sampled_from(["pwn.py", "config", "settings.json", "hooks/pre-commit", "x"])
SEPARATOR = st.sampled_from(["/", "//", "/./"])


def any_case(word: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda flags: "".join(c.upper() if upper else c for c, upper in zip(word, flags))
    )


@st.composite
def escaping_paths(draw) -> str:
    """A relative-looking path that must be refused: '..' anywhere, an absolute or home or drive
    prefix, .git/ anywhere or .claude/ at the top (in any case), joined by odd separators."""
    head = draw(st.lists(SEGMENT, max_size=3))
    tail = draw(st.lists(SEGMENT, max_size=2)) + [draw(NAME)]
    kind = draw(st.sampled_from(["dotdot", "absolute", "git", "claude"]))
    if kind == "dotdot":
        segments = head + [".."] * draw(st.integers(1, 4)) + tail
    elif kind == "git":
        segments = head + [draw(any_case(".git"))] + tail
    elif kind == "claude":
        segments = ["."] * draw(st.integers(0, 2)) + [draw(any_case(".claude"))] + tail
    else:
        segments = head + tail
    path = draw(SEPARATOR).join(segments)
    if kind == "absolute":
        path = draw(st.sampled_from(["/", "//", "~/", "~", "C:/", "c:", "/../"])) + path
    return path


@st.composite
def inside_paths(draw) -> str:
    segments = draw(st.lists(SEGMENT, max_size=3)) + [draw(st.sampled_from(["a.py", "b.md", "c"]))]
    return draw(st.sampled_from(["", "./"])) + draw(SEPARATOR).join(segments)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=escaping_paths())
def test_generated_escapes_are_refused(root, path):
    with pytest.raises(PathRejected):
        confine(root, path, purpose="write")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=inside_paths())
def test_generated_inside_paths_stay_inside(root, path):
    target = confine(root, path, purpose="write")
    assert root.resolve() in target.parents


# --- fix rounds: tests are fixed, never deleted ---------------------------------------------------


@pytest.mark.parametrize(
    "path, is_test",
    [
        ("tests/test_roles.py", True),
        ("app/tests/helpers.py", True),
        ("Test/Foo.java", True),
        ("src/__tests__/roles.js", True),
        ("test_roles.py", True),
        ("pkg/roles_test.go", True),
        ("web/roles.test.ts", True),
        ("web/roles.spec.js", True),
        ("app/roles.py", False),
        ("app/contest.py", False),
        ("docs/testing.md", False),
    ],
)
def test_what_counts_as_a_test_file(path, is_test):
    assert is_test_path(path) is is_test


def test_a_fix_may_change_tests_but_not_delete_or_empty_them():
    refuse_test_removal({"tests/test_roles.py": b"def test_x():\n    assert True\n", "app/old.py": None})
    for change in (None, b"", b"\n  \n"):
        with pytest.raises(ReplyFormatError, match="tests must not be deleted"):
            refuse_test_removal({"app/roles.py": b"x = 1\n", "tests/test_roles.py": change})
