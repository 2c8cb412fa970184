"""Runs the story's test command in the project, with a timeout, and keeps the failure tail.

A command runs only when the user's rules allow it (mcp_server/permissions.py), and then as an
argument list, without a shell: nothing in it is expanded, substituted or redirected. The one
exception is a command with shell operators in it that an allow rule names exactly: the user
allowed that very text, so it runs as that text, through /bin/sh.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import anyio

from mcp_server.config import API_KEY_VARIABLES
from mcp_server.delegation.errors import DelegationError
from mcp_server.permissions import ProjectPermissions, shell_operator_in

ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
NOT_STARTED_EXIT = 127  # what a shell reports for a command it cannot find


class TestCommandRefused(DelegationError):
    """The user's rules do not let the GLM tools run this test command; nothing was started."""

    __test__ = False


@dataclass(frozen=True)
class TestCommand:
    """An allowed test command, ready to start: an argument list, or (``argv`` None) shell text."""

    __test__ = False

    text: str
    argv: tuple[str, ...] | None
    env: dict[str, str] = field(default_factory=dict)  # leading NAME=value words of the command


def prepared(command: str) -> TestCommand:
    """``command`` as an argument list; an exactly-allowed string with shell operators as shell text."""
    text = command.strip()
    if shell_operator_in(text):
        return TestCommand(text, None)
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise TestCommandRefused(f"test command {text!r} cannot be split into arguments: {error}") from None
    env: dict[str, str] = {}
    while words and ASSIGNMENT.match(words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    if not words:
        raise TestCommandRefused(f"test command {text!r} sets variables but names no program to run")
    return TestCommand(text, tuple(words), env)


def allowed_test_command(command: str, permissions: ProjectPermissions, test_commands: Iterable[str]) -> TestCommand:
    """The command ready to run, or TestCommandRefused naming the rule that decided or what to add."""
    decision = permissions.command(command, test_commands)
    if not decision.allowed:
        raise TestCommandRefused(decision.reason)
    return prepared(command)


@dataclass(frozen=True)
class TestOutcome:
    __test__ = False  # a data class, not a pytest test

    command: str
    passed: bool
    exit_code: int | None
    timed_out: bool
    duration_s: float
    output_tail: str


def _environment_without_keys(extra: dict[str, str]) -> dict[str, str]:
    # Generated code runs here; it has no business seeing the GLM key.
    return {k: v for k, v in {**os.environ, **extra}.items() if k not in API_KEY_VARIABLES}


def _kill_group(process: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


async def _start(root: Path, command: TestCommand) -> asyncio.subprocess.Process:
    options = dict(
        cwd=root,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=_environment_without_keys(command.env),
        start_new_session=True,  # so a timeout can kill the whole process group
    )
    if command.argv is None:
        return await asyncio.create_subprocess_shell(command.text, **options)
    return await asyncio.create_subprocess_exec(*command.argv, **options)


async def run_test_command(root: Path, command: TestCommand, *, timeout_s: float, tail_chars: int) -> TestOutcome:
    """Run an allowed ``command`` in its own process group; on a timeout or a cancelled tool call
    the whole group is killed, so no test process outlives the call."""
    start = time.monotonic()
    try:
        process = await _start(root, command)
    except OSError as error:  # no such program, or not executable: a failed run GLM can learn from
        return TestOutcome(
            command=command.text, passed=False, exit_code=NOT_STARTED_EXIT, timed_out=False,
            duration_s=time.monotonic() - start,
            output_tail=f"[hybrid: cannot start {command.argv[0] if command.argv else 'sh'}: {error.strerror}]",
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
        command=command.text,
        passed=not timed_out and process.returncode == 0,
        exit_code=None if timed_out else process.returncode,
        timed_out=timed_out,
        duration_s=time.monotonic() - start,
        output_tail=text[-tail_chars:],
    )
