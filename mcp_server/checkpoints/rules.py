"""The phase rules, pure: a write's transition (send-back, new iterations, refusals that name the
rule), and what comes next for a story. Plain values in and out, no disk."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

from mcp_server.checkpoints.model import (
    DEFAULT_AGENTS,
    NEW_ITERATION,
    OPTIONAL_PHASE,
    ORDER_RULE,
    PHASES,
    SKIPPABLE_WITH_REASON,
    SKIPPED,
    STATUS_MARKS,
    Checkpoint,
    HistoryEntry,
    TransitionError,
    Update,
    WriteOutcome,
    utc_stamp,
)
from mcp_server.checkpoints.validation import check_update
from mcp_server.coverage import detect_format


def apply_update(
    checkpoint: Checkpoint,
    update: Update,
    now: datetime,
    tokens: Mapping[str, dict[str, dict[str, int]]] | None = None,
    run: str | None = None,
) -> WriteOutcome:
    """The checkpoint after ``update``, or TransitionError naming the rule it breaks. ``run``: the
    pilot run the write is part of, carried on the history lines it adds."""
    check_update(update)
    data = copy.deepcopy(checkpoint.data)
    added: list[HistoryEntry] = []
    phase = data["phases"][update.phase]
    agent = update.agent or phase["agent"] or DEFAULT_AGENTS[update.phase]
    if _starts_new_iteration(data, update):
        if update.status == "skipped":
            raise TransitionError(f"{update.phase} is {phase['status']}: a new iteration must run, not be skipped")
        _open_new_iteration(data, update.phase)
        added.append(history_entry(update.phase, NEW_ITERATION, agent, now, run))
    _check_target(data, update)
    previous = phase["status"]
    _merge(phase, update, agent)
    _set_status(phase, update.status, utc_stamp(now))
    _attach_results(data, update, utc_stamp(now))
    if update.status in STATUS_MARKS and update.status != previous:
        added.append(history_entry(update.phase, STATUS_MARKS[update.status], agent, now, run))
    if _skips_refactor(data, update):
        refactor = data["phases"][OPTIONAL_PHASE]
        refactor.update(status="skipped", agent=_agent(data, OPTIONAL_PHASE), summary="review clean",
                        finished_at=utc_stamp(now))
        added.append(history_entry(OPTIONAL_PHASE, SKIPPED, refactor["agent"], now, run))
    for name, counts in (tokens or {}).items():
        data["phases"][name]["tokens"] = copy.deepcopy(counts)
    data["revision"] += 1
    data["updated_at"] = utc_stamp(now)
    return WriteOutcome(dataclasses.replace(checkpoint, data=data, history=[*checkpoint.history, *added]), added)


def _skips_refactor(data: Mapping[str, Any], update: Update) -> bool:
    """P4 refactors what an approving review still listed; after a clean review nobody runs it,
    so the review's write records it as skipped, and the story shows no pending phase when done."""
    review = data["review"]
    return (update.phase == "P5" and update.status == "done" and data["phases"][OPTIONAL_PHASE]["status"] == "pending"
            and review is not None and review["verdict"] == "APPROVED" and not review["issues"])


def history_entry(phase: str, mark: str, agent: str, now: datetime, run: str | None = None) -> HistoryEntry:
    return HistoryEntry(phase, mark, agent, now.astimezone().strftime("%H:%M"), run)


def _starts_new_iteration(data: dict[str, Any], update: Update) -> bool:
    """Whether this write begins a new round of the phase; refuses a silent re-run of a done phase."""
    name, status = update.phase, data["phases"][update.phase]["status"]
    if status == "done" and update.status == "failed" and not update.new_iteration and _gives_up(data, name):
        return False
    if status == "done":
        if update.new_iteration or _sent_back_to(data, name):
            return True
        raise TransitionError(
            f"{name} is already done (iteration {data['phases'][name]['iteration']}); "
            "to run it again pass new_iteration=True"
        )
    if update.new_iteration and status != "failed":
        raise TransitionError(f"new_iteration=True re-runs a done or failed phase; {name} is {status}")
    return update.new_iteration


@dataclass(frozen=True)
class SendBack:
    """The story goes back to implementation: QA failed an AC, or the review asked for changes."""

    by: str  # "qa" or "review"
    reason: str

    @property
    def phases(self) -> tuple[str, ...]:
        """The phases that may start their next round without new_iteration=True: P3, always.
        Changes a review asked for are made in P3 and reviewed again; P4 is for an approved story."""
        return ("P3",)


def send_back(data: Mapping[str, Any]) -> SendBack | None:
    failed = _failed_acs(data)
    if data["phases"]["P6"]["status"] == "done" and failed:
        return SendBack("qa", f"QA failed {', '.join(failed)}")
    review = data["review"]
    if data["phases"]["P5"]["status"] == "done" and review and review["verdict"] == "REQUEST_CHANGES":
        return SendBack("review", "the review requested changes")
    return None


def _gives_up(data: Mapping[str, Any], name: str) -> bool:
    """A done P5 that asked for changes, or a done P6 that failed an AC, may be marked failed:
    the story stops there (the orchestrator's review or QA rounds are used up)."""
    returned = send_back(data)
    return returned is not None and name == {"review": "P5", "qa": "P6"}[returned.by]


