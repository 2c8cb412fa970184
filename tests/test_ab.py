"""hybrid ab with a fake `claude` (tests/fakes/fake_claude_ab.py) that leaves what each engine's
pilot would: the refusals that change nothing, the worktrees at the commit, the two runs at once
(or one after the other), the comparison at the end (tests/test_compare.py's figures), cleanup
and removal; and `hybrid demo --ab`'s wiring to the simulators.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_server import cli as hybrid_cli
from mcp_server.ab import demo as ab_demo
from mcp_server.demo.run import PLUGIN_ROOT

from tests.support import REPO, make_project

STORY_01_3 = "# 01.3 Permissions\n\n## Acceptance Criteria\n- AC-1: a member cannot grant roles.\n- AC-2: an admin can.\n"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file, the .git folder included (a worktree added is a change there too)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def fake_claude(tmp_path) -> Path:
    script = tmp_path / "bin" / "claude"
    script.parent.mkdir()
    script.write_text(f"#!/bin/sh\nexec '{sys.executable}' '{REPO / 'tests' / 'fakes' / 'fake_claude_ab.py'}' \"$@\"\n")
    script.chmod(0o755)
    return script


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    for key, value in {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
                       "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_NOSYSTEM": "1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for key in ("FAKE_CLAUDE_BARRIER", "FAKE_CLAUDE_ORDER", "FAKE_CLAUDE_FAIL"):
        monkeypatch.delenv(key, raising=False)
    project = make_project(tmp_path / "project")
    (project / "docs" / "stories" / "01.3-permissions.md").write_text(STORY_01_3)
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "start")
    monkeypatch.setenv("CLAUDE_PROJECT_DIR", str(project))  # as inside a Claude Code session: not for the nested runs
    return project


def ab(capsys, *argv: str) -> tuple[int, str, str]:
    code = hybrid_cli.main(["ab", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def the_folder(err: str) -> Path:
    line = next(line for line in err.splitlines() if line.startswith("hybrid ab: the A/B folder: "))
    return Path(line.removeprefix("hybrid ab: the A/B folder: ").split(" (")[0])


# --- refusals: one line, nothing changed ---------------------------------------------------------


def test_refuses_a_folder_outside_git(capsys, tmp_path, fake_claude, monkeypatch):
    project = make_project(tmp_path / "plain")
    monkeypatch.delenv("CLAUDE_PROJECT_DIR", raising=False)
    before = snapshot(project)
    code, out, err = ab(capsys, "01.2", "--project", str(project), "--claude", str(fake_claude))
    assert (code, out) == (2, "")
    assert err == f"hybrid: {project} is not in a git repository: hybrid ab runs each engine in a git worktree of it (git init, then commit)\n"
    assert snapshot(project) == before


@pytest.mark.parametrize("change", ["modified", "staged", "untracked"])
def test_refuses_uncommitted_changes(capsys, repo, fake_claude, change):
    target = repo / ("app" / Path("roles.py") if change != "untracked" else Path("app/new.py"))
    target.write_text("ROLES = ('admin',)\n")
    if change == "staged":
        git(repo, "add", "app/roles.py")
    before = snapshot(repo)
    code, out, err = ab(capsys, "01.2,01.3", "--claude", str(fake_claude))
    assert (code, out) == (2, "")
    shown = "app/new.py" if change == "untracked" else "app/roles.py"
    assert err == (f"hybrid: {repo} has uncommitted changes ({shown}): commit them, or pass --include-uncommitted "
                   "to copy them into both worktrees\n")
    assert snapshot(repo) == before
    assert len(git(repo, "worktree", "list").splitlines()) == 1


def test_refuses_an_unknown_story_and_a_missing_claude(capsys, repo, tmp_path):
    before = snapshot(repo)
    code, _, err = ab(capsys, "01.2,09.9", "--claude", str(tmp_path / "nope"))
    assert (code, err) == (1, "hybrid: unknown story 09.9; known: 01.2, 01.3\n")
    code, _, err = ab(capsys, "01.2", "--claude", str(tmp_path / "nope"))
    assert (code, err) == (2, f"hybrid: --claude {tmp_path / 'nope'}: not an executable file\n")
    code, _, err = ab(capsys)
    assert (code, err) == (2, "hybrid: name the stories to run: hybrid ab 01.2,01.3\n")
    assert snapshot(repo) == before


# --- the run ------------------------------------------------------------------------------------


def test_two_worktrees_run_at_once_and_end_with_the_comparison(capsys, repo, fake_claude, tmp_path, monkeypatch):
    (tmp_path / "barrier").mkdir()
    monkeypatch.setenv("FAKE_CLAUDE_BARRIER", str(tmp_path / "barrier"))  # each waits for the other to start
    # the plugin's state: committed, it is taken out of the worktrees (each side starts afresh);
    # uncommitted, it is no uncommitted change
    (repo / ".claude" / "checkpoints").mkdir(parents=True)
    (repo / ".claude" / "checkpoints" / "09.9.yaml").write_text("old: state\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a checkpoint committed")
    (repo / ".claude" / "hybrid").mkdir()
    (repo / ".claude" / "hybrid" / "usage.db").write_bytes(b"the project's own ledger")
    commit = git(repo, "rev-parse", "HEAD")
    code, out, err = ab(capsys, "01.2 01.3", "--claude", str(fake_claude), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["total"]["cost_usd"]["a"], data["total"]["cost_usd"]["b"]) == (0.19085, 0.481225)  # tests/test_compare.py
    assert data["estimate"]["hybrid_side"] == "B" and data["stories"] == ["01.2", "01.3"]
    assert data["note"].startswith(f"hybrid ab at commit {commit[:12]}: A ran engine=claude, B engine=hybrid, at once")
    folder = the_folder(err)
    assert folder.parent == repo / ".claude" / "hybrid" / "ab"
    for engine in ("claude", "hybrid"):
        worktree = folder / engine
        assert git(worktree, "rev-parse", "HEAD") == commit
        assert not (worktree / ".claude" / "checkpoints" / "09.9.yaml").exists()
        called = json.loads((worktree / f".fake-claude-{engine}.json").read_text())
        assert called["argv"][:2] == ["-p", f"/hybrid:pilot 01.2,01.3 engine={engine}"]
        assert called["argv"][called["argv"].index("--plugin-dir") + 1] == str(PLUGIN_ROOT)
        assert called["cwd"] == str(worktree) and called["env"]["CLAUDE_PROJECT_DIR"] is None
        assert json.loads((folder / f"{engine}.log").read_text().splitlines()[0])["returncode"] == 0
    assert json.loads((folder / "compare.json").read_text()) == data
    assert "| measured cost | $0.1909 | $0.4812 | +$0.2904 | ×2.52 |" in (folder / "compare.md").read_text()
    manifest = json.loads((folder / "ab.json").read_text())
    assert manifest["commit"] == commit and manifest["stories"] == ["01.2", "01.3"] and manifest["parallel"] is True
    assert len(git(repo, "worktree", "list").splitlines()) == 3
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""  # the project's checkout is untouched
    assert (repo / ".claude" / "hybrid" / "usage.db").read_bytes() == b"the project's own ledger"


def test_sequential_runs_one_after_the_other(capsys, repo, fake_claude, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_CLAUDE_ORDER", str(tmp_path / "order.log"))
    code, out, err = ab(capsys, "01.2,01.3", "--claude", str(fake_claude), "--sequential")
    assert code == 0, err
    assert (tmp_path / "order.log").read_text().split("\n")[:4] == ["claude start", "claude end", "hybrid start", "hybrid end"]
    assert "one after the other" in out and "| measured cost | $0.1909 | $0.4812 |" in out


def test_include_uncommitted_copies_the_changes_into_both(capsys, repo, fake_claude):
    (repo / "app" / "roles.py").write_text("ROLES = ('admin', 'member', 'guest')\n")
    (repo / "app" / "new.py").write_text("NEW = 1\n")
    (repo / "docs" / "stories" / "01.2-user-roles.md").unlink()
    (repo / "docs" / "stories" / "01.2-roles.md").write_text((REPO / "tests" / "support.py").read_text().split('"""')[3])
    before = snapshot(repo)
    code, _, err = ab(capsys, "01.2,01.3", "--claude", str(fake_claude), "--include-uncommitted")
    assert code == 0, err
    folder = the_folder(err)
    for engine in ("claude", "hybrid"):
        tree = folder / engine
        assert (tree / "app" / "roles.py").read_text() == "ROLES = ('admin', 'member', 'guest')\n"
        assert (tree / "app" / "new.py").read_text() == "NEW = 1\n"
        assert not (tree / "docs" / "stories" / "01.2-user-roles.md").exists()
        assert (tree / "docs" / "stories" / "01.2-roles.md").exists()
    assert json.loads((folder / "ab.json").read_text())["included_uncommitted"] == [
        "app/new.py", "app/roles.py", "docs/stories/01.2-roles.md", "docs/stories/01.2-user-roles.md"]
    after = snapshot(repo)
    assert {k: v for k, v in after.items() if not k.startswith((".git/", ".claude/"))} == \
           {k: v for k, v in before.items() if not k.startswith((".git/", ".claude/"))}


