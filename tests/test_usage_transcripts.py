"""The transcript reader: usage per API message, dedup, complete lines only, prompt prefix.

Expected numbers are worked out by hand from tests/fixtures/claude-code-2.1.330 (captured from
the real CLI 2.1.330): every assistant message there reports input 1000, cache creation 200
(with a 5m/1h breakdown of 0/0), cache read 300 and output 50.
"""

import json
import time
from pathlib import Path

import pytest

from mcp_server.usage import transcripts
from mcp_server.usage.transcripts import (
    Attribution,
    decide_attribution,
    message_from_line,
    parse_prefix,
    read_transcript,
    usage_row,
)

FIXTURES = Path(__file__).parent / "fixtures" / "claude-code-2.1.330"
MAIN = FIXTURES / "main-transcript.jsonl"
AGENT = FIXTURES / "subagent-agent-abc32a8b04146f279.jsonl"


def assistant(message_id="msg_1", *, request="req_1", model="claude-opus-5-5", output=50, ts="2026-11-23T22:48:27.626Z", **usage):
    body = {"input_tokens": 1000, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": output}
    body.update(usage)
    return {
        "type": "assistant",
        "requestId": request,
        "timestamp": ts,
        "sessionId": "s1",
        "message": {"id": message_id, "model": model, "role": "assistant", "content": [], "usage": body},
    }


def user(content):
    return {"type": "user", "message": {"role": "user", "content": content}}


def write_lines(path, objs, tail=b""):
    path.write_bytes(b"".join(json.dumps(o).encode() + b"\n" for o in objs) + tail)


def test_main_fixture_counts_the_triple_written_message_once():
    chunk = read_transcript(str(MAIN), find_prompt=True)
    assert sorted(chunk.messages) == [
        "msg_13:e0179bfe-20eb-488d-8746-7ca6c3a781e7",
        "msg_3:3775e874-5cc4-4a9c-904f-e55e8939cc27",
    ]
    assert chunk.end == MAIN.stat().st_size and chunk.bad_lines == 0
    for message in chunk.messages.values():
        assert message.model == "claude-opus-5-5" and not message.is_sidechain
        # 1000 input + 300 cache read + 200 cache write; the 0/0 breakdown leaves 200 to 5m
        assert (message.prompt_tokens, message.cache_read_tokens, message.cache_write_5m_tokens) == (1500, 300, 200)
        assert (message.cache_write_1h_tokens, message.output_tokens) == (0, 50)
    # the slash-command wrapper line is skipped; the expanded command is the prompt
    assert chunk.prompt == "Run the pilot for stories: 01.2,01.3,01.4\n"


def test_subagent_fixture():
    chunk = read_transcript(str(AGENT), find_prompt=True)
    assert chunk.prompt == "Implement story 01.2"
    assert [m.dedup_key.split(":")[0] for m in chunk.messages.values()] == ["msg_5", "msg_11"]
    assert {m.agent_id for m in chunk.messages.values()} == {"abc32a8b04146f279"}
    assert all(m.is_sidechain and m.model == "claude-haiku-5-5" for m in chunk.messages.values())
    assert sum(m.size for m in chunk.messages.values()) == 2 * (1500 + 50)


def test_prompt_is_not_searched_unless_asked():
    assert read_transcript(str(AGENT)).prompt is None


def test_cache_write_breakdown_and_thinking():
    line = assistant(
        cache_creation_input_tokens=700,
        cache_read_input_tokens=5,
        cache_creation={"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 600},
        output_tokens_details={"thinking_tokens": 30},
    )
    message = message_from_line(line)
    assert (message.cache_write_5m_tokens, message.cache_write_1h_tokens) == (100, 600)
    assert message.prompt_tokens == 1000 + 5 + 700 and message.thinking_tokens == 30
    # only the total: all of it is 5m
    only_total = message_from_line(assistant(cache_creation_input_tokens=250))
    assert (only_total.cache_write_5m_tokens, only_total.cache_write_1h_tokens) == (250, 0)


@pytest.mark.parametrize(
    "line",
    [
        assistant(model="<synthetic>"),
        {**assistant(), "message": {"id": "m", "model": "claude-opus-5-5"}},  # no usage
        {**assistant(), "message": {"model": "claude-opus-5-5", "usage": {"input_tokens": 3}}},  # no id
        {**assistant(), "message": "not an object"},
    ],
)
def test_lines_without_countable_usage_are_skipped(line):
    assert message_from_line(line) is None


def test_dedup_key_uses_request_id_or_request_ref():
    assert message_from_line(assistant("m1", request="r1")).dedup_key == "m1:r1"
    ref = assistant("m1", request=None)
    del ref["requestId"]
    ref["requestRef"] = "ref9"
    assert message_from_line(ref).dedup_key == "m1:ref9"
    del ref["requestRef"]
    assert message_from_line(ref).dedup_key == "m1:"


def test_the_largest_copy_is_kept(tmp_path):
    path = tmp_path / "t.jsonl"
    write_lines(path, [assistant(output=10), assistant(output=40), assistant(output=25)])
    [message] = read_transcript(str(path)).messages.values()
    assert message.output_tokens == 40


def test_partial_last_line_is_left_for_later(tmp_path):
    path = tmp_path / "t.jsonl"
    whole = json.dumps(assistant("m2")).encode()
    write_lines(path, [assistant("m1")], tail=whole[:40])
    first = read_transcript(str(path))
    assert list(first.messages) == ["m1:req_1"]
    assert first.end == path.stat().st_size - 40
    with open(path, "ab") as handle:
        handle.write(whole[40:] + b"\n")
    second = read_transcript(str(path), first.end)
    assert list(second.messages) == ["m2:req_1"] and second.end == path.stat().st_size


def test_garbage_lines_are_counted_and_skipped(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(
        b'{"type": "assistant", "message": {"id": \n'  # cut JSON
        b"\xff\xfe binary \"assistant\" junk\n"
        b'["assistant"]\n'  # JSON, not an object
        b"plain garbage without the word\n"
        b"\n"
        + json.dumps(assistant("m1")).encode() + b"\n"
        + json.dumps({"type": "some-future-type", "x": "assistant"}).encode() + b"\n"
    )
    chunk = read_transcript(str(path))
    assert list(chunk.messages) == ["m1:req_1"]
    assert chunk.bad_lines == 3


def test_reads_across_chunk_boundaries_and_long_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(transcripts, "CHUNK_BYTES", 64)
    path = tmp_path / "t.jsonl"
    big = user("x" * 1000)  # one line far longer than a chunk
    write_lines(path, [user("[story 7 P2] hi"), assistant("m1"), big, assistant("m2"), assistant("m1")])
    chunk = read_transcript(str(path), find_prompt=True)
    assert sorted(chunk.messages) == ["m1:req_1", "m2:req_1"]
    assert chunk.prompt == "[story 7 P2] hi" and chunk.end == path.stat().st_size


def test_a_deadline_stops_at_a_line_boundary(tmp_path, monkeypatch):
    monkeypatch.setattr(transcripts, "CHUNK_BYTES", 300)
    path = tmp_path / "t.jsonl"
    write_lines(path, [assistant(f"m{i}") for i in range(20)])
    chunk = read_transcript(str(path), deadline=time.monotonic() - 1)
    assert not chunk.complete and 0 < chunk.end < path.stat().st_size
    assert path.read_bytes()[chunk.end - 1 : chunk.end] == b"\n"
    rest = read_transcript(str(path), chunk.end)
    assert len(chunk.messages) + len(rest.messages) == 20


def test_prompt_skips_tool_results_and_command_wrappers(tmp_path):
    path = tmp_path / "t.jsonl"
    write_lines(
        path,
        [
            user([{"type": "tool_result", "tool_use_id": "t", "content": "[story 1 P1] no"}]),
            user("<command-message>hybrid:pilot</command-message>"),
            user([{"type": "text", "text": "[story 01.2 P6] "}, {"type": "text", "text": "QA it"}]),
            user("[story 9 P1] later prompts do not count"),
        ],
    )
    assert read_transcript(str(path), find_prompt=True).prompt == "[story 01.2 P6] QA it"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[story 01.2 P3] Implement", ("01.2", "P3")),
        ("  \n[story US-7_a P7] docs", ("US-7_a", "P7")),
        ("[story 01.2 P8] x", None),
        ("[story 01.2 p3] x", None),
        ("Implement [story 01.2 P3]", None),
        ("[story .hidden P1] x", None),
        ("[story " + "a" * 65 + " P1] x", None),
        ("", None),
        (None, None),
    ],
)
def test_prefix(text, expected):
    assert parse_prefix(text) == expected


def test_attribution_order():
    assert decide_attribution("[story 1 P2] x", running=("2", "P3")) == Attribution("1", "P2", "prefix")
    assert decide_attribution("x", running=("2", "P3")) == Attribution("2", "P3", "running-phase")
    assert decide_attribution(None, session_running=[("3", "P4")]) == Attribution("3", "P4", "session-phase")
    assert decide_attribution("x", session_running=[("3", "P4"), ("4", "P4")]).how == "none"
    assert decide_attribution("x", session_running=[]) == Attribution(None, None, "none")
    assert decide_attribution("x") == Attribution(None, None, "none")


def test_usage_row_follows_the_ledger_convention():
    message = message_from_line(
        assistant(cache_creation_input_tokens=200, cache_read_input_tokens=300, output_tokens_details={"thinking_tokens": 7})
    )
    row = usage_row(message, story="01.2", phase="P3", agent_type="hybrid:backend-dev", agent_id="a1", session_id="ignored")
    assert row.provider == "anthropic" and row.model == "claude-opus-5-5" and row.status == "ok"
    assert (row.prompt_tokens, row.cached_tokens, row.cache_write_5m_tokens, row.completion_tokens) == (1500, 300, 200, 50)
    assert row.reasoning_tokens == 7 and row.cost_usd is None
    assert (row.agent_id, row.session_id) == ("a1", "s1")  # the line's own ids win
    assert row.ts == "2026-11-23T22:48:27.626+00:00" and row.dedup_key == "msg_1:req_1"


def test_first_timestamp_of_the_fixture():
    assert transcripts.first_timestamp(str(MAIN)) == "2026-11-23T22:48:26.882+00:00"
