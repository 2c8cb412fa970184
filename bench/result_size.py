"""Bytes returned to Claude per byte written to disk, for a 20 KB generation.

This is the product's saving in one number: Claude reads the summary, not the code.
Goal: <= 0.05. Prints the ratio last.
"""

from __future__ import annotations

import json
import sys

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from _common import fake_glm_process, project_dir, server_env
from mcp_server.delegation.protocol import FileWrite, render_reply

GENERATION_BYTES = 20_000


def generation() -> list[FileWrite]:
    files = []
    for index in range(4):
        body = "".join(f"def handler_{index}_{n}(request):\n    return {{'ok': {n}}}\n\n\n" for n in range(200))
        files.append(FileWrite(f"app/handlers_{index}.py", body[: GENERATION_BYTES // 4]))
    return files


async def main() -> None:
    files = generation()
    with project_dir() as project, fake_glm_process(render_reply(files), 0.0) as base_url:
        params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_server"], env=server_env(project, base_url))
        async with Client(params, read_timeout_seconds=60) as client:
            result = await client.call_tool("implement", {"story": "01.2", "instructions": "write the handlers"})
        assert not result.is_error, result.content[0].text
        returned = len(json.dumps(result.structured_content).encode()) + sum(len(c.text.encode()) for c in result.content)
        written = sum((project / f.path).stat().st_size for f in files)
    print(f"bytes written to disk = {written}, bytes returned to the client = {returned}")
    print(f"returned / written = {returned / written:.4f}  (goal <= 0.05)")


if __name__ == "__main__":
    anyio.run(main)
