"""The tool result Claude reads: compact, structured, never file contents.

Whatever the size of the generation, the result stays within RESULT_LIMIT characters:
the structured JSON and the one-paragraph text together. Free text that comes from outside
(the test command, the model id the endpoint reports, notes, test output) is clipped first.
"""

from __future__ import annotations

import json
import math
from typing import TypeVar

from pydantic import BaseModel

RESULT_LIMIT = 1500
TAIL_LIMIT = 300
# First clip of each free-text field; compact() shortens further only when the result is still too big.
MODEL_LIMIT = 100
COMMAND_LIMIT = 200
NOTE_LIMIT = 300
STORY_LIMIT = 64  # the story id rule's own limit
COUNT_LIMIT = 10**12  # the last resort shows counts beyond this as this
ELLIPSIS = "..."

T = TypeVar("T", int, float)


class FileLine(BaseModel):
    path: str
    lines: int
    created: bool
    deleted: bool = False


class TestLine(BaseModel):
    __test__ = False  # a data class, not a pytest test

    command: str
    passed: bool
    exit_code: int | None
    timed_out: bool
    fix_rounds: int
    failure_tail: str | None = None


class TokenLine(BaseModel):
    prompt: int
    cached: int
    completion: int
    reasoning: int


class DelegationResult(BaseModel):
    story: str
    tool: str
    phase: str
    model: str
    files: list[FileLine]
    files_omitted: int = 0
    lines_written: int
    tests: TestLine | None
    tokens: TokenLine
    cost_usd: float | None  # null when the model has no price: unpriced, not free
    attempts: int
    duration_s: float
    note: str | None = None
    # True when a usage row could not be written to the ledger and waits in its spool
    usage_spooled: bool = False


def _file_text(line: FileLine) -> str:
    return f"{line.path} (deleted)" if line.deleted else f"{line.path} ({line.lines})"


def as_text(result: DelegationResult) -> str:
    listed = ", ".join(_file_text(f) for f in result.files)
    if result.files_omitted:
        listed += f" and {result.files_omitted} more"
    deleted = sum(1 for f in result.files if f.deleted)
    changed = f"{len(result.files) + result.files_omitted} file(s)" + (f" ({deleted} deleted)" if deleted else "")
    if result.tests is None:
        tests = "no test command"
    else:
        verdict = "passed" if result.tests.passed else ("timed out" if result.tests.timed_out else "FAILED")
        tests = f"tests {verdict} after {result.tests.fix_rounds} fix round(s)"
    cost = "unpriced" if result.cost_usd is None else f"${result.cost_usd:.4f}"
    text = (
        f"{result.tool} {result.story}: changed {changed}, "
        f"{result.lines_written} lines written: {listed}. {tests}. {result.model}, "
        f"{result.tokens.prompt}+{result.tokens.completion} tokens, {cost}, "
        f"{result.attempts} call(s), {result.duration_s:.1f} s."
    )
    if result.usage_spooled:
        text += " Usage only spooled: the ledger could not be written; it is merged once it can."
    if result.note:
        text += f" Note: {result.note}"
    return text


def rendered_size(result: DelegationResult) -> int:
    # Measured as a client prints it (json.dumps with its default spaces), the larger form.
    return len(json.dumps(result.model_dump(mode="json"))) + len(as_text(result))


def clip(text: str, limit: int) -> str:
    """The start of ``text`` within ``limit`` characters, marked when cut."""
    return text if len(text) <= limit else text[: max(0, limit - len(ELLIPSIS))] + ELLIPSIS


def clip_tail(text: str, limit: int) -> str:
    """The end of ``text`` within ``limit`` characters (test output ends with the failure)."""
    return text if len(text) <= limit else ELLIPSIS + text[len(text) - max(0, limit - len(ELLIPSIS)) :]


def _clip_fields(result: DelegationResult, *, model: int, command: int, note: int, tail: int) -> None:
    """Clip the free-text fields in place; a limit of 0 drops an optional field."""
    result.model = clip(result.model, model)
    if result.note is not None:
        result.note = clip(result.note, note) if note else None
    if result.tests is not None:
        result.tests.command = clip(result.tests.command, command)
        if result.tests.failure_tail is not None:
            result.tests.failure_tail = clip_tail(result.tests.failure_tail, tail) if tail else None


# Harsher and harsher clips, tried in order only while the result is still too big.
_SHRINKS = (
    {"model": MODEL_LIMIT, "command": COMMAND_LIMIT, "note": NOTE_LIMIT, "tail": 80},
    {"model": MODEL_LIMIT, "command": 100, "note": 120, "tail": 80},
    {"model": 40, "command": 40, "note": 60, "tail": 0},
    {"model": 20, "command": 20, "note": 0, "tail": 0},
)


def _keep_files_that_fit(result: DelegationResult) -> None:
    """Keep the longest head of the file list that fits; count the rest as omitted.

    A binary search, as one render per dropped file is quadratic in a large generation; the
    size grows with every file kept (a file line is longer than the count it saves).
    """
    files, omitted = result.files, result.files_omitted

    def fits(kept: int) -> bool:
        result.files, result.files_omitted = files[:kept], omitted + len(files) - kept
        return rendered_size(result) <= RESULT_LIMIT

    if fits(len(files)):
        return
    low, high = 0, len(files) - 1  # the answer is in [low, high]
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    fits(low)


def _shown(count: T) -> T:
    if isinstance(count, float) and not math.isfinite(count):
        return count  # rendered as a short word
    return type(count)(max(-COUNT_LIMIT, min(count, COUNT_LIMIT)))


def _clamp_counts(result: DelegationResult) -> None:
    """The last resort: numbers no real call produces are shown as COUNT_LIMIT, and the note says so."""
    for name in ("lines_written", "files_omitted", "attempts", "duration_s"):
        setattr(result, name, _shown(getattr(result, name)))
    if result.cost_usd is not None:
        result.cost_usd = _shown(result.cost_usd)
    for name in ("prompt", "cached", "completion", "reasoning"):
        setattr(result.tokens, name, _shown(getattr(result.tokens, name)))
    result.note = "some counts were too large to show in full; the usage ledger has them"


def compact(result: DelegationResult) -> DelegationResult:
    """Clip the free text, then trim the file list, then clip harder until the result fits.

    After the harshest clip every field is a number, a fixed word or a few dozen characters;
    the last resort clamps numbers no real call produces, so the result always fits.
    """
    result = result.model_copy(deep=True)
    result.story = clip(result.story, STORY_LIMIT)
    _clip_fields(result, model=MODEL_LIMIT, command=COMMAND_LIMIT, note=NOTE_LIMIT, tail=TAIL_LIMIT)
    _keep_files_that_fit(result)
    for limits in _SHRINKS:
        if rendered_size(result) <= RESULT_LIMIT:
            break
        _clip_fields(result, **limits)
    if rendered_size(result) > RESULT_LIMIT:
        _clamp_counts(result)
    return result
