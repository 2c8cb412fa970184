"""Settings in three layers: shipped defaults <- .claude/hybrid.yaml <- environment.

Every value is validated by pydantic; a bad value is reported by its dotted name
and the file it came from. The API key is kept apart as a SecretStr so that no
repr, log line or error message can print it.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator

from mcp_server.errors import HybridError
from mcp_server.keys import API_KEY_VARIABLES, api_key_from, received  # noqa: F401 (API_KEY_VARIABLES re-exported)
from mcp_server.profiles import default_profile, profiles, routing
from mcp_server.settings_base import Strict, deep_merge, http_only, load_data_yaml  # noqa: F401 (load_data_yaml re-exported)
from mcp_server.settings_monitor import BaselineKey, MonitorSettings  # noqa: F401 (re-exported)
from mcp_server.settings_telemetry import TelemetrySettings, key_value_list  # noqa: F401 (re-exported)


class ConfigError(HybridError):
    """A configuration value is missing or wrong; the message names it."""

    exit_code = 2  # a bad setting, like a bad flag (docs/cli.md)


class GlmSettings(Strict):
    base_url: str  # a str, not HttpUrl: that would add a trailing slash to ".../v4"
    request_timeout_s: float = Field(gt=0)
    connect_timeout_s: float = Field(gt=0)
    deadline_s: float = Field(gt=0)
    max_retries: int = Field(ge=0, le=20)
    backoff_base_s: float = Field(ge=0)
    backoff_max_s: float = Field(ge=0)
    max_concurrency_per_model: int = Field(ge=1, le=64)
    max_output_tokens: int = Field(ge=1)
    thinking: bool | None  # None: send no `thinking` field (for endpoints that do not know it)
    temperature: float = Field(ge=0, le=1)  # Z.ai accepts [0, 1]

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, value: str) -> str:
        return http_only(value, "https://api.z.ai/api/paas/v4")


class ModelRouting(Strict):
    write_tests: str = Field(min_length=1)
    implement: str = Field(min_length=1)
    write_docs: str = Field(min_length=1)
    refactor: str = Field(min_length=1)


ClaudePhase = Literal["P2", "P3", "P4", "P7"]  # the phases GLM does in engine=hybrid


class EngineSettings(Strict):
    """engine=claude: the Claude model of each code-writing phase; a phase left out takes the
    primary baseline's model for it (mcp_server/engine.py)."""

    claude_models: dict[ClaudePhase, str] = Field(default_factory=dict)

    @field_validator("claude_models")
    @classmethod
    def _claude_families(cls, value: dict[str, str]) -> dict[str, str]:
        for phase, model in value.items():
            if not isinstance(model, str) or not re.search(r"\b(haiku|sonnet|opus)\b", model.replace("-", " ")):
                raise ValueError(f"{phase}: {str(model)[:40]!r} is not a Claude model: haiku, sonnet, opus or an id "
                                 "such as claude-sonnet-5-5")
        return value


class StorySettings(Strict):
    glob: str = Field(min_length=1)

    @field_validator("glob")
    @classmethod
    def _one_story_field(cls, value: str) -> str:
        # {story} is the only field, once: any other brace would break the search for a story file.
        if value.count("{story}") != 1 or "{" in value.replace("{story}", "") or "}" in value.replace("{story}", ""):
            raise ValueError("must contain {story} exactly once and no other braces, such as docs/**/{story}*.md")
        return value


class ContextSettings(Strict):
    max_tokens: int = Field(ge=500)
    chars_per_token: int = Field(ge=1, le=16)
    # Names (globs, matched without case against every folder and file name of a path) that are
    # never sent to GLM as context files, and project-relative globs that are sent anyway.
    refuse: list[str]
    allow: list[str] = Field(default_factory=list)


class LimitSettings(Strict):
    """The size of each GLM tool argument, checked before anything is read or sent."""

    instructions_chars: int = Field(ge=100, le=2_000_000)
    test_command_chars: int = Field(ge=10, le=100_000)
    context_files: int = Field(ge=1, le=1000)
    path_chars: int = Field(ge=10, le=4096)


class TestSettings(Strict):
    __test__ = False  # a data class, not a pytest test

    timeout_s: float = Field(gt=0)
    failure_tail_chars: int = Field(ge=200)
    # Test commands the GLM tools may run, beside the Claude Code permission rules: the syntax of
    # a Bash(...) rule's inside (exact, `prefix:*`, or `*` wildcards).
    commands: list[str] = Field(default_factory=list)

    @field_validator("commands")
    @classmethod
    def _commands_are_commands(cls, value: list[str]) -> list[str]:
        if any(not command.strip() for command in value):
            raise ValueError("every entry must be a command, such as `python -m pytest -q` or `npm test *`")
        return [command.strip() for command in value]


class BudgetSettings(Strict):
    per_story_usd: float | None = Field(default=None, ge=0)
    per_run_usd: float | None = Field(default=None, ge=0)


