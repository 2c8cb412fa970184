"""The real MCP server over stdio with `telemetry:` configured: a tool call's ledger row reaches
the collector by the server's last push, and a collector that never answers changes nothing
for the tool call and loses no row."""

from __future__ import annotations

import socket
import sqlite3

import pytest

from mcp_server.config import load_settings
from mcp_server.delegation.protocol import FileWrite, render_reply
from mcp_server.telemetry.push import push
from mcp_server.telemetry.state import TelemetryState, state_path
from tests.fakes.fake_glm import FakeGlm
from tests.support import mcp_client
from tests.telemetry_support import otlp_receiver

pytest.importorskip("opentelemetry.proto", reason="the [otel] extra is not installed")
pytestmark = pytest.mark.anyio

TEST_FILE = "def test_roles():\n    assert True\n"


@pytest.fixture
def fake():
    with FakeGlm() as server:
        yield server


def configure(project, endpoint: str) -> None:
    (project / ".claude").mkdir(exist_ok=True)
    (project / ".claude" / "hybrid.yaml").write_text(
        f"telemetry:\n  endpoint: {endpoint}\n  timeout_s: 1\n  resource_attributes: {{team: platform}}\n"
    )


async def write_tests(project, fake) -> None:
    fake.reply(render_reply([FileWrite("tests/test_roles.py", TEST_FILE)]), prompt_tokens=1200, completion_tokens=300)
    async with mcp_client(project, fake.base_url) as client:
        result = await client.call_tool("write_tests", {"story": "01.2", "instructions": "cover every AC"})
    assert not result.is_error, result.content[0].text
    assert (project / "tests" / "test_roles.py").read_text() == TEST_FILE


async def test_the_server_sends_its_rows_when_it_stops(project, fake):
    with otlp_receiver() as (received, url):
        configure(project, url)
        await write_tests(project, fake)
    assert received.summed("hybrid.token.usage", "model", "story", "tool", "team") == {
        ("glm-4.7", "01.2", "write_tests", "platform"): 1500}


async def test_a_collector_that_never_answers_changes_nothing_for_the_tool(project, fake):
    with socket.socket() as black_hole:  # accepts connections, never answers
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(16)
        configure(project, f"http://127.0.0.1:{black_hole.getsockname()[1]}")
        await write_tests(project, fake)
    with sqlite3.connect(project / ".claude" / "hybrid" / "usage.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM usage").fetchone()[0] == 1
    state = TelemetryState(state_path(project))
    status = state.status()
    state.close()
    assert status.last_error and status.cursor["usage"] == 0  # the server tried, timed out, kept the row
    with otlp_receiver() as (received, url):
        result = push(load_settings(project, {"HYBRID_TELEMETRY_ENDPOINT": url}))
    assert result.ok and result.rows == 1
    assert received.summed("hybrid.token.usage", "model") == {("glm-4.7",): 1500}
