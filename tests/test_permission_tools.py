"""implement and refactor obey the user's Claude Code permission rules: a test command runs only
when a rule allows it, and GLM writes nothing an Edit deny rule covers.

Each test command touches a marker file, so whether it ran is a fact on disk."""

from __future__ import annotations

import asyncio
import json

import pytest

from mcp_server.config import load_settings
from mcp_server.delegation.glm import GlmClient
from mcp_server.delegation.protocol import FileDelete, FileWrite, render_reply
from mcp_server.delegation.run import DelegationRequest, Services, delegate
from mcp_server.delegation.testrun import TestCommandRefused
from mcp_server.ledger import ledger_path, utc_now
from mcp_server.pricing import PriceTable
from tests.support import TEST_KEY, allow_commands, make_project, mcp_client, tree_snapshot

pytestmark = pytest.mark.anyio
REPLY = render_reply([FileWrite("app/x.py", "x = 1\n")])


def error_text(result) -> str:
    return result.content[0].text.removeprefix("Error executing tool implement: ").removeprefix("Error executing tool refactor: ")


async def implement(project, fake, command: str, tool: str = "implement"):
    fake.reply(REPLY)
    async with mcp_client(project, fake.base_url) as client:
        return await client.call_tool(tool, {"story": "01.2", "instructions": "x", "test_command": command, "max_fix_rounds": 0})


async def test_a_command_no_rule_allows_starts_no_process_and_sends_nothing(project, fake, monkeypatch):
    """In process, every way of starting a process is watched: none is used."""
    started = []

    async def watched(*args, **kwargs):
        started.append(args)
        raise AssertionError("a process was started")

    monkeypatch.setattr(asyncio, "create_subprocess_exec", watched)
    monkeypatch.setattr(asyncio, "create_subprocess_shell", watched)
    settings = load_settings(project, environ={"HYBRID_GLM_BASE_URL": fake.base_url})
    services = Services(settings, GlmClient(settings.glm, TEST_KEY), ledger_path(project), PriceTable.load(), utc_now())
    with pytest.raises(TestCommandRefused, match=r'add "Bash\(touch ran\)" to permissions.allow in .claude/settings.json'):
        await delegate(services, DelegationRequest("implement", "01.2", "x", test_command="touch ran"))
    assert started == [] and fake.requests == [] and not (project / "ran").exists()
    assert not (project / "app" / "x.py").exists()


async def test_over_stdio_an_unallowed_command_is_refused_before_glm_is_asked(project, fake):
    before = tree_snapshot(project)
    result = await implement(project, fake, "touch ran")
    assert result.is_error
    text = error_text(result)
    assert text.startswith('test command "touch ran" refused: no permission rule allows it; add "Bash(touch ran)"')
    assert fake.requests == [] and tree_snapshot(project) == before


async def test_a_command_allowed_by_tests_commands_runs(project, fake):
    (project / ".claude").mkdir()
    (project / ".claude" / "hybrid.yaml").write_text("tests:\n  commands: ['touch ran-by-config']\n")
    result = await implement(project, fake, "touch ran-by-config")
    assert not result.is_error, result.content[0].text
    assert result.structured_content["tests"]["passed"] is True and (project / "ran-by-config").exists()


@pytest.mark.parametrize("tool", ["implement", "refactor"])
async def test_a_command_allowed_by_a_project_settings_bash_rule_runs(project, fake, tool):
    allow_commands(project, "touch *")
    result = await implement(project, fake, "touch ran-by-rule", tool)
    assert not result.is_error, result.content[0].text
    assert result.structured_content["tests"]["passed"] is True and (project / "ran-by-rule").exists()


async def test_a_deny_rule_beats_an_allow_rule(project, fake):
    settings = allow_commands(project, "touch *", deny=("Bash(touch denied)",))
    result = await implement(project, fake, "touch denied")
    assert result.is_error
    assert error_text(result) == f'test command "touch denied" refused: the deny rule "Bash(touch denied)" in {settings} forbids it'
    assert not (project / "denied").exists() and fake.requests == []


async def test_an_ask_rule_refuses_too_since_a_tool_cannot_ask(project, fake):
    path = project / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"permissions": {"allow": ["Bash(touch *)"], "ask": ["Bash(touch asked)"]}}))
    result = await implement(project, fake, "touch asked")
    assert result.is_error and 'the ask rule "Bash(touch asked)"' in result.content[0].text
    assert not (project / "asked").exists()


async def test_a_string_with_shell_operators_is_refused(project, fake):
    allow_commands(project, "touch *")
    result = await implement(project, fake, "touch one && touch two")
    assert result.is_error
    assert 'contains the shell operator "&&"' in result.content[0].text
    assert not (project / "one").exists() and not (project / "two").exists()


async def test_an_operator_string_allowed_exactly_runs_as_that_text(project, fake):
    allow_commands(project, "touch one && touch two")
    result = await implement(project, fake, "touch one && touch two")
    assert not result.is_error, result.content[0].text
    assert (project / "one").exists() and (project / "two").exists()


@pytest.mark.parametrize(
    "operations, refused",
    [
        ([FileWrite("app/x.py", "x = 1\n"), FileWrite("migrations/001_init.sql", "DROP TABLE users;\n")], "migrations/001_init.sql"),
        ([FileWrite("app/x.py", "x = 1\n"), FileDelete("config/.env")], "config/.env"),
    ],
    ids=["create", "delete"],
)
async def test_an_edit_deny_rule_refuses_the_reply_and_leaves_the_tree_untouched(project, fake, operations, refused):
    (project / "config").mkdir()
    (project / "config" / ".env").write_text("TOKEN=1\n")
    settings = project / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"permissions": {"deny": ["Edit(./migrations/**)", "Edit(.env)"]}}))
    before = tree_snapshot(project)
    fake.reply(render_reply(operations))
    async with mcp_client(project, fake.base_url) as client:
        result = await client.call_tool("implement", {"story": "01.2", "instructions": "x"})
    assert result.is_error
    text = error_text(result)
    assert text.startswith(f"path {refused!r} refused: the deny rule ") and str(settings) in text, text
    assert tree_snapshot(project) == before


async def test_an_unreadable_settings_file_refuses_the_call(project, fake):
    (project / ".claude").mkdir()
    (project / ".claude" / "settings.local.json").write_text("{oops")
    fake.reply(REPLY)
    async with mcp_client(project, fake.base_url) as client:
        result = await client.call_tool("implement", {"story": "01.2", "instructions": "x"})
    assert result.is_error and "cannot read the permission rules in" in result.content[0].text
    assert fake.requests == []