class Settings(Strict):
    glm: GlmSettings
    profile: str = Field(default_factory=default_profile)  # data/profiles.yaml: the tools' models
    models: ModelRouting  # the profile's models, with the project's `models:` winning tool by tool
    stories: StorySettings
    context: ContextSettings
    tests: TestSettings
    budget: BudgetSettings
    limits: LimitSettings
    engine: EngineSettings = Field(default_factory=EngineSettings)
    # Optional price overrides, same shape as data/prices.yaml's `models`.
    prices: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # hybrid-monitor's thresholds and baseline; shipped in data/thresholds.yaml.
    monitor: MonitorSettings = Field(default_factory=lambda: MonitorSettings.model_validate({}))
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    # Filled from the environment only, never from a file.
    api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)
    project_root: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _profile_routes_the_tools(cls, value: Any) -> Any:
        """``models`` = the profile's routing, each tool the project names under ``models:`` kept."""
        if not isinstance(value, dict):
            return value
        profile = value.get("profile") or default_profile()
        models = value.get("models") or {}
        if not isinstance(models, dict):
            return value  # pydantic names the wrong type
        # an unknown profile: the field validator names it; route by the default meanwhile, so
        # that it is the only problem reported
        known = profile if isinstance(profile, str) and profile in profiles() else default_profile()
        return {**value, "profile": profile, "models": routing(known, models)}

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        routing(value)  # raises ValueError naming the known profiles
        return value


# Environment variable -> dotted setting. The key variables are handled apart.
ENV_SETTINGS = {
    "HYBRID_GLM_BASE_URL": "glm.base_url",
    "HYBRID_GLM_THINKING": "glm.thinking",
    "HYBRID_GLM_DEADLINE_S": "glm.deadline_s",
    "HYBRID_GLM_REQUEST_TIMEOUT_S": "glm.request_timeout_s",
    "HYBRID_GLM_MAX_RETRIES": "glm.max_retries",
    "HYBRID_GLM_BACKOFF_BASE_S": "glm.backoff_base_s",
    "HYBRID_GLM_MAX_CONCURRENCY": "glm.max_concurrency_per_model",
    "HYBRID_BUDGET_PER_STORY_USD": "budget.per_story_usd",
    "HYBRID_BUDGET_PER_RUN_USD": "budget.per_run_usd",
    "HYBRID_TELEMETRY_ENDPOINT": "telemetry.endpoint",
    "HYBRID_TELEMETRY_HEADERS": "telemetry.headers",
    "HYBRID_TELEMETRY_RESOURCE_ATTRIBUTES": "telemetry.resource_attributes",
}
# Plugin options (userConfig, passed by .mcp.json) sit between the shipped defaults and the
# project file: an option always arrives, filled with its default, so it must not override
# what a project's .claude/hybrid.yaml says.
PLUGIN_OPTION_SETTINGS = {
    "HYBRID_OPTION_GLM_BASE_URL": "glm.base_url",
    "HYBRID_OPTION_TELEMETRY_ENDPOINT": "telemetry.endpoint",
    "HYBRID_OPTION_TELEMETRY_HEADERS": "telemetry.headers",
    "HYBRID_OPTION_TELEMETRY_RESOURCE_ATTRIBUTES": "telemetry.resource_attributes",
}
# Settings given as ``k=v,k=v`` in one variable: read as mappings, so that they merge key by key.
KEY_VALUE_SETTINGS = {"telemetry.headers", "telemetry.resource_attributes"}

PROJECT_CONFIG = Path(".claude") / "hybrid.yaml"


def project_root(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    root = env.get("CLAUDE_PROJECT_DIR") or os.getcwd()
    return Path(root).resolve()


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value


def _get_dotted(tree: dict[str, Any], dotted: str) -> dict[str, Any]:
    for part in dotted.split("."):
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree if isinstance(tree, dict) else {}


def _read_project_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise ConfigError(f"{path} is not valid YAML{where}: {problem}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a mapping at the top level")
    return loaded


def _apply_environment(tree: dict[str, Any], env: dict[str, str], mapping: dict[str, str]) -> None:
    for variable, dotted in mapping.items():
        value = env.get(variable, "").strip()
        if not value:  # an unset plugin option arrives as "": it means "not set"
            continue
        if dotted in KEY_VALUE_SETTINGS:
            try:
                pairs = key_value_list(value, variable)
            except ValueError as error:
                raise ConfigError(str(error)) from None
            _set_dotted(tree, dotted, deep_merge(_get_dotted(tree, dotted), pairs))
            continue
        # YAML scalars so that "true", "3" and "null" mean what they say.
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        _set_dotted(tree, dotted, parsed)


def _setting_problem(error: Any) -> str:
    """`glm.base_ur is not a setting; did you mean glm.base_url?`: the dotted key, one clause."""
    location = [str(part) for part in error["loc"]]
    dotted = ".".join(location)
    if error["type"] != "extra_forbidden":
        return f"{dotted}: {error['msg'].removeprefix('Value error, ')}"
    model: Any = Settings
    for part in location[:-1]:
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        model = field.annotation if field is not None else None
    known = list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []
    close = difflib.get_close_matches(location[-1], known, n=1)
    prefix = ".".join(location[:-1] + close[:1])
    hint = f" (did you mean {prefix}?)" if close else (f" (known: {', '.join(known)})" if known else "")
    return f"{dotted} is not a setting{hint}"


def load_settings(root: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    root = (root or project_root(env)).resolve()
    tree = load_data_yaml("defaults.yaml")
    _apply_environment(tree, env, PLUGIN_OPTION_SETTINGS)
    project_file = root / PROJECT_CONFIG
    tree = deep_merge(tree, _read_project_yaml(project_file))
    _apply_environment(tree, env, ENV_SETTINGS)
    try:
        settings = Settings.model_validate(tree)
    except ValidationError as exc:
        problems = "; ".join(_setting_problem(err) for err in exc.errors())
        raise ConfigError(f"{project_file.relative_to(root) if project_file.is_relative_to(root) else project_file}"
                          f" (or the environment): {problems}") from None
    key = api_key_from(env) or received()  # received: handed over on a pipe (mcp_server/keys.py)
    return settings.model_copy(
        update={"api_key": SecretStr(key) if key else None, "project_root": root}
    )
