"""What the report reads, as data: the ledger's usage groups, each story's checkpoint and
coverage, the selection and its time bounds; and the two errors a report stops on.

Standard library only (and the price table's token counts): ``load`` fills these in, the pure
functions of ``report`` read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from mcp_server.errors import HybridError
from mcp_server.pricing import TokenCounts


class MonitorInputError(HybridError):
    """Nothing to report on yet (no ledger, no checkpoints, an unreadable ledger); one line for the user."""


class MonitorArgumentError(HybridError):
    """An argument that cannot be used (a story id, a date); one line for the user."""


@dataclass(frozen=True)
class UsageGroup:
    """The ledger's rows of one (story, phase, provider, model, tier bucket, UTC hour), summed."""

    story: str | None
    phase: str | None
    provider: str
    model: str
    bucket: int
    hour: str  # "YYYY-MM-DDTHH", UTC
    calls: int
    tokens: TokenCounts
    first_ts: str
    last_ts: str
    partial: int = 0  # Claude calls whose transcript never got their final usage: a lower bound


@dataclass(frozen=True)
class TestRunGroup:
    """The ledger's ``test_run`` rows of one (story, tool, model), summed: GLM tool calls that ran
    their test command, how many passed at the first attempt, the fix rounds they used, and how
    many passed in the end."""

    story: str
    tool: str
    model: str
    calls: int
    first_passed: int
    fix_rounds: int
    passed: int


@dataclass(frozen=True)
class CoverageInfo:
    percent: float
    source: str  # the file named by the checkpoint
    how: str  # "cobertura" | "lcov" | "coverage.py" (read from the file) | "checkpoint" (recorded value)
    recorded: float  # the percent the checkpoint recorded
    note: str | None = None


@dataclass(frozen=True)
class StoryInput:
    story: str
    data: dict[str, Any] | None  # the checkpoint's data, None when there is none or it is unreadable
    problem: str | None = None
    next_action: str | None = None
    reviews: tuple[dict[str, Any], ...] = ()  # every review round, oldest first
    coverage: CoverageInfo | None = None


@dataclass
class MonitorInput:
    root: Path
    stories: list[str]  # the selected stories, in natural order
    explicit: bool  # chosen with --stories (else: every story with a checkpoint)
    groups: list[UsageGroup]  # the selected stories' groups and the unattributed ones in scope
    other_groups: list[UsageGroup]  # groups of stories outside the selection
    inputs: dict[str, StoryInput]
    since: str | None
    until: str | None
    unattributed_window: tuple[str, str] | None  # set when a subset was chosen
    warnings: list[str] = field(default_factory=list)
    agent_gaps: list[str] = field(default_factory=list)  # agents whose reported total exceeds their transcript
    # With a subset: the Claude Code sessions that ran a selected story, whose orchestration is in
    # scope, and the other stories those sessions ran too.
    sessions: list[str] = field(default_factory=list)
    other_stories_in_sessions: list[str] = field(default_factory=list)
    test_runs: list[TestRunGroup] = field(default_factory=list)  # the selected stories' tested GLM calls


FileKey = tuple[int, int, int]  # size, mtime_ns, inode: a file read again only when it changes


def file_key(path: Path) -> FileKey | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns, stat.st_ino)


# --- time bounds --------------------------------------------------------------------------------


def ledger_stamp(moment: datetime) -> str:
    """The ledger's own timestamp form (UTC, milliseconds), so that strings compare as times."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def parse_bound(text: str, *, end: bool = False) -> str:
    """--since/--until: a date (YYYY-MM-DD) or an ISO 8601 time; naive times are UTC.

    A bare date as --until means the end of that day (the bound is exclusive).
    """
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            if end:
                moment += timedelta(days=1)
            return ledger_stamp(moment)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MonitorArgumentError(
            f"{'--until' if end else '--since'} {text!r} is not a date (2026-11-25) or an ISO time (2026-11-25T14:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return ledger_stamp(moment)


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)

