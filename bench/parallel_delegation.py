"""One `implement` call against four at once, through the stdio server, fake GLM latency 1.0 s.

Parallel agents share one MCP server process; if it serialised GLM calls, four stories
would take four times as long. Goal: wall(4) / wall(1) <= 1.15. Prints the ratio last.
"""

from __future__ import annotations

import sys
import time

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from _common import fake_glm_process, project_dir, server_env
from mcp_server.delegation.protocol import FileWrite, render_reply

LATENCY_S = 1.0


async def timed_calls(client: Client, count: int) -> float:
    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for index in range(count):
            group.start_soon(client.call_tool, "implement", {"story": "01.2", "instructions": f"part {index}"})
    return time.perf_counter() - started


async def main() -> None:
    reply = render_reply([FileWrite("app/part.py", "x = 1\n")])
    with project_dir() as project, fake_glm_process(reply, LATENCY_S) as base_url:
        params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_server"], env=server_env(project, base_url))
        async with Client(params, read_timeout_seconds=60) as client:
            await timed_calls(client, 1)  # warm the connection pool and imports
            one = min([await timed_calls(client, 1) for _ in range(3)])
            four = min([await timed_calls(client, 4) for _ in range(3)])
    print(f"wall(1) = {one:.3f} s, wall(4) = {four:.3f} s (fake GLM latency {LATENCY_S} s; best of 3)")
    print(f"wall(4) / wall(1) = {four / one:.3f}  (goal <= 1.15)")


if __name__ == "__main__":
    anyio.run(main)
