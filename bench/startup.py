"""Spawn to a `tools/list` answer: our server against a bare MCPServer hello-world.

Claude Code starts the server with every session; it must cost no more than the SDK itself.
Both are spawned the same way, alternately, and the medians compared. Goal: <= 1.3.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from _common import REPO, project_dir, server_env

HELLO = """
from mcp.server.mcpserver import MCPServer
app = MCPServer("hello")
@app.tool()
def hello(name: str) -> str:
    return name
app.run()
"""
ROUNDS = 7


async def spawn_to_tools_list(params: StdioServerParameters) -> float:
    started = time.perf_counter()
    async with Client(params, read_timeout_seconds=60) as client:
        tools = (await client.list_tools()).tools
        elapsed = time.perf_counter() - started
    assert tools
    return elapsed


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, project_dir() as project:
        hello = Path(tmp) / "hello.py"
        hello.write_text(HELLO)
        env = server_env(project, "http://127.0.0.1:9/unused")
        ours = StdioServerParameters(command=sys.executable, args=["-m", "mcp_server"], env=env, cwd=str(REPO))
        bare = StdioServerParameters(command=sys.executable, args=[str(hello)], env=env, cwd=str(REPO))
        await spawn_to_tools_list(ours)  # warm the OS file cache for both
        await spawn_to_tools_list(bare)
        ours_times, bare_times = [], []
        for _ in range(ROUNDS):
            ours_times.append(await spawn_to_tools_list(ours))
            bare_times.append(await spawn_to_tools_list(bare))
    ours_median, bare_median = statistics.median(ours_times), statistics.median(bare_times)
    print(f"hybrid-mcp median = {ours_median:.3f} s, bare MCPServer median = {bare_median:.3f} s ({ROUNDS} rounds)")
    print(f"startup ratio = {ours_median / bare_median:.3f}  (goal <= 1.3)")


if __name__ == "__main__":
    anyio.run(main)
