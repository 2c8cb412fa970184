import time

import anyio
import pytest

from mcp_server.delegation.summary import RESULT_LIMIT, DelegationResult, FileLine, TestLine, TokenLine, as_text, compact, rendered_size
from mcp_server.delegation.testrun import TestCommand, prepared, run_test_command


def run(command, tmp_path, timeout_s=10):
    """``command`` as an allowed one runs: shell text when it has shell operators, else arguments."""
    return anyio.run(lambda: run_test_command(tmp_path, prepared(command), timeout_s=timeout_s, tail_chars=500))


def test_passing_and_failing_commands(tmp_path):
    assert run("true", tmp_path).passed
    failed = run("echo boom; exit 3", tmp_path)
    assert not failed.passed and failed.exit_code == 3 and "boom" in failed.output_tail


def test_timeout_kills_the_whole_process_group(tmp_path):
    outcome = run("sleep 30 & sleep 30", tmp_path, timeout_s=0.5)
    assert outcome.timed_out and not outcome.passed and "killed after" in outcome.output_tail


def test_the_key_is_not_passed_to_generated_code(tmp_path, monkeypatch):
    monkeypatch.setenv("ZAI_API_KEY", "sekrit")
    outcome = run("echo key=$ZAI_API_KEY", tmp_path)
    assert "sekrit" not in outcome.output_tail


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[-1][:1] != "Z"  # a zombie is dead, only not yet reaped
    except FileNotFoundError:
        return False


def test_a_cancelled_call_kills_the_whole_process_group(tmp_path):
    async def cancelled_run():
        with anyio.move_on_after(0.5):
            await run_test_command(
                tmp_path, prepared("sleep 30 & echo $! > bg.pid; sleep 30"), timeout_s=60, tail_chars=500
            )

    anyio.run(cancelled_run)
    background = int((tmp_path / "bg.pid").read_text())
    deadline = time.monotonic() + 3
    while _alive(background) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(background)


def test_a_plain_command_runs_as_arguments_without_a_shell(tmp_path):
    command = prepared("printf '%s:' $HOME '*' \"two words\"")
    assert command.argv == ("printf", "%s:", "$HOME", "*", "two words")
    assert run(command.text, tmp_path).output_tail == "$HOME:*:two words:"  # nothing expanded


def test_leading_assignments_become_the_environment(tmp_path):
    command = prepared("GREETING=hi printenv GREETING")
    assert command.env == {"GREETING": "hi"} and command.argv == ("printenv", "GREETING")
    assert run(command.text, tmp_path).output_tail.strip() == "hi"


def test_a_program_that_does_not_exist_is_a_failed_run_not_a_crash(tmp_path):
    outcome = run("no-such-program-here --x", tmp_path)
    assert not outcome.passed and outcome.exit_code == 127 and "cannot start no-such-program-here" in outcome.output_tail


def test_tail_keeps_the_end(tmp_path):
    outcome = run("seq 1 5000", tmp_path)
    assert outcome.output_tail.rstrip().endswith("5000") and len(outcome.output_tail) == 500


def _result(files: int, tail: str | None) -> DelegationResult:
    return DelegationResult(
        story="01.2", tool="implement", phase="P3", model="glm-4.7",
        files=[FileLine(path=f"src/very/long/package/path/module_{i:04d}.py", lines=100, created=True) for i in range(files)],
        lines_written=100 * files,
        tests=TestLine(command="pytest -q", passed=tail is None, exit_code=1, timed_out=False, fix_rounds=2, failure_tail=tail),
        tokens=TokenLine(prompt=1, cached=0, completion=2, reasoning=0),
        cost_usd=None, attempts=3, duration_s=1.0,
    )


@pytest.mark.parametrize("files", [0, 1, 10, 500])
def test_compact_result_always_fits(files):
    result = compact(_result(files, "E" * 10_000))
    assert rendered_size(result) <= RESULT_LIMIT
    assert len(result.files) + result.files_omitted == files
    assert "unpriced" in as_text(result)


LONG = "x" * 20_000


@pytest.mark.parametrize(
    "changes",
    [
        {"command": "pytest -q " + LONG},
        {"model": "glm-" + LONG},
        {"files": 2_000},
        {"note": "fix round 1 stopped: " + LONG},
        {"command": "pytest " + LONG, "model": "glm-" + LONG, "files": 2_000, "note": LONG, "tail": LONG},
    ],
    ids=["long-command", "long-model", "many-files", "long-note", "all-together"],
)
def test_long_free_text_never_breaks_the_cap(changes):
    result = _result(changes.get("files", 3), changes.get("tail", "E" * 10_000))
    result.tests.command = changes.get("command", result.tests.command)
    result.model = changes.get("model", result.model)
    result.note = changes.get("note")
    compacted = compact(result)
    assert rendered_size(compacted) <= RESULT_LIMIT
    assert len(compacted.files) + compacted.files_omitted == len(result.files)
    assert compacted.model.startswith("glm-") and compacted.tests.command.startswith("pytest")


def test_absurd_numbers_are_clamped_and_said_so():
    result = _result(5, LONG)
    result.tests.command, result.model, result.note = LONG, LONG, LONG
    result.tokens = TokenLine(prompt=10**500, cached=10**400, completion=10**300, reasoning=10**200)
    result.lines_written, result.cost_usd, result.duration_s = 10**600, 1e300, 1e300
    compacted = compact(result)
    assert rendered_size(compacted) <= RESULT_LIMIT
    assert "too large" in compacted.note


def test_short_results_are_left_alone():
    result = _result(3, "E" * 100)
    assert compact(result) == result


def test_a_deleted_file_says_deleted_not_zero_lines():
    result = _result(1, None)
    result.files.append(FileLine(path="app/old.py", lines=0, created=False, deleted=True))
    text = as_text(compact(result))
    assert "app/old.py (deleted)" in text and "app/old.py (0)" not in text
    assert "changed 2 file(s) (1 deleted)" in text
