"""Workflow mode (stories pipelined, no barrier) against Agent-call mode (a barrier per round).

Both run /hybrid:pilot on three stories of the bundled example in the real Claude Code CLI,
one after the other in this run, against the same scripted model, which sleeps on each agent's
work step. The profile is skewed: every phase takes PHASE_S, but 01.3's P3 takes three times
that, and 01.2's first review asks for changes, so 01.2 needs an extra P3 and P5. With barriers
every round waits for its slowest story (01.3's P3 holds everyone, then everyone waits for
01.2's extra round); pipelined, each story moves on as soon as its own phase is done.
Goal: wall(workflow) / wall(agent calls) <= 0.8. Prints the ratio last. The first argument
sets the phase time in seconds (default 2).

What bounds it: with the sleeps alone, the barriers take 10 phase-units
(each round waits for its slowest story: 1 + 1 + 3 + 1 + 1 + 1 + 1 + 1) and the pipeline 8 (the
slowest story's own chain), so 0.8 is the ideal for this profile. Each agent also costs the real
CLI about a second of turns, hooks and MCP calls, and the pipeline's critical chain has as many
agents as the barrier has rounds, so the measured ratio sits a little above 0.8 and approaches
it as phases get longer than that overhead (real phases take minutes). With only one slow P3 and
no review round, no scheduler can beat the slow story's own chain: the ideal ratio is 1.0.

The workflow's concurrent agents default to min(16, CPUs - 2) in Claude Code 2.1.330; this
bench sets CLAUDE_CODE_WORKFLOW_MAX_CONCURRENT_AGENTS to the story count, as docs/workflow.md
advises on small machines.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mcp_server.demo.anthropic_sim import AnthropicSim  # noqa: E402
from mcp_server.demo.chat_sim import ChatSim  # noqa: E402
from mcp_server.demo.glm_replies import CannedGlm  # noqa: E402
from mcp_server.demo.run import find_claude, prepare_project, replies_dir, run_session, session_environment  # noqa: E402
from mcp_server.demo.script import CLEAN, Review, Scenario, brain_for, label  # noqa: E402

STORIES = ("01.2", "01.3", "01.4")
PHASE_S = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0  # `pipeline_vs_barrier.py 6` for longer phases
PHASES = ("P1", "P2", "P3", "P4", "P5", "P6", "P7")
CHANGES = Review("REQUEST_CHANGES", 6, ({"severity": "major", "file": "settings/roles.py", "line": 12,
                                         "text": "a role can be deleted while it is assigned"},))


def scenario() -> Scenario:
    delays = {(story, phase): PHASE_S for story in STORIES for phase in PHASES}
    delays[("01.3", "P3")] = 3 * PHASE_S
    return Scenario(reviews={"01.2": [CHANGES, CLEAN]}, phase_delay_s=delays)


def timed_pilot(claude: str, arguments: str) -> float:
    with tempfile.TemporaryDirectory() as base, tempfile.TemporaryDirectory() as home, \
            AnthropicSim(brain_for(scenario()), label) as anthropic, ChatSim(CannedGlm(replies_dir())) as glm:
        project = prepare_project(Path(base))
        env = session_environment(Path(home), anthropic.base_url, glm.base_url,
                                  {"CLAUDE_CODE_WORKFLOW_MAX_CONCURRENT_AGENTS": str(len(STORIES))})
        started = time.perf_counter()
        run = run_session(claude, project, f"/hybrid:pilot {arguments}", env, timeout_s=1200)
        elapsed = time.perf_counter() - started
        assert run.returncode == 0 and not anthropic.errors, (run.stderr[-2000:], anthropic.errors)
    return elapsed


def main() -> None:
    claude = find_claude()
    stories = ",".join(STORIES)
    barrier = timed_pilot(claude, f"{stories} --no-workflow")
    pipelined = timed_pilot(claude, stories)
    # Sleep alone: barriers sum each round's slowest story; the pipeline waits for its slowest story.
    print(f"profile: each phase {PHASE_S:g} s, 01.3's P3 {3 * PHASE_S:g} s, 01.2 reviewed twice; "
          f"sleep alone: barrier {10 * PHASE_S:g} s, pipelined {8 * PHASE_S:g} s")
    print(f"wall(agent calls, barriers) = {barrier:.1f} s, wall(workflow, pipelined) = {pipelined:.1f} s")
    print(f"wall(workflow) / wall(agent calls) = {pipelined / barrier:.3f}  (goal <= 0.8)")


if __name__ == "__main__":
    main()
