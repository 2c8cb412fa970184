import pytest

from mcp_server.config import ConfigError, load_settings


def test_defaults_route_models_per_tool(tmp_path):
    settings = load_settings(tmp_path, environ={})
    assert settings.models.write_tests == "glm-4.7"
    assert settings.models.implement == "glm-4.7"
    assert settings.models.write_docs == "glm-4.5-air"
    assert settings.models.refactor == "glm-4.5-air"
    assert settings.glm.base_url == "https://api.z.ai/api/paas/v4"
    assert settings.api_key is None
    assert settings.project_root == tmp_path.resolve()


def test_project_file_then_environment_override(tmp_path):
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "hybrid.yaml").write_text(
        "glm:\n  base_url: http://localhost:8000/v1\n  thinking: true\nmodels:\n  implement: glm-5\n"
    )
    settings = load_settings(tmp_path, environ={"HYBRID_GLM_BASE_URL": "http://other/v1"})
    assert settings.glm.base_url == "http://other/v1"  # environment wins
    assert settings.glm.thinking is True  # project file kept
    assert settings.models.implement == "glm-5"
    assert settings.models.write_docs == "glm-4.5-air"  # defaults fill the rest


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({"ZAI_API_KEY": "a", "GLM_API_KEY": "b", "HYBRID_GLM_API_KEY": "c"}, "a"),
        ({"ZAI_API_KEY": "", "GLM_API_KEY": "b", "HYBRID_GLM_API_KEY": "c"}, "b"),
        # An unset plugin option arrives as "", and must never hide the user's export.
        ({"ZAI_API_KEY": "a", "HYBRID_GLM_API_KEY": ""}, "a"),
        ({"HYBRID_GLM_API_KEY": "c"}, "c"),
        ({"ZAI_API_KEY": "  ", "HYBRID_GLM_API_KEY": ""}, None),
    ],
)
def test_key_order_first_non_empty_wins(tmp_path, environ, expected):
    key = load_settings(tmp_path, environ=environ).api_key
    assert (key.get_secret_value() if key else None) == expected


def test_key_never_in_repr_or_dump(tmp_path):
    settings = load_settings(tmp_path, environ={"ZAI_API_KEY": "sekrit-value"})
    assert "sekrit-value" not in repr(settings)
    assert "sekrit-value" not in settings.model_dump_json()


def test_bad_values_are_reported_by_name(tmp_path):
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "hybrid.yaml").write_text("glm:\n  max_retries: -1\nbudget:\n  per_story_usd: lots\n")
    with pytest.raises(ConfigError) as error:
        load_settings(tmp_path, environ={})
    assert "glm.max_retries" in str(error.value) and "budget.per_story_usd" in str(error.value)


def test_unknown_keys_and_broken_yaml_are_refused(tmp_path):
    (tmp_path / ".claude").mkdir()
    config = tmp_path / ".claude" / "hybrid.yaml"
    config.write_text("glm:\n  base_ulr: typo\n")
    with pytest.raises(ConfigError, match="glm.base_ulr"):
        load_settings(tmp_path, environ={})
    config.write_text("glm: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(tmp_path, environ={})
