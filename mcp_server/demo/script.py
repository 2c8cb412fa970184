"""The scripted model behind `hybrid demo` and the end-to-end tests.

It plays Claude in a real Claude Code session: the `/hybrid:pilot` orchestrator and the
agents (`[story <id> <phase>]` prompts). Every answer is a pure function of the request, so
the CLI's retries and parallel agents change nothing: the step an agent is at is the number
of tool results it has seen, and what it knows comes from those results (the checkpoint it
read, the summary a GLM tool returned). What a reviewer decides is scripted per story and
round in a Scenario; everything else follows the plugin's agent and command instructions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import yaml

from mcp_server.demo.anthropic_sim import Turn
from mcp_server.demo.tool_readiness import TOOL, glm_tools_offered, is_wait, missing_tool, wait_for_glm_tools
from mcp_server.usage.transcripts import parse_prefix

COMMAND = re.compile(r"<command-name>/hybrid:(?P<name>pilot|resume|pilot-agents)</command-name>")
COMMAND_ARGS = re.compile(r"<command-args>(?P<args>.*?)</command-args>", re.DOTALL)
HYBRID_CLI = re.compile(r'"([^"\n]*/bin/hybrid)" (?:report|resume-args|test-command|pilot-check)')  # the command's expanded ${CLAUDE_PLUGIN_ROOT}
CHECKED_COMMAND = re.compile(r"^test command: (?P<command>.+?) \(from ", re.MULTILINE)
WORKING_DIRECTORY = re.compile(r"Primary working directory: (?P<path>[^\n\\]+)")
WORKFLOW_DONE = re.compile(r"<task-notification>|background-task event", re.IGNORECASE)
COVERAGE_TOTAL = re.compile(r"^TOTAL\s+\d+\s+\d+\s+(\d+(?:\.\d+)?)%", re.MULTILINE)
LAST_ROUND = re.compile(r"review round (\d+) of \1\b")
WORK_STEP = 2  # every agent: 0 read the checkpoint, 1 mark running, 2 do the work
NEXT_STEP = re.compile(r"^(?P<phase>P[1-7]) (?P<agent>[a-z-]+)(?: \(iteration (?P<iteration>\d+)\))?")


@dataclass(frozen=True)
class Review:
    verdict: str
    score: float
    issues: tuple[dict[str, Any], ...] = ()


CLEAN = Review("APPROVED", 9)


@dataclass
class Scenario:
    """What the scripted Claude decides, where a real one would judge."""

    # Each story runs its own tests: stories in flight at once share the tree, and one story's
    # half-done code must not fail another's run. {modules} are the story's test modules.
    test_command: str = "python3 -m unittest -q {modules}"
    reviews: dict[str, list[Review]] = field(default_factory=dict)  # story -> one per round
    max_review_rounds: int = 2
    phase_delay_s: dict[tuple[str, str], float] = field(default_factory=dict)  # (story, phase) -> seconds
    # An interpreter with coverage.py: QA then measures the story's code coverage with it.
    coverage_python: str | None = None

    def review(self, story: str, round_number: int) -> Review:
        rounds = self.reviews.get(story, [])
        return rounds[round_number - 1] if round_number <= len(rounds) else CLEAN


# --- Reading a request --------------------------------------------------------------------------


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])


def _text(block: dict[str, Any]) -> str:
    if block.get("type") == "text":
        return str(block.get("text", ""))
    content = block.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(str(part.get("text", "")) for part in content or [] if isinstance(part, dict))


@dataclass
class Conversation:
    """The parts of a Messages request the script reads."""

    first_user: list[str]
    calls: list[tuple[str, dict[str, Any], str]]  # every earlier tool call: name, input, result text
    working_directory: str = "."
    structured_output: bool = False  # a workflow's agent(…, {schema}) offers the StructuredOutput tool
    last_user: str = ""
    glm_tools: bool = True  # the plugin's MCP server has connected: its tools are offered
    reports_status: bool = False  # the StructuredOutput schema is the workflow's {status, summary}

    @classmethod
    def of(cls, body: dict[str, Any]) -> "Conversation":
        messages = body.get("messages") or []
        users = [m for m in messages if m.get("role") == "user"]
        first = [_text(b) for b in _blocks(users[0])] if users else []
        results = {
            block.get("tool_use_id"): _text(block)
            for message in users
            for block in _blocks(message)
            if block.get("type") == "tool_result"
        }
        calls = [
            (block["name"], block.get("input") or {}, results.get(block.get("id"), ""))
            for message in messages
            if message.get("role") == "assistant"
            for block in _blocks(message)
            if block.get("type") == "tool_use"
        ]
        where = WORKING_DIRECTORY.search(json.dumps(messages, ensure_ascii=False))
        tools = {tool.get("name"): tool for tool in body.get("tools") or []}
        last = "\n".join(_text(b) for b in _blocks(users[-1])) if users else ""
        schema = (tools.get("StructuredOutput") or {}).get("input_schema") or {}
        return cls(first, calls, where.group("path").strip() if where else ".", "StructuredOutput" in tools, last,
                   glm_tools_offered(body), "status" in (schema.get("properties") or {}))

    def waits(self) -> int:
        return sum(1 for name, arguments, _ in self.calls if is_wait(name, arguments))

    def without_waits(self) -> "Conversation":
        return replace(self, calls=[call for call in self.calls if not is_wait(call[0], call[1])])

    def prefix(self) -> tuple[str, str] | None:
        """(story, phase) of an agent's `[story <id> <phase>]` prompt; the hooks read it the same way."""
        return next((found for found in map(parse_prefix, self.first_user) if found), None)

    def command(self) -> tuple[str, str] | None:
        joined = "\n".join(self.first_user)
        found = COMMAND.search(joined)
        if not found:
            return None
        args = COMMAND_ARGS.search(joined)
        return found.group("name"), (args.group("args").strip() if args else "")

    def result_of(self, name: str) -> str:
        return next((result for call, _, result in reversed(self.calls) if call == name), "")


