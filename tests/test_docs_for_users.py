"""The docs a new user acts on: what their project needs, `hybrid` on PATH, a worked example per
other endpoint that loads as written, every flag and setting documented, agents told apart."""

from __future__ import annotations

import argparse
import re

import pytest
import yaml

from mcp_server import cli as hybrid_cli
from mcp_server.config import load_data_yaml, load_settings
from mcp_server.monitor import cli as monitor_cli
from mcp_server.pricing import PriceTable
from tests.support import REPO

README = (REPO / "README.md").read_text()
CONFIGURATION = (REPO / "docs" / "configuration.md").read_text()
ALL_DOCS = README + "".join(path.read_text() for path in (REPO / "docs").glob("*.md"))


def test_readme_says_what_a_project_needs_and_how_to_check_it():
    section = README.split("## Your own project")[1].split("\n## What it is")[0]
    assert "Acceptance Criteria" in section and "`hybrid stories`" in section and "stories.glob" in section


def test_readme_says_how_to_get_hybrid_on_path_after_a_marketplace_install():
    section = README.split("**`hybrid` on your PATH.**")[1].split("\n## ")[0]
    assert "~/.claude/plugins/cache/hybrid-orchestrator/hybrid/" in section and "bin/hybrid" in section


@pytest.mark.parametrize("endpoint", ["OpenRouter", "vLLM", "Ollama"])
def test_each_endpoint_example_loads_and_prices_every_model_it_routes(tmp_path, endpoint):
    section = CONFIGURATION.split(f"**{endpoint}**")[1]
    text = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "hybrid.yaml").write_text(text)
    settings = load_settings(tmp_path, environ={"GLM_API_KEY": "placeholder"})
    assert settings.glm.thinking is None and settings.api_key is not None
    prices = PriceTable.load(settings.prices)
    for model in settings.models.model_dump().values():
        assert prices.lookup(model) is not None, model
    intro = section.split("```")[0]
    assert "GLM_API_KEY" in intro


def test_the_endpoint_section_answers_key_placeholder_and_network_hosts():
    section = CONFIGURATION.split("## Other endpoints")[1]
    for needed in ("placeholder", "`network.hosts`", "thinking: null", "price row"):
        assert needed in section, needed


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _flags(sub)
        found |= {flag for flag in action.option_strings if flag.startswith("--") and flag != "--help"}
    return found


def test_every_flag_is_documented():
    flags = _flags(hybrid_cli.build_parser()) | _flags(monitor_cli.build_parser())
    missing = sorted(flag for flag in flags if f"`{flag}" not in ALL_DOCS and f"{flag} " not in ALL_DOCS)
    assert not missing, missing


def _leaves(tree: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        keys += _leaves(value, dotted + ".") if isinstance(value, dict) and value else [dotted]
    return keys


def test_every_setting_is_documented():
    defaults = load_data_yaml("defaults.yaml")
    def documented(key: str) -> bool:
        ancestors = [key.rsplit(".", depth)[0] for depth in range(1, key.count(".") + 1)]
        return (f"`{key}`" in CONFIGURATION or f"`{ancestors[0]}." in CONFIGURATION  # `models.write_tests / implement`
                or any(f"`{ancestor}.<" in CONFIGURATION for ancestor in ancestors))  # `telemetry.baselines.<name>`
    missing = [key for key in _leaves(defaults) if not documented(key)]
    assert not missing, missing
    assert "`glm.connect_timeout_s`" in CONFIGURATION
    assert "`hybrid usage`" in README and "hybrid usage" in (REPO / "docs" / "cli.md").read_text()


def test_backend_and_frontend_dev_are_told_apart():
    descriptions = {}
    for name in ("backend-dev", "frontend-dev"):
        front = (REPO / "agents" / f"{name}.md").read_text().split("---")[1]
        descriptions[name] = yaml.safe_load(front)["description"]
    assert "frontend=" in descriptions["backend-dev"] and "frontend=" in descriptions["frontend-dev"]
    assert "server-side" in descriptions["backend-dev"] and "user-interface" in descriptions["frontend-dev"]


def test_every_agent_and_command_front_matter_is_yaml():
    # "description: P2 with engine=claude: ..." is no YAML mapping: a strict reader fails on it,
    # and an agent's description is what the orchestrator reads to choose it.
    for path in sorted([*(REPO / "agents").glob("*.md"), *(REPO / "commands").glob("*.md")]):
        front = yaml.safe_load(path.read_text().split("---")[1])
        assert isinstance(front, dict) and isinstance(front.get("description"), str), path
