"""The scripted model behind `hybrid demo` and the end-to-end tests.

It plays Claude in a real Claude Code session: the `/hybrid:pilot` orchestrator and the
agents (`[story <id> <phase>]` prompts). Every answer is a pure function of the request, so
the CLI's retries and parallel agents change nothing: the step an agent is at is the number
of tool results it has seen, and what it knows comes from those results (the checkpoint it
read, the summary a GLM tool returned). What a reviewer decides is scripted per story and
round in a Scenario; everything else follows the plugin's agent and command instructions.

Here: the agents of the hybrid engine and the brain that picks who answers. Reading a request
and the Scenario: conversation.py; the orchestrating commands: orchestrator.py; the claude-*
agents of engine=claude, which write the code themselves: claude_writers.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Callable

from mcp_server.demo.anthropic_sim import Turn
from mcp_server.demo.claude_writers import CLAUDE_AGENTS
from mcp_server.demo.conversation import (  # noqa: F401 (Review, CLEAN, Scenario, Conversation: re-exported)
    CLEAN, Conversation, Review, Scenario, artifacts, call, checkpoint_of, issue_lines, json_object, review_issues, write_phase,
    test_command,
)
from mcp_server.demo.orchestrator import hybrid_cli, orchestrate
from mcp_server.demo.tool_readiness import TOOL, missing_tool, wait_for_glm_tools

COVERAGE_TOTAL = re.compile(r"^TOTAL\s+\d+\s+\d+\s+(\d+(?:\.\d+)?)%", re.MULTILINE)
LAST_ROUND = re.compile(r"review round (\d+) of \1\b")
WORK_STEP = 2  # every agent: 0 read the checkpoint, 1 mark running, 2 do the work

# --- The agents ---------------------------------------------------------------------------------


def _delegated(result: str) -> tuple[str, str, list[str], str]:
    """(status, model, files, summary) from a GLM tool's JSON result or its error text."""
    data = json_object(result)
    if not data.get("files") and not data.get("model"):
        return "failed", "", [], (result.strip().splitlines() or ["the tool failed"])[0][:200]
    tests = data.get("tests")
    passed = tests is None or bool(tests.get("passed"))
    files = [item["path"] for item in data.get("files", [])]
    summary = f"{len(files)} file(s), {data.get('lines_written', 0)} lines"
    if tests is not None:
        summary += f"; tests {'passed' if passed else 'failed'} after {tests.get('fix_rounds', 0)} fix round(s)"
    return ("done" if passed else "failed"), str(data.get("model", "")), files, summary


@dataclass(frozen=True)
class Outcome:
    """How an agent's phase ended: what it records, what it says, and the data a workflow's
    schema asks for (by default the workflow's status schema: {status, summary}). ``then``:
    further checkpoint writes after the record (a reviewer giving up on the last round)."""

    status: str
    record: dict[str, Any]
    text: str
    data: dict[str, Any] | None = None
    then: tuple[dict[str, Any], ...] = ()

    def answer(self) -> dict[str, Any]:
        return self.data if self.data is not None else {"status": self.status, "summary": self.record.get("summary") or self.text}


Work = Callable[[str, dict[str, Any], Conversation, Scenario], Turn]
Judge = Callable[[str, dict[str, Any], Conversation, Scenario], Outcome]


