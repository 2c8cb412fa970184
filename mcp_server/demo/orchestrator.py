"""The scripted orchestrator: the /hybrid:pilot, /hybrid:resume and /hybrid:pilot-agents commands
as their text says (the checks, `hybrid run-start`, then the workflow or the Agent calls round
by round, then the report)."""

from __future__ import annotations

import json
import re
from typing import Any

from mcp_server.demo.anthropic_sim import Turn
from mcp_server.demo.conversation import Conversation, Scenario, call, write_phase
from mcp_server.demo.tool_readiness import TOOL

HYBRID_CLI = re.compile(r'"([^"\n]*/bin/hybrid)" (?:report|resume-args|test-command|pilot-check|run-start)')  # the command's expanded ${CLAUDE_PLUGIN_ROOT}
CHECKED_COMMAND = re.compile(r"^test command: (?P<command>.+?) \(from ", re.MULTILINE)
WORKFLOW_DONE = re.compile(r"<task-notification>|background-task event", re.IGNORECASE)
WORKFLOW_ARGS = re.compile(r"^workflow args: (?P<json>\{.*\})$", re.MULTILINE)
CLAUDE_PHASES = ("P2", "P3", "P4", "P7")  # engine=claude: their claude-* agents write the code
NEXT_STEP = re.compile(r"^(?P<phase>P[1-7]) (?P<agent>[a-z-]+)(?: \(iteration (?P<iteration>\d+)\))?")

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


def _launch(
    story: str, step: str, rounds_done: int, max_rounds: int, test_command: str, run: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    found = NEXT_STEP.match(step)
    assert found, step
    phase, agent = found.group("phase"), found.group("agent")
    task = TASKS[phase].format(story=story, round=rounds_done + 1, rounds=max_rounds)
    by_claude = run.get("engine") == "claude" and phase in CLAUDE_PHASES  # as /hybrid:pilot-agents says
    if by_claude:
        agent, task = f"claude-{agent}", task.replace("through GLM", "with your own file tools")
    if phase == "P3" and found.group("iteration"):
        task += " Fix the issues of the latest review (they are in the checkpoint)."
    if phase in ("P3", "P4", "P5", "P6"):
        task += f"\nTest command: `{test_command}`"
    prompt = f"[story {story} {phase}] {task}"
    launch = {"description": f"{phase} {story}", "prompt": prompt, "subagent_type": f"hybrid:{agent}", "run_in_background": False}
    if by_claude and (run.get("models") or {}).get(phase):
        launch["model"] = run["models"][phase]
    return "Agent", launch


def hybrid_cli(talk: Conversation) -> str:
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
        command = f'"{hybrid_cli(talk)}" test-command'
        return call("Bash", command=command, description="The project's test command and the rule that allows it")
    found = CHECKED_COMMAND.search(ran)
    if found:
        return found.group("command")
    lines = [line for line in ran.splitlines() if line.startswith("hybrid:")] or ran.strip().splitlines()[-1:]
    return Turn(text=lines[0] if lines else "The test command check failed.")


def _is_run_start(name: str, arguments: dict[str, Any]) -> bool:
    return name == "Bash" and " run-start" in str(arguments.get("command", ""))


def _run_started(talk: Conversation, arguments: str) -> Turn | dict[str, Any]:
    """As the pilot's commands say, once the checks passed: `hybrid run-start`. What it printed for
    the workflow (run, engine, models) once it ran; otherwise the turn to take."""
    ran = next((result for name, args, result in talk.calls if _is_run_start(name, args)), None)
    if ran is None:
        return call("Bash", command=f'"{hybrid_cli(talk)}" run-start {arguments}', description="Record the pilot run")
    found = WORKFLOW_ARGS.search(ran)
    if found:
        return json.loads(found.group("json"))
    return Turn(text=(ran.strip().splitlines() or ["hybrid run-start failed"])[0])


def _report(talk: Conversation, stories: list[str]) -> Turn:
    command = f'"{hybrid_cli(talk)}" report --stories {",".join(stories)}'
    return call("Bash", command=command, description="Cost and quality report")


def _workflow_orchestrator(talk: Conversation, scenario: Scenario, command: str, arguments: str) -> Turn:
    stories = _stories(arguments)
    last = talk.calls[-1][0] if talk.calls else None
    resuming = command == "resume" and not any(name == "Workflow" for name, _, _ in talk.calls)
    if resuming and last is None:  # as /hybrid:resume says: the workflow's arguments from bin/hybrid
        command_line = f'"{hybrid_cli(talk)}" resume-args {",".join(stories)}'
        return call("Bash", command=command_line, description="Resume arguments from the checkpoints")
    if resuming:
        output = talk.calls[-1][2]
        args = json.loads(output[output.index("{"):output.rindex("}") + 1])
        args["max_review_rounds"] = scenario.max_review_rounds
        return call("Workflow", name="hybrid:pilot", args=args)
    if command == "pilot" and not any(name == "Workflow" for name, _, _ in talk.calls):
        checked = _test_command_check(talk)
        if isinstance(checked, Turn):
            return checked
        run = _run_started(talk, arguments)
        if isinstance(run, Turn):
            return run
        return call("Workflow", name="hybrid:pilot", args={"line": arguments, "test_command": checked, **run})
    if last == "Bash":
        report = talk.calls[-1][2].strip().splitlines()
        return Turn(text="Pilot finished (simulated models).\n" + "\n".join(report[:12]))
    if last == "Skill":  # the report skill's text holds the plugin's bin/hybrid
        return _report(talk, stories)
    if WORKFLOW_DONE.search(talk.last_user):
        return call("Skill", skill="hybrid:report", args=",".join(stories))
    return Turn(text="The pilot workflow is running; its result arrives as a notification.")


def orchestrate(talk: Conversation, scenario: Scenario, command: str, arguments: str) -> Turn:
    stories = _stories(arguments)
    if "--no-workflow" in arguments and not talk.calls:  # the pilot workflow's own command says so
        return call("Skill", skill="hybrid:pilot-agents", args=arguments)
    if "--no-workflow" not in arguments and command != "pilot-agents":
        return _workflow_orchestrator(talk, scenario, command, arguments)
    checked = _test_command_check(talk)  # pilot-agents' step 0
    if isinstance(checked, Turn):
        return checked
    run = _run_started(talk, arguments)
    if isinstance(run, Turn):
        return run
    last = talk.calls[-1][0] if talk.calls else None
    if last in (None, "Skill", "Agent", f"{TOOL}checkpoint_write") or _is_check(*talk.calls[-1][:2]) \
            or _is_run_start(*talk.calls[-1][:2]):
        return call(f"{TOOL}checkpoint_list", stories=",".join(stories))
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
        return write_phase(story, "P5", "failed", "code-reviewer", summary=f"review rounds exhausted ({scenario.max_review_rounds})")
    launches = tuple(
        _launch(s, step, reviews.get(s, 0), scenario.max_review_rounds, checked, run)
        for s, step in steps.items() if NEXT_STEP.match(step)
    )
    if launches:
        return Turn(text="Launching the next phase for each story.", tool_calls=launches)
    return _report(talk, stories)

