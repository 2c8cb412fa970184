"""A ``Comparison`` as Markdown (tables a reader can scan: the total, the estimate against the
measurement, then each story) and as JSON (every figure, dollars to the micro-dollar)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from mcp_server.compare.figures import METRICS, Block, Comparison, EstimateRow, Number, Row
from mcp_server.compare.sides import Side
from mcp_server.monitor import money_text, usd

NO_DATA = "no data"


def _engine(side: Side) -> str:
    calls = side.glm_requests
    said = f"{calls:,} GLM request{'s' if calls != 1 else ''}" if calls else "no GLM request"
    recorded = f"engine={side.recorded_engine}, " if side.recorded_engine else ""
    return f"{'hybrid' if side.engine == 'hybrid' else 'Claude only'} ({recorded}{said})"


def _value(unit: str, value: Number, *, signed: bool = False) -> str:
    if value is None:
        return NO_DATA
    sign = "+" if signed and value > 0 else ""
    if unit == "usd":
        return ("+" if signed and value > 0 else "") + money_text(Decimal(value), 4)
    if unit in ("tokens", "count"):
        return f"{sign}{int(value):,}"
    if unit == "seconds":
        return f"{sign}{float(value):,.0f} s"
    if unit == "percent":
        return f"{sign}{float(value):.1f}" + (" pp" if signed else "%")
    return f"{sign}{float(value):g}"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"×{value:.2f}"


def _table(block: Block, a_head: str, b_head: str) -> list[str]:
    lines = [f"| | {a_head} | {b_head} | B − A | B ÷ A |", "| --- | ---: | ---: | ---: | ---: |"]
    for row in block.rows:
        unit = row.metric.unit
        lines.append(f"| {row.metric.label.strip() if not row.metric.label.startswith(' ') else '↳ ' + row.metric.label.strip()} "
                     f"| {_value(unit, row.a)} | {_value(unit, row.b)} | {_value(unit, row.diff, signed=True)} | {_ratio(row.ratio)} |")
    return lines


def _estimate_lines(comparison: Comparison) -> list[str]:
    if comparison.hybrid_side is None:
        return [f"Not shown: {comparison.estimate_missing}."]
    hybrid = comparison.hybrid_side
    measured = "B" if hybrid == "A" else "A"
    lines = [
        f"What the monitor estimates Claude alone would have cost for side {hybrid}'s run (its GLM tokens priced at the "
        f"baseline's Claude models), next to what side {measured}'s Claude-only run measured. The estimate is off by "
        "(estimate − measured) ÷ measured.",
        "",
        f"| story | baseline | estimated ({hybrid}) | measured ({measured}) | estimate − measured | off by |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in comparison.estimates:
        off_pct = "–" if row.off_pct is None else f"{row.off_pct:+.1f}%"
        lines.append(
            f"| {row.story or '**total**'} | {row.baseline}{'' if row.complete else ' (+ unpriced)'} | {money_text(row.estimated, 4)} "
            f"| {money_text(row.measured, 4)} | {_value('usd', row.off, signed=True)} | {off_pct} |"
        )
    return lines


def render_markdown(comparison: Comparison) -> str:
    a, b = comparison.a, comparison.b
    lines = ["# Hybrid compare: measured against measured", ""]
    if comparison.note:
        lines += [f"_{comparison.note}_", ""]
    lines += [
        f"- **A**: {a.spec.label}: {_engine(a)}",
        f"- **B**: {b.spec.label}: {_engine(b)}",
        f"- stories compared: {', '.join(comparison.stories)}",
    ]
    for name, stories in comparison.only_in.items():
        if stories:
            lines.append(f"- only in {name}, left out: {', '.join(stories)}")
    for side in (a, b):
        if side.engine_warning:
            lines.append(f"- {side.spec.name}: {side.engine_warning}")
        for warning in side.report.warnings:
            lines.append(f"- {side.spec.name}: {warning}")
        if side.report.lower_bound:
            lines.append(f"- {side.spec.name}: some Claude usage never got its final count, so its totals are lower bounds")
    lines += ["", "## Total", "", "Every story compared and the orchestrator's own turns; wall time from the first phase start "
              "to the last phase finish.", ""]
    lines += _table(comparison.total, "A", "B")
    lines += ["", "## The estimate against the measurement", ""]
    lines += _estimate_lines(comparison)
    lines += ["", "## Per story", ""]
    for block in comparison.per_story:
        lines += [f"### {block.story}" + (f" {block.title}" if block.title else ""), ""]
        lines += _table(block, "A", "B")
        lines.append("")
    lines.append("B − A and B ÷ A: side B against side A. Method: docs/cost-method.md, "
                 "\"Measured against measured\".")
    return "\n".join(lines) + "\n"


# --- JSON ------------------------------------------------------------------------------------------


def _json_number(unit: str, value: Number) -> Any:
    if value is None:
        return None
    if unit == "usd":
        return usd(Decimal(value))
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float):
        return round(value, 4)
    return value


def _json_row(row: Row) -> dict[str, Any]:
    unit = row.metric.unit
    ratio = row.ratio
    return {"unit": unit, "a": _json_number(unit, row.a), "b": _json_number(unit, row.b),
            "diff": _json_number(unit, row.diff), "ratio": None if ratio is None else round(ratio, 4)}


def _json_block(block: Block) -> dict[str, Any]:
    return {row.metric.key: _json_row(row) for row in block.rows}


def _json_estimate(row: EstimateRow) -> dict[str, Any]:
    return {"story": row.story, "baseline": row.baseline, "estimated_usd": usd(row.estimated),
            "measured_usd": usd(row.measured), "off_usd": usd(row.off),
            "off_pct": None if row.off_pct is None else round(row.off_pct, 2), "complete": row.complete}


def _json_side(side: Side) -> dict[str, Any]:
    return {"path": str(side.spec.path), "run": side.spec.run, "glm_requests": side.glm_requests,
            "engine": side.engine, "engine_recorded": side.recorded_engine, "engine_warning": side.engine_warning,
            "lower_bound": side.report.lower_bound,
            "warnings": list(side.report.warnings),
            "baselines": {estimate.name: estimate.baseline for estimate in side.estimates}}


def report_json(comparison: Comparison) -> str:
    data = {
        "note": comparison.note,
        "sides": {"A": _json_side(comparison.a), "B": _json_side(comparison.b)},
        "stories": comparison.stories,
        "only_in": comparison.only_in,
        "metrics": [{"key": m.key, "label": m.label.strip(), "unit": m.unit} for m in METRICS],
        "total": _json_block(comparison.total),
        "per_story": [{"story": block.story, "title": block.title, **_json_block(block)} for block in comparison.per_story],
        "estimate": {
            "hybrid_side": comparison.hybrid_side,
            "missing": comparison.estimate_missing,
            "rows": [_json_estimate(row) for row in comparison.estimates],
        },
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
