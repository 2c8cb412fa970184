"""The verdict: one check per threshold (AC pass rate, coverage, quality, savings) and per gap
in the data, the verdict they add up to, and the footnote that states how the baseline was
priced. The thresholds are settings (``monitor`` in thresholds.yaml and .claude/hybrid.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from mcp_server.config import MonitorSettings
from mcp_server.monitor.inputs import MonitorInput
from mcp_server.monitor.money import GLM, Money, Tally, money_text
from mcp_server.monitor.rows import PhaseRow, StoryRow
from mcp_server.monitor.wording import listed, pct_text, stories

APPROVED, NEEDS_ATTENTION, REJECTED = "APPROVED", "NEEDS_ATTENTION", "REJECTED"
VERDICT_LINES = {
    APPROVED: "✅ VERDICT: APPROVED - Continue hybrid approach",
    NEEDS_ATTENTION: "⚠️ VERDICT: NEEDS_ATTENTION - Check the reasons before continuing",
    REJECTED: "❌ VERDICT: REJECTED - Do not continue the hybrid approach as run (a hard gate failed)",
}


@dataclass(frozen=True)
class Check:
    name: str  # ac_pass_rate | coverage | quality | savings | data
    outcome: str  # pass | fail | reject | missing
    text: str
    fix: str | None = None  # a failed or missed check: the setting (or step) that would change it, one line


RESUME = "/hybrid:resume <story>"
# What would change each failed or missed check (the savings check words its own: see _savings_fix).
FIXES = {
    ("ac_pass_rate", "reject"): f"fix the failed ACs and run QA again ({RESUME}); a stronger GLM model: `profile: quality`; the gate: `monitor.reject_below.ac_pass_rate`",
    ("ac_pass_rate", "fail"): f"fix the failed ACs and run QA again ({RESUME}); a stronger GLM model: `profile: quality`; the bar: `monitor.thresholds.ac_pass_rate`",
    ("ac_pass_rate", "missing"): f"run QA (P6) for those stories: {RESUME}",
    ("coverage", "reject"): f"more tests in those stories ({RESUME}), or `profile: quality` for the test writer; the gate: `monitor.reject_below.coverage`",
    ("coverage", "fail"): f"more tests in those stories ({RESUME}), or `profile: quality` for the test writer; the bar: `monitor.thresholds.coverage`",
    ("coverage", "missing"): "record those stories' coverage (P6 names the report in the checkpoint's `coverage.source`)",
    ("quality", "reject"): "`profile: quality` for a stronger GLM model; the gate: `monitor.reject_below.quality`",
    ("quality", "fail"): "`profile: quality` for a stronger GLM model; the bar: `monitor.thresholds.quality`",
    ("quality", "missing"): f"run the review (P5) for those stories: {RESUME}",
    ("savings", "missing"): "price every model: `prices:` in .claude/hybrid.yaml, or --prices FILE",
}


def _with_fix(check: Check) -> Check:
    if check.outcome == "pass" or check.fix is not None:
        return check
    return Check(check.name, check.outcome, check.text, FIXES.get((check.name, check.outcome)))


def _savings_fix(profile: str | None, others: Sequence[tuple[str, float | None]]) -> str:
    """Savings under the bar: a cheaper profile, or the baseline that matches how the team would work."""
    if profile != "economy":
        cheaper = "a cheaper profile, `profile: economy` (every model under Claude Haiku 5.5's price per token)"
    else:
        cheaper = "cheaper models for the tools under `models:` (economy is already the cheapest profile)"
    shown = ", ".join(f"{name}: {pct_text(pct)}" for name, pct in others)
    return (f"{cheaper}, or `monitor.primary_baseline` set to the baseline that matches how your team would "
            f"otherwise work" + (f" ({shown})" if shown else ""))


def _per_story_check(
    name: str, label: str, rows: Sequence[StoryRow], value_of, minimum: float, hard: float | None, shown
) -> list[Check]:
    present = [(row.story, value_of(row)) for row in rows if value_of(row) is not None]
    missing = [row.story for row in rows if value_of(row) is None]
    checks = []
    if present:
        rejected = [f"{s} ({shown(v)})" for s, v in present if hard is not None and v < hard]
        below = [f"{s} ({shown(v)})" for s, v in present if v < minimum]
        low = min(v for _, v in present)
        if rejected:
            checks.append(Check(name, "reject", f"{label} below the hard gate {shown(hard)} in {stories(len(rejected))}: {listed(rejected)}"))
        elif below:
            checks.append(Check(name, "fail", f"{label} below {shown(minimum)} in {len(below)} of {stories(len(present))}: {listed(below)}"))
        else:
            checks.append(Check(name, "pass", f"{label} ≥ {shown(minimum)} in every story with data (lowest {shown(low)})"))
    if missing:
        checks.append(Check(name, "missing", f"{label}: no data for {stories(len(missing))}: {listed(missing)}"))
    return checks


def verdict_checks(
    rows: Sequence[StoryRow], total: Money, monitor: MonitorSettings, extra: Iterable[Check] = (), *, profile: str | None = None
) -> list[Check]:
    """Every check, each failed or missed one with the setting that would change it. The savings
    are taken against the primary baseline (``total.baseline``)."""
    thresholds, hard = monitor.thresholds, monitor.reject_below
    checks: list[Check] = []
    # AC pass rate, over every AC of the stories with QA results
    results = [row.ac for row in rows if row.ac is not None]
    missing_qa = [row.story for row in rows if row.ac is None]
    if results:
        passed, acs = sum(r.passed for r in results), sum(r.total for r in results)
        rate = 100.0 * passed / acs if acs else 0.0
        failed = [f"{row.story} {', '.join(row.ac.failed_ids)}" for row in rows if row.ac and row.ac.failed_ids]
        detail = f"{pct_text(rate)} ({passed}/{acs} ACs)"
        if failed:
            detail += f"; failed: {listed(failed)}"
        if hard.ac_pass_rate is not None and rate < hard.ac_pass_rate:
            checks.append(Check("ac_pass_rate", "reject", f"AC pass rate {detail} is below the hard gate {pct_text(hard.ac_pass_rate)}"))
        elif rate < thresholds.ac_pass_rate:
            checks.append(Check("ac_pass_rate", "fail", f"AC pass rate {detail} is below {pct_text(thresholds.ac_pass_rate)}"))
        else:
            checks.append(Check("ac_pass_rate", "pass", f"AC pass rate {detail} ≥ {pct_text(thresholds.ac_pass_rate)}"))
    if missing_qa:
        checks.append(Check("ac_pass_rate", "missing", f"AC pass rate: no QA results for {stories(len(missing_qa))}: {listed(missing_qa)}"))
    unjudged = [f"{row.story} ({row.ac.unjudged})" for row in rows if row.ac and row.ac.unjudged]
    if unjudged:
        checks.append(Check("ac_pass_rate", "missing", f"AC pass rate: ACs without a QA result in {stories(len(unjudged))}: {listed(unjudged)}"))
    checks += _per_story_check(
        "coverage", "test coverage", rows, lambda r: r.coverage.percent if r.coverage else None,
        thresholds.coverage, hard.coverage, pct_text,
    )
    checks += _per_story_check(
        "quality", "code quality", rows, lambda r: r.quality, thresholds.quality, hard.quality,
        lambda v: f"{v:g}/10",
    )
    # savings, over the selected stories and the orchestration in scope, against the primary
    pct = total.savings_pct
    names = monitor.baseline_names
    if pct is None:
        checks.append(Check("savings", "missing", "savings: no priced usage to compare"))
    else:
        detail = (f"savings {pct_text(pct)} ({money_text(total.savings)} of {money_text(total.baseline)} Claude-only "
                  f"with {names[0]}, the primary baseline)")
        fix = _savings_fix(profile, [(name, total.savings_pct_at(i)) for i, name in enumerate(names) if i])
        if hard.savings is not None and pct < hard.savings:
            why = "the hybrid cost more than Claude-only" if pct < 0 else "below the hard gate"
            checks.append(Check("savings", "reject", f"{detail} is below {pct_text(hard.savings)}: {why}", fix))
        elif pct < thresholds.savings:
            checks.append(Check("savings", "fail", f"{detail} is below {pct_text(thresholds.savings)}", fix))
        else:
            checks.append(Check("savings", "pass", f"{detail} ≥ {pct_text(thresholds.savings)}"))
    checks += list(extra)
    return [_with_fix(check) for check in checks]


def decide(checks: Sequence[Check]) -> str:
    outcomes = {check.outcome for check in checks}
    if "reject" in outcomes:
        return REJECTED
    if outcomes & {"fail", "missing"}:
        return NEEDS_ATTENTION
    return APPROVED

def data_checks(inp: MonitorInput, rows: Sequence[StoryRow], total: Money, warnings: list[str]) -> list[Check]:
    checks = []
    problems = [row for row in rows if row.problem]
    for row in problems:
        warnings.append(f"{row.story}: {row.problem}")
    if problems:
        checks.append(Check("data", "missing", f"no readable checkpoint for {stories(len(problems))}: {listed([r.story for r in problems])}",
                            "repair those checkpoints (the warnings name the problem), or leave the stories out with --stories"))
    silent = [row.story for row in rows if not row.money.has_data]
    if silent:
        warnings.append(f"no usage in the ledger for {listed(silent)}: shown as 'no data', not $0")
        checks.append(Check("data", "missing", f"no usage data for {stories(len(silent))}: {listed(silent)}",
                            "run those stories through /hybrid:pilot, or leave them out with --stories"))
    if total.unpriced:
        for model in sorted(total.unpriced):
            tally = Tally()
            for group in inp.groups:
                if group.model == model:
                    tally.add(group)
            warnings.append(
                f"unpriced model {model} ({tally.calls} calls; {tally.prompt:,} tokens in, {tally.completion:,} out): "
                "left out of every cost, never counted as $0; add its price under `prices:` in .claude/hybrid.yaml or with --prices"
            )
        checks.append(Check("data", "missing", f"costs are incomplete: unpriced {', '.join(sorted(total.unpriced))}",
                            "add the price under `prices:` in .claude/hybrid.yaml, or pass --prices FILE"))
    unfinished = [f"{row.story} (next: {row.next_action})" for row in rows if row.next_action and not row.done]
    if unfinished:
        warnings.append(f"{stories(len(unfinished))} not finished: {listed(unfinished)}")
        checks.append(Check("data", "missing", f"{stories(len(unfinished))} not finished", f"finish them: {RESUME}"))
    if any("unreadable" in (row.coverage.note or "") for row in rows if row.coverage):
        checks.append(Check("data", "missing", "a coverage report is unreadable (see the warnings)",
                            "write that coverage report again (run the story's tests with coverage)"))
    if inp.other_groups:
        by_story: dict[str, int] = {}
        for group in inp.other_groups:
            by_story[group.story] = by_story.get(group.story, 0) + group.calls
        names = sorted(by_story)
        what = "outside the selection" if inp.explicit else "without a checkpoint"
        warnings.append(f"the ledger also has usage of {stories(len(names))} {what}, not in this report: {listed(names)}")
    return checks

def footnote(
    total: Money,
    orchestration: Money,
    phase_rows: Sequence[PhaseRow],
    unattributed: Mapping[str, Any],
    *,
    baseline_is_default: bool,
    price_dates: tuple[str, str] | None,
    baselines: Mapping[str, Mapping[str, str]],
) -> str:
    """The note under the report: what the Claude-only figures are, and which orchestration is in them."""
    glm = total.tokens[GLM]
    phases = [row.phase for row in phase_rows if row.baseline_model and row.money.tokens[GLM].calls]
    whose = "as shipped" if baseline_is_default else "as monitor.baselines sets them"
    text = (
        "¹ Claude-only is what the same work would have cost with Claude alone. It counts every Claude token "
        f"measured ({money_text(total.claude, 4)}, orchestration included). It adds GLM's measured tokens "
        f"({glm.prompt:,} in, {glm.cached:,} of them cached, {glm.completion:,} out), priced as if a Claude model "
        f"had written them: the model each baseline ({whose}) gives the phase. "
    )
    for index, (name, models) in enumerate(baselines.items()):
        mapping = ", ".join(f"{phase} {models.get(phase) or models['other']}" for phase in phases) or "no GLM phases"
        role = ", the primary baseline the verdict is taken against," if index == 0 else ""
        text += f"In {name}{role} that is {mapping}. "
    text += "Each request keeps its own price tier, and a GLM cache hit counts as a Claude cache read. "
    orchestration = money_text(orchestration.total, 4)
    if unattributed["rule"] == "all":
        text += f"The orchestration no story claimed ({orchestration}) is in every total, in full."
    elif unattributed["sessions"] or unattributed["window"]:
        parts = []
        if unattributed["sessions"]:
            count, others = unattributed["sessions"], unattributed["other_stories_in_sessions"]
            parts.append(
                f"the {count} Claude Code session{'s' if count != 1 else ''} that ran these stories"
                + (f" (which also ran {others} other {'story' if others == 1 else 'stories'})" if others else "")
            )
        if unattributed["window"]:
            low, high = unattributed["window"]
            others = unattributed["other_stories_in_window"]
            parts.append(
                f"activity outside a session between their first and last step ({low[:16]} to {high[:16]} UTC"
                + (f", when {others} other {'story was' if others == 1 else 'stories were'} active" if others else "")
                + ")"
            )
        text += (
            f"The orchestration no story claimed ({orchestration}) comes from {' and '.join(parts)}. It is in both "
            "totals in full, so it changes the savings in percent but not in dollars."
        )
    else:
        text += "The selected stories have no recorded activity, so no unclaimed orchestration is included."
    if total.unpriced:
        text += (f" Unpriced models ({', '.join(sorted(total.unpriced))}) are in the token counts above "
                 "but left out of both sides' dollars.")
    if price_dates:
        text += f" Prices come from mcp_server/data/prices.yaml (rows dated up to {price_dates[-1]}) and any overrides."
    return text + " The method is in docs/cost-method.md."
