"""The telemetry settings: the ledger as OpenTelemetry metrics (docs/telemetry.md)."""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import unquote

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from mcp_server.settings_base import BASELINE_NAME, Strict, http_only, model_id_problem
from mcp_server.settings_monitor import BaselineKey


_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110)
_PAIR_NAMES = {
    "headers": (_HEADER_NAME, "is not a valid HTTP header name"),
    "resource_attributes": (_LABEL_NAME, "must be letters, digits, '_' and '.'"),
}


def key_value_list(value: Any, what: str) -> Any:
    """``k1=v1,k2=v2`` (the OTEL_EXPORTER_OTLP_HEADERS format; values may be %-encoded) as a
    dict; anything else is returned as it is. Errors name the key, never the value."""
    if not isinstance(value, str):
        return value
    pairs = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what} must be key=value pairs separated by commas")
        pairs[key.strip()] = unquote(raw.strip())
    return pairs


class TelemetrySettings(Strict):
    """The ledger as OpenTelemetry metrics (docs/telemetry.md). Off while ``endpoint`` is unset."""

    endpoint: str | None = None
    protocol: Literal["otlp-http", "prometheus-remote-write"] = "otlp-http"
    headers: dict[str, SecretStr] = Field(default_factory=dict)  # may hold a token: never printed
    resource_attributes: dict[str, str] = Field(default_factory=dict)
    interval_s: float = Field(default=60, ge=1)
    timeout_s: float = Field(default=5, gt=0, le=60)
    settle_s: float = Field(default=120, ge=0)
    # extra baselines sent (name -> phase -> Claude model), over the primary of monitor.baselines;
    # every baseline of monitor.baselines is sent as well
    baselines: dict[str, dict[BaselineKey, str]] = Field(default_factory=dict)

    @field_validator("endpoint", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_http(cls, value: str | None) -> str | None:
        return None if value is None else http_only(value, "http://collector:4318")

    @field_validator("headers", "resource_attributes", mode="before")
    @classmethod
    def _named_pairs(cls, value: Any, info: ValidationInfo) -> Any:
        value = key_value_list(value, info.field_name)
        pattern, problem = _PAIR_NAMES[info.field_name]
        if isinstance(value, dict):
            for name in value:
                if not isinstance(name, str) or not pattern.match(name):
                    raise ValueError(f"{info.field_name}: name {str(name)[:40]!r} {problem}")
        return value

    @field_validator("baselines")
    @classmethod
    def _baseline_names(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for name, mapping in value.items():
            if not BASELINE_NAME.match(name):
                raise ValueError(f"baseline name {name[:40]!r} must be lower-case letters, digits, '-', '_' or '.'")
            for key, model in mapping.items():
                if model_id_problem(model):
                    raise ValueError(f"{name}.{key} must be one model id, e.g. claude-sonnet-5-5")
        return value

    @property
    def enabled(self) -> bool:
        return self.endpoint is not None
