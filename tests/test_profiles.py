"""Profiles (data/profiles.yaml): the rule every shipped profile keeps, checked against
data/prices.yaml, so that a price change that breaks it fails here; and how a project picks one."""

from __future__ import annotations

import pytest

from mcp_server.config import ConfigError, MonitorSettings, load_settings
from mcp_server.pricing import PriceTable
from mcp_server.profiles import TOOLS, default_profile, profiles, routing, tool_phase
from tests.support import REPO

HAIKU = "claude-haiku-5-5"


@pytest.fixture(scope="module")
def shipped_prices() -> PriceTable:
    return PriceTable.load()  # the shipped table only: no project overrides


def test_every_glm_phase_costs_less_per_token_than_the_primary_baselines_model(shipped_prices):
    monitor = MonitorSettings.model_validate({})
    for profile, tools in profiles().items():
        assert set(tools) == set(TOOLS), profile
        for tool, model in tools.items():
            price = shipped_prices.lookup(model)
            assert price is not None, f"{profile}.{tool}: {model} is unpriced"
            claude = shipped_prices.lookup(monitor.baseline_model(tool_phase(tool)))
            # the Claude model's cheapest tier: the strictest comparison
            assert price.input < claude.input and price.output < claude.output, (profile, tool, model)


def test_economy_also_costs_less_per_token_than_claude_haiku(shipped_prices):
    haiku = shipped_prices.lookup(HAIKU).base  # prompts up to 100,000 tokens: Haiku's cheaper rates
    for tool, model in profiles()["economy"].items():
        price = shipped_prices.lookup(model)
        assert price.input < haiku.input and price.output < haiku.output, (tool, model)


def test_the_readme_states_each_profiles_models_at_todays_prices(shipped_prices):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for model in sorted({model for tools in profiles().values() for model in tools.values()}):
        price = shipped_prices.lookup(model)
        stated = "free" if price.input == price.output == 0 else f"${price.input:.2f} / ${price.output:.2f}"
        assert f"`{model}` {stated}" in readme, f"README: `{model}` {stated}"
    assert f"**Why `{default_profile()}` is the default.**" in readme


def test_a_project_picks_a_profile_and_models_still_win(tmp_path):
    def settings(text: str):
        (tmp_path / ".claude").mkdir(exist_ok=True)
        (tmp_path / ".claude" / "hybrid.yaml").write_text(text)
        return load_settings(tmp_path, environ={})

    assert settings("").profile == default_profile() == "balanced"
    assert settings("").models.model_dump() == profiles()["balanced"]
    economy = settings("profile: economy\n")
    assert economy.models.model_dump() == routing("economy") and economy.models.implement == "glm-4.7-flashx"
    mixed = settings("profile: economy\nmodels: {implement: glm-4.7}\n")
    assert mixed.models.implement == "glm-4.7" and mixed.models.write_tests == "glm-4.7-flashx"
    assert settings("models: {write_docs: glm-4.5-flash}\n").models.write_docs == "glm-4.5-flash"
    with pytest.raises(ConfigError) as caught:
        settings("profile: cheap\n")
    assert str(caught.value) == (".claude/hybrid.yaml (or the environment): profile: 'cheap' is not a profile; "
                                 "known: balanced, economy, quality")


def test_the_primary_baselines_model_for_a_phase_is_asked_in_one_place(tmp_path):
    monitor = MonitorSettings.model_validate({})
    assert monitor.primary_baseline == "sonnet-writes" and monitor.baseline_names == ["sonnet-writes", "haiku-writes"]
    assert [monitor.baseline_model(phase) for phase in ("P1", "P2", "P3", "P4", "P7")] == ["claude-sonnet-5-5"] * 5
    assert monitor.baseline_model("P3", "haiku-writes") == HAIKU and monitor.baseline_model(None, "haiku-writes") == HAIKU
    assert monitor.baseline == monitor.baselines["sonnet-writes"]  # the primary's map, for older readers
    switched = MonitorSettings.model_validate({"primary_baseline": "haiku-writes"})
    assert switched.baseline_model("P3") == HAIKU and switched.baseline_names == ["haiku-writes", "sonnet-writes"]
