"""The checkpoint's vocabulary: phases, statuses, history marks, the errors, the dataclasses a
checkpoint is read into, and the data of a new one. Imports nothing else of the package."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from mcp_server.errors import HybridError
from mcp_server.stories import Story

CHECKPOINTS_RELATIVE = Path(".claude") / "checkpoints"
PHASES = ("P1", "P2", "P3", "P4", "P5", "P6", "P7")
STATUSES = ("pending", "running", "done", "skipped", "failed")
WRITABLE_STATUSES = ("running", "done", "skipped", "failed")
# The seed's agent for each phase: used when a write names none, and in "next" hints.
DEFAULT_AGENTS = {
    "P1": "ux-designer",
    "P2": "test-writer",
    "P3": "backend-dev",
    "P4": "senior-dev",
    "P5": "code-reviewer",
    "P6": "qa-agent",
    "P7": "tech-writer",
}
OPTIONAL_PHASE = "P4"  # runs only when the code needs a refactor; before or after the review
SKIPPABLE_WITH_REASON = ("P1", "P2", "P7")  # e.g. no UX to design, tests already written, no docs
DONE, FAILED, NEW_ITERATION, SKIPPED = "✓", "✗", "↻", "–"
STATUS_MARKS = {"done": DONE, "failed": FAILED, "skipped": SKIPPED}
HISTORY_HEADER = "# history (newest last; tail -1 shows the latest)"
# History lines a read keeps in memory and a view shows; the earlier ones are counted, and a
# write copies them from the file as they are (mcp_server/checkpoints/history_file.py).
HISTORY_KEPT = 30
# A line written during a pilot run ends with the run's id (`P1: ✓ ux-designer 14:05 run=20261202-140500-a1b2`);
# lines from before run ids, or written outside a run, have none.
HISTORY_LINE = re.compile(
    r"^(?P<phase>P[1-7]): (?P<mark>[✓✗↻–]) (?P<agent>[A-Za-z0-9][A-Za-z0-9._:-]{0,63}) (?P<time>(?:[01][0-9]|2[0-3]):[0-5][0-9])"
    r"(?: run=(?P<run>[A-Za-z0-9][A-Za-z0-9._-]{0,63}))?$"
)
ORDER_RULE = "phases finish in order P1 → P2 → P3 → (P4) → P5 → P6 → P7"


class CheckpointError(HybridError):
    """A checkpoint cannot be read, or a write was refused; nothing was changed."""


class CheckpointNotFound(CheckpointError):
    """The story has no checkpoint file yet."""


class TransitionError(CheckpointError):
    """A status change the phase rules refuse; the message names the rule."""


@dataclass(frozen=True)
class HistoryEntry:
    phase: str
    mark: str
    agent: str
    time: str  # HH:MM, local time
    run: str | None = None  # the pilot run that wrote it (mcp_server/ledger_runs.py)

    def render(self) -> str:
        line = f"{self.phase}: {self.mark} {self.agent} {self.time}"
        return f"{line} run={self.run}" if self.run else line


@dataclass
class Checkpoint:
    """A validated checkpoint: ``data`` follows the JSON Schema; ``history`` is oldest first."""

    path: Path
    data: dict[str, Any]
    history: list[HistoryEntry] = field(default_factory=list)
    # History lines older than ``history``, not loaded: their count, and their bytes in ``path``
    history_earlier: int = 0
    history_span: tuple[int, int] | None = None

    @property
    def story(self) -> str:
        return str(self.data["story"])

    @property
    def phases(self) -> dict[str, dict[str, Any]]:
        return self.data["phases"]

    @property
    def ac_ids(self) -> list[str]:
        return [ac["id"] for ac in self.data["acceptance_criteria"]]


@dataclass(frozen=True)
class Update:
    """One checkpoint_write call: a phase's new status and what to merge into it."""

    phase: str
    status: str
    agent: str | None = None
    model: str | None = None
    summary: str | None = None
    artifacts: Sequence[str] | None = None
    review: Mapping[str, Any] | None = None
    qa: Sequence[Mapping[str, Any]] | None = None
    coverage: Mapping[str, Any] | None = None
    new_iteration: bool = False


@dataclass(frozen=True)
class WriteOutcome:
    checkpoint: Checkpoint
    history_added: list[HistoryEntry]


@dataclass(frozen=True)
class CheckpointListing:
    """One row of a listing: the checkpoint, or why there is none."""

    story: str
    checkpoint: Checkpoint | None
    problem: str | None = None
    title: str = ""  # from the story file, for a story not started yet
    not_started: bool = False  # a story file and no checkpoint yet: every phase pending


# --- A new checkpoint -----------------------------------------------------------------------


def utc_stamp(now: datetime) -> str:
    return now.astimezone(timezone.utc).isoformat(timespec="seconds")


def zero_tokens() -> dict[str, dict[str, int]]:
    return {provider: {"prompt": 0, "cached": 0, "completion": 0} for provider in ("glm", "anthropic")}


def _new_phase() -> dict[str, Any]:
    return {
        "status": "pending",
        "agent": None,
        "model": None,
        "iteration": 1,
        "started_at": None,
        "finished_at": None,
        "summary": None,
        "artifacts": [],
        "tokens": zero_tokens(),
    }


def new_checkpoint_data(story: Story, story_file: str, now: datetime) -> dict[str, Any]:
    stamp = utc_stamp(now)
    return {
        "version": 1,
        "story": story.id,
        "title": story.title[:300],
        "story_file": story_file,
        "acceptance_criteria": [{"id": ac.id, "text": ac.text} for ac in story.acceptance_criteria],
        "phases": {name: _new_phase() for name in PHASES},
        "review": None,
        "reviews": [],
        "qa": None,
        "coverage": None,
        "revision": 1,
        "created_at": stamp,
        "updated_at": stamp,
    }
