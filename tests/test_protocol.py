"""GLM's reply format: what parses, what is refused, and that fences inside files survive."""

import pytest
from hypothesis import given, strategies as st

from mcp_server.delegation.protocol import (
    FileDelete,
    FileEdit,
    FileWrite,
    ReplyFormatError,
    parse_reply,
    render_reply,
)

MARKDOWN_WITH_FENCES = "# Roles\n\n```python\nassign(user, 'admin')\n```\n\nMore text.\n\n```\nplain\n```\n"


def test_prose_around_blocks_is_ignored():
    reply = "Sure, here you go:\n\n" + render_reply([FileWrite("app/a.py", "x = 1\n")]) + "\nHope this helps!"
    assert parse_reply(reply) == [FileWrite("app/a.py", "x = 1\n")]


def test_code_fences_inside_a_file_are_content():
    [op] = parse_reply(render_reply([FileWrite("docs/roles.md", MARKDOWN_WITH_FENCES)]))
    assert op.content == MARKDOWN_WITH_FENCES


def test_whole_reply_wrapped_in_a_fence_still_parses():
    reply = "```\n" + render_reply([FileWrite("a.py", "y = 2\n")]) + "```\n"
    assert parse_reply(reply) == [FileWrite("a.py", "y = 2\n")]


def test_one_fence_wrapped_around_a_whole_file_is_dropped():
    reply = "=== file: app/a.py ===\n```python\nx = 1\n```\n=== end file ===\n"
    assert parse_reply(reply) == [FileWrite("app/a.py", "x = 1\n")]


def test_a_file_that_starts_and_ends_with_examples_keeps_them():
    content = "```py\na = 1\n```\nbetween\n```py\nb = 2\n```\n"
    assert parse_reply(f"=== file: doc.md ===\n{content}=== end file ===\n") == [FileWrite("doc.md", content)]


def test_a_longer_outer_fence_around_markdown_is_dropped():
    reply = "=== file: doc.md ===\n````markdown\n" + MARKDOWN_WITH_FENCES + "````\n=== end file ===\n"
    assert parse_reply(reply) == [FileWrite("doc.md", MARKDOWN_WITH_FENCES)]


def test_edits_and_deletes_in_order():
    reply = (
        "=== edit: app/a.py ===\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n"
        "<<<<<<< SEARCH\ny = 1\n=======\n>>>>>>> REPLACE\n=== end edit ===\n"
        "=== delete: app/old.py ===\n"
    )
    assert parse_reply(reply) == [
        FileEdit("app/a.py", "x = 1\n", "x = 2\n"),
        FileEdit("app/a.py", "y = 1\n", ""),
        FileDelete("app/old.py"),
    ]


def test_crlf_and_quoted_paths():
    reply = "=== file: `app/a.py` ===\r\nx = 1\r\n=== end file ===\r\n"
    assert parse_reply(reply) == [FileWrite("app/a.py", "x = 1\n")]


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("Here is the code: def f(): pass", "no '=== file"),
        ("", "no '=== file"),
        ("=== file: a.py ===\nx = 1\n", "not closed"),
        ("=== edit: a.py ===\nx = 1\n=== end edit ===\n", "expected '<<<<<<< SEARCH'"),
        ("=== edit: a.py ===\n<<<<<<< SEARCH\nx\n=== end edit ===\n", "needs a '======='"),
        ("=== edit: a.py ===\n<<<<<<< SEARCH\n=======\ny\n>>>>>>> REPLACE\n=== end edit ===\n", "SEARCH part is empty"),
    ],
)
def test_unusable_replies_say_why(reply, expected):
    with pytest.raises(ReplyFormatError, match=expected):
        parse_reply(reply)


lines = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), max_size=40)


@given(st.lists(lines, max_size=30))
def test_any_file_content_round_trips(content_lines):
    content = "".join(line.replace("\n", "") + "\n" for line in content_lines)
    if any(line.startswith("=== end file ===") for line in content.split("\n")):
        return  # the one documented reserved line
    parsed = parse_reply(render_reply([FileWrite("f.txt", content)]))
    # A file wrapped whole in one fence is unwrapped by design; everything else is exact.
    assert parsed == [FileWrite("f.txt", content)] or content.lstrip().startswith(("```", "~~~"))
