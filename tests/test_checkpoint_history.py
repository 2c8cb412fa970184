"""A checkpoint with a huge history is read, shown and written in bounded memory: views show the
last lines and the count of the rest, and a write keeps every line."""

from __future__ import annotations

import tracemalloc

import pytest

from mcp_server import checkpoint_tools, checkpoints
from mcp_server.checkpoints import HISTORY_HEADER, Update
from mcp_server.cli import main as hybrid
from tests.support import make_project

GLOB = "docs/**/{story}*.md"
LINES = 400_000
LINE = "P3: ↻ backend-dev 14:05\n"


@pytest.fixture
def huge(tmp_path):
    root = make_project(tmp_path / "proj")
    path = checkpoints.open_checkpoint(root, "01.2", GLOB).path
    with open(path, "ab") as handle:
        handle.write(LINE.encode("utf-8") * LINES)
    return root, path


def test_a_huge_history_is_read_in_bounded_memory(huge):
    root, path = huge
    tracemalloc.start()
    try:
        checkpoint = checkpoints.load_checkpoint(root, "01.2")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(checkpoint.history) == checkpoints.HISTORY_KEPT == 30
    assert checkpoint.history_earlier + len(checkpoint.history) == LINES
    assert path.stat().st_size > 10_000_000 and peak < 4_000_000  # never the whole history at once


def test_views_show_the_last_lines_and_count_the_rest(huge, monkeypatch, capsys):
    root, _ = huge
    monkeypatch.setenv("CLAUDE_PROJECT_DIR", str(root))
    for text in (checkpoint_tools.checkpoint_read("01.2"), _shown(root, capsys)):
        head, _, history = text.partition(HISTORY_HEADER + "\n")
        lines = history.splitlines()
        assert lines[0] == f"# ... {LINES - 30:,} earlier history lines not shown (the file has them)"
        assert lines[1:] == [LINE.strip()] * 30
        assert "story: '01.2'" in head and len(text) < 10_000


def _shown(root, capsys) -> str:
    assert hybrid(["checkpoint", "show", "01.2", "--project", str(root)]) == 0
    return capsys.readouterr().out


def test_a_write_keeps_every_history_line_as_it_was(huge):
    root, path = huge
    before = path.read_bytes()
    history_before = before[before.index(HISTORY_HEADER.encode()):]
    checkpoints.write_checkpoint(root, "01.2", Update("P1", "running"), GLOB)
    outcome = checkpoints.write_checkpoint(root, "01.2", Update("P1", "done", summary="ok"), GLOB)
    after = path.read_bytes()
    assert after.endswith(history_before[len(HISTORY_HEADER) + 1:] + (outcome.history_added[0].render() + "\n").encode())
    reread = checkpoints.load_checkpoint(root, "01.2")
    assert reread.phases["P1"]["status"] == "done"
    assert reread.history_earlier + len(reread.history) == LINES + 1
    assert reread.history[-1] == outcome.history_added[0]


def test_a_short_history_is_shown_whole(tmp_path, monkeypatch):
    root = make_project(tmp_path / "proj")
    checkpoints.write_checkpoint(root, "01.2", Update("P1", "running"), GLOB)
    checkpoints.write_checkpoint(root, "01.2", Update("P1", "done", summary="ok"), GLOB)
    monkeypatch.setenv("CLAUDE_PROJECT_DIR", str(root))
    text = checkpoint_tools.checkpoint_read("01.2")
    history = text.partition(HISTORY_HEADER + "\n")[2].splitlines()
    assert len(history) == 1 and history[0].startswith("P1: ✓ ux-designer ")
