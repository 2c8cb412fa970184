"""The GLM tools through the real server process, over stdio, against a fake GLM on loopback."""

from __future__ import annotations

import json
import sqlite3
import time

import anyio
import pytest
from hypothesis import HealthCheck, given, settings

from mcp_server.delegation.protocol import FileDelete, FileEdit, FileWrite, render_reply
from tests.fakes.fake_glm import FakeGlm, Reply
from tests.support import TEST_KEY, allow_commands, make_project, mcp_client, tree_snapshot
from tests.test_writes import escaping_paths

pytestmark = pytest.mark.anyio

IMPL_OK = 'ROLES = ("admin", "member")\n\n\ndef assign(user, role):\n    if role not in ROLES:\n        raise ValueError(role)\n    user["role"] = role\n    return user\n'
TEST_FILE = (
    "import pytest\nfrom app.roles import assign\n\n\n"
    "def test_ac1_assign():\n    assert assign({}, 'admin')['role'] == 'admin'\n\n\n"
    "def test_ac2_unknown():\n    with pytest.raises(ValueError):\n        assign({}, 'root')\n"
)


def configure(project, text):
    (project / ".claude").mkdir(exist_ok=True)
    (project / ".claude" / "hybrid.yaml").write_text(text)


def ledger_rows(project):
    db = project / ".claude" / "hybrid" / "usage.db"
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM usage ORDER BY id")]


def recorded_test_runs(project):
    """The ledger's test_run rows: (story, phase, tool, model, first_passed, fix_rounds, passed)."""
    with sqlite3.connect(project / ".claude" / "hybrid" / "usage.db") as conn:
        return conn.execute("SELECT story, phase, tool, model, first_passed, fix_rounds, passed FROM test_run ORDER BY id").fetchall()


async def test_tool_surface_is_stable(project, fake):
    async with mcp_client(project, fake.base_url) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    for name in ("write_tests", "implement", "write_docs", "refactor"):
        assert tools[name].output_schema is not None
    assert set(tools["write_tests"].input_schema["properties"]) == {"story", "instructions", "context_files", "test_dir"}
    assert set(tools["implement"].input_schema["properties"]) == {
        "story", "instructions", "context_files", "test_command", "max_fix_rounds"
    }
    assert tools["implement"].input_schema["properties"]["max_fix_rounds"]["default"] == 2
    assert set(tools["write_docs"].input_schema["properties"]) == {"story", "instructions", "context_files", "docs_dir"}
    assert tools["write_docs"].input_schema["properties"]["docs_dir"]["default"] == "docs"


async def test_write_tests_writes_real_files_and_a_ledger_row(project, fake):
    fake.reply(render_reply([FileWrite("tests/test_roles.py", TEST_FILE)]), prompt_tokens=1200, completion_tokens=300, cached_tokens=200)
    async with mcp_client(project, fake.base_url) as client:
        result = await client.call_tool(
            "write_tests", {"story": "01.2", "instructions": "cover every AC", "context_files": ["app/roles.py"], "test_dir": "tests"}
        )
    assert not result.is_error, result.content[0].text
    data = result.structured_content
    assert data["files"] == [{"path": "tests/test_roles.py", "lines": 11, "created": True, "deleted": False}]
    assert data["model"] == "glm-4.7" and data["phase"] == "P2"
    assert (project / "tests" / "test_roles.py").read_text() == TEST_FILE
    # The prompt carried the story and the context file, read on the server side.
    body = fake.requests[0].body
    prompt = json.dumps(body["messages"])
    assert "User Roles" in prompt and 'ROLES = (\\"admin\\"' in prompt
    assert fake.requests[0].headers["authorization"] == f"Bearer {TEST_KEY}"
    [row] = ledger_rows(project)
    assert (row["provider"], row["model"], row["story"], row["phase"], row["tool"]) == ("glm", "glm-4.7", "01.2", "P2", "write_tests")
    assert (row["prompt_tokens"], row["completion_tokens"], row["cached_tokens"]) == (1200, 300, 200)
    # glm-4.7: $0.60 in, $0.11 cached, $2.20 out per million
    assert row["cost_usd"] == pytest.approx((1000 * 0.60 + 200 * 0.11 + 300 * 2.20) / 1e6)
    assert data["cost_usd"] == pytest.approx(row["cost_usd"])