def _checkpoint(read_result: str) -> dict[str, Any]:
    """The data of a checkpoint_read result (a comment line, then the YAML file)."""
    try:
        data = yaml.safe_load(read_result)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# --- The agents ---------------------------------------------------------------------------------


def _call(tool: str, **arguments: Any) -> Turn:
    return Turn(tool_calls=((tool, arguments),))


def _write(story: str, phase: str, status: str, agent: str | None = None, **extra: Any) -> Turn:
    extra = {key: value for key, value in extra.items() if value not in (None, [], "")}
    return _call(f"{TOOL}checkpoint_write", story=story, phase=phase, status=status, agent=agent, **extra)


def _artifacts(checkpoint: dict[str, Any], *phases: str) -> list[str]:
    found: list[str] = []
    for phase in phases:
        found.extend((checkpoint.get("phases") or {}).get(phase, {}).get("artifacts") or [])
    return list(dict.fromkeys(found))


def _delegated(result: str) -> tuple[str, str, list[str], str]:
    """(status, model, files, summary) from a GLM tool's JSON result or its error text."""
    data = _json(result)
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
        checkpoint = _checkpoint(talk.result_of(f"{TOOL}checkpoint_read"))
        if step == 0:
            return _call(f"{TOOL}checkpoint_read", story=story)
        if step == 1:
            return _write(story, phase, "running", agent)
        if step == WORK_STEP:
            return work(story, checkpoint, talk, scenario)
        outcome = judge(story, checkpoint, talk, scenario)
        writes = [{"status": outcome.status, **outcome.record}, *outcome.then]
        if step < WORK_STEP + 1 + len(writes):
            return _write(story, phase, agent=agent, **writes[step - WORK_STEP - 1])
        if step == WORK_STEP + 1 + len(writes) and talk.structured_output:
            return _call("StructuredOutput", **outcome.answer())
        return Turn(text=outcome.text)

    return play