def _sent_back_to(data: dict[str, Any], name: str) -> bool:
    returned = send_back(data)
    return returned is not None and name in returned.phases


def _failed_acs(data: Mapping[str, Any]) -> list[str]:
    qa = data["qa"] or {"results": []}
    return [result["ac"] for result in qa["results"] if result["result"] == "fail"]


def _open_new_iteration(data: dict[str, Any], name: str) -> None:
    """Start round n+1 of ``name``; every later phase that had started is reopened for the new round.

    P4 is the exception in one direction: it may follow the review it addresses, so a new P4
    round leaves P5 as it is and reopens only P6 and P7.
    """
    _reopen(data, name, force=True)
    later = PHASES[PHASES.index(name) + 1:]
    for other in later:
        if name == OPTIONAL_PHASE and other == "P5":
            continue
        _reopen(data, other)


def _reopen(data: dict[str, Any], name: str, force: bool = False) -> None:
    phase = data["phases"][name]
    if phase["status"] == "pending" and not force:
        return
    if phase["status"] != "skipped" or force:  # a skipped phase never ran: its round count stays
        phase["iteration"] += 1
    if phase["started_at"] and phase["finished_at"]:  # keep the round's time for the phase's total
        took = datetime.fromisoformat(phase["finished_at"]) - datetime.fromisoformat(phase["started_at"])
        seconds = max(0, int(took.total_seconds()))
        if seconds or "earlier_seconds" in phase:
            phase["earlier_seconds"] = phase.get("earlier_seconds", 0) + seconds
    phase.update(status="pending", started_at=None, finished_at=None, summary=None)
    if name == "P5" and data["review"] is not None:
        data["reviews"].append(data["review"])
        data["review"] = None
    if name == "P6":
        data["qa"] = None


def _check_target(data: dict[str, Any], update: Update) -> None:
    refuse = _refusal(data, update)
    if refuse is not None:
        raise TransitionError(f"{update.phase} {update.status} refused: {refuse}")


def _refusal(data: dict[str, Any], update: Update) -> str | None:
    if update.qa is not None:
        problem = _qa_id_problem(data, update.qa)
        if problem:
            return problem
    if update.status == "skipped":
        problem = _skip_problem(update)
        if problem:
            return problem
    problem = prerequisite_problem(data, update.phase)
    if problem:
        return problem
    if update.status == "done" and update.phase == "P5" and update.review is None and data["review"] is None:
        return "P5 done needs a review with a verdict (APPROVED or REQUEST_CHANGES) and a score 0-10"
    if update.status == "done" and update.phase == "P6":
        missing = [ac for ac in _ac_ids(data) if ac not in _qa_by_ac(data, update.qa)]
        if missing:
            return f"P6 done needs a QA result (pass or fail, with evidence) for every AC; missing: {', '.join(missing)}"
    return None


def _skip_problem(update: Update) -> str | None:
    if update.phase == OPTIONAL_PHASE:
        return None
    if update.phase in SKIPPABLE_WITH_REASON:
        return None if (update.summary or "").strip() else f"skipping {update.phase} needs a summary that says why"
    return f"{update.phase} cannot be skipped; only P4, and P1, P2 or P7 with a reason in summary, can"


def prerequisite_problem(data: Mapping[str, Any], name: str) -> str | None:
    """Why ``name`` cannot start or finish yet, or None. The rules are the table in docs/checkpoints.md."""
    phases = data["phases"]
    for earlier in PHASES[: PHASES.index(name)]:
        status = phases[earlier]["status"]
        if earlier == OPTIONAL_PHASE:
            if status in ("running", "failed"):
                return f"P4 is {status}; it must finish or be skipped before {name}"
        elif status not in ("done", "skipped"):
            either = " or skipped" if earlier in SKIPPABLE_WITH_REASON else ""
            return f"{earlier} is {status}; it must be done{either} before {name} ({ORDER_RULE})"
    if name in ("P6", "P7"):
        problem = _review_problem(data)
        if problem:
            return problem
    if name == "P7" and _failed_acs(data):
        return f"QA failed {', '.join(_failed_acs(data))}; the story goes back to P3 before P7"
    return None


def _review_problem(data: Mapping[str, Any]) -> str | None:
    review = data["review"]
    if review is None:
        return "P5 has no review"
    if review["verdict"] == "APPROVED":
        return None
    return "the P5 review requested changes: run P3 again (a new iteration) and have it re-reviewed"


def _ac_ids(data: Mapping[str, Any]) -> list[str]:
    return [ac["id"] for ac in data["acceptance_criteria"]]


def _qa_id_problem(data: Mapping[str, Any], results: Sequence[Mapping[str, Any]]) -> str | None:
    known, seen = _ac_ids(data), set()
    for result in results:
        if result["ac"] not in known:
            return f"qa names {result['ac']}, which the story does not have (its ACs: {', '.join(known) or 'none'})"
        if result["ac"] in seen:
            return f"qa gives {result['ac']} twice"
        seen.add(result["ac"])
    return None


