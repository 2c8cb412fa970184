"""The scripted Claude of an engine=claude run: the claude-* agents (agents/claude-*.md) of P2, P3,
P4 and P7 write the story's files themselves, with Claude Code's Read and Write tools, run the
tests with Bash, and call no GLM tool.

What they write is what the GLM simulator would have answered (the example's real code in
examples/settings-epic.glm/<story>/<variant>/), so both engines finish the same stories with the
same files, and a comparison shows the cost of who wrote them. Each step follows from the tool
calls already made, so the CLI's retries change nothing: read the checkpoint, mark the phase
running, Read every file to write (Claude Code refuses a Write over a file not read first; a file
not there yet reads as an error, which is fine), Write them all, run the tests (P3, P4), record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from mcp_server.demo.anthropic_sim import Turn
from mcp_server.demo.conversation import (
    Conversation, Scenario, call, checkpoint_of, review_issues, test_command, write_phase,
)
from mcp_server.demo.tool_readiness import TOOL, missing_tool

REPLIES_DIR = Path(__file__).resolve().parents[2] / "examples" / "settings-epic.glm"
VARIANTS = {"P2": "write_tests", "P4": "refactor", "P7": "write_docs"}  # P3: see _variant
TESTED = ("P3", "P4")


def _variant(story: str, phase: str, checkpoint: dict[str, Any]) -> Path:
    """The files of the phase. P3's first round writes the story's first try where it has one
    (01.3's holds what its review sends back); after a review asked for changes, the fixed code."""
    folder = REPLIES_DIR / story
    if phase != "P3":
        return folder / VARIANTS[phase]
    asked_for_changes = (checkpoint.get("review") or {}).get("verdict") == "REQUEST_CHANGES"
    first_try = folder / "implement.round1"
    return folder / "implement" if asked_for_changes or not first_try.is_dir() else first_try


def _files(variant: Path) -> list[tuple[str, str]]:
    """(project-relative path, content) of every file of a variant."""
    if not variant.is_dir():
        return []
    return [(path.relative_to(variant).as_posix(), path.read_text(encoding="utf-8"))
            for path in sorted(variant.rglob("*")) if path.is_file()]


def _writer(phase: str, agent: str) -> Callable[[str, Conversation, Scenario], Turn]:
    def play(story: str, talk: Conversation, scenario: Scenario) -> Turn:
        missing = missing_tool([result for _, _, result in talk.calls])
        if missing:
            return Turn(text=f"{phase} {story} failed: {missing}")
        names = [name for name, _, _ in talk.calls]
        if not names:
            return call(f"{TOOL}checkpoint_read", story=story)
        checkpoint = checkpoint_of(talk.result_of(f"{TOOL}checkpoint_read"))
        if len(names) == 1:
            if phase == "P4" and not review_issues(checkpoint):  # as its agent file says: already skipped
                return Turn(text=f"P4 {story} skipped: the review was clean")
            return write_phase(story, phase, "running", agent)
        files = _files(_variant(story, phase, checkpoint))
        where = talk.working_directory.rstrip("/")
        if "Read" not in names:
            return Turn(tool_calls=tuple(("Read", {"file_path": f"{where}/{path}"}) for path, _ in files))
        if "Write" not in names:
            return Turn(tool_calls=tuple(("Write", {"file_path": f"{where}/{path}", "content": text}) for path, text in files))
        if phase in TESTED and "Bash" not in names:
            return call("Bash", command=test_command(checkpoint, scenario), description=f"Run story {story}'s tests")
        output = talk.result_of("Bash")
        passed = phase not in TESTED or ("OK" in output and "FAILED" not in output)
        status = "done" if files and passed else "failed"
        summary = f"{len(files)} file(s) written with Write"
        if phase in TESTED:
            # One test run and no fix: the scripted code passes first time (claude-backend-dev.md).
            summary += f"; tests {'passed' if passed else 'failed'} after 0 fix rounds"
        if names.count(f"{TOOL}checkpoint_write") < 2:
            return write_phase(story, phase, status, agent, model=talk.model, summary=summary,
                               artifacts=[path for path, _ in files])
        if talk.structured_output and "StructuredOutput" not in names:
            return call("StructuredOutput", status=status, summary=summary)
        return Turn(text=f"{phase} {story} {status}: {summary}")

    return play


CLAUDE_AGENTS: dict[str, Callable[[str, Conversation, Scenario], Turn]] = {
    "P2": _writer("P2", "claude-test-writer"),
    "P3": _writer("P3", "claude-backend-dev"),
    "P4": _writer("P4", "claude-senior-dev"),
    "P7": _writer("P7", "claude-tech-writer"),
}