def _role(phase: str, agent: str, work: Work, judge: Judge) -> Callable[[str, Conversation, Scenario], Turn]:
    """What every agent file says: read the checkpoint, mark the phase running, do the work,
    record the outcome; then answer a workflow's schema if it has one, and say it in a line."""

    def play(story: str, talk: Conversation, scenario: Scenario) -> Turn:
        missing = missing_tool([result for _, _, result in talk.calls])
        if missing:
            return _stopped(story, phase, talk, missing)
        step = len(talk.calls)
        checkpoint = checkpoint_of(talk.result_of(f"{TOOL}checkpoint_read"))
        if step == 0:
            return call(f"{TOOL}checkpoint_read", story=story)
        if step == 1:
            return write_phase(story, phase, "running", agent)
        if step == WORK_STEP:
            return work(story, checkpoint, talk, scenario)
        outcome = judge(story, checkpoint, talk, scenario)
        writes = [{"status": outcome.status, **outcome.record}, *outcome.then]
        if step < WORK_STEP + 1 + len(writes):
            return write_phase(story, phase, agent=agent, **writes[step - WORK_STEP - 1])
        if step == WORK_STEP + 1 + len(writes) and talk.structured_output:
            return call("StructuredOutput", **outcome.answer())
        return Turn(text=outcome.text)

    return play


def _stopped(story: str, phase: str, talk: Conversation, reason: str) -> Turn:
    """An agent whose tool is not in its session: it cannot record anything, so it says why it
    stopped, in the workflow's status answer when it has one."""
    answered = any(name == "StructuredOutput" for name, _, _ in talk.calls)
    if talk.reports_status and not answered:
        return call("StructuredOutput", status="failed", summary=reason)
    return Turn(text=f"{phase} {story} failed: {reason}")


def _delegating_agent(
    phase: str, agent: str, tool: str, arguments: Callable[[dict[str, Any]], dict[str, Any]]
) -> Callable[[str, Conversation, Scenario], Turn]:
    """test-writer, the developers, the senior-dev and the tech-writer: GLM does the work."""

    def work(story: str, checkpoint: dict[str, Any], talk: Conversation, scenario: Scenario) -> Turn:
        return call(f"{TOOL}{tool}", story=story, **arguments(checkpoint | {"_scenario": scenario}))

    def judge(story: str, checkpoint: dict[str, Any], talk: Conversation, scenario: Scenario) -> Outcome:
        status, model, files, summary = _delegated(talk.result_of(f"{TOOL}{tool}"))
        return Outcome(status, {"model": model, "summary": summary, "artifacts": files}, f"{phase} {story} {status}: {summary}")

    return _role(phase, agent, work, judge)


def _tests_arguments(checkpoint: dict[str, Any]) -> dict[str, Any]:
    return {
        "instructions": "One unittest test or more per acceptance criterion, named after its AC id, "
        "plus the edge cases of the design doc. Standard library only.",
        "context_files": artifacts(checkpoint, "P1"),
        "test_dir": "tests",
    }


def _implement_arguments(checkpoint: dict[str, Any]) -> dict[str, Any]:
    scenario: Scenario = checkpoint["_scenario"]
    instructions = "Implement the story so that every acceptance criterion holds and the tests pass."
    if (checkpoint.get("review") or {}).get("verdict") == "REQUEST_CHANGES":  # this run is the review's round
        instructions += f" Fix these review issues: {issue_lines(review_issues(checkpoint))}"
    return {
        "instructions": instructions,
        "context_files": artifacts(checkpoint, "P1", "P2", "P3"),
        "test_command": test_command(checkpoint, scenario),
        "max_fix_rounds": 2,
    }


def _refactor_arguments(checkpoint: dict[str, Any]) -> dict[str, Any]:
    issues = review_issues(checkpoint)
    return {
        "instructions": f"No behaviour change. Address: {issue_lines(issues)}",
        "context_files": list(dict.fromkeys(i["file"] for i in issues if i.get("file"))),
        "test_command": test_command(checkpoint, checkpoint["_scenario"]),
    }


def _docs_arguments(checkpoint: dict[str, Any]) -> dict[str, Any]:
    return {
        "instructions": "A page for the feature's users: what it does, the calls, an example that matches the code.",
        "context_files": artifacts(checkpoint, "P1", "P3", "P4"),
        "docs_dir": "docs",
    }


_refactoring = _delegating_agent("P4", "senior-dev", "refactor", _refactor_arguments)


