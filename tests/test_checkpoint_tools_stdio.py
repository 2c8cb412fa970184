"""The checkpoint_* tools through the real server process, over stdio."""

from __future__ import annotations

import pytest

from mcp_server.checkpoints import checkpoint_path, load_checkpoint
from tests.support import mcp_client

pytestmark = pytest.mark.anyio

UNUSED_GLM = "http://127.0.0.1:9/api/paas/v4"  # the checkpoint tools never call GLM


def text_of(result) -> str:
    return result.content[0].text


async def test_tool_surface(project):
    async with mcp_client(project, UNUSED_GLM) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools["checkpoint_read"].input_schema["properties"]) == {"story"}
    assert set(tools["checkpoint_write"].input_schema["properties"]) == {
        "story", "phase", "status", "agent", "model", "summary", "artifacts", "review", "qa", "coverage", "new_iteration"
    }
    assert tools["checkpoint_write"].input_schema["required"] == ["story", "phase", "status"]
    assert set(tools["checkpoint_list"].input_schema["properties"]) == {"stories"}



async def test_list_without_ids_shows_every_story_file_and_creates_nothing(project):
    async with mcp_client(project, UNUSED_GLM) as client:
        listed = await client.call_tool("checkpoint_list", {})
    assert not listed.is_error
    assert text_of(listed).splitlines()[1].split() == ["01.2", *"·······", "P1", "ux-designer", "(not", "started)"]
    assert not checkpoint_path(project, "01.2").exists()

async def test_read_creates_write_merges_list_shows(project):
    path = checkpoint_path(project, "01.2")
    async with mcp_client(project, UNUSED_GLM) as client:
        read = await client.call_tool("checkpoint_read", {"story": "01.2"})
        assert not read.is_error, text_of(read)
        assert text_of(read).startswith("# .claude/checkpoints/01.2.yaml (next: P1 ux-designer)\nstory: '01.2'\n")
        assert "- id: AC-2\n  text: An unknown role is refused with ValueError." in text_of(read)
        assert path.is_file()

        done = await client.call_tool(
            "checkpoint_write",
            {"story": "01.2", "phase": "P1", "status": "done", "model": "claude-sonnet-4-5", "artifacts": ["docs/ux/01.2.md"]},
        )
        assert not done.is_error, text_of(done)
        lines = text_of(done).splitlines()
        assert lines[0] == "01.2 P1: done, iteration 1, ux-designer (claude-sonnet-4-5)"
        assert lines[1] == "artifacts: docs/ux/01.2.md"
        assert lines[2].startswith("history: P1: ✓ ux-designer ") and lines[-1] == "next: P2 test-writer"
        assert path.read_text().splitlines()[-1] == lines[2].removeprefix("history: ")

        for phase in ("P2", "P3"):
            assert not (await client.call_tool("checkpoint_write", {"story": "01.2", "phase": phase, "status": "done"})).is_error
        review = {"verdict": "REQUEST_CHANGES", "score": 6, "issues": [{"severity": "major", "file": "app/roles.py", "line": 1, "text": "no check"}]}
        reviewed = await client.call_tool("checkpoint_write", {"story": "01.2", "phase": "P5", "status": "done", "review": review})
        assert "review: REQUEST_CHANGES 6/10, 1 issues (1 major)" in text_of(reviewed)
        assert text_of(reviewed).endswith("next: P3 backend-dev (iteration 2): the review requested changes")

        listed = await client.call_tool("checkpoint_list", {})
        assert not listed.is_error
        table = text_of(listed).splitlines()
        assert table[0].split() == ["story", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "next"]
        assert table[1].startswith("01.2   ✓   ✓   ✓   ·   ✓   ·   ·   P3 backend-dev (iteration 2)")
        named = await client.call_tool("checkpoint_list", {"stories": "01.2,09.9"})
        # A named story gets its checkpoint on listing; one without a story file says why it has none.
        missing = text_of(named).splitlines()[2]
        assert missing.startswith("09.9") and "no story file" in missing
    assert load_checkpoint(project, "01.2").data["review"]["issues"][0]["file"] == "app/roles.py"


@pytest.mark.parametrize(
    "arguments, expected",
    [
        ({"story": "01.2", "phase": "P3", "status": "done"}, "P3 done refused: P1 is pending"),
        ({"story": "01.2", "phase": "P9", "status": "done"}, "unknown phase 'P9'"),
        ({"story": "01.2", "phase": "P1", "status": "finished"}, "unknown status 'finished'"),
        ({"story": "../x", "phase": "P1", "status": "done"}, "story id '../x' is not valid"),
        ({"story": "a/b", "phase": "P1", "status": "done"}, "story id 'a/b' is not valid"),
        ({"story": "01.2", "phase": "P5", "status": "done", "review": {"score": 5}}, "'verdict' is a required property"),
        ({"story": "01.2", "phase": "P5", "status": "done", "review": {"verdict": "APPROVED", "score": 11}}, "11 is greater than the maximum of 10"),
        ({"story": "01.2", "phase": "P6", "status": "running", "qa": [{"ac": "AC-9", "result": "pass", "evidence": "x"}]}, "AC-9"),
        ({"story": "09.9", "phase": "P1", "status": "done"}, "no story file for 09.9: nothing matches docs/**/09.9*.md"),
    ],
)
async def test_refusals_are_tool_errors_that_change_nothing(project, arguments, expected):
    async with mcp_client(project, UNUSED_GLM) as client:
        assert not (await client.call_tool("checkpoint_read", {"story": "01.2"})).is_error
        before = checkpoint_path(project, "01.2").read_bytes()
        result = await client.call_tool("checkpoint_write", arguments)
    assert result.is_error and expected in text_of(result), text_of(result)
    assert "Traceback" not in text_of(result)
    assert checkpoint_path(project, "01.2").read_bytes() == before
    assert sorted(p.name for p in checkpoint_path(project, "01.2").parent.iterdir()) == [".01.2.lock", "01.2.yaml"]


async def test_a_corrupt_checkpoint_is_reported_by_read_and_left_alone_by_write(project):
    path = checkpoint_path(project, "01.2")
    path.parent.mkdir(parents=True)
    path.write_text("story: '01.2'\nphases: [unclosed\n")
    before = path.read_bytes()
    async with mcp_client(project, UNUSED_GLM) as client:
        read = await client.call_tool("checkpoint_read", {"story": "01.2"})
        write = await client.call_tool("checkpoint_write", {"story": "01.2", "phase": "P1", "status": "done"})
        listed = await client.call_tool("checkpoint_list", {})
    assert read.is_error and str(path) in text_of(read) and "is not valid YAML: line 3, column 1" in text_of(read)
    assert write.is_error and "nothing was written" in text_of(write)
    assert not listed.is_error and "is not valid YAML" in text_of(listed)
    assert path.read_bytes() == before