def _qa_by_ac(data: Mapping[str, Any], results: Sequence[Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    merged = {result["ac"]: dict(result) for result in (data["qa"] or {"results": []})["results"]}
    merged.update({result["ac"]: dict(result) for result in results or []})
    return merged


def _merge(phase: dict[str, Any], update: Update, agent: str) -> None:
    phase["agent"] = agent
    if update.model is not None:
        phase["model"] = update.model
    if update.summary is not None:
        phase["summary"] = update.summary
    for artifact in update.artifacts or []:
        if artifact not in phase["artifacts"]:
            phase["artifacts"].append(artifact)


def _set_status(phase: dict[str, Any], status: str, stamp: str) -> None:
    previous = phase["status"]
    if status == "running":
        if previous != "running":
            phase["started_at"], phase["finished_at"] = stamp, None
    else:
        if previous != "running" and status != "skipped":
            phase["started_at"] = stamp  # done or failed without a reported start: it took no time we saw
        phase["finished_at"] = stamp
    phase["status"] = status


def _attach_results(data: dict[str, Any], update: Update, stamp: str) -> None:
    if update.review is not None:
        issues = [{"severity": i["severity"], "file": i.get("file"), "line": i.get("line"), "text": i["text"]}
                  for i in update.review.get("issues") or []]
        data["review"] = {
            "verdict": update.review["verdict"],
            "score": update.review["score"],
            "issues": issues,
            "iteration": data["phases"]["P5"]["iteration"],
            "at": stamp,
        }
    if update.qa is not None:
        merged = _qa_by_ac(data, update.qa)
        order = _ac_ids(data)
        results = [merged[ac] for ac in order if ac in merged]
        data["qa"] = {"results": results, "iteration": data["phases"]["P6"]["iteration"], "at": stamp}
    if update.coverage is not None:
        source = update.coverage["source"]
        kind = update.coverage.get("format") or detect_format(Path(source), b"")
        data["coverage"] = {"percent": update.coverage["percent"], "source": source, **({"format": kind} if kind else {}), "at": stamp}


# --- Reading the state --------------------------------------------------------------------------


@dataclass(frozen=True)
class NextStep:
    """What comes next for a story: the phase to run (a running one runs again, after a crash)
    in which iteration, or none when the story is done or blocked; ``text`` says it in words."""

    text: str
    phase: str | None = None
    iteration: int = 1


def next_step(checkpoint: Checkpoint) -> NextStep:
    data, phases = checkpoint.data, checkpoint.phases
    for name in PHASES:
        if phases[name]["status"] == "failed":
            return NextStep(f"blocked: {name} failed")
    for name in PHASES:
        if phases[name]["status"] == "running":
            return NextStep(f"running: {_who(data, name)}", name, phases[name]["iteration"])
    returned = send_back(data)
    if returned is not None:
        iteration = phases["P3"]["iteration"] + 1
        return NextStep(f"P3 {_agent(data, 'P3')} (iteration {iteration}): {returned.reason}", "P3", iteration)
    review = data["review"]
    if phases["P5"]["status"] == "done" and phases[OPTIONAL_PHASE]["status"] == "pending" and review and review["issues"]:
        # approved, but the review listed issues: refactor them
        return NextStep(_who(data, OPTIONAL_PHASE), OPTIONAL_PHASE, phases[OPTIONAL_PHASE]["iteration"])
    for name in PHASES:
        if name != OPTIONAL_PHASE and phases[name]["status"] not in ("done", "skipped"):
            return NextStep(_who(data, name), name, phases[name]["iteration"])
    return NextStep("done")


def next_action(checkpoint: Checkpoint) -> str:
    """What the orchestrator does next for this story, in a few words."""
    return next_step(checkpoint).text


# The order a story's phases run in (P4 refactors what the P5 review approved with issues).
RUN_ORDER = ("P1", "P2", "P3", "P5", "P4", "P6", "P7")


def resume_point(checkpoint: Checkpoint) -> dict[str, Any] | None:
    """Where the pilot workflow picks a story up (its ``resume`` argument): the phases finished
    before the next step, and the review round that step is in; None when done or blocked."""
    step = next_step(checkpoint)
    if step.phase is None:
        return None
    before = RUN_ORDER[: RUN_ORDER.index(step.phase)]
    done = [name for name in before if checkpoint.phases[name]["status"] in ("done", "skipped")]
    return {"done": done, "round": step.iteration}


def review_rounds(checkpoint: Checkpoint) -> list[dict[str, Any]]:
    """Every review, oldest first: the earlier rounds' and the current one."""
    current = [checkpoint.data["review"]] if checkpoint.data["review"] else []
    return [*checkpoint.data["reviews"], *current]


def _agent(data: Mapping[str, Any], name: str) -> str:
    return data["phases"][name]["agent"] or DEFAULT_AGENTS[name]


def _who(data: Mapping[str, Any], name: str) -> str:
    iteration = data["phases"][name]["iteration"]
    return f"{name} {_agent(data, name)}" + (f" (iteration {iteration})" if iteration > 1 else "")