def _senior_dev(story: str, talk: Conversation, scenario: Scenario) -> Turn:
    """As its agent file says: after a clean latest review P4 is already skipped; nothing to run."""
    checkpoint = checkpoint_of(talk.result_of(f"{TOOL}checkpoint_read"))
    read = len(talk.calls) == 1 and not missing_tool([talk.calls[0][2]])
    if read and not review_issues(checkpoint):
        return Turn(text=f"P4 {story} skipped: the review was clean")
    return _refactoring(story, talk, scenario)


def _design(story: str, checkpoint: dict[str, Any], talk: Conversation, scenario: Scenario) -> Turn:
    criteria = checkpoint.get("acceptance_criteria") or []
    lines = [f"# {story} {checkpoint.get('title', '')}: UX", "", "## Flows and states", ""]
    lines += [f"- {ac['id']}: {ac['text']} -> success message, or an error naming the field" for ac in criteria]
    lines += ["", "## Errors", "", "Every refusal names the field or item and says what is allowed.", ""]
    return call("Write", file_path=f"{talk.working_directory}/docs/design/{story}-ux.md", content="\n".join(lines))


def _designed(story: str, checkpoint: dict[str, Any], talk: Conversation, scenario: Scenario) -> Outcome:
    design = f"docs/design/{story}-ux.md"
    return Outcome("done", {"summary": "flows, states and errors per AC", "artifacts": [design]}, f"P1 {story} done: {design}")


def _run_tests(story: str, checkpoint: dict[str, Any], talk: Conversation, scenario: Scenario) -> Turn:
    return call("Bash", command=test_command(checkpoint, scenario), description=f"Run story {story}'s tests")


def coverage_report(story: str) -> str:
    return f"reports/coverage-{story}.json"


def _qa_tests(story: str, checkpoint: dict[str, Any], talk: Conversation, scenario: Scenario) -> Turn:
    """The story's tests; with coverage.py at hand, under coverage of the story's own code."""
    if not scenario.coverage_python:
        return _run_tests(story, checkpoint, talk, scenario)
    python, data = scenario.coverage_python, f".coverage.{story}"  # one data file per story: QAs run at once
    code = ",".join(path for path in artifacts(checkpoint, "P3", "P4") if not path.startswith("tests/")) or "*"
    modules = test_command(checkpoint, scenario).split("unittest -q ", 1)[-1]
    command = (
        f'"{python}" -m coverage run --data-file={data} --include="{code}" -m unittest -q {modules}'
        f' && "{python}" -m coverage json --data-file={data} -o {coverage_report(story)}'
        f' && "{python}" -m coverage report --precision=1 --data-file={data}'
    )
    return call("Bash", command=command, description=f"Run story {story}'s tests under coverage")


def _reviewed(story: str, checkpoint: dict[str, Any], talk: Conversation, scenario: Scenario) -> Outcome:
    round_number = len(checkpoint.get("reviews") or []) + 1
    review = scenario.review(story, round_number)
    verdict = {"verdict": review.verdict, "score": review.score, "issues": list(review.issues)}
    lines = [f"P5 {story} {review.verdict} {review.score:g}/10"] + [f"- {issue_lines([i])}" for i in review.issues]
    record = {"summary": f"round {round_number}: {review.verdict} {review.score:g}/10", "review": verdict}
    # As the reviewer's instructions say: on the last round, changes asked for end the story.
    last = LAST_ROUND.search("\n".join(talk.first_user))
    gives_up = ({"status": "failed", "summary": "review rounds exhausted"},) if last and review.verdict == "REQUEST_CHANGES" else ()
    return Outcome("done", record, "\n".join(lines), verdict, gives_up)


