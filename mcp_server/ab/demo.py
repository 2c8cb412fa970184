"""`hybrid demo --ab`: the demo's stories run by both engines against the simulators, at once, then
compared. Each engine gets its own copy of the example, its own Claude Code home and its own pair
of simulators (the scripted Anthropic model and the GLM simulator), so the GLM simulator of the
Claude-only run counts the GLM requests that run made: none, when the engine switch holds.
Everything printed says that the models were simulated.
"""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mcp_server.ab.cli import write_comparison
from mcp_server.ab.sessions import ENGINES, Outcome, run_sessions
from mcp_server.config import load_settings
from mcp_server.demo.anthropic_sim import AnthropicSim
from mcp_server.demo.chat_sim import ChatSim
from mcp_server.demo.glm_replies import CannedGlm
from mcp_server.demo.run import SIMULATED, STORIES, DemoError, demo_scenario, find_claude, prepare_project, replies_dir, session_environment
from mcp_server.demo.script import brain_for, label
from mcp_server.pricing import PriceTable


@dataclass
class DemoRun:
    """Both engines' projects, how their sessions ended, and each engine's simulators (what they
    served and were asked: the end-to-end test checks the ledgers against them)."""

    base: Path
    projects: dict[str, Path]
    outcomes: dict[str, Outcome]
    models: dict[str, AnthropicSim]
    glms: dict[str, ChatSim]

    @property
    def glm_requests(self) -> dict[str, int]:
        return {engine: len(sim.requests) for engine, sim in self.glms.items()}


def run_both(base: Path, claude: str, say: Callable[[str], None] = print) -> DemoRun:
    """The example copied once per engine, and both pilots run at once against their own
    simulators (stopped when this returns)."""
    for engine in ENGINES:
        if (base / engine).exists():  # before anything is copied
            raise DemoError(f"{base / engine} already exists; pass another --dir")
    projects = {engine: prepare_project(base / engine) for engine in ENGINES}
    with ExitStack() as stack:
        homes = {engine: Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"hybrid-demo-{engine}-home-"))) for engine in ENGINES}
        models = {engine: stack.enter_context(AnthropicSim(brain_for(demo_scenario()), label)) for engine in ENGINES}
        glms = {engine: stack.enter_context(ChatSim(CannedGlm(replies_dir()))) for engine in ENGINES}
        outcomes = run_sessions(
            claude, projects, STORIES, parallel=True, log_dir=base, say=say,
            env_for=lambda engine: session_environment(homes[engine], models[engine].base_url, glms[engine].base_url),
        )
    return DemoRun(base, projects, outcomes, models, glms)


def main(directory: str | None = None, say: Callable[[str], None] = print, claude: str | None = None) -> int:
    base = Path(directory).resolve() if directory else Path(tempfile.mkdtemp(prefix="hybrid-demo-ab-"))
    for engine in ENGINES:
        if (base / engine).exists():  # before anything is installed or copied
            raise DemoError(f"{base / engine} already exists; pass another --dir")
    claude = claude or find_claude(say)
    say(f"hybrid demo --ab {SIMULATED}")
    say(f"the same stories ({', '.join(STORIES)}) run by each engine at once: engine=claude in {base / 'claude'}, "
        f"engine=hybrid in {base / 'hybrid'}")
    run = run_both(base, claude, say)
    glm_requests = run.glm_requests
    say(f"GLM simulator requests: engine=claude {glm_requests['claude']}, engine=hybrid {glm_requests['hybrid']}")
    if glm_requests["claude"]:
        say("the Claude-only run called GLM: its figures are not a Claude-only measurement")
    say("")
    settings = load_settings(run.projects["hybrid"])
    code = write_comparison(base, run.projects["claude"], run.projects["hybrid"], PriceTable.load(settings.prices), settings,
                            list(STORIES), f"hybrid demo --ab {SIMULATED}", as_json=False)
    say(f"both projects, their ledgers and the comparison (compare.md, compare.json) stay in {base}")
    failed = [engine for engine, outcome in run.outcomes.items() if not outcome.ok]
    return 1 if failed or code or glm_requests["claude"] else 0
