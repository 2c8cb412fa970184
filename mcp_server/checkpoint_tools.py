"""The checkpoint_* MCP tools: thin wrappers over mcp_server.checkpoints with short text results.

The argument types below give agents the shape of review, qa and coverage in tools/list; the
values themselves are checked by the checkpoints package against the shipped JSON Schema, so the rules
live in one place and the refusals read the same from the tools, the CLI and Python.
"""

from __future__ import annotations

import logging
from typing import Annotated, Callable, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ConfigDict, Field
from typing_extensions import TypedDict

from mcp_server import checkpoints
from mcp_server.config import load_settings
from mcp_server.errors import HybridError

log = logging.getLogger("hybrid.checkpoint_tools")

T = TypeVar("T")


class ReviewIssue(TypedDict, total=False):
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    severity: Annotated[str, Field(description="critical | major | minor | info")]
    file: str | None
    line: int | None
    text: str


class Review(TypedDict, total=False):
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    verdict: Annotated[str, Field(description="APPROVED | REQUEST_CHANGES (required)")]
    score: Annotated[int | float, Field(description="0-10 (required)")]
    issues: list[ReviewIssue]


class QaResult(TypedDict, total=False):
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    ac: Annotated[str, Field(description="the AC id from the checkpoint, e.g. AC-1")]
    result: Annotated[str, Field(description="pass | fail")]
    evidence: Annotated[str, Field(description="the test, command or observation that shows it")]


class Coverage(TypedDict, total=False):
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    percent: Annotated[int | float, Field(description="0-100")]
    source: Annotated[str, Field(description="where the figure comes from, e.g. coverage.xml")]


def _guarded(tool: str, action: Callable[[], T]) -> T:
    try:
        return action()
    except HybridError as error:
        raise ToolError(str(error)) from None
    except Exception as error:  # a bug: say so briefly, keep the traceback in the log
        log.exception("%s failed unexpectedly", tool)
        raise ToolError(f"internal error in {tool}: {type(error).__name__} (details in the server log)") from None


def checkpoint_read(story: str) -> str:
    """A story's checkpoint (.claude/checkpoints/<story>.yaml): ACs, phases P1-P7, review, QA, history.
    The first read creates it from the story file. The first line says what comes next."""

    def read() -> str:
        settings = load_settings()
        checkpoint = checkpoints.open_checkpoint(settings.project_root, story, settings.stories.glob)
        return checkpoints.checkpoint_text(checkpoint, settings.project_root)

    return _guarded("checkpoint_read", read)


def checkpoint_write(
    story: str,
    phase: Annotated[str, Field(description="P1..P7")],
    status: Annotated[str, Field(description="running | done | skipped | failed")],
    agent: str | None = None,
    model: str | None = None,
    summary: Annotated[str | None, Field(description="a line or two; the reason when skipping")] = None,
    artifacts: Annotated[list[str] | None, Field(description="paths this phase produced; added to the list")] = None,
    review: Annotated[Review | None, Field(description="P5 only; required for P5 done")] = None,
    qa: Annotated[list[QaResult] | None, Field(description="P6 only; P6 done needs one result per AC")] = None,
    coverage: Coverage | None = None,
    new_iteration: Annotated[bool, Field(description="true to run a done phase again")] = False,
) -> str:
    """Record a phase's progress in the story's checkpoint: a validated merge. A transition the phase
    rules refuse (e.g. P3 done before P2) is an error that says why and changes nothing. Returns the
    phase's new state and the next action."""
    update = checkpoints.Update(
        phase=phase,
        status=status,
        agent=agent,
        model=model,
        summary=summary,
        artifacts=artifacts,
        review=review,
        qa=qa,
        coverage=coverage,
        new_iteration=new_iteration,
    )

    def write() -> str:
        settings = load_settings()
        outcome = checkpoints.write_checkpoint(settings.project_root, story, update, settings.stories.glob)
        return checkpoints.phase_report(outcome, phase)

    return _guarded("checkpoint_write", write)


def checkpoint_list(
    stories: Annotated[list[str] | str | None, Field(description="story ids (a list or '01.2,01.3'); default: all")] = None,
) -> str:
    """A compact table of every story's phases (or the named stories') with the next action for each.
    A named story without a checkpoint gets one from its story file, as on its first read; without
    ids, a story file with no checkpoint is listed as not started and nothing is created."""

    def table() -> str:
        settings = load_settings()
        wanted = [s.strip() for s in stories.split(",") if s.strip()] if isinstance(stories, str) else stories
        if wanted:
            listings = checkpoints.list_checkpoints(settings.project_root, wanted, settings.stories.glob)
        else:
            listings = checkpoints.list_story_status(settings.project_root, settings.stories.glob)
        return checkpoints.status_table(listings)

    return _guarded("checkpoint_list", table)


def register(app: MCPServer) -> None:
    for tool in (checkpoint_read, checkpoint_write, checkpoint_list):
        app.add_tool(tool, structured_output=False)
