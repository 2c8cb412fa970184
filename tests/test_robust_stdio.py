"""Faults, caps and limits through real server processes, over stdio, against the fake GLM:
a locked ledger, two Claude Code sessions sharing a cap, oversized and hostile inputs."""

from __future__ import annotations

import os
import sys

import anyio
import pytest

from mcp_server.delegation.protocol import FileWrite, render_reply
from mcp_server.ledger import ledger_path
from tests.fakes.fake_glm import Reply
from tests.support import REPO, TEST_KEY, allow_commands, ledger_locked, mcp_client, server_env, tree_snapshot
from tests.test_budget_server import rows as usage_rows
from tests.test_tools_stdio import configure

pytestmark = pytest.mark.anyio

REPLY = render_reply([FileWrite("app/part.py", "x = 1\n")])


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


# --- 3. bounded inputs --------------------------------------------------------------------------


async def call(project, fake, arguments, tool="implement", **env):
    async with mcp_client(project, fake.base_url, **env) as client:
        return await client.call_tool(tool, {"story": "01.2", "instructions": "x", **arguments})


def refusal(result) -> str:
    assert result.is_error
    text = result.content[0].text
    assert "\n" not in text and "internal error" not in text and len(text) < 600, text
    return text


async def test_five_megabytes_of_instructions_are_refused_before_any_request(project, fake):
    text = refusal(await call(project, fake, {"instructions": "y" * 5_000_000}))
    assert "instructions is 5,000,000 characters" in text and "limits.instructions_chars" in text
    assert fake.requests == []


@pytest.mark.parametrize(
    "arguments, expected",
    [
        ({"test_command": "true " * 1000}, "limits.test_command_chars"),
        ({"context_files": [f"app/f{i}.py" for i in range(51)]}, "limits.context_files"),
        ({"context_files": ["a/" * 600]}, "limits.path_chars"),
        ({"story": "0" * 10_000 + "!"}, "10,001 characters"),
    ],
)
async def test_each_argument_has_a_limit(project, fake, arguments, expected):
    text = refusal(await call(project, fake, arguments))
    assert expected in text and fake.requests == []


@pytest.mark.parametrize(
    "path, expected",
    [
        ("n" * 300 + ".py", "longer than the filesystem allows"),
        ("app/roles.py/inner.py", "'app/roles.py' is a file, not a folder"),
    ],
)
async def test_a_path_the_filesystem_cannot_take_is_refused_by_name(project, fake, path, expected):
    before = tree_snapshot(project)
    text = refusal(await call(project, fake, {"context_files": [path]}))
    assert expected in text and path[:60] in text
    fake.reply(render_reply([FileWrite(path, "x = 1\n")]))
    text = refusal(await call(project, fake, {}))
    assert expected in text and path[:60] in text
    text = refusal(await call(project, fake, {"test_dir": path}, tool="write_tests"))
    assert expected in text
    assert tree_snapshot(project) == before


# --- 4. the key and the files that hold secrets ---------------------------------------------------

LEAK_PROBE = "cat /proc/$PPID/environ /proc/$PPID/cmdline > leak.bin; true"


def launched_by_the_plugin(project, fake):
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    env = {**server_env(project, fake.base_url), "HYBRID_PYTHON": sys.executable, "PATH": os.environ["PATH"]}
    params = StdioServerParameters(command=str(REPO / "bin" / "hybrid-mcp"), env=env, cwd=str(project))
    return Client(params, read_timeout_seconds=60)


@pytest.mark.parametrize("launch", ["bin/hybrid-mcp", "python -m mcp_server"])
async def test_a_test_command_cannot_read_the_key_from_the_server_process(project, fake, launch):
    fake.reply(REPLY)
    allow_commands(project, LEAK_PROBE)
    client = launched_by_the_plugin(project, fake) if launch == "bin/hybrid-mcp" else mcp_client(project, fake.base_url)
    async with client as session:
        result = await session.call_tool("implement", {"story": "01.2", "instructions": "x", "test_command": LEAK_PROBE, "max_fix_rounds": 0})
    assert not result.is_error, result.content[0].text
    assert fake.requests[0].headers["authorization"] == f"Bearer {TEST_KEY}"  # the server still has it
    leak = (project / "leak.bin").read_bytes()
    assert b"CLAUDE_PROJECT_DIR" in leak  # the probe did read the server's environment
    assert TEST_KEY.encode() not in leak and b"ZAI_API_KEY" not in leak


@pytest.mark.parametrize(
    "path, content",
    [
        (".env", "DB_PASSWORD=hunter2\n"),
        ("config/.env.production", "TOKEN=x\n"),
        ("deploy/id_ed25519", "key\n"),
        ("certs/server.pem", "cert\n"),
        ("notes/handover.txt", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\n"),
        (".claude/settings.json", "{}\n"),
    ],
)
async def test_files_that_may_hold_secrets_are_not_sent_as_context(project, fake, path, content):
    (project / path).parent.mkdir(parents=True, exist_ok=True)
    (project / path).write_text(content)
    text = refusal(await call(project, fake, {"context_files": [path]}))
    assert path in text and "context.allow" in text and fake.requests == []


async def test_context_allow_lets_a_named_file_through(project, fake):
    (project / ".env.example").write_text("DB_PASSWORD=\n")
    configure(project, "context:\n  allow: ['.env.example']\n")
    fake.reply(REPLY)
    result = await call(project, fake, {"context_files": [".env.example"]})
    assert not result.is_error, result.content[0].text
    assert "DB_PASSWORD=" in fake.requests[0].body["messages"][1]["content"]
