"""Inputs are bounded in memory as well as in size: a huge context file is read only up to the
context budget, and a bad story id is echoed only in part."""

from __future__ import annotations

import tracemalloc

import pytest

from mcp_server.config import load_settings
from mcp_server.delegation.context import gather_context
from mcp_server.stories import StoryIdError, check_story_id
from tests.support import make_project


def test_a_huge_context_file_is_read_only_up_to_the_budget(tmp_path):
    project = make_project(tmp_path / "proj")
    line = b"x = 'a line of generated data that goes on for a while'\n"
    with open(project / "big.py", "wb") as handle:
        block = line * (1 << 14)
        for _ in range(64):  # 57 MB, 1,048,576 lines
            handle.write(block)
    settings = load_settings(project, environ={})
    tracemalloc.start()
    try:
        context = gather_context(settings, "01.2", ["big.py"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    [item] = context.files
    assert item.truncated and "of 1048577 lines shown" in item.text
    budget = settings.context.max_tokens * settings.context.chars_per_token
    assert len(item.text) <= budget
    assert peak < 8 * budget + (4 << 20)  # what the budget needs, never the file's 57 MB


@pytest.mark.parametrize("story", ["9" * 5000 + "/", "../" * 2000, "a" * 65])
def test_a_bad_story_id_is_echoed_at_most_100_characters(story):
    with pytest.raises(StoryIdError) as refused:
        check_story_id(story)
    message = str(refused.value)
    quoted = message.split(" is not valid")[0].removeprefix("story id ")
    assert len(quoted.split("...")[0]) <= 100 and len(message) < 300
