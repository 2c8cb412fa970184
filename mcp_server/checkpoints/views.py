"""Text views of checkpoints, what the tools and the CLI print, and the resume plan the pilot
workflow takes as its arguments."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from mcp_server.checkpoints.model import (
    CHECKPOINTS_RELATIVE,
    DONE,
    FAILED,
    HISTORY_HEADER,
    HISTORY_KEPT,
    PHASES,
    SKIPPED,
    Checkpoint,
    CheckpointListing,
    WriteOutcome,
)
from mcp_server.checkpoints.rules import next_action, resume_point
from mcp_server.checkpoints.store import list_story_status
from mcp_server.checkpoints.yaml_document import render_checkpoint

STATUS_CELLS = {"pending": "·", "running": "▶", "done": DONE, "failed": FAILED, "skipped": SKIPPED}
LEGEND = f"{DONE} done  ▶ running  {FAILED} failed  {SKIPPED} skipped  · pending; a number after a mark is the iteration"


def phase_cell(phase: Mapping[str, Any]) -> str:
    return STATUS_CELLS[phase["status"]] + (str(phase["iteration"]) if phase["iteration"] > 1 else "")


def status_table(listings: Sequence[CheckpointListing], titles: bool = False) -> str:
    """One line per story: a cell per phase and the next action."""
    if not listings:
        return f"no checkpoints yet under {CHECKPOINTS_RELATIVE.as_posix()}/ (checkpoint_read STORY creates one)"
    header = ["story", *(["title"] if titles else []), *PHASES, "next"]
    rows = [header]
    for listing in listings:
        checkpoint = listing.checkpoint
        title = [_clip(checkpoint.data["title"] if checkpoint else listing.title, 32)] if titles else []
        if checkpoint:
            cells = [phase_cell(checkpoint.phases[name]) for name in PHASES]
        else:
            cells = [STATUS_CELLS["pending"] if listing.not_started else ""] * len(PHASES)
        action = next_action(checkpoint) if checkpoint else str(listing.problem)
        rows.append([listing.story, *title, *cells, action])
    widths = [max(len(row[column]) for row in rows) for column in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]
    return "\n".join([*lines, LEGEND])


def phase_report(outcome: WriteOutcome, name: str) -> str:
    """A phase's state after a write, in a few lines."""
    checkpoint = outcome.checkpoint
    phase = checkpoint.phases[name]
    head = f"{checkpoint.story} {name}: {phase['status']}, iteration {phase['iteration']}, {phase['agent'] or '-'}"
    lines = [head + (f" ({phase['model']})" if phase["model"] else "")]
    if phase["summary"]:
        lines.append(f"summary: {_clip(' '.join(phase['summary'].split()), 160)}")
    if phase["artifacts"]:
        shown = phase["artifacts"][:5]
        more = len(phase["artifacts"]) - len(shown)
        lines.append("artifacts: " + ", ".join(shown) + (f" (+{more} more)" if more else ""))
    lines.extend(_tokens_line(phase["tokens"]))
    lines.extend(_results_lines(checkpoint.data, name))
    if outcome.history_added:
        lines.append("history: " + " | ".join(entry.render() for entry in outcome.history_added))
    lines.append(f"next: {next_action(checkpoint)}")
    return "\n".join(lines)


def checkpoint_text(checkpoint: Checkpoint, root: Path) -> str:
    """The file's content with a first comment line that says where it is and what comes next."""
    where = checkpoint.path.relative_to(Path(root)).as_posix() if checkpoint.path.is_relative_to(root) else checkpoint.path
    shown = checkpoint.history[-HISTORY_KEPT:]
    earlier = checkpoint.history_earlier + len(checkpoint.history) - len(shown)
    body = render_checkpoint(checkpoint.data, shown)
    if earlier:  # after the header line, before the lines shown
        head, _, lines = body.partition(HISTORY_HEADER + "\n")
        body = f"{head}{HISTORY_HEADER}\n# ... {earlier:,} earlier history lines not shown (the file has them)\n{lines}"
    return f"# {where} (next: {next_action(checkpoint)})\n{body}"


def _tokens_line(tokens: Mapping[str, Mapping[str, int]]) -> list[str]:
    parts = [
        f"{provider} {counts['prompt']} in ({counts['cached']} cached) / {counts['completion']} out"
        for provider, counts in tokens.items()
        if any(counts.values())
    ]
    return ["tokens: " + "; ".join(parts)] if parts else []


def _results_lines(data: Mapping[str, Any], name: str) -> list[str]:
    if name == "P5" and data["review"]:
        review = data["review"]
        severities = [issue["severity"] for issue in review["issues"]]
        counted = ", ".join(f"{severities.count(s)} {s}" for s in dict.fromkeys(severities))
        return [f"review: {review['verdict']} {review['score']}/10, {len(severities)} issues" + (f" ({counted})" if counted else "")]
    if name == "P6" and data["qa"]:
        results = data["qa"]["results"]
        failed = [r["ac"] for r in results if r["result"] == "fail"]
        line = f"qa: {len(results) - len(failed)}/{len(data['acceptance_criteria'])} ACs pass"
        return [line + (f"; failed: {', '.join(failed)}" if failed else "")]
    return []


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def resume_plan(root: Path, story_glob: str, stories: Sequence[str] | None = None) -> dict[str, Any]:
    """The pilot workflow's arguments that continue every unfinished story (or the named ones).

    Done and blocked stories are left out, and so are stories not started, unless named (they
    start at P1). A story whose P3 a frontend-dev did keeps that developer. ``left`` says why each
    story was left out; the workflow ignores it."""
    plan: dict[str, Any] = {"stories": [], "resume": {}, "developer": {}, "left": {}}
    for listing in list_story_status(root, story_glob, stories):
        point = resume_point(listing.checkpoint) if listing.checkpoint else None
        if point is not None:
            plan["stories"].append(listing.story)
            plan["resume"][listing.story] = point
            if listing.checkpoint.phases["P3"]["agent"] == "frontend-dev":
                plan["developer"][listing.story] = "frontend-dev"
        elif listing.not_started and stories:
            plan["stories"].append(listing.story)
        else:
            plan["left"][listing.story] = next_action(listing.checkpoint) if listing.checkpoint else str(listing.problem)
    return plan