def _stopped(story: str, phase: str, talk: Conversation, reason: str) -> Turn:
    """An agent whose tool is not in its session: it cannot record anything, so it says why it
    stopped, in the workflow's status answer when it has one."""
    answered = any(name == "StructuredOutput" for name, _, _ in talk.calls)
    if talk.reports_status and not answered:
        return _call("StructuredOutput", status="failed", summary=reason)
    return Turn(text=f"{phase} {story} failed: {reason}")


def _delegating_agent(
    phase: str, agent: str, tool: str, arguments: Callable[[dict[str, Any]], dict[str, Any]]
) -> Callable[[str, Conversation, Scenario], Turn]:
    """test-writer, the developers, the senior-dev and the tech-writer: GLM does the work."""

    def work(story: str, checkpoint: dict[str, Any], talk: Conversation, scenario: Scenario) -> Turn:
        return _call(f"{TOOL}{tool}", story=story, **arguments(checkpoint | {"_scenario": scenario}))

    def judge(story: str, checkpoint: dict[str, Any], talk: Conversation, scenario: Scenario) -> Outcome:
        status, model, files, summary = _delegated(talk.result_of(f"{TOOL}{tool}"))
        return Outcome(status, {"model": model, "summary": summary, "artifacts": files}, f"{phase} {story} {status}: {summary}")

    return _role(phase, agent, work, judge)


def _tests_arguments(checkpoint: dict[str, Any]) -> dict[str, Any]:
    return {
        "instructions": "One unittest test or more per acceptance criterion, named after its AC id, "
        "plus the edge cases of the design doc. Standard library only.",
        "context_files": _artifacts(checkpoint, "P1"),
        "test_dir": "tests",
    }


def test_command(checkpoint: dict[str, Any], scenario: "Scenario") -> str:
    """The story's own test command: its P2 test files as unittest modules."""
    tests = [path for path in _artifacts(checkpoint, "P2") if path.endswith(".py")]
    modules = " ".join(path[:-3].replace("/", ".") for path in tests) or "discover -s tests -t ."
    return scenario.test_command.format(modules=modules)


def _review_issues(checkpoint: dict[str, Any]) -> list[dict[str, Any]]:
    reviews = [*(checkpoint.get("reviews") or []), checkpoint.get("review") or {}]
    return next((r.get("issues") or [] for r in reversed(reviews) if r), [])


def _issue_lines(issues: list[dict[str, Any]]) -> str:
    return "; ".join(f"{i.get('severity')} {i.get('file')}:{i.get('line')} {i.get('text')}" for i in issues)


def _implement_arguments(checkpoint: dict[str, Any]) -> dict[str, Any]:
    scenario: Scenario = checkpoint["_scenario"]
    instructions = "Implement the story so that every acceptance criterion holds and the tests pass."
    if (checkpoint.get("review") or {}).get("verdict") == "REQUEST_CHANGES":  # this run is the review's round
        instructions += f" Fix these review issues: {_issue_lines(_review_issues(checkpoint))}"
    return {
        "instructions": instructions,
        "context_files": _artifacts(checkpoint, "P1", "P2", "P3"),
        "test_command": test_command(checkpoint, scenario),
        "max_fix_rounds": 2,
    }


def _refactor_arguments(checkpoint: dict[str, Any]) -> dict[str, Any]:
    issues = _review_issues(checkpoint)
    return {
        "instructions": f"No behaviour change. Address: {_issue_lines(issues)}",
        "context_files": list(dict.fromkeys(i["file"] for i in issues if i.get("file"))),
        "test_command": test_command(checkpoint, checkpoint["_scenario"]),
    }


def _docs_arguments(checkpoint: dict[str, Any]) -> dict[str, Any]:
    return {
        "instructions": "A page for the feature's users: what it does, the calls, an example that matches the code.",
        "context_files": _artifacts(checkpoint, "P1", "P3", "P4"),
        "docs_dir": "docs",
    }


