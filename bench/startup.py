"""Spawn to a `tools/list` answer: our server against a bare MCPServer hello-world.

Claude Code starts the server with every session; it must cost no more than the SDK itself.
Ours is started as Claude Code starts it, `bin/hybrid-mcp`: the launcher checks its venv's stamp
and execs the venv's python (here a venv whose python is this interpreter, stamp in place, as
after the first start). The bare server is spawned by this interpreter directly. They run
alternately and the medians are compared. Goal: <= 1.3.
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

sys.path.insert(0, str(REPO))
from mcp_server import launcher  # noqa: E402

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
        data = Path(tmp) / "plugin-data"
        venv_python = launcher.venv_python(data / "venv")
        venv_python.parent.mkdir(parents=True)
        venv_python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        venv_python.chmod(0o755)
        (data / "venv" / launcher.STAMP).write_text(launcher._stamp(REPO) + "\n")
        launcher_env = {key: value for key, value in env.items() if key != "HYBRID_PYTHON"}
        launcher_env["CLAUDE_PLUGIN_DATA"] = str(data)
        ours = StdioServerParameters(command=sys.executable, args=[str(REPO / "bin" / "hybrid-mcp")],
                                     env=launcher_env, cwd=str(REPO))
        bare = StdioServerParameters(command=sys.executable, args=[str(hello)], env=env, cwd=str(REPO))
        await spawn_to_tools_list(ours)  # warm the OS file cache for both
        await spawn_to_tools_list(bare)
        ours_times, bare_times = [], []
        for _ in range(ROUNDS):
            ours_times.append(await spawn_to_tools_list(ours))
            bare_times.append(await spawn_to_tools_list(bare))
    ours_median, bare_median = statistics.median(ours_times), statistics.median(bare_times)
    print(f"bin/hybrid-mcp median = {ours_median:.3f} s, bare MCPServer median = {bare_median:.3f} s ({ROUNDS} rounds)")
    print(f"startup ratio = {ours_median / bare_median:.3f}  (goal <= 1.3)")


if __name__ == "__main__":
    anyio.run(main)
