"""Path confinement, edit resolution and all-or-nothing writes, without the server."""

import os

import pytest

from mcp_server.delegation.changes import EditError, apply_edit, resolve
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
    assert [(w.path, w.lines, w.created) for w in written] == [("app/a.py", 1, False), ("app/new/b.py", 2, True), ("app/old.py", 0, False)]
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
