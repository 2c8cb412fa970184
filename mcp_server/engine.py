"""The pilot's engines and what each code-writing phase runs on.

- ``hybrid`` (the default): P2, P3, P4 and P7 agents brief GLM through the glm tools.
- ``claude``: the same workflow and review loop, but P2, P3, P4 and P7 are ``claude-*`` agents
  that write the files with Claude Code's own tools and run the tests themselves: a measured
  Claude-only run of the same stories. Their model per phase is ``engine.claude_models``, else
  the primary baseline's model for the phase (what the estimate prices GLM's tokens at).
"""

from __future__ import annotations

import re

from mcp_server.config import Settings
from mcp_server.ledger_runs import ENGINES  # noqa: F401 (re-exported: the one list of engines)

CLAUDE_PHASES = ("P2", "P3", "P4", "P7")
# The Agent tool and a workflow's agent() take a model family, not an id.
FAMILIES = ("haiku", "sonnet", "opus")


def claude_models(settings: Settings) -> dict[str, str]:
    """engine=claude: the model of each code-writing phase, as configured, else the primary
    baseline's (``monitor.primary_baseline``), so the measured run is the one the estimate prices."""
    return {phase: settings.engine.claude_models.get(phase) or settings.monitor.baseline_model(phase)
            for phase in CLAUDE_PHASES}


def family(model: str) -> str:
    """``claude-sonnet-5-5`` -> ``sonnet``: what an Agent call's ``model`` accepts."""
    found = re.search(r"\b(" + "|".join(FAMILIES) + r")\b", model.replace("-", " "))
    if not found:
        raise ValueError(f"{model!r} is not a Claude model: haiku, sonnet, opus or an id such as claude-sonnet-5-5")
    return found.group(1)


def agent_models(settings: Settings) -> dict[str, str]:
    """engine=claude: phase -> the model family its agent runs on."""
    return {phase: family(model) for phase, model in claude_models(settings).items()}
