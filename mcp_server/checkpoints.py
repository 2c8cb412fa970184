"""Story checkpoints: `.claude/checkpoints/{story}.yaml`, the one record of where a story stands.

The file is one YAML document: the data, checked against data/checkpoint.schema.json, then the
seed's history lines (``P1: ✓ ux-designer 14:05``) as top-level keys, newest last, so that
``tail -1`` shows the latest event. A phase may appear in the history more than once, so the
history is read from the composed node tree, where repeated keys survive in order.

Writes are serialised per story by a flock on a sidecar file and land by rename, so a reader
sees the old file or the new one, never a mix, and a writer killed mid-write leaves the old one.
The pure parts (parse, render, transitions, next action) take and return plain values, so each
is testable without a disk; the I/O functions at the end wrap them.
"""

from __future__ import annotations

import copy
import fcntl
import json
import logging
import os
import re
import sqlite3
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import yaml

from mcp_server.errors import HybridError
from mcp_server.ledger import Ledger, ledger_path
from mcp_server.monitor.coverage import detect_format
from mcp_server.stories import Story, StoryFileError, check_story_id, find_story_file, natural_key, parse_story, story_files

log = logging.getLogger("hybrid.checkpoints")

CHECKPOINTS_RELATIVE = Path(".claude") / "checkpoints"
PHASES = ("P1", "P2", "P3", "P4", "P5", "P6", "P7")
STATUSES = ("pending", "running", "done", "skipped", "failed")
WRITABLE_STATUSES = ("running", "done", "skipped", "failed")
# The seed's agent for each phase: used when a write names none, and in "next" hints.
DEFAULT_AGENTS = {
    "P1": "ux-designer",
    "P2": "test-writer",
    "P3": "backend-dev",
    "P4": "senior-dev",
    "P5": "code-reviewer",
    "P6": "qa-agent",
    "P7": "tech-writer",
}
OPTIONAL_PHASE = "P4"  # runs only when the code needs a refactor; before or after the review
SKIPPABLE_WITH_REASON = ("P1", "P2", "P7")  # e.g. no UX to design, tests already written, no docs
DONE, FAILED, NEW_ITERATION, SKIPPED = "✓", "✗", "↻", "–"
STATUS_MARKS = {"done": DONE, "failed": FAILED, "skipped": SKIPPED}
HISTORY_HEADER = "# history (newest last; tail -1 shows the latest)"
HISTORY_LINE = re.compile(
    r"^(?P<phase>P[1-7]): (?P<mark>[✓✗↻–]) (?P<agent>[A-Za-z0-9][A-Za-z0-9._:-]{0,63}) (?P<time>(?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)
_HISTORY_KEY = re.compile(r"^P[0-9]+$")
LOCK_TIMEOUT_S = 30.0
ORDER_RULE = "phases finish in order P1 → P2 → P3 → (P4) → P5 → P6 → P7"


class CheckpointError(HybridError):
    """A checkpoint cannot be read, or a write was refused; nothing was changed."""


class CheckpointNotFound(CheckpointError):
    """The story has no checkpoint file yet."""


class TransitionError(CheckpointError):
    """A status change the phase rules refuse; the message names the rule."""


@dataclass(frozen=True)
class HistoryEntry:
    phase: str
    mark: str
    agent: str
    time: str  # HH:MM, local time

    def render(self) -> str:
        return f"{self.phase}: {self.mark} {self.agent} {self.time}"


@dataclass
class Checkpoint:
    """A validated checkpoint: ``data`` follows the JSON Schema; ``history`` is oldest first."""

    path: Path
    data: dict[str, Any]
    history: list[HistoryEntry] = field(default_factory=list)

    @property
    def story(self) -> str:
        return str(self.data["story"])

    @property
    def phases(self) -> dict[str, dict[str, Any]]:
        return self.data["phases"]

    @property
    def ac_ids(self) -> list[str]:
        return [ac["id"] for ac in self.data["acceptance_criteria"]]


@dataclass(frozen=True)
class Update:
    """One checkpoint_write call: a phase's new status and what to merge into it."""

    phase: str
    status: str
    agent: str | None = None
    model: str | None = None
    summary: str | None = None
    artifacts: Sequence[str] | None = None
    review: Mapping[str, Any] | None = None
    qa: Sequence[Mapping[str, Any]] | None = None
    coverage: Mapping[str, Any] | None = None
    new_iteration: bool = False


@dataclass(frozen=True)
class WriteOutcome:
    checkpoint: Checkpoint
    history_added: list[HistoryEntry]


@dataclass(frozen=True)
class CheckpointListing:
    """One row of a listing: the checkpoint, or why there is none."""

    story: str
    checkpoint: Checkpoint | None
    problem: str | None = None
    title: str = ""  # from the story file, for a story not started yet
    not_started: bool = False  # a story file and no checkpoint yet: every phase pending


# --- Schema ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    text = resources.files("mcp_server.data").joinpath("checkpoint.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=None)
def _validator(definition: str | None) -> Any:
    import jsonschema  # imported on first use: the MCP server starts with every session

    root = schema()
    target = root if definition is None else {"$ref": f"#/$defs/{definition}", "$defs": root["$defs"]}
    return jsonschema.Draft202012Validator(target)


def schema_problem(instance: Any, definition: str | dict[str, Any] | None = None, prefix: str = "") -> str | None:
    """The most relevant schema violation as 'where: what', or None when the instance is valid.

    ``definition`` names a ``$defs`` entry of the shipped schema, or is a schema of its own.
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(definition) if isinstance(definition, dict) else _validator(definition)
    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if error is None:
        return None
    where = prefix
    for part in error.absolute_path:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    return f"{where or 'top level'}: {error.message}"


def validate_data(data: Any, path: Path) -> None:
    problem = schema_problem(data)
    if problem is not None:
        raise CheckpointError(f"{path} does not match the checkpoint schema: {problem}")


# --- Parse and render -----------------------------------------------------------------------

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loading without YAML 1.1 timestamps: a hand-written time stays the string the schema wants."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Dumper(_BaseDumper):  # type: ignore[misc, valid-type]
    """Token counts on one line, multi-line text as a literal block: easy to read with cat."""


class _Flow(dict):  # type: ignore[type-arg]
    pass


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    style = "|" if "\n" in text and not any(line != line.rstrip() for line in text.split("\n")) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(
    _Flow, lambda dumper, data: dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)
)


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


def parse_checkpoint(text: str, path: Path, story: str | None = None) -> tuple[dict[str, Any], list[HistoryEntry]]:
    """The validated data and the history lines of a checkpoint file's text."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as error:
        raise CheckpointError(f"{path} is not valid YAML: {_yaml_problem(error)}") from None
    if not isinstance(root, yaml.MappingNode):
        raise CheckpointError(f"{path} must hold a YAML mapping (story, phases, ...); it holds {_node_kind(root)}")
    data_pairs, history = _split_history(root, path)
    try:
        data = _Loader("").construct_document(yaml.MappingNode(root.tag, data_pairs))
    except yaml.YAMLError as error:
        raise CheckpointError(f"{path} is not valid YAML: {_yaml_problem(error)}") from None
    validate_data(data, path)
    if story is not None and data["story"] != story:
        raise CheckpointError(f"{path} says story {data['story']!r}, but its name says {story!r}")
    return data, history


def _node_kind(node: yaml.Node | None) -> str:
    if node is None:
        return "nothing (the file is empty)"
    return "a list" if isinstance(node, yaml.SequenceNode) else "a single value"


def _split_history(root: yaml.MappingNode, path: Path) -> tuple[list[tuple[yaml.Node, yaml.Node]], list[HistoryEntry]]:
    data_pairs, history, seen = [], [], set()
    for key_node, value_node in root.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if isinstance(key, str) and _HISTORY_KEY.match(key):
            history.append(_history_entry(key, value_node, path))
            continue
        if key in seen:
            raise CheckpointError(f"{path}: line {key_node.start_mark.line + 1}: key {key!r} appears twice")
        seen.add(key)
        data_pairs.append((key_node, value_node))
    return data_pairs, history


def _history_entry(key: str, value: yaml.Node, path: Path) -> HistoryEntry:
    line = f"{key}: {value.value}" if isinstance(value, yaml.ScalarNode) else key
    match = HISTORY_LINE.match(line)
    if match is None:
        raise CheckpointError(
            f"{path}: line {value.start_mark.line + 1}: history line {line!r} is not in the form "
            "'P1: ✓ ux-designer 14:05' (P1..P7, one of ✓ ✗ ↻ –, one-word agent, HH:MM)"
        )
    return HistoryEntry(match["phase"], match["mark"], match["agent"], match["time"])


def render_checkpoint(data: Mapping[str, Any], history: Sequence[HistoryEntry]) -> str:
    body = yaml.dump(
        _for_yaml(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )
    return "\n".join([body.rstrip("\n"), "", HISTORY_HEADER, *(entry.render() for entry in history)]) + "\n"


def _for_yaml(data: Mapping[str, Any]) -> dict[str, Any]:
    ordered = {key: data[key] for key in schema()["required"] if key in data}
    ordered["phases"] = {name: _phase_for_yaml(data["phases"][name]) for name in PHASES}
    return ordered


def _phase_for_yaml(phase: Mapping[str, Any]) -> dict[str, Any]:
    ordered = {key: phase[key] for key in schema()["$defs"]["phase"]["properties"] if key in phase}
    ordered["tokens"] = {provider: _Flow(counts) for provider, counts in phase["tokens"].items()}
    return ordered


# --- A new checkpoint -----------------------------------------------------------------------


def utc_stamp(now: datetime) -> str:
    return now.astimezone(timezone.utc).isoformat(timespec="seconds")


def zero_tokens() -> dict[str, dict[str, int]]:
    return {provider: {"prompt": 0, "cached": 0, "completion": 0} for provider in ("glm", "anthropic")}


def _new_phase() -> dict[str, Any]:
    return {
        "status": "pending",
        "agent": None,
        "model": None,
        "iteration": 1,
        "started_at": None,
        "finished_at": None,
        "summary": None,
        "artifacts": [],
        "tokens": zero_tokens(),
    }


def new_checkpoint_data(story: Story, story_file: str, now: datetime) -> dict[str, Any]:
    stamp = utc_stamp(now)
    return {
        "version": 1,
        "story": story.id,
        "title": story.title[:300],
        "story_file": story_file,
        "acceptance_criteria": [{"id": ac.id, "text": ac.text} for ac in story.acceptance_criteria],
        "phases": {name: _new_phase() for name in PHASES},
        "review": None,
        "reviews": [],
        "qa": None,
        "coverage": None,
        "revision": 1,
        "created_at": stamp,
        "updated_at": stamp,
    }


# --- Input checks (before any lock or file) ---------------------------------------------------


def check_update(update: Update) -> None:
    """Refuse an update whose values are wrong in themselves, whatever the checkpoint says."""
    if update.phase not in PHASES:
        raise CheckpointError(f"unknown phase {update.phase!r}: use one of {', '.join(PHASES)}")
    if update.status == "pending":
        raise TransitionError("status 'pending' cannot be written: every phase starts pending")
    if update.status not in WRITABLE_STATUSES:
        raise CheckpointError(f"unknown status {update.status!r}: use one of {', '.join(WRITABLE_STATUSES)}")
    if not isinstance(update.new_iteration, bool):
        raise CheckpointError("new_iteration must be true or false")
    for name, value in (("agent", update.agent), ("model", update.model)):
        # A history line is `P1: ✓ <agent> 14:05`: one line. (Python's `$`, which the schema's
        # patterns use, also matches before a final newline.)
        if isinstance(value, str) and any(not character.isprintable() for character in value):
            raise CheckpointError(f"invalid {name}: {value!r} holds a newline or a control character")
    _check_value(update.agent, "agent", "agent")
    _check_value(update.model, {"type": "string", "pattern": r"^\S{1,100}$"}, "model")
    _check_value(update.summary, {"type": "string", "maxLength": 2000}, "summary")
    _check_value(update.artifacts, schema()["$defs"]["phase"]["properties"]["artifacts"], "artifacts")
    _check_attachment(update, update.review, "review", "P5", "review_input")
    _check_attachment(update, update.qa, "qa", "P6", "qa_input")
    _check_value(update.coverage, "coverage_input", "coverage")


def _check_value(value: Any, definition: str | dict[str, Any], name: str) -> None:
    if value is None:
        return
    problem = schema_problem(value, definition, prefix=name)
    if problem is not None:
        raise CheckpointError(f"invalid {problem}")


def _check_attachment(update: Update, value: Any, name: str, owner: str, definition: str) -> None:
    if value is None:
        return
    if update.phase != owner:
        raise CheckpointError(f"{name} belongs to {owner}; it cannot be written with {update.phase}")
    _check_value(value, definition, name)


# --- Transitions (pure) -----------------------------------------------------------------------


def apply_update(
    checkpoint: Checkpoint,
    update: Update,
    now: datetime,
    tokens: Mapping[str, dict[str, dict[str, int]]] | None = None,
) -> WriteOutcome:
    """The checkpoint after ``update``, or TransitionError naming the rule it breaks."""
    check_update(update)
    data = copy.deepcopy(checkpoint.data)
    added: list[HistoryEntry] = []
    phase = data["phases"][update.phase]
    agent = update.agent or phase["agent"] or DEFAULT_AGENTS[update.phase]
    if _starts_new_iteration(data, update):
        if update.status == "skipped":
            raise TransitionError(f"{update.phase} is {phase['status']}: a new iteration must run, not be skipped")
        _open_new_iteration(data, update.phase)
        added.append(history_entry(update.phase, NEW_ITERATION, agent, now))
    _check_target(data, update)
    previous = phase["status"]
    _merge(phase, update, agent)
    _set_status(phase, update.status, utc_stamp(now))
    _attach_results(data, update, utc_stamp(now))
    if update.status in STATUS_MARKS and update.status != previous:
        added.append(history_entry(update.phase, STATUS_MARKS[update.status], agent, now))
    if _skips_refactor(data, update):
        refactor = data["phases"][OPTIONAL_PHASE]
        refactor.update(status="skipped", agent=_agent(data, OPTIONAL_PHASE), summary="review clean",
                        finished_at=utc_stamp(now))
        added.append(history_entry(OPTIONAL_PHASE, SKIPPED, refactor["agent"], now))
    for name, counts in (tokens or {}).items():
        data["phases"][name]["tokens"] = copy.deepcopy(counts)
    data["revision"] += 1
    data["updated_at"] = utc_stamp(now)
    return WriteOutcome(Checkpoint(checkpoint.path, data, [*checkpoint.history, *added]), added)


def _skips_refactor(data: Mapping[str, Any], update: Update) -> bool:
    """P4 refactors what an approving review still listed; after a clean review nobody runs it,
    so the review's write records it as skipped, and the story shows no pending phase when done."""
    review = data["review"]
    return (update.phase == "P5" and update.status == "done" and data["phases"][OPTIONAL_PHASE]["status"] == "pending"
            and review is not None and review["verdict"] == "APPROVED" and not review["issues"])


def history_entry(phase: str, mark: str, agent: str, now: datetime) -> HistoryEntry:
    return HistoryEntry(phase, mark, agent, now.astimezone().strftime("%H:%M"))


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


def resume_plan(root: Path, story_glob: str, stories: Sequence[str] | None = None) -> dict[str, Any]:
    """The pilot workflow's arguments that continue every unfinished story (or the named ones).

    Done and blocked stories are left out, and so are stories not started, unless named (they
    start at P1). A story whose P3 a frontend-dev did keeps that developer. ``left`` says why each
    story was left out; the workflow ignores it."""
    plan: dict[str, Any] = {"stories": [], "resume": {}, "developer": {}, "left": {}}
    for listing in list_story_status(root, story_glob, stories):
        point = resume_point(listing.checkpoint) if listing.checkpoint else None
        if point is not None:
            plan["stories"].append(listing.story)
            plan["resume"][listing.story] = point
            if listing.checkpoint.phases["P3"]["agent"] == "frontend-dev":
                plan["developer"][listing.story] = "frontend-dev"
        elif listing.not_started and stories:
            plan["stories"].append(listing.story)
        else:
            plan["left"][listing.story] = next_action(listing.checkpoint) if listing.checkpoint else str(listing.problem)
    return plan


def review_rounds(checkpoint: Checkpoint) -> list[dict[str, Any]]:
    """Every review, oldest first: the earlier rounds' and the current one."""
    current = [checkpoint.data["review"]] if checkpoint.data["review"] else []
    return [*checkpoint.data["reviews"], *current]


def _agent(data: Mapping[str, Any], name: str) -> str:
    return data["phases"][name]["agent"] or DEFAULT_AGENTS[name]


def _who(data: Mapping[str, Any], name: str) -> str:
    iteration = data["phases"][name]["iteration"]
    return f"{name} {_agent(data, name)}" + (f" (iteration {iteration})" if iteration > 1 else "")


# --- Files: paths, lock, atomic replace -------------------------------------------------------


def checkpoints_dir(root: Path) -> Path:
    return Path(root) / CHECKPOINTS_RELATIVE


def checkpoint_path(root: Path, story: str) -> Path:
    return checkpoints_dir(root) / f"{check_story_id(story)}.yaml"


@contextmanager
def story_lock(root: Path, story: str, timeout_s: float | None = None) -> Iterator[None]:
    """Exclusive per story, across processes. The kernel drops a flock when its holder dies,
    so a killed writer never leaves the story locked."""
    timeout_s = LOCK_TIMEOUT_S if timeout_s is None else timeout_s
    directory = checkpoints_dir(root)
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / f".{check_story_id(story)}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise CheckpointError(
                        f"checkpoint {story} stayed locked by another writer for {timeout_s:.0f} s; nothing was written"
                    ) from None
                time.sleep(0.005)  # polling, not a blocking flock, so that the wait can time out
        yield
    finally:
        os.close(fd)


def replace_atomically(path: Path, content: bytes) -> None:
    """Temp file in the same folder, fsync, rename: readers see the old bytes or the new ones."""
    for stale in path.parent.glob(f".{path.stem}~*.tmp"):  # left by a killed writer; we hold the lock
        stale.unlink(missing_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}~", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(name, mode)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- Files: read, create, write -----------------------------------------------------------------


def load_checkpoint(root: Path, story: str) -> Checkpoint:
    """The story's checkpoint as stored; creates nothing. CheckpointNotFound when there is none."""
    path = checkpoint_path(root, story)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CheckpointNotFound(f"no checkpoint for {story} yet: {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CheckpointError(f"cannot read {path}: {error}") from None
    data, history = parse_checkpoint(text, path, story)
    return Checkpoint(path, data, history)


def story_file_for(root: Path, story: str, story_glob: str) -> Path:
    story_file = find_story_file(Path(root), story, story_glob)
    if story_file is None:
        raise CheckpointError(f"no story file for {story}: nothing matches {story_glob.format(story=story)}")
    return story_file


def create_checkpoint(root: Path, story: str, story_glob: str, now: datetime | None = None) -> Checkpoint:
    """A fresh checkpoint (in memory) from the story file; CheckpointError when there is no such file."""
    root = Path(root)
    story_file = story_file_for(root, story, story_glob)
    parsed = parse_story(story_file, story)
    data = new_checkpoint_data(parsed, story_file.relative_to(root).as_posix(), now or datetime.now(timezone.utc))
    return Checkpoint(checkpoint_path(root, story), data, [])


def open_checkpoint(root: Path, story: str, story_glob: str, now: datetime | None = None) -> Checkpoint:
    """The checkpoint, created from the story file on the first read."""
    try:
        return load_checkpoint(root, story)
    except CheckpointNotFound:
        story_file_for(root, story, story_glob)  # refuse before the lock leaves a lock file behind
    with story_lock(root, story):
        try:
            return load_checkpoint(root, story)  # another process may have created it meanwhile
        except CheckpointNotFound:
            checkpoint = create_checkpoint(root, story, story_glob, now)
            replace_atomically(checkpoint.path, render_checkpoint(checkpoint.data, []).encode("utf-8"))
            return checkpoint


def write_checkpoint(root: Path, story: str, update: Update, story_glob: str, now: datetime | None = None) -> WriteOutcome:
    """A validated merge update, serialised with other writers of the story; refused writes change nothing."""
    check_story_id(story)
    check_update(update)
    now = now or datetime.now(timezone.utc)
    if not checkpoint_path(root, story).exists():
        story_file_for(root, story, story_glob)  # refuse before the lock leaves a lock file behind
    tokens = ledger_tokens(root, story)
    with story_lock(root, story):
        try:
            current = load_checkpoint(root, story)
        except CheckpointNotFound:
            current = create_checkpoint(root, story, story_glob, now)
        except CheckpointError as error:
            raise CheckpointError(f"{error}; nothing was written (fix the file or delete it to start over)") from None
        outcome = apply_update(current, update, now, tokens)
        validate_data(outcome.checkpoint.data, outcome.checkpoint.path)  # never write what a read would refuse
        text = render_checkpoint(outcome.checkpoint.data, outcome.checkpoint.history)
        replace_atomically(outcome.checkpoint.path, text.encode("utf-8"))
    return outcome


def ledger_tokens(root: Path, story: str) -> dict[str, dict[str, dict[str, int]]] | None:
    """Per phase, the usage ledger's token totals by provider; zeros without a ledger.

    None when the ledger cannot be read: the write then keeps the counts it had, because a
    broken usage database must not stop the pipeline from recording progress.
    """
    path = ledger_path(Path(root))
    if not path.exists():
        return {name: zero_tokens() for name in PHASES}
    ledger = Ledger(path)
    try:
        return {name: _by_provider(ledger, story, name) for name in PHASES}
    except sqlite3.Error as error:
        log.warning("checkpoint %s: usage ledger %s unreadable (%s); token counts left as they were", story, path, error)
        return None
    finally:
        ledger.close()


def _by_provider(ledger: Ledger, story: str, phase: str) -> dict[str, dict[str, int]]:
    counts = zero_tokens()
    for row in ledger.totals_by_model(story=story, phase=phase):
        if row.provider in counts:
            bucket = counts[row.provider]
            bucket["prompt"] += int(row.prompt_tokens or 0)
            bucket["cached"] += int(row.cached_tokens or 0)
            bucket["completion"] += int(row.completion_tokens or 0)
    return counts


def list_checkpoints(
    root: Path, stories: Sequence[str] | None = None, create_from: str | None = None
) -> list[CheckpointListing]:
    """Every checkpoint (or the named stories'), in natural story order.

    Creates nothing, unless ``create_from`` (the story glob) is given: then a named story that has
    a story file but no checkpoint gets one, as on its first read. A file that cannot be read
    becomes a row with its problem, so one bad file does not hide the rest.
    """
    for story in stories or []:
        check_story_id(story)
    if stories is None:
        stories = checkpoint_ids(root)
    listings = []
    for story in stories:
        try:
            if create_from is not None:
                listings.append(CheckpointListing(story, open_checkpoint(root, story, create_from)))
            else:
                listings.append(CheckpointListing(story, load_checkpoint(root, story)))
        except CheckpointNotFound:
            listings.append(CheckpointListing(story, None, NOT_STARTED))
        except HybridError as error:
            listings.append(CheckpointListing(story, None, str(error)))
    return listings


def checkpoint_ids(root: Path) -> list[str]:
    """The stories that have a checkpoint file, in natural order; nothing is read."""
    directory = checkpoints_dir(root)
    found = [p.stem for p in directory.glob("*.yaml") if not p.name.startswith(".")] if directory.is_dir() else []
    return sorted(found, key=natural_key)


NOT_STARTED = "no checkpoint yet"  # list_checkpoints' problem for a story without one


def list_story_status(root: Path, story_glob: str, stories: Sequence[str] | None = None) -> list[CheckpointListing]:
    """Like list_checkpoints, but without ids it lists every story, those with a checkpoint and
    those whose story file has none yet; such a story is shown not started (every phase
    pending, its title from the file) and nothing is created."""
    files = dict(story_files(root, story_glob))
    wanted = list(stories) if stories else None
    if wanted is None:
        wanted = sorted(set(checkpoint_ids(root)) | set(files), key=natural_key)
    return [
        _not_started(listing.story, files[listing.story])
        if listing.problem == NOT_STARTED and listing.story in files else listing
        for listing in list_checkpoints(root, wanted or None)
    ]


def _not_started(story_id: str, path: Path) -> CheckpointListing:
    try:
        title = parse_story(path, story_id).title
    except StoryFileError as error:
        return CheckpointListing(story_id, None, f"story file cannot be used: {error}")
    return CheckpointListing(story_id, None, "P1 ux-designer (not started)", title, not_started=True)


# --- Text views: what the tools and the CLI print ------------------------------------------------

STATUS_CELLS = {"pending": "·", "running": "▶", "done": DONE, "failed": FAILED, "skipped": SKIPPED}
LEGEND = f"{DONE} done  ▶ running  {FAILED} failed  {SKIPPED} skipped  · pending; a number after a mark is the iteration"


def phase_cell(phase: Mapping[str, Any]) -> str:
    return STATUS_CELLS[phase["status"]] + (str(phase["iteration"]) if phase["iteration"] > 1 else "")


def status_table(listings: Sequence[CheckpointListing], titles: bool = False) -> str:
    """One line per story: a cell per phase and the next action."""
    if not listings:
        return f"no checkpoints yet under {CHECKPOINTS_RELATIVE.as_posix()}/ (checkpoint_read STORY creates one)"
    header = ["story", *(["title"] if titles else []), *PHASES, "next"]
    rows = [header]
    for listing in listings:
        checkpoint = listing.checkpoint
        title = [_clip(checkpoint.data["title"] if checkpoint else listing.title, 32)] if titles else []
        if checkpoint:
            cells = [phase_cell(checkpoint.phases[name]) for name in PHASES]
        else:
            cells = [STATUS_CELLS["pending"] if listing.not_started else ""] * len(PHASES)
        action = next_action(checkpoint) if checkpoint else str(listing.problem)
        rows.append([listing.story, *title, *cells, action])
    widths = [max(len(row[column]) for row in rows) for column in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]
    return "\n".join([*lines, LEGEND])


def phase_report(outcome: WriteOutcome, name: str) -> str:
    """A phase's state after a write, in a few lines."""
    checkpoint = outcome.checkpoint
    phase = checkpoint.phases[name]
    head = f"{checkpoint.story} {name}: {phase['status']}, iteration {phase['iteration']}, {phase['agent'] or '-'}"
    lines = [head + (f" ({phase['model']})" if phase["model"] else "")]
    if phase["summary"]:
        lines.append(f"summary: {_clip(' '.join(phase['summary'].split()), 160)}")
    if phase["artifacts"]:
        shown = phase["artifacts"][:5]
        more = len(phase["artifacts"]) - len(shown)
        lines.append("artifacts: " + ", ".join(shown) + (f" (+{more} more)" if more else ""))
    lines.extend(_tokens_line(phase["tokens"]))
    lines.extend(_results_lines(checkpoint.data, name))
    if outcome.history_added:
        lines.append("history: " + " | ".join(entry.render() for entry in outcome.history_added))
    lines.append(f"next: {next_action(checkpoint)}")
    return "\n".join(lines)


def checkpoint_text(checkpoint: Checkpoint, root: Path) -> str:
    """The file's content with a first comment line that says where it is and what comes next."""
    where = checkpoint.path.relative_to(Path(root)).as_posix() if checkpoint.path.is_relative_to(root) else checkpoint.path
    body = render_checkpoint(checkpoint.data, checkpoint.history)
    return f"# {where} (next: {next_action(checkpoint)})\n{body}"


def _tokens_line(tokens: Mapping[str, Mapping[str, int]]) -> list[str]:
    parts = [
        f"{provider} {counts['prompt']} in ({counts['cached']} cached) / {counts['completion']} out"
        for provider, counts in tokens.items()
        if any(counts.values())
    ]
    return ["tokens: " + "; ".join(parts)] if parts else []


def _results_lines(data: Mapping[str, Any], name: str) -> list[str]:
    if name == "P5" and data["review"]:
        review = data["review"]
        severities = [issue["severity"] for issue in review["issues"]]
        counted = ", ".join(f"{severities.count(s)} {s}" for s in dict.fromkeys(severities))
        return [f"review: {review['verdict']} {review['score']}/10, {len(severities)} issues" + (f" ({counted})" if counted else "")]
    if name == "P6" and data["qa"]:
        results = data["qa"]["results"]
        failed = [r["ac"] for r in results if r["result"] == "fail"]
        line = f"qa: {len(results) - len(failed)}/{len(data['acceptance_criteria'])} ACs pass"
        return [line + (f"; failed: {', '.join(failed)}" if failed else "")]
    return []


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