async def test_implement_fix_loop_repairs_a_failing_test(project, fake):
    (project / "tests").mkdir()
    (project / "tests" / "test_roles.py").write_text(TEST_FILE)
    allow_commands(project, "python -m pytest *")
    broken = IMPL_OK.replace("raise ValueError(role)", "pass")
    fake.reply(render_reply([FileWrite("app/roles.py", broken)]))
    fake.reply(render_reply([FileEdit("app/roles.py", "        pass\n", "        raise ValueError(role)\n")]))
    async with mcp_client(project, fake.base_url) as client:
        result = await client.call_tool(
            "implement",
            {"story": "01.2", "instructions": "implement assign", "test_command": "python -m pytest -q tests", "max_fix_rounds": 2},
        )
    assert not result.is_error, result.content[0].text
    tests = result.structured_content["tests"]
    assert tests["passed"] is True and tests["fix_rounds"] == 1
    assert result.structured_content["attempts"] == 2
    assert (project / "app" / "roles.py").read_text() == IMPL_OK
    # The repair request carried the failure output back to GLM.
    assert "failed" in json.dumps(fake.requests[1].body["messages"][-1]).lower()
    assert [r["phase"] for r in ledger_rows(project)] == ["P3", "P3"]
    # the scorecard's record: failed at the first attempt, passed after one fix round
    assert recorded_test_runs(project) == [("01.2", "P3", "implement", "glm-4.7", 0, 1, 1)]


async def test_implement_reports_failure_after_last_fix_round(project, fake):
    (project / "tests").mkdir()
    (project / "tests" / "test_roles.py").write_text(TEST_FILE)
    allow_commands(project, "python -m pytest:*")
    broken = render_reply([FileWrite("app/roles.py", "def assign(user, role):\n    return user\n")])
    fake.responder = lambda request: __import__("tests.fakes.fake_glm", fromlist=["Reply"]).Reply(broken)
    async with mcp_client(project, fake.base_url) as client:
        result = await client.call_tool(
            "implement", {"story": "01.2", "instructions": "x", "test_command": "python -m pytest -q tests", "max_fix_rounds": 1}
        )
    tests = result.structured_content["tests"]
    assert tests["passed"] is False and tests["fix_rounds"] == 1 and tests["failure_tail"]
    assert len(fake.requests) == 2
    assert recorded_test_runs(project) == [("01.2", "P3", "implement", "glm-4.7", 0, 1, 0)]


async def test_each_tested_call_records_its_first_attempt_and_fix_rounds(project, fake):
    """The ledger's test_run rows, behind the scorecard: a refactor that passes at once, and an
    implement whose fix round's request GLM refuses (the first attempt's failure is still known)."""
    (project / "tests").mkdir()
    (project / "tests" / "test_roles.py").write_text(TEST_FILE)
    allow_commands(project, "python -m pytest *")
    fake.reply(render_reply([FileWrite("app/roles.py", IMPL_OK)]), model="glm-4.5-air")
    fake.reply(render_reply([FileWrite("app/roles.py", IMPL_OK.replace("raise ValueError(role)", "pass"))]))
    fake.error(400, code="1211", message="model gone")
    fake.reply(render_reply([FileWrite("tests/test_more.py", TEST_FILE)]))
    command = "python -m pytest -q tests"
    async with mcp_client(project, fake.base_url) as client:
        refactored = await client.call_tool("refactor", {"story": "01.2", "instructions": "tidy", "test_command": command})
        implemented = await client.call_tool("implement", {"story": "01.2", "instructions": "x", "test_command": command, "max_fix_rounds": 2})
        await client.call_tool("write_tests", {"story": "01.2", "instructions": "x"})  # no test command: no row
    assert not refactored.is_error and "code 1211" in implemented.content[0].text
    assert recorded_test_runs(project) == [
        ("01.2", "P4", "refactor", "glm-4.5-air", 1, 0, 1),
        ("01.2", "P3", "implement", "glm-4.7", 0, 1, 0),
    ]


async def test_write_docs_stays_under_docs_dir(project, fake):
    doc = "# Roles\n\n```python\nassign(user, 'admin')\n```\n"
    fake.reply(render_reply([FileWrite("docs/roles.md", doc)]), model="glm-4.5-air")
    async with mcp_client(project, fake.base_url) as client:
        result = await client.call_tool("write_docs", {"story": "01.2", "instructions": "document roles"})
    assert not result.is_error, result.content[0].text
    assert (project / "docs" / "roles.md").read_text() == doc
    assert fake.requests[0].body["model"] == "glm-4.5-air"


