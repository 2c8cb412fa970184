"""The report as JSON (``--json``): the totals, per story / phase / model / run, quality, time,
the checks, the warnings and the settings used; money as dollars to the micro-dollar."""

from __future__ import annotations

import json
from typing import Any

from mcp_server.monitor.money import rounded, usd
from mcp_server.monitor.report import Report


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def heading(report: Report) -> dict[str, Any]:
    """What every JSON form of the report starts with: the note, when, where, which stories."""
    return {"note": report.note, "generated_at": report.generated_at, "project": report.project,
            "stories": report.stories, "since": report.since, "until": report.until}


def to_json(report: Report) -> dict[str, Any]:
    names = report.baseline_names  # every cost's "baselines", by name; "claude_only_usd" is the primary's
    return {
        **heading(report),
        "verdict": report.verdict,
        "verdict_line": report.verdict_line,
        "checks": [{"name": c.name, "outcome": c.outcome, "text": c.text, "fix": c.fix} for c in report.checks],
        "primary_baseline": report.primary_baseline,  # the verdict's savings are taken against it
        "baselines": report.baselines,  # name -> phase -> Claude model, the primary first
        "totals": report.total.as_dict(names),
        "orchestration": report.orchestration.as_dict(names),
        "unattributed": report.unattributed,
        "quality": report.quality,
        "time": report.time,
        "per_story": [
            {
                "story": row.story,
                "title": row.title,
                "cost": row.money.as_dict(names),
                "ac": None if row.ac is None else {
                    "passed": row.ac.passed, "failed": row.ac.failed, "judged": row.ac.total,
                    "unjudged": row.ac.unjudged, "pct": rounded(row.ac.pct), "failed_ids": list(row.ac.failed_ids),
                },
                "coverage": None if row.coverage is None else {
                    "percent": rounded(row.coverage.percent), "source": row.coverage.source,
                    "read_as": row.coverage.how, "recorded": row.coverage.recorded,
                },
                "quality": row.quality,
                "review_rounds": row.review_rounds,
                "seconds": _seconds(row.seconds),
                "phase_seconds": {k: _seconds(v) for k, v in row.phase_seconds.items()},
                "next": row.next_action,
                "problem": row.problem,
            }
            for row in report.story_rows
        ],
        "per_phase": [
            {
                "phase": row.phase,
                "cost": row.money.as_dict(names),
                "baseline_model": row.baseline_model,  # the primary baseline's
                "baseline_models": {
                    name: models.get(row.phase) or models["other"] for name, models in report.baselines.items()
                } if row.baseline_model else None,
                "seconds_total": _seconds(row.total_seconds),
                "seconds_mean": _seconds(row.mean_seconds),
                "stories_timed": len(row.seconds),
            }
            for row in report.phase_rows
        ],
        "per_model": [
            {
                "provider": row.provider,
                "model": row.model,
                "cost": row.money.as_dict(names),
                "calls_above_first_tier": row.tier_calls,
                "price_source": row.source,
                "price_date": row.date,
            }
            for row in report.model_rows
        ],
        "runs": [
            {
                "run": run.index + 1,
                "start": run.start,
                "end": run.end,
                "stories": len(run.stories),
                "cost": run.money.as_dict(names),
                "cost_per_story_usd": usd(run.cost_per_story),
            }
            for run in report.runs
        ],
        "warnings": report.warnings,
        "totals_are_lower_bounds": report.lower_bound,  # usage missing from the transcripts (see the warnings)
        "footnote": report.footnote,
        "settings": {**report.thresholds, "primary_baseline": report.primary_baseline, "baselines": report.baselines},
    }


def report_json(report: Report) -> str:
    """The text ``--json`` writes."""
    return json.dumps(to_json(report), indent=2, ensure_ascii=False) + "\n"
