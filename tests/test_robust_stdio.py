"""Faults, caps and limits through real server processes, over stdio, against the fake GLM:
a locked ledger, two Claude Code sessions sharing a cap, oversized and hostile inputs."""

from __future__ import annotations

import anyio
import pytest

from mcp_server.delegation.protocol import FileWrite, render_reply
from mcp_server.ledger import Ledger, ledger_path
from tests.fakes.fake_glm import FakeGlm, Reply
from tests.support import ledger_locked, make_project, mcp_client, tree_snapshot

pytestmark = pytest.mark.anyio

REPLY = render_reply([FileWrite("app/part.py", "x = 1\n")])


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "proj")


@pytest.fixture
def fake():
    with FakeGlm() as server:
        yield server


def configure(project, text):
    (project / ".claude").mkdir(exist_ok=True)
    (project / ".claude" / "hybrid.yaml").write_text(text)


def usage_rows(project):
    ledger = Ledger(ledger_path(project))
    try:
        return ledger.rows()
    finally:
        ledger.close()


# --- 1. a locked ledger ------------------------------------------------------------------------


async def test_a_call_whose_row_the_ledger_cannot_take_says_its_usage_is_only_spooled(project, fake):
    fake.reply(REPLY, prompt_tokens=500, completion_tokens=50)
    async with mcp_client(project, fake.base_url, HYBRID_LEDGER_TIMEOUT_S="0.3") as client:
        with ledger_locked(ledger_path(project)):
            result = await client.call_tool("implement", {"story": "01.2", "instructions": "x"})
    assert not result.is_error
    assert result.structured_content["usage_spooled"] is True
    assert "Usage only spooled" in result.content[0].text
    assert [(row.prompt_tokens, row.completion_tokens) for row in usage_rows(project)] == [(500, 50)]


async def test_a_budget_check_on_a_locked_ledger_is_one_line_naming_it_and_sends_nothing(project, fake):
    configure(project, "budget:\n  per_story_usd: 5\n")
    async with mcp_client(project, fake.base_url, HYBRID_LEDGER_TIMEOUT_S="0.3") as client:
        with ledger_locked(ledger_path(project)):
            result = await client.call_tool("implement", {"story": "01.2", "instructions": "x"})
    text = result.content[0].text
    assert result.is_error and "\n" not in text and "internal error" not in text
    assert str(ledger_path(project)) in text and "not sent" in text
    assert fake.requests == []


# --- 2. a cap holds across Claude Code sessions -------------------------------------------------


async def test_two_servers_with_two_calls_each_send_at_most_one_request_under_a_one_call_cap(project, fake):
    # One implement request is estimated at about $0.037 (16,384 output tokens at $2.20/M plus the
    # prompt): a $0.05 cap has room for one in flight, whichever server asks first.
    configure(project, "budget:\n  per_story_usd: 0.05\n  per_run_usd: 0.05\n")
    fake.default_delay_s = 1.5  # the first call is still running when the others are checked
    fake.responder = lambda request: Reply(REPLY)
    results = []

    async def call(client, index):
        results.append(await client.call_tool("implement", {"story": "01.2", "instructions": f"part {index}"}))

    async with mcp_client(project, fake.base_url) as first, mcp_client(project, fake.base_url) as second:
        async with anyio.create_task_group() as group:
            for index, client in enumerate((first, second, first, second)):
                group.start_soon(call, client, index)
    assert len(fake.requests) == 1
    refused = [r.content[0].text for r in results if r.is_error]
    assert len(refused) == 3 and all("held by calls still running" in text for text in refused)