async def test_unusable_reply_gets_one_repair_then_errors_without_writing(project, fake):
    before = tree_snapshot(project)
    fake.reply("Sure! Here is the code: def assign(): pass")
    fake.reply("Still no files, sorry.")
    async with mcp_client(project, fake.base_url) as client:
        result = await client.call_tool("implement", {"story": "01.2", "instructions": "x"})
    assert result.is_error
    assert "no usable files" in result.content[0].text
    assert len(fake.requests) == 2
    assert tree_snapshot(project) == before


async def test_one_bad_path_means_no_file_is_written(project, fake):
    before = tree_snapshot(project)
    fake.reply(render_reply([FileWrite("app/ok.py", "x = 1\n"), FileWrite("../escape.py", "x = 2\n")]))
    async with mcp_client(project, fake.base_url) as client:
        result = await client.call_tool("implement", {"story": "01.2", "instructions": "x"})
    assert result.is_error and "../escape.py" in result.content[0].text
    assert tree_snapshot(project) == before
    assert not (project.parent / "escape.py").exists()


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(bad=escaping_paths())  # tests/test_writes.py runs the same strategy against confine() hundreds of times
def test_traversal_replies_never_write(tmp_path_factory, bad):
    project = make_project(tmp_path_factory.mktemp("p") / "proj")
    outside_before = sorted(p.name for p in project.parent.iterdir())
    before = tree_snapshot(project)

    async def scenario():
        with FakeGlm() as fake:
            fake.reply(render_reply([FileWrite("app/fine.py", "ok = 1\n"), FileWrite(bad, "owned = 1\n")]))
            async with mcp_client(project, fake.base_url) as client:
                return await client.call_tool("write_tests", {"story": "01.2", "instructions": "x"})

    result = anyio.run(scenario)
    assert result.is_error
    assert tree_snapshot(project) == before
    assert sorted(p.name for p in project.parent.iterdir()) == outside_before


@pytest.mark.parametrize(
    "arguments, expected",
    [
        ({"story": "../01.2", "instructions": "x"}, "story"),
        ({"story": "01.2/x", "instructions": "x"}, "story"),
        ({"story": "01.2", "instructions": "x", "context_files": ["../../etc/passwd"]}, "../../etc/passwd"),
        ({"story": "01.2", "instructions": "x", "context_files": ["/etc/passwd"]}, "/etc/passwd"),
        ({"story": "09.9", "instructions": "x"}, "no story file"),
        ({"story": "01.2", "instructions": "   "}, "instructions"),
    ],
)
async def test_bad_input_is_refused_before_any_request(project, fake, arguments, expected):
    before = tree_snapshot(project)
    async with mcp_client(project, fake.base_url) as client:
        result = await client.call_tool("implement", arguments)
    assert result.is_error and expected in result.content[0].text
    assert "Traceback" not in result.content[0].text
    assert fake.requests == [] and tree_snapshot(project) == before


async def test_missing_key_says_how_to_set_it(project, fake):
    async with mcp_client(project, fake.base_url, ZAI_API_KEY="", GLM_API_KEY="", HYBRID_GLM_API_KEY="") as client:
        result = await client.call_tool("implement", {"story": "01.2", "instructions": "x"})
    text = result.content[0].text
    assert result.is_error and "ZAI_API_KEY" in text and "glm_api_key" in text
    assert fake.requests == []
    assert not (project / ".claude" / "hybrid" / "usage.db").exists()  # no request, so no usage row


@pytest.mark.parametrize(
    "status, code, expected",
    [(401, "1000", "key"), (429, "1113", "base"), (400, "1211", "glm-4.7")],
)
async def test_api_refusals_are_clear_not_retried_and_write_nothing(project, fake, status, code, expected):
    before = tree_snapshot(project)
    fake.error(status, code=code, message="refused by fake")
    async with mcp_client(project, fake.base_url) as client:
        result = await client.call_tool("implement", {"story": "01.2", "instructions": "x"})
    text = result.content[0].text
    assert result.is_error and expected in text.lower() and TEST_KEY not in text
    assert len(fake.requests) == 1 and tree_snapshot(project) == before


