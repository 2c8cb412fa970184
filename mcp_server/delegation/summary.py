"""The tool result Claude reads: compact, structured, never file contents.

Whatever the size of the generation, the result stays within RESULT_LIMIT characters:
the structured JSON and the one-paragraph text together.
"""

from __future__ import annotations

import json

from pydantic import BaseModel

RESULT_LIMIT = 1500
TAIL_LIMIT = 300


class FileLine(BaseModel):
    path: str
    lines: int
    created: bool


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


def as_text(result: DelegationResult) -> str:
    written = ", ".join(f"{f.path} ({f.lines})" for f in result.files)
    if result.files_omitted:
        written += f" and {result.files_omitted} more"
    if result.tests is None:
        tests = "no test command"
    else:
        verdict = "passed" if result.tests.passed else ("timed out" if result.tests.timed_out else "FAILED")
        tests = f"tests {verdict} after {result.tests.fix_rounds} fix round(s)"
    cost = "unpriced" if result.cost_usd is None else f"${result.cost_usd:.4f}"
    text = (
        f"{result.tool} {result.story}: wrote {len(result.files) + result.files_omitted} file(s), "
        f"{result.lines_written} lines: {written}. {tests}. {result.model}, "
        f"{result.tokens.prompt}+{result.tokens.completion} tokens, {cost}, "
        f"{result.attempts} call(s), {result.duration_s:.1f} s."
    )
    if result.note:
        text += f" Note: {result.note}"
    return text


def rendered_size(result: DelegationResult) -> int:
    # Measured as a client prints it (json.dumps with its default spaces), the larger form.
    return len(json.dumps(result.model_dump(mode="json"))) + len(as_text(result))


def compact(result: DelegationResult) -> DelegationResult:
    """Trim the file list, the failure tail and the note until the result fits."""
    result = result.model_copy(deep=True)
    if result.tests and result.tests.failure_tail:
        result.tests.failure_tail = result.tests.failure_tail[-TAIL_LIMIT:]
    while rendered_size(result) > RESULT_LIMIT and result.files:
        result.files.pop()
        result.files_omitted += 1
    if rendered_size(result) > RESULT_LIMIT and result.tests and result.tests.failure_tail:
        result.tests.failure_tail = result.tests.failure_tail[-80:]
    if rendered_size(result) > RESULT_LIMIT and result.note:
        result.note = result.note[:120] + "..."
    return result
