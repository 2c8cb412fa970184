"""hybrid-monitor's settings: the verdict's thresholds and the Claude-only baselines
(data/thresholds.yaml, under `monitor:` in .claude/hybrid.yaml)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from mcp_server.settings_base import BASELINE_NAME, Strict, deep_merge, load_data_yaml, model_id_problem


class MonitorThresholds(Strict):
    ac_pass_rate: float = Field(ge=0, le=100)
    coverage: float = Field(ge=0, le=100)
    quality: float = Field(ge=0, le=10)
    savings: float = Field(le=100)


class MonitorRejectBelow(Strict):
    ac_pass_rate: float | None = Field(ge=0, le=100)
    coverage: float | None = Field(ge=0, le=100)
    quality: float | None = Field(ge=0, le=10)
    savings: float | None = Field(le=100)


BaselineKey = Literal["P1", "P2", "P3", "P4", "P5", "P6", "P7", "other"]
# `monitor.baseline` (one phase -> model map, over the roles' models) was replaced by the named
# `monitor.baselines`. A project that still sets it keeps its comparison: it is read as a baseline
# of this name, over the shipped one that equals the old default, and made the primary.
OLDBASELINE_NAME = "configured"
_OLD_BASELINE_DEFAULT = "haiku-writes"  # the roles' models (agents/*.md), the old `baseline` default


class MonitorSettings(Strict):
    """hybrid-monitor: verdict thresholds and the Claude-only baselines (data/thresholds.yaml)."""

    thresholds: MonitorThresholds
    reject_below: MonitorRejectBelow
    baselines: dict[str, dict[BaselineKey, str]]  # name -> phase -> the Claude model that would have done it
    primary_baseline: str  # the baseline the verdict is taken against
    run_gap_hours: float = Field(gt=0)

    @model_validator(mode="before")
    @classmethod
    def _over_shipped(cls, value: Any) -> Any:
        """What the project sets, over the shipped data/thresholds.yaml, key by key."""
        if value is None:
            value = {}
        if not isinstance(value, dict):
            return value  # pydantic reports the wrong type by name
        shipped = load_data_yaml("thresholds.yaml")
        if "baseline" in value:
            value = dict(value)
            old = value.pop("baseline")
            if not isinstance(old, dict):
                raise ValueError("baseline is now monitor.baselines.<name> (phase -> model) with "
                                 "monitor.primary_baseline: <name> (docs/monitor.md#baselines)")
            value["baselines"] = {**(value.get("baselines") or {}),
                                  OLDBASELINE_NAME: {**shipped["baselines"][_OLD_BASELINE_DEFAULT], **old}}
            value.setdefault("primary_baseline", OLDBASELINE_NAME)
        return deep_merge(shipped, value)

    @model_validator(mode="after")
    def _baseline_models(self) -> "MonitorSettings":
        for name, mapping in self.baselines.items():
            if not BASELINE_NAME.match(name):
                raise ValueError(f"baselines: name {name[:40]!r} must be lower-case letters, digits, '-', '_' or '.'")
            for key, model in mapping.items():
                if model_id_problem(model):
                    raise ValueError(f"baselines.{name}.{key} must be one model id, e.g. claude-sonnet-5-5")
            if "other" not in mapping:
                raise ValueError(f"baselines.{name} needs `other`: the model for the phases it does not name")
        if self.primary_baseline not in self.baselines:
            raise ValueError(f"primary_baseline {self.primary_baseline[:40]!r} is not one of monitor.baselines: "
                             f"{', '.join(sorted(self.baselines))}")
        return self

    @property
    def baseline(self) -> dict[str, str]:
        """The primary baseline's phase -> model map: what the single `monitor.baseline` was, for
        readers written before named baselines (read only: set monitor.baselines instead)."""
        return dict(self.baselines[self.primary_baseline])

    @property
    def baseline_names(self) -> list[str]:
        """Every baseline's name, the primary first (the order the reports show them in)."""
        return [self.primary_baseline, *(name for name in self.baselines if name != self.primary_baseline)]

    def baseline_model(self, phase: str | None, baseline: str | None = None) -> str:
        """The Claude model that would have done ``phase``'s work in ``baseline`` (default: the
        primary). THE place to ask "which Claude model would the team use for P3": the report,
        telemetry and a Claude-only pilot take it from here. A phase the baseline does not name
        (or None) takes its ``other``."""
        models = self.baselines[baseline or self.primary_baseline]
        return models.get(phase) or models["other"]  # type: ignore[call-overload]