async def test_429_storm_and_refused_connection_end_within_the_deadline(project, fake):
    fake.responder = lambda request: __import__("tests.fakes.fake_glm", fromlist=["ErrorReply"]).ErrorReply(
        429, code="1302", message="High concurrency"
    )
    async with mcp_client(project, fake.base_url, HYBRID_GLM_DEADLINE_S="2") as client:
        started = time.monotonic()
        result = await client.call_tool("implement", {"story": "01.2", "instructions": "x"})
        elapsed = time.monotonic() - started
    assert result.is_error and "1302" in result.content[0].text
    assert len(fake.requests) > 1
    assert elapsed < 10  # the 2 s deadline, with a wide margin for a slow machine

    closed_port_url = "http://127.0.0.1:9/api/paas/v4"
    before = tree_snapshot(project)
    async with mcp_client(project, closed_port_url, HYBRID_GLM_DEADLINE_S="2") as client:
        started = time.monotonic()
        result = await client.call_tool("implement", {"story": "01.2", "instructions": "x"})
        elapsed = time.monotonic() - started
    text = result.content[0].text
    assert result.is_error and TEST_KEY not in text
    assert f"could not reach {closed_port_url} (ConnectError)" in text and "within the 2 s deadline" in text
    assert elapsed < 10 and tree_snapshot(project) == before  # within the deadline, nothing written


async def test_four_calls_overlap_on_the_glm_server(project, fake):
    fake.default_delay_s = 0.8
    reply = render_reply([FileWrite("app/part.py", "x = 1\n")])
    fake.responder = lambda request: __import__("tests.fakes.fake_glm", fromlist=["Reply"]).Reply(reply)
    async with mcp_client(project, fake.base_url) as client:
        async with anyio.create_task_group() as group:
            for index in range(4):
                group.start_soon(client.call_tool, "implement", {"story": "01.2", "instructions": f"part {index}"})
    spans = [(r.started, r.finished) for r in fake.requests]
    assert len(spans) == 4
    # All four requests were in flight at one moment: the latest start precedes the earliest end.
    assert max(start for start, _ in spans) < min(end for _, end in spans)


async def test_budget_cap_refuses_before_sending(project, fake):
    configure(project, "budget:\n  per_story_usd: 0.001\n")
    async with mcp_client(project, fake.base_url) as client:
        result = await client.call_tool("implement", {"story": "01.2", "instructions": "x"})
    text = result.content[0].text
    assert result.is_error and "budget.per_story_usd" in text and "$0.00" in text
    assert fake.requests == []


async def test_result_stays_small_for_a_large_generation(project, fake):
    files = [FileWrite(f"app/generated/module_{i:03d}.py", "value = 1\n" * 400) for i in range(60)]
    fake.reply(render_reply(files))
    async with mcp_client(project, fake.base_url) as client:
        result = await client.call_tool("implement", {"story": "01.2", "instructions": "x"})
    assert not result.is_error
    size = len(json.dumps(result.structured_content)) + sum(len(c.text) for c in result.content)
    assert size <= 1500
    assert len(result.structured_content["files"]) + result.structured_content["files_omitted"] == 60
    assert len(list((project / "app" / "generated").iterdir())) == 60


async def test_progress_notifications_reach_a_client_that_asks(project, fake):
    fake.reply(render_reply([FileWrite("app/x.py", "x = 1\n")]))
    messages = []

    async def on_progress(progress, total, message):
        messages.append(message)

    async with mcp_client(project, fake.base_url) as client:
        result = await client.call_tool("implement", {"story": "01.2", "instructions": "x"}, progress_callback=on_progress)
    assert not result.is_error
    assert any("glm-4.7" in (m or "") for m in messages)


async def test_parallel_calls_cannot_overspend_the_story_cap(project, fake):
    # One implement request is estimated at about $0.037: 16,384 output tokens (max_tokens) at
    # glm-4.7's $2.20/M, plus the prompt at $0.60/M. A $0.08 cap has room for two in flight.
    configure(project, "budget:\n  per_story_usd: 0.08\n")
    fake.default_delay_s = 1.5  # the first two are still running when the last two are checked
    reply = render_reply([FileWrite("app/part.py", "x = 1\n")])
    fake.responder = lambda request: Reply(reply)
    results = []

    async def call(client, index):
        results.append(await client.call_tool("implement", {"story": "01.2", "instructions": f"part {index}"}))

    async with mcp_client(project, fake.base_url) as client:
        async with anyio.create_task_group() as group:
            for index in range(4):
                group.start_soon(call, client, index)
    refused = [r.content[0].text for r in results if r.is_error]
    assert len(fake.requests) == 2 and len(refused) == 2
    assert all("budget.per_story_usd is $0.08" in text and "held by calls still running" in text for text in refused)