def _checked(story: str, checkpoint: dict[str, Any], talk: Conversation, scenario: Scenario) -> Outcome:
    output = talk.result_of("Bash")
    passed = "OK" in output and "FAILED" not in output
    criteria = [ac["id"] for ac in checkpoint.get("acceptance_criteria") or []]
    evidence = f"`{test_command(checkpoint, scenario)}`: {'OK' if passed else 'FAILED'}; the test named after the AC"
    qa = [{"ac": ac, "result": "pass" if passed else "fail", "evidence": evidence} for ac in criteria]
    data = {"ac_results": [{"id": r["ac"], "pass": r["result"] == "pass", "evidence": r["evidence"]} for r in qa]}
    text = f"P6 {story}: {sum(r['result'] == 'pass' for r in qa)}/{len(qa)} ACs pass"
    record: dict[str, Any] = {"summary": f"{len(criteria)} ACs checked", "qa": qa}
    total = COVERAGE_TOTAL.search(output)
    if total:  # coverage.py's `report` ends with: TOTAL <statements> <missed> <percent>%
        record["coverage"] = {"percent": float(total.group(1)), "source": coverage_report(story)}
        text += f", coverage {total.group(1)}%"
    return Outcome("done", record, text, data)  # failed ACs are results: they send the story back


AGENTS: dict[str, Callable[[str, Conversation, Scenario], Turn]] = {
    "P1": _role("P1", "ux-designer", _design, _designed),
    "P2": _delegating_agent("P2", "test-writer", "write_tests", _tests_arguments),
    "P3": _delegating_agent("P3", "backend-dev", "implement", _implement_arguments),
    "P4": _senior_dev,
    "P5": _role("P5", "code-reviewer", _run_tests, _reviewed),
    "P6": _role("P6", "qa-agent", _qa_tests, _checked),
    "P7": _delegating_agent("P7", "tech-writer", "write_docs", _docs_arguments),
}

# --- The brain ----------------------------------------------------------------------------------


PILOT_CHECK = "Check the pilot's arguments and story files"
PILOT_CHECK_FAILED = "hybrid pilot-check:"


def brain_for(scenario: Scenario) -> Callable[[dict[str, Any]], Turn]:
    def brain(body: dict[str, Any]) -> Turn:
        talk = Conversation.of(body)
        prefix = talk.prefix()
        if prefix:
            story, phase = prefix
            play = CLAUDE_AGENTS[phase] if talk.claude_only and phase in CLAUDE_AGENTS else AGENTS[phase]
            turn = play(story, talk, scenario)
            # The phase's own work time, when a scenario sets one: spent on the agent's work step
            # (after it read its checkpoint and marked itself running), as a real agent thinks there.
            if len(talk.calls) == WORK_STEP:
                turn = Turn(turn.text, turn.tool_calls, scenario.phase_delay_s.get((story, phase), 0.0))
            return turn
        command = talk.command()
        if command and not talk.glm_tools and len(talk.calls) == talk.waits():  # before it starts anything
            return wait_for_glm_tools(talk.waits())
        if command:
            talk = talk.without_waits()
            if command[0] in ("pilot", "pilot-agents"):  # as the command says: the arguments checked first
                checks = [made for made in talk.calls if made[1].get("description") == PILOT_CHECK]
                if not checks:
                    return call("Bash", command=f'"{hybrid_cli(talk)}" pilot-check {command[1]}', description=PILOT_CHECK)
                if PILOT_CHECK_FAILED in checks[0][2]:
                    return Turn(text=next(line for line in checks[0][2].splitlines() if PILOT_CHECK_FAILED in line))
                talk = replace(talk, calls=[made for made in talk.calls if made[1].get("description") != PILOT_CHECK])
            return orchestrate(talk, scenario, *command)
        return Turn(text="(simulated model) Nothing to do here.")

    return brain


def label(body: dict[str, Any]) -> str:
    """Who a request was from: `story phase`, `orchestrator` or `other`, for the records."""
    talk = Conversation.of(body)
    prefix = talk.prefix()
    if prefix:
        return " ".join(prefix)
    return "orchestrator" if talk.command() else "other"
