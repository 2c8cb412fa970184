"""Profiles: named routings of the four GLM tools to models (data/profiles.yaml).

``profile: economy | balanced | quality`` in .claude/hybrid.yaml picks one; a tool named under
``models:`` keeps its own model. The rule the shipped profiles keep, and what each trades, is in
docs/cost-method.md ("Profiles"); tests/test_profiles.py checks the rule against prices.yaml.
Ground layer: reads its YAML itself, so config.py can use it without a cycle.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

import yaml

TOOLS = ("write_tests", "implement", "refactor", "write_docs")


@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    text = resources.files("mcp_server.data").joinpath("profiles.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text) or {}


def profiles() -> dict[str, dict[str, str]]:
    """Profile name -> tool -> model, as shipped."""
    return {name: dict(tools) for name, tools in (_data().get("profiles") or {}).items()}


def default_profile() -> str:
    return str(_data()["default"])


def tool_phase(tool: str) -> str:
    """The pipeline phase a tool works in (write_tests -> P2, ...)."""
    return str(_data()["tool_phases"][tool])


def routing(profile: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The tools' models under ``profile``, with ``overrides`` (the project's ``models:``) winning.

    An unknown profile raises ValueError naming the known ones (config.py words it as a setting)."""
    known = profiles()
    if profile not in known:
        raise ValueError(f"{str(profile)[:40]!r} is not a profile; known: {', '.join(sorted(known))}")
    return {**known[profile], **dict(overrides or {})}