async def test_the_repair_request_is_checked_against_the_budget_too(project, fake):
    # max_tokens 1000: a request is estimated at about $0.0025 ($0.0022 of output), within the
    # $0.004 cap. The unusable first reply costs $0.0022 (1,000 output tokens), so the repair
    # request, estimated a little above $0.0025, would pass the cap: it is refused, not sent.
    configure(project, "glm:\n  max_output_tokens: 1000\nbudget:\n  per_story_usd: 0.004\n")
    fake.reply("Sure! Here is the code: def assign(): pass", prompt_tokens=100, completion_tokens=1000)
    fake.reply(render_reply([FileWrite("app/x.py", "x = 1\n")]))
    async with mcp_client(project, fake.base_url) as client:
        result = await client.call_tool("implement", {"story": "01.2", "instructions": "x"})
    text = result.content[0].text
    assert result.is_error and "budget.per_story_usd is $0.004;" in text and "not sent" in text
    assert len(fake.requests) == 1
    assert [row["status"] for row in ledger_rows(project)] == ["ok"]


async def test_a_fix_round_may_not_delete_the_tests(project, fake):
    (project / "tests").mkdir()
    (project / "tests" / "test_roles.py").write_text(TEST_FILE)
    allow_commands(project, "python -m pytest -q tests")
    broken = IMPL_OK.replace("raise ValueError(role)", "pass")
    fake.reply(render_reply([FileWrite("app/roles.py", broken)]))
    fake.reply(render_reply([FileDelete("tests/test_roles.py")]))  # "fixed": no tests, no failures
    fake.reply(render_reply([FileEdit("app/roles.py", "        pass\n", "        raise ValueError(role)\n")]))
    async with mcp_client(project, fake.base_url) as client:
        result = await client.call_tool(
            "implement",
            {"story": "01.2", "instructions": "implement assign", "test_command": "python -m pytest -q tests", "max_fix_rounds": 1},
        )
    assert not result.is_error, result.content[0].text
    assert (project / "tests" / "test_roles.py").read_text() == TEST_FILE
    assert "tests must not be deleted" in fake.requests[2].body["messages"][-1]["content"]
    assert result.structured_content["tests"]["passed"] is True


async def test_a_deleted_file_is_reported_as_deleted(project, fake):
    fake.reply(render_reply([FileWrite("app/users.py", "USERS = []\n"), FileDelete("app/roles.py")]))
    async with mcp_client(project, fake.base_url) as client:
        result = await client.call_tool("implement", {"story": "01.2", "instructions": "move roles into users"})
    assert not result.is_error, result.content[0].text
    assert result.structured_content["files"] == [
        {"path": "app/users.py", "lines": 1, "created": True, "deleted": False},
        {"path": "app/roles.py", "lines": 0, "created": False, "deleted": True},
    ]
    assert "app/roles.py (deleted)" in result.content[0].text
    assert not (project / "app" / "roles.py").exists()


async def test_long_command_model_and_many_files_still_fit_the_result(project, fake):
    files = [FileWrite(f"app/generated/module_{i:03d}.py", "value = 1\n") for i in range(80)]
    fake.reply(render_reply(files), model="glm-" + "9" * 5000)
    command = "false # " + "padding " * 1000
    allow_commands(project, "false *")
    configure(project, "limits:\n  test_command_chars: 10000\n")  # over the default, to test the clipping
    async with mcp_client(project, fake.base_url) as client:
        result = await client.call_tool(
            "implement", {"story": "01.2", "instructions": "x", "test_command": command, "max_fix_rounds": 0}
        )
    assert not result.is_error, result.content[0].text
    size = len(json.dumps(result.structured_content)) + sum(len(c.text) for c in result.content)
    assert size <= 1500
    data = result.structured_content
    assert data["model"].startswith("glm-999") and data["tests"]["command"].startswith("false #")
    assert len(data["files"]) + data["files_omitted"] == 80
    [row] = ledger_rows(project)
    assert len(row["model"]) == 100  # the endpoint's model id is clipped before it is stored


async def test_a_slow_call_keeps_reporting_progress(project, fake):
    fake.reply(render_reply([FileWrite("app/x.py", "x = 1\n")]), delay_s=1.2)
    allow_commands(project, "sleep 1.2")
    messages = []

    async def on_progress(progress, total, message):
        messages.append(message or "")

    async with mcp_client(project, fake.base_url, HYBRID_PROGRESS_INTERVAL_S="0.25") as client:
        result = await client.call_tool(
            "implement",
            {"story": "01.2", "instructions": "x", "test_command": "sleep 1.2", "max_fix_rounds": 0},
            progress_callback=on_progress,
        )
    assert not result.is_error, result.content[0].text
    assert sum("still waiting for glm-4.7" in m for m in messages) >= 2
    assert sum("still running sleep 1.2" in m for m in messages) >= 2
