"""What every settings section shares: strict models, URL and model-id checks, the shipped data
files and how a project's values go over them (mcp_server/config.py assembles the sections)."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

BASELINE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


@lru_cache(maxsize=1)
def _http_url() -> TypeAdapter[Any]:
    from pydantic import HttpUrl  # loaded on first use: the server's and the hooks' start-up stay quick

    return TypeAdapter(HttpUrl)


def http_only(value: str, example: str) -> str:
    try:
        _http_url().validate_python(value)
    except ValidationError:
        raise ValueError(f"must be an http(s) URL, such as {example}") from None
    return value


def load_data_yaml(name: str) -> dict[str, Any]:
    text = resources.files("mcp_server.data").joinpath(name).read_text(encoding="utf-8")
    return yaml.safe_load(text) or {}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged




def model_id_problem(model: Any) -> bool:
    return not isinstance(model, str) or not model.strip() or any(c.isspace() for c in model)
