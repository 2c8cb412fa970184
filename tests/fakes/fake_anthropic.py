"""The scripted fake Anthropic endpoint for the end-to-end tests.

The SSE server and the scripted model are the ones `hybrid demo` ships
(mcp_server/demo/anthropic_sim.py and script.py); the tests add what they check against:
every answer the fake served, with the usage it reported and whom it answered.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from mcp_server.demo.anthropic_sim import AnthropicSim, Served, Turn
from mcp_server.demo.script import Review, Scenario, brain_for, label

__all__ = ["AnthropicSim", "Review", "Scenario", "Served", "Turn", "brain_for", "fake_claude", "reported_usage"]


def fake_claude(scenario: Scenario) -> AnthropicSim:
    return AnthropicSim(brain_for(scenario), label)


@dataclass(frozen=True)
class Reported:
    """What the fake reported for one answer, in the ledger's token convention."""

    label: str
    model: str
    prompt_tokens: int  # input + cache reads + cache writes
    cached_tokens: int
    completion_tokens: int


def reported_usage(sim: AnthropicSim) -> dict[str, Reported]:
    """message id -> what was reported; every id is unique by construction."""
    ids = Counter(served.message_id for served in sim.served)
    assert max(ids.values(), default=1) == 1
    return {
        s.message_id: Reported(
            s.label, s.model,
            s.input_tokens + s.cache_read_input_tokens + s.cache_creation_input_tokens,
            s.cache_read_input_tokens, s.output_tokens,
        )
        for s in sim.served
    }