_refactoring = _delegating_agent("P4", "senior-dev", "refactor", _refactor_arguments)


def _senior_dev(story: str, talk: Conversation, scenario: Scenario) -> Turn:
    """As its agent file says: after a clean latest review P4 is already skipped; nothing to run."""
    checkpoint = _checkpoint(talk.result_of(f"{TOOL}checkpoint_read"))
    read = len(talk.calls) == 1 and not missing_tool([talk.calls[0][2]])
    if read and not _review_issues(checkpoint):
        return Turn(text=f"P4 {story} skipped: the review was clean")
    return _refactoring(story, talk, scenario)


def _design(story: str, checkpoint: dict[str, Any], talk: Conversation, scenario: Scenario) -> Turn:
    criteria = checkpoint.get("acceptance_criteria") or []
    lines = [f"# {story} {checkpoint.get('title', '')}: UX", "", "## Flows and states", ""]
    lines += [f"- {ac['id']}: {ac['text']} -> success message, or an error naming the field" for ac in criteria]
    lines += ["", "## Errors", "", "Every refusal names the field or item and says what is allowed.", ""]
    return _call("Write", file_path=f"{talk.working_directory}/docs/design/{story}-ux.md", content="\n".join(lines))


def _designed(story: str, checkpoint: dict[str, Any], talk: Conversation, scenario: Scenario) -> Outcome:
    design = f"docs/design/{story}-ux.md"
    return Outcome("done", {"summary": "flows, states and errors per AC", "artifacts": [design]}, f"P1 {story} done: {design}")


def _run_tests(story: str, checkpoint: dict[str, Any], talk: Conversation, scenario: Scenario) -> Turn:
    return _call("Bash", command=test_command(checkpoint, scenario), description=f"Run story {story}'s tests")


def coverage_report(story: str) -> str:
    return f"reports/coverage-{story}.json"


def _qa_tests(story: str, checkpoint: dict[str, Any], talk: Conversation, scenario: Scenario) -> Turn:
    """The story's tests; with coverage.py at hand, under coverage of the story's own code."""
    if not scenario.coverage_python:
        return _run_tests(story, checkpoint, talk, scenario)
    python, data = scenario.coverage_python, f".coverage.{story}"  # one data file per story: QAs run at once
    code = ",".join(path for path in _artifacts(checkpoint, "P3", "P4") if not path.startswith("tests/")) or "*"
    modules = test_command(checkpoint, scenario).split("unittest -q ", 1)[-1]
    command = (
        f'"{python}" -m coverage run --data-file={data} --include="{code}" -m unittest -q {modules}'
        f' && "{python}" -m coverage json --data-file={data} -o {coverage_report(story)}'
        f' && "{python}" -m coverage report --precision=1 --data-file={data}'
    )
    return _call("Bash", command=command, description=f"Run story {story}'s tests under coverage")


def _reviewed(story: str, checkpoint: dict[str, Any], talk: Conversation, scenario: Scenario) -> Outcome:
    round_number = len(checkpoint.get("reviews") or []) + 1
    review = scenario.review(story, round_number)
    verdict = {"verdict": review.verdict, "score": review.score, "issues": list(review.issues)}
    lines = [f"P5 {story} {review.verdict} {review.score:g}/10"] + [f"- {_issue_lines([i])}" for i in review.issues]
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

# --- The orchestrator (the /hybrid:pilot command in Agent mode) -----------------------------------

TASKS = {
    "P1": "Design the UX for story {story}.",
    "P2": "Write the tests for story {story} through GLM.",
    "P3": "Implement story {story} through GLM.",
    "P4": "Refactor story {story} for the review's remaining issues.",
    "P5": "Review story {story}, review round {round} of {rounds}.",
    "P6": "Check every acceptance criterion of story {story}.",
    "P7": "Write the docs for story {story} through GLM.",
}


