"""Every text input of a GLM tool has a limit (``limits:`` in the config), checked before any
request is sent or any file is read: a 5 MB instruction never becomes a 5 MB request."""

from __future__ import annotations

from mcp_server.config import Settings
from mcp_server.delegation.errors import DelegationError


class InputTooLarge(DelegationError):
    """An argument is over its limit; nothing was sent or written."""


def _refuse(name: str, size: int, limit: int, unit: str, setting: str) -> InputTooLarge:
    return InputTooLarge(
        f"{name} is {size:,} {unit}, over the limit of {limit:,} (limits.{setting} in .claude/hybrid.yaml); "
        "nothing was sent. Pass paths in context_files instead of pasting contents."
        if name == "instructions"
        else f"{name} is {size:,} {unit}, over the limit of {limit:,} (limits.{setting} in .claude/hybrid.yaml); nothing was sent"
    )


def check_inputs(
    settings: Settings, *, instructions: str, context_files: list[str], test_command: str | None, write_under: str | None
) -> None:
    limits = settings.limits
    if len(instructions) > limits.instructions_chars:
        raise _refuse("instructions", len(instructions), limits.instructions_chars, "characters", "instructions_chars")
    if test_command is not None and len(test_command) > limits.test_command_chars:
        raise _refuse("test_command", len(test_command), limits.test_command_chars, "characters", "test_command_chars")
    if len(context_files) > limits.context_files:
        raise _refuse("context_files", len(context_files), limits.context_files, "paths", "context_files")
    for path in [*context_files, *([write_under] if write_under is not None else [])]:
        if isinstance(path, str) and len(path) > limits.path_chars:
            raise InputTooLarge(
                f"path {path[:100]!r}... is {len(path):,} characters, over the limit of {limits.path_chars:,} "
                "(limits.path_chars in .claude/hybrid.yaml); nothing was sent"
            )
