"""Runs the story's test command in the project, with a timeout, and keeps the failure tail."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import anyio

from mcp_server.config import API_KEY_VARIABLES


@dataclass(frozen=True)
class TestOutcome:
    __test__ = False  # a data class, not a pytest test

    command: str
    passed: bool
    exit_code: int | None
    timed_out: bool
    duration_s: float
    output_tail: str


def _environment_without_keys() -> dict[str, str]:
    # Generated code runs here; it has no business seeing the GLM key.
    return {k: v for k, v in os.environ.items() if k not in API_KEY_VARIABLES}


def _kill_group(process: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


async def run_test_command(root: Path, command: str, *, timeout_s: float, tail_chars: int) -> TestOutcome:
    """Run ``command`` in its own process group; on a timeout or a cancelled tool call the whole
    group is killed, so no test process outlives the call."""
    start = time.monotonic()
    process = await asyncio.create_subprocess_shell(
        command,
        cwd=root,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=_environment_without_keys(),
        start_new_session=True,  # so a timeout can kill the whole process group
    )
    timed_out = finished = False
    try:
        try:
            output, _ = await asyncio.wait_for(process.communicate(), timeout_s)
        except asyncio.TimeoutError:
            timed_out = True
            _kill_group(process)
            output, _ = await process.communicate()
        finished = True
    finally:
        # Cancelled (the client gave up on the call): kill the group even when the shell itself
        # has exited, since a background child of it may still hold the output pipe.
        if not finished:
            _kill_group(process)
            with anyio.move_on_after(5, shield=True):  # reap it, so its pipes close with it
                await process.wait()
    text = output.decode("utf-8", errors="replace")
    if timed_out:
        text += f"\n[hybrid: test command killed after {timeout_s:g} s]"
    return TestOutcome(
        command=command,
        passed=not timed_out and process.returncode == 0,
        exit_code=None if timed_out else process.returncode,
        timed_out=timed_out,
        duration_s=time.monotonic() - start,
        output_tail=text[-tail_chars:],
    )