def _stories(arguments: str) -> list[str]:
    return [s for s in re.split(r"[,\s]+", arguments) if s and "=" not in s and not s.startswith("--")]


def _next_steps(table: str, stories: list[str]) -> dict[str, str]:
    """story -> its `next` cell, from checkpoint_list's table."""
    steps = {}
    for line in table.splitlines():
        cells = line.split()
        if len(cells) >= 9 and cells[0] in stories:
            steps[cells[0]] = " ".join(cells[8:])
    return steps


def _launch(story: str, step: str, rounds_done: int, max_rounds: int, test_command: str) -> tuple[str, dict[str, Any]]:
    found = NEXT_STEP.match(step)
    assert found, step
    phase, agent = found.group("phase"), found.group("agent")
    task = TASKS[phase].format(story=story, round=rounds_done + 1, rounds=max_rounds)
    if phase == "P3" and found.group("iteration"):
        task += " Fix the issues of the latest review (they are in the checkpoint)."
    if phase in ("P3", "P4", "P5", "P6"):
        task += f"\nTest command: `{test_command}`"
    prompt = f"[story {story} {phase}] {task}"
    return "Agent", {"description": f"{phase} {story}", "prompt": prompt, "subagent_type": f"hybrid:{agent}", "run_in_background": False}


def _hybrid_cli(talk: Conversation) -> str:
    """The command's `bin/hybrid` path, from the command's own text (/hybrid:pilot-agents,
    /hybrid:resume) or from the /hybrid:report skill the workflow's command text sends the model to."""
    texts = [*talk.first_user, *(result for _, _, result in talk.calls), talk.last_user]
    hybrid = next((found for found in map(HYBRID_CLI.search, texts) if found), None)
    return hybrid.group(1) if hybrid else "hybrid"


def _is_check(name: str, arguments: dict[str, Any]) -> bool:
    return name == "Bash" and " test-command" in str(arguments.get("command", ""))


def _test_command_check(talk: Conversation) -> Turn | str:
    """As the pilot's commands say, once before any phase: `hybrid test-command`. The command it
    found when it passed; otherwise the turn to take: run it, or stop with its line."""
    ran = next((result for name, arguments, result in talk.calls if _is_check(name, arguments)), None)
    if ran is None:
        command = f'"{_hybrid_cli(talk)}" test-command'
        return _call("Bash", command=command, description="The project's test command and the rule that allows it")
    found = CHECKED_COMMAND.search(ran)
    if found:
        return found.group("command")
    lines = [line for line in ran.splitlines() if line.startswith("hybrid:")] or ran.strip().splitlines()[-1:]
    return Turn(text=lines[0] if lines else "The test command check failed.")


def _report(talk: Conversation, stories: list[str]) -> Turn:
    command = f'"{_hybrid_cli(talk)}" report --stories {",".join(stories)}'
    return _call("Bash", command=command, description="Cost and quality report")


def _workflow_orchestrator(talk: Conversation, scenario: Scenario, command: str, arguments: str) -> Turn:
    stories = _stories(arguments)
    last = talk.calls[-1][0] if talk.calls else None
    resuming = command == "resume" and not any(name == "Workflow" for name, _, _ in talk.calls)
    if resuming and last is None:  # as /hybrid:resume says: the workflow's arguments from bin/hybrid
        command_line = f'"{_hybrid_cli(talk)}" resume-args {",".join(stories)}'
        return _call("Bash", command=command_line, description="Resume arguments from the checkpoints")
    if resuming:
        output = talk.calls[-1][2]
        args = json.loads(output[output.index("{"):output.rindex("}") + 1])
        args["max_review_rounds"] = scenario.max_review_rounds
        return _call("Workflow", name="hybrid:pilot", args=args)
    if command == "pilot" and not any(name == "Workflow" for name, _, _ in talk.calls):
        checked = _test_command_check(talk)
        if isinstance(checked, Turn):
            return checked
        return _call("Workflow", name="hybrid:pilot", args={"line": arguments, "test_command": checked})
    if last == "Bash":
        report = talk.calls[-1][2].strip().splitlines()
        return Turn(text="Pilot finished (simulated models).\n" + "\n".join(report[:12]))
    if last == "Skill":  # the report skill's text holds the plugin's bin/hybrid
        return _report(talk, stories)
    if WORKFLOW_DONE.search(talk.last_user):
        return _call("Skill", skill="hybrid:report", args=",".join(stories))
    return Turn(text="The pilot workflow is running; its result arrives as a notification.")


