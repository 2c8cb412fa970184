import anyio
import pytest

from mcp_server.delegation.summary import RESULT_LIMIT, DelegationResult, FileLine, TestLine, TokenLine, as_text, compact, rendered_size
from mcp_server.delegation.testrun import run_test_command


def run(command, tmp_path, timeout_s=10):
    return anyio.run(lambda: run_test_command(tmp_path, command, timeout_s=timeout_s, tail_chars=500))


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
