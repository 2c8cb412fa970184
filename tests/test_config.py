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


def _project_yaml(tmp_path, text):
    (tmp_path / ".claude").mkdir(exist_ok=True)
    (tmp_path / ".claude" / "hybrid.yaml").write_text(text)


@pytest.mark.parametrize(
    "glob",
    ["docs/**/*.md", "docs/{story}/{story}.md", "docs/{id}/{story}.md", "docs/{story}{.md", "docs/}{story}.md", "docs/{{story}}.md"],
)
def test_story_glob_needs_story_once_and_no_other_braces(tmp_path, glob):
    _project_yaml(tmp_path, f"stories:\n  glob: '{glob}'\n")
    with pytest.raises(ConfigError, match=r"stories\.glob: .*\{story\} exactly once"):
        load_settings(tmp_path, environ={})


def test_a_good_story_glob_loads(tmp_path):
    _project_yaml(tmp_path, "stories:\n  glob: 'stories/{story}-*.md'\n")
    assert load_settings(tmp_path, environ={}).stories.glob == "stories/{story}-*.md"


def test_a_glob_with_stray_braces_never_raises_key_error(tmp_path):
    from mcp_server.stories import find_story_file

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "01.2-x.md").write_text("# 01.2\n")
    # Only {story} is filled in; any other brace is a literal character of the glob, never a KeyError.
    assert find_story_file(tmp_path, "01.2", "docs/{id}/{story}*.md") is None
    assert find_story_file(tmp_path, "01.2", "docs/{story}*.md{") is None
    assert find_story_file(tmp_path, "01.2", "docs/{story}*.md").name == "01.2-x.md"


@pytest.mark.parametrize("url", ["api.z.ai/api/paas/v4", "ftp://example.com/v1", "http://", "not a url", "file:///etc/passwd"])
def test_base_url_must_be_http(tmp_path, url):
    with pytest.raises(ConfigError, match=r"glm\.base_url: .*http\(s\) URL"):
        load_settings(tmp_path, environ={"HYBRID_GLM_BASE_URL": url})


def test_base_url_is_kept_as_written(tmp_path):
    # pydantic's HttpUrl would add a slash to a bare host; the endpoint path is appended to this string.
    for url in ("http://localhost:8000/v1", "https://api.z.ai/api/paas/v4", "http://127.0.0.1:11434"):
        assert load_settings(tmp_path, environ={"HYBRID_GLM_BASE_URL": url}).glm.base_url == url


def test_hybrid_usage_with_a_bad_price_override_prints_one_line(tmp_path, capsys):
    from mcp_server.cli import main
    from mcp_server.ledger import Ledger, UsageRow, ledger_path

    ledger = Ledger(ledger_path(tmp_path))
    ledger.record(UsageRow("glm", "glm-4.7", story="01.2", prompt_tokens=10))
    ledger.close()
    _project_yaml(tmp_path, "prices:\n  glm-4.7:\n    input: cheap\n    output: 1\n")
    assert main(["usage", "--project", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "glm-4.7" in err and "Traceback" not in err