def _orchestrator(talk: Conversation, scenario: Scenario, command: str, arguments: str) -> Turn:
    stories = _stories(arguments)
    if "--no-workflow" in arguments and not talk.calls:  # the pilot workflow's own command says so
        return _call("Skill", skill="hybrid:pilot-agents", args=arguments)
    if "--no-workflow" not in arguments and command != "pilot-agents":
        return _workflow_orchestrator(talk, scenario, command, arguments)
    checked = _test_command_check(talk)  # pilot-agents' step 0
    if isinstance(checked, Turn):
        return checked
    last = talk.calls[-1][0] if talk.calls else None
    if last in (None, "Skill", "Agent", f"{TOOL}checkpoint_write") or _is_check(*talk.calls[-1][:2]):
        return _call(f"{TOOL}checkpoint_list", stories=",".join(stories))
    if last == "Bash":
        report = talk.calls[-1][2].strip().splitlines()
        return Turn(text="Pilot finished (simulated models).\n" + "\n".join(report[:12]))
    steps = _next_steps(talk.calls[-1][2], stories)
    reviews = {s: sum(1 for name, args, _ in talk.calls if name == "Agent" and args["prompt"].startswith(f"[story {s} P5]")) for s in stories}
    exhausted = [
        s for s, step in steps.items()
        if step.startswith("P3") and reviews.get(s, 0) >= scenario.max_review_rounds
    ]
    if exhausted:
        story = exhausted[0]
        return _write(story, "P5", "failed", "code-reviewer", summary=f"review rounds exhausted ({scenario.max_review_rounds})")
    launches = tuple(
        _launch(s, step, reviews.get(s, 0), scenario.max_review_rounds, checked) for s, step in steps.items() if NEXT_STEP.match(step)
    )
    if launches:
        return Turn(text="Launching the next phase for each story.", tool_calls=launches)
    return _report(talk, stories)


# --- The brain ----------------------------------------------------------------------------------


PILOT_CHECK = "Check the pilot's arguments and story files"
PILOT_CHECK_FAILED = "hybrid pilot-check:"


def brain_for(scenario: Scenario) -> Callable[[dict[str, Any]], Turn]:
    def brain(body: dict[str, Any]) -> Turn:
        talk = Conversation.of(body)
        prefix = talk.prefix()
        if prefix:
            story, phase = prefix
            turn = AGENTS[phase](story, talk, scenario)
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
                checks = [call for call in talk.calls if call[1].get("description") == PILOT_CHECK]
                if not checks:
                    return _call("Bash", command=f'"{_hybrid_cli(talk)}" pilot-check {command[1]}', description=PILOT_CHECK)
                if PILOT_CHECK_FAILED in checks[0][2]:
                    return Turn(text=next(line for line in checks[0][2].splitlines() if PILOT_CHECK_FAILED in line))
                talk = replace(talk, calls=[call for call in talk.calls if call[1].get("description") != PILOT_CHECK])
            return _orchestrator(talk, scenario, *command)
        return Turn(text="(simulated model) Nothing to do here.")

    return brain


def label(body: dict[str, Any]) -> str:
    """Who a request was from: `story phase`, `orchestrator` or `other`, for the records."""
    talk = Conversation.of(body)
    prefix = talk.prefix()
    if prefix:
        return " ".join(prefix)
    return "orchestrator" if talk.command() else "other"