def test_ignored_settings_are_copied_into_both(capsys, repo, fake_claude):
    (repo / ".gitignore").write_text(".claude/hybrid.yaml\n.claude/settings.local.json\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore local settings")
    (repo / ".claude").mkdir(exist_ok=True)
    (repo / ".claude" / "hybrid.yaml").write_text("glm:\n  base_url: https://example.invalid/api/paas/v4\n")
    (repo / ".claude" / "settings.local.json").write_text('{"permissions": {"allow": ["Bash(pytest *)"]}}')
    code, _, err = ab(capsys, "01.2,01.3", "--claude", str(fake_claude))
    assert code == 0, err
    assert "hybrid ab: copied into both, as git ignores them: .claude/hybrid.yaml, .claude/settings.local.json" in err
    folder = the_folder(err)
    for engine in ("claude", "hybrid"):
        assert (folder / engine / ".claude" / "hybrid.yaml").read_text() == (repo / ".claude" / "hybrid.yaml").read_text()
        assert (folder / engine / ".claude" / "settings.local.json").is_file()


def test_a_failed_session_is_reported_with_exit_1(capsys, repo, fake_claude, monkeypatch):
    monkeypatch.setenv("FAKE_CLAUDE_FAIL", "hybrid")
    code, out, err = ab(capsys, "01.2,01.3", "--claude", str(fake_claude))
    assert (code, out) == (1, "")
    assert "hybrid ab: hybrid: failed in " in err and "exit 1: fake claude: the session failed" in err
    assert "hybrid ab: no comparison: B: no usage ledger at " in err
    folder = the_folder(err)
    assert json.loads((folder / "ab.json").read_text())["sessions"]["hybrid"]["returncode"] == 1


# --- cleanup ------------------------------------------------------------------------------------


def test_cleanup_removes_the_checkouts_and_keeps_each_sides_records(capsys, repo, fake_claude):
    code, out, err = ab(capsys, "01.2,01.3", "--claude", str(fake_claude), "--cleanup", "--json")
    assert code == 0, err
    folder = the_folder(err)
    assert len(git(repo, "worktree", "list").splitlines()) == 1
    assert not (folder / "claude" / "app").exists() and not (folder / "claude" / ".git").exists()
    assert (folder / "claude" / ".claude" / "hybrid" / "usage.db").is_file()
    assert (folder / "hybrid" / ".claude" / "checkpoints" / "01.3.yaml").is_file()
    again = hybrid_cli.main(["report", "--compare", str(folder / "claude"), str(folder / "hybrid"), "--json"])
    later, _ = capsys.readouterr()
    assert again == 0
    assert json.loads(later)["total"]["cost_usd"] == json.loads(out)["total"]["cost_usd"]


def test_remove_takes_away_the_folder_and_its_worktrees(capsys, repo, fake_claude, tmp_path):
    code, _, err = ab(capsys, "01.2,01.3", "--claude", str(fake_claude))
    assert code == 0, err
    folder = the_folder(err)
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "keep.txt").write_text("mine")
    code, _, err = ab(capsys, "--remove", str(stranger))
    assert (code, err) == (2, f"hybrid: {stranger} is not a hybrid ab folder (it has no ab.json); nothing removed\n")
    assert (stranger / "keep.txt").read_text() == "mine"
    code, _, err = ab(capsys, "--remove", str(folder))
    assert code == 0, err
    assert not folder.exists()
    assert len(git(repo, "worktree", "list").splitlines()) == 1


# --- hybrid demo --ab ---------------------------------------------------------------------------


def test_demo_ab_runs_each_engine_against_its_own_simulators(capsys, tmp_path, fake_claude, monkeypatch):
    monkeypatch.delenv("CLAUDE_PROJECT_DIR", raising=False)
    said: list[str] = []
    code = ab_demo.main(str(tmp_path / "demo"), say=said.append, claude=str(fake_claude))
    out, _ = capsys.readouterr()
    assert code == 0, said
    assert said[0] == "hybrid demo --ab (simulated models: no Anthropic or GLM API was called)"
    assert "GLM simulator requests: engine=claude 0, engine=hybrid 1" in said
    assert "_hybrid demo --ab (simulated models: no Anthropic or GLM API was called)_" in out
    assert "| measured cost | $0.1909 | $0.4812 |" in out
    for engine in ("claude", "hybrid"):
        called = json.loads((tmp_path / "demo" / engine / "settings-epic" / f".fake-claude-{engine}.json").read_text())
        assert called["argv"][1] == f"/hybrid:pilot 01.2,01.3,01.4 engine={engine}"
        assert called["env"]["ANTHROPIC_BASE_URL"].startswith("http://127.0.0.1:")
    urls = {engine: json.loads((tmp_path / "demo" / engine / "settings-epic" / f".fake-claude-{engine}.json").read_text())["env"]
            for engine in ("claude", "hybrid")}
    assert urls["claude"]["ANTHROPIC_BASE_URL"] != urls["hybrid"]["ANTHROPIC_BASE_URL"]
    assert (tmp_path / "demo" / "compare.md").is_file()


def test_hybrid_demo_ab_flag_reaches_the_ab_demo(monkeypatch):
    seen = []
    monkeypatch.setattr(ab_demo, "main", lambda directory=None: seen.append(directory) or 0)
    assert hybrid_cli.main(["demo", "--ab", "--dir", "/tmp/x"]) == 0
    assert seen == ["/tmp/x"]
