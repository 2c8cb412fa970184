"""Story checkpoints: format, history lines, transition rules, refusals, concurrency, crashes, CLI."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest
import yaml

from mcp_server import checkpoints
from mcp_server.checkpoints import (
    HISTORY_HEADER,
    CheckpointError,
    CheckpointNotFound,
    HistoryEntry,
    TransitionError,
    Update,
    checkpoint_path,
    list_checkpoints,
    load_checkpoint,
    next_action,
    open_checkpoint,
    parse_checkpoint,
    render_checkpoint,
    resume_plan,
    review_rounds,
    schema,
    status_table,
    write_checkpoint,
)
from mcp_server.checkpoints import store as checkpoint_store  # the lock's timeout and the lock itself
from mcp_server.checkpoints.store import story_lock
from mcp_server.cli import main as hybrid
from mcp_server.errors import HybridError
from mcp_server.ledger import Ledger, UsageRow, ledger_path
from mcp_server.stories import StoryIdError
from tests.support import REPO

GLOB = "docs/**/{story}*.md"
STORY = "01.2"
T0 = datetime(2026, 1, 5, 14, 5, tzinfo=timezone.utc)

APPROVED = {"verdict": "APPROVED", "score": 9, "issues": []}
CHANGES = {
    "verdict": "REQUEST_CHANGES",
    "score": 6,
    "issues": [{"severity": "major", "file": "app/roles.py", "line": 3, "text": "unknown roles are accepted"}],
}
ALL_PASS = [
    {"ac": "AC-1", "result": "pass", "evidence": "tests/test_roles.py::test_ac1 passed"},
    {"ac": "AC-2", "result": "pass", "evidence": "tests/test_roles.py::test_ac2 passed"},
]
AC2_FAILS = [ALL_PASS[0], {"ac": "AC-2", "result": "fail", "evidence": "'root' was accepted"}]


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def hhmm(minute: int) -> str:
    return at(minute).astimezone().strftime("%H:%M")


def write(project: Path, phase: str, status: str, minute: int = 0, story: str = STORY, **fields):
    return write_checkpoint(project, story, Update(phase, status, **fields), GLOB, now=at(minute))


def run(project: Path, *steps: tuple) -> None:
    for minute, (phase, status, *fields) in enumerate(steps):
        write(project, phase, status, minute, **(fields[0] if fields else {}))


# Named states the refusal tests start from.
SETUPS = {
    "fresh": (),
    "p1": (("P1", "done"),),
    "p3": (("P1", "done"), ("P2", "done"), ("P3", "done")),
    "p4 running": (("P1", "done"), ("P2", "done"), ("P3", "done"), ("P4", "running")),
    "changes": (("P1", "done"), ("P2", "done"), ("P3", "done"), ("P5", "done", {"review": CHANGES})),
    "changes, p4 skipped": (
        ("P1", "done"), ("P2", "done"), ("P3", "done"), ("P5", "done", {"review": CHANGES}), ("P4", "skipped"),
    ),
    "approved": (("P1", "done"), ("P2", "done"), ("P3", "done"), ("P5", "done", {"review": APPROVED})),
    "qa failed": (
        ("P1", "done"), ("P2", "done"), ("P3", "done"), ("P5", "done", {"review": APPROVED}),
        ("P6", "done", {"qa": AC2_FAILS}),
    ),
}


def set_up(project: Path, name: str) -> None:
    open_checkpoint(project, STORY, GLOB, now=T0)
    run(project, *SETUPS[name])


def checkpoint_files(project: Path) -> dict[str, bytes]:
    folder = project / ".claude" / "checkpoints"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def history(project: Path) -> list[str]:
    return [entry.render() for entry in load_checkpoint(project, STORY).history]


# --- Creation and reading -------------------------------------------------------------------------


def test_first_read_creates_the_checkpoint_from_the_story_file(project):
    path = checkpoint_path(project, STORY)
    checkpoint = open_checkpoint(project, STORY, GLOB, now=T0)
    assert path.is_file()
    assert checkpoint.data["title"] == "User Roles"
    assert checkpoint.data["story_file"] == "docs/stories/01.2-user-roles.md"
    assert checkpoint.data["acceptance_criteria"] == [
        {"id": "AC-1", "text": "A user can be given the role `admin` or `member`."},
        {"id": "AC-2", "text": "An unknown role is refused with ValueError."},
    ]
    assert {p["status"] for p in checkpoint.phases.values()} == {"pending"}
    assert path.read_text().splitlines()[-1] == HISTORY_HEADER
    before = path.read_bytes()
    assert open_checkpoint(project, STORY, GLOB, now=at(9)).data == checkpoint.data
    assert path.read_bytes() == before  # later reads do not rewrite it


def test_a_story_without_a_story_file_is_refused_and_nothing_is_created(project):
    expected = re.escape("no story file for 09.9: nothing matches docs/**/09.9*.md")
    with pytest.raises(CheckpointError, match=expected):
        open_checkpoint(project, "09.9", GLOB)
    with pytest.raises(CheckpointError, match=expected):
        write(project, "P1", "done", story="09.9")
    assert not checkpoint_path(project, "09.9").exists()
    assert not (project / ".claude" / "checkpoints" / ".09.9.lock").exists()


def test_reading_functions_create_nothing(project):
    with pytest.raises(CheckpointNotFound):
        load_checkpoint(project, STORY)
    assert list_checkpoints(project) == []
    [row] = list_checkpoints(project, [STORY])
    assert row.checkpoint is None and row.problem == "no checkpoint yet"
    assert not (project / ".claude").exists()


def test_the_shipped_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(schema())


def test_round_trip_of_a_full_story(project):
    set_up(project, "changes")
    run(
        project,
        ("P3", "running", {"agent": "hybrid:backend-dev", "model": "glm-4.7"}),
        ("P3", "done", {"summary": "fixed: 'root' is refused\nand roles are validated — ✓", "artifacts": ["app/roles.py"]}),
        ("P5", "done", {"review": {**APPROVED, "issues": [{"severity": "info", "text": "naming: x: y # z"}]}}),
        ("P6", "done", {"qa": ALL_PASS, "coverage": {"percent": 91.5, "source": "coverage.xml"}}),
        ("P7", "skipped", {"summary": "no public API"}),
    )
    path = checkpoint_path(project, STORY)
    checkpoint = load_checkpoint(project, STORY)
    text = render_checkpoint(checkpoint.data, checkpoint.history)
    assert text == path.read_text(encoding="utf-8")
    data, entries = parse_checkpoint(text, path, STORY)
    assert data == checkpoint.data and entries == checkpoint.history
    assert data["phases"]["P3"]["summary"] == "fixed: 'root' is refused\nand roles are validated — ✓"
    assert (data["coverage"]["percent"], data["coverage"]["format"]) == (91.5, "cobertura")  # from the name
    assert len(entries) == 9 and [e.mark for e in entries].count("↻") == 1
    # A tolerant YAML 1.1 loader still reads the data part (the repeated P-keys collapse).
    loose = yaml.safe_load(text)
    assert loose["story"] == STORY and loose["phases"] == yaml.safe_load(text)["phases"]


def test_a_summary_that_ends_in_a_blank_line_is_written_readably(project):
    write(project, "P1", "done", summary="designed the roles page\n\n")  # libyaml wrote "..." after it
    assert load_checkpoint(project, STORY).phases["P1"]["summary"] == "designed the roles page\n\n"
    assert "\n...\n" not in checkpoint_path(project, STORY).read_text()
    write(project, "P2", "done", 1)  # and the next write reads it


def test_the_data_part_comes_first_then_the_history(project):
    set_up(project, "p1")
    lines = checkpoint_path(project, STORY).read_text().splitlines()
    assert lines[0] == "story: '01.2'"
    assert lines[-3:] == ["", HISTORY_HEADER, f"P1: ✓ ux-designer {hhmm(0)}"]


# --- History lines --------------------------------------------------------------------------------


def test_tail_1_after_p1_done_is_the_seeds_line(project):
    write(project, "P1", "done", 0)
    path = checkpoint_path(project, STORY)
    tail = subprocess.run(["tail", "-1", str(path)], capture_output=True, text=True, check=True).stdout
    assert tail == f"P1: ✓ ux-designer {hhmm(0)}\n"
    assert re.fullmatch(r"P1: ✓ ux-designer \d\d:\d\d\n", tail)


def test_failed_skipped_and_new_iteration_lines(project):
    write(project, "P1", "skipped", 1, summary="UX done upstream")
    write(project, "P2", "running", 2)
    write(project, "P2", "failed", 3, agent="test-writer")
    write(project, "P2", "running", 4)  # a retry: no line, same iteration
    assert load_checkpoint(project, STORY).phases["P2"]["iteration"] == 1
    write(project, "P2", "done", 5)
    write(project, "P2", "running", 6, new_iteration=True)
    assert history(project) == [
        f"P1: – ux-designer {hhmm(1)}",
        f"P2: ✗ test-writer {hhmm(3)}",
        f"P2: ✓ test-writer {hhmm(5)}",
        f"P2: ↻ test-writer {hhmm(6)}",
    ]
    assert checkpoint_path(project, STORY).read_text().splitlines()[-1] == f"P2: ↻ test-writer {hhmm(6)}"
    assert load_checkpoint(project, STORY).phases["P2"]["iteration"] == 2


def test_a_terse_rerun_writes_the_new_iteration_and_the_result(project):
    set_up(project, "p1")
    outcome = write(project, "P1", "done", 7, new_iteration=True, agent="ux-lead")
    assert [e.render() for e in outcome.history_added] == [f"P1: ↻ ux-lead {hhmm(7)}", f"P1: ✓ ux-lead {hhmm(7)}"]


# --- The state machine ------------------------------------------------------------------------


def test_the_seeds_review_round_sends_the_story_back_to_p3(project):
    set_up(project, "changes")
    checkpoint = load_checkpoint(project, STORY)
    assert next_action(checkpoint) == "P3 backend-dev (iteration 2): the review requested changes"
    outcome = write(project, "P3", "running", 10)  # no new_iteration needed after REQUEST_CHANGES
    phases = outcome.checkpoint.phases
    assert phases["P3"]["iteration"] == 2 and phases["P3"]["status"] == "running"
    assert (phases["P5"]["status"], phases["P5"]["iteration"]) == ("pending", 2)
    assert outcome.checkpoint.data["review"] is None and len(outcome.checkpoint.data["reviews"]) == 1
    assert next_action(outcome.checkpoint) == "running: P3 backend-dev (iteration 2)"
    write(project, "P3", "done", 11)
    assert next_action(load_checkpoint(project, STORY)) == "P5 code-reviewer (iteration 2)"
    write(project, "P5", "done", 12, review=APPROVED)
    write(project, "P6", "done", 13, qa=ALL_PASS)
    write(project, "P7", "done", 14)
    checkpoint = load_checkpoint(project, STORY)
    assert next_action(checkpoint) == "done"
    assert [(r["verdict"], r["iteration"]) for r in review_rounds(checkpoint)] == [("REQUEST_CHANGES", 1), ("APPROVED", 2)]
    assert [line.split()[0] + line.split()[1] for line in history(project)] == [
        "P1:✓", "P2:✓", "P3:✓", "P5:✓", "P3:↻", "P3:✓", "P5:✓", "P4:–", "P6:✓", "P7:✓"
    ]



def test_a_clean_review_marks_p4_skipped_and_one_with_issues_leaves_it_to_run(project):
    set_up(project, "approved")
    phases = load_checkpoint(project, STORY).phases
    assert (phases["P4"]["status"], phases["P4"]["agent"], phases["P4"]["summary"]) == ("skipped", "senior-dev", "review clean")
    assert history(project)[-2:] == [f"P5: ✓ code-reviewer {hhmm(3)}", f"P4: – senior-dev {hhmm(3)}"]
    write(project, "P4", "skipped", 4)  # a senior-dev that skips it again changes nothing
    assert history(project)[-1] == f"P4: – senior-dev {hhmm(3)}"
    write(project, "P6", "done", 5, qa=AC2_FAILS)  # QA sends it back: the new round reopens P4
    write(project, "P3", "running", 6)
    assert load_checkpoint(project, STORY).phases["P4"]["status"] == "pending"
    write(project, "P3", "done", 7)
    minor = {"verdict": "APPROVED", "score": 8, "issues": [{"severity": "minor", "file": "app/roles.py", "line": 1, "text": "name"}]}
    write(project, "P5", "done", 8, review=minor)
    checkpoint = load_checkpoint(project, STORY)
    assert checkpoint.phases["P4"]["status"] == "pending" and next_action(checkpoint) == "P4 senior-dev"


def test_a_new_round_keeps_the_earlier_rounds_time(project):
    open_checkpoint(project, STORY, GLOB, now=T0)
    run(project, ("P1", "done"), ("P2", "done"))
    write(project, "P3", "running", 2)
    write(project, "P3", "done", 5)  # round 1: 3 minutes
    write(project, "P5", "running", 6)
    write(project, "P5", "done", 8, review=CHANGES)  # 2 minutes
    write(project, "P3", "running", 10)
    phases = load_checkpoint(project, STORY).phases
    assert (phases["P3"]["earlier_seconds"], phases["P5"]["earlier_seconds"]) == (180, 120)
    assert phases["P3"]["started_at"] == "2026-01-05T14:15:00+00:00"  # the new round's own times
    assert "earlier_seconds" not in phases["P1"]  # never reopened


@pytest.mark.parametrize("coverage, expected", [
    ({"percent": 80, "source": "reports/lcov.info"}, "lcov"),
    ({"percent": 80, "source": "out/cov", "format": "coverage.py"}, "coverage.py"),  # said by the agent
    ({"percent": 80, "source": "out/cov"}, None),  # not known from the name: left out
])
def test_the_checkpoint_says_which_coverage_format(project, coverage, expected):
    set_up(project, "approved")
    write(project, "P6", "done", 9, qa=ALL_PASS, coverage=coverage)
    assert load_checkpoint(project, STORY).data["coverage"].get("format") == expected

def test_requested_changes_are_made_in_p3_and_reviewed_again_never_by_a_p4_shortcut(project):
    set_up(project, "changes")
    write(project, "P4", "running", 20)
    outcome = write(project, "P4", "done", 21, summary="tried to address the review in a refactor")
    assert next_action(outcome.checkpoint) == "P3 backend-dev (iteration 2): the review requested changes"
    before = checkpoint_files(project)
    with pytest.raises(TransitionError, match="run P3 again .* re-reviewed"):
        write(project, "P6", "done", 22, qa=ALL_PASS)
    assert checkpoint_files(project) == before


def test_a_story_whose_review_rounds_are_used_up_can_be_marked_failed(project):
    set_up(project, "changes")
    outcome = write(project, "P5", "failed", 20, summary="review rounds exhausted (2)")
    assert outcome.checkpoint.phases["P5"]["status"] == "failed"
    assert outcome.checkpoint.phases["P5"]["iteration"] == 1  # giving up is not a new round
    assert next_action(outcome.checkpoint) == "blocked: P5 failed"
    assert history(project)[-1].startswith("P5: ✗ code-reviewer")
    with pytest.raises(TransitionError, match="already done"):  # only the phase that sent it back
        write(project, "P1", "failed", 21)


def test_a_qa_failure_sends_the_story_back_and_blocks_p7(project):
    set_up(project, "qa failed")
    checkpoint = load_checkpoint(project, STORY)
    assert next_action(checkpoint) == "P3 backend-dev (iteration 2): QA failed AC-2"
    outcome = write(project, "P3", "running", 40)
    phases = outcome.checkpoint.phases
    assert [phases[p]["iteration"] for p in ("P3", "P5", "P6")] == [2, 2, 2]
    assert phases["P6"]["status"] == "pending" and outcome.checkpoint.data["qa"] is None


def test_a_new_iteration_reopens_every_later_phase_that_started(project):
    run(project, ("P1", "skipped", {"summary": "no UI"}), ("P2", "done"), ("P3", "done"), ("P4", "skipped"))
    outcome = write(project, "P2", "running", 50, new_iteration=True)
    phases = outcome.checkpoint.phases
    assert [(p, phases[p]["status"], phases[p]["iteration"]) for p in ("P1", "P2", "P3", "P4", "P5")] == [
        ("P1", "skipped", 1), ("P2", "running", 2), ("P3", "pending", 2), ("P4", "pending", 1), ("P5", "pending", 1)
    ]
    assert phases["P3"]["finished_at"] is None


def test_a_failed_phase_blocks_and_can_be_retried(project):
    run(project, ("P1", "done"), ("P2", "done"), ("P3", "failed"))
    assert next_action(load_checkpoint(project, STORY)) == "blocked: P3 failed"
    outcome = write(project, "P3", "running", 9)
    assert outcome.checkpoint.phases["P3"]["iteration"] == 1 and outcome.history_added == []


def test_times_and_merge(project):
    write(project, "P1", "done", 0)
    p1 = load_checkpoint(project, STORY).phases["P1"]
    assert p1["started_at"] == p1["finished_at"] == "2026-01-05T14:05:00+00:00"
    write(project, "P2", "running", 1, agent="test-writer", model="glm-4.7", artifacts=["tests/a.py"])
    outcome = write(project, "P2", "running", 2, summary="half way", artifacts=["tests/b.py", "tests/a.py"])
    p2 = outcome.checkpoint.phases["P2"]
    assert (p2["agent"], p2["model"], p2["summary"]) == ("test-writer", "glm-4.7", "half way")
    assert p2["artifacts"] == ["tests/a.py", "tests/b.py"] and outcome.history_added == []
    outcome = write(project, "P2", "done", 9)
    p2 = outcome.checkpoint.phases["P2"]
    assert (p2["started_at"], p2["finished_at"]) == ("2026-01-05T14:06:00+00:00", "2026-01-05T14:14:00+00:00")
    assert outcome.checkpoint.data["revision"] == 5  # created, then four writes


def test_qa_results_merge_by_ac_across_writes(project):
    set_up(project, "approved")
    write(project, "P6", "running", 10, qa=[AC2_FAILS[1]])
    outcome = write(project, "P6", "done", 11, qa=[ALL_PASS[1], ALL_PASS[0]])
    assert outcome.checkpoint.data["qa"]["results"] == ALL_PASS  # story order, the later result wins


# --- Refusals: each leaves the file byte-identical -------------------------------------------------

REFUSED = [
    ("p1", Update("P3", "done"), "P3 done refused: P2 is pending; it must be done or skipped before P3"),
    ("fresh", Update("P2", "running"), "P1 is pending; it must be done or skipped before P2"),
    ("p1", Update("P1", "running"), "P1 is already done (iteration 1); to run it again pass new_iteration=True"),
    ("p1", Update("P1", "done"), "to run it again pass new_iteration=True"),
    ("p1", Update("P1", "skipped", summary="no"), "to run it again pass new_iteration=True"),
    ("p1", Update("P1", "skipped", summary="no", new_iteration=True), "a new iteration must run"),
    ("p3", Update("P5", "done"), "P5 done needs a review with a verdict"),
    ("p3", Update("P6", "running"), "P5 is pending; it must be done before P6"),
    ("p4 running", Update("P5", "running"), "P4 is running; it must finish or be skipped before P5"),
    ("changes", Update("P6", "running"), "the P5 review requested changes"),
    ("changes, p4 skipped", Update("P6", "done", qa=ALL_PASS), "the P5 review requested changes"),
    ("approved", Update("P6", "done", qa=ALL_PASS[:1]), "P6 done needs a QA result (pass or fail, with evidence) for every AC; missing: AC-2"),
    ("qa failed", Update("P7", "running"), "QA failed AC-2; the story goes back to P3 before P7"),
    ("p1", Update("P2", "skipped"), "skipping P2 needs a summary that says why"),
    ("p1", Update("P3", "skipped", summary="no code"), "P3 cannot be skipped"),
    ("fresh", Update("P1", "skipped"), "skipping P1 needs a summary that says why"),
    ("fresh", Update("P1", "pending"), "status 'pending' cannot be written"),
    ("fresh", Update("P1", "running", new_iteration=True), "new_iteration=True re-runs a done or failed phase; P1 is pending"),
    ("p3", Update("P3", "running", review=APPROVED), "review belongs to P5"),
    ("approved", Update("P5", "running", qa=ALL_PASS), "qa belongs to P6"),
]


@pytest.mark.parametrize("setup, update, message", REFUSED, ids=[m[:40] for _, _, m in REFUSED])
def test_refused_transitions_name_the_rule_and_change_nothing(project, setup, update, message):
    set_up(project, setup)
    before = checkpoint_files(project)
    with pytest.raises(CheckpointError, match=re.escape(message)):
        write_checkpoint(project, STORY, update, GLOB, now=at(60))
    assert checkpoint_files(project) == before


def test_transition_refusals_are_transition_errors(project):
    set_up(project, "p1")
    with pytest.raises(TransitionError):
        write(project, "P3", "done")


BAD_INPUT = [
    (Update("P9", "done"), "unknown phase 'P9': use one of P1, P2, P3, P4, P5, P6, P7"),
    (Update("p6", "done"), "unknown phase 'p6'"),
    (Update("P6", "finished"), "unknown status 'finished': use one of running, done, skipped, failed"),
    (Update("P5", "done", review={"score": 8}), "invalid review: 'verdict' is a required property"),
    (Update("P5", "done", review={"verdict": "APPROVED"}), "'score' is a required property"),
    (Update("P5", "done", review={**APPROVED, "score": 11}), "invalid review.score: 11 is greater than the maximum of 10"),
    (Update("P5", "done", review={**APPROVED, "score": -1}), "review.score: -1 is less than the minimum of 0"),
    (Update("P5", "done", review={**APPROVED, "verdict": "approved"}), "review.verdict: 'approved' is not one of"),
    (Update("P5", "done", review={**CHANGES, "issues": [{"severity": "blocker", "text": "x"}]}), "review.issues[0].severity"),
    (Update("P5", "done", review={**APPROVED, "comment": "x"}), "review"),
    (Update("P6", "running", qa=[{"ac": "AC-9", "result": "pass", "evidence": "x"}]), "qa names AC-9, which the story does not have (its ACs: AC-1, AC-2)"),
    (Update("P6", "running", qa=[ALL_PASS[0], ALL_PASS[0]]), "qa gives AC-1 twice"),
    (Update("P6", "running", qa=[{"ac": "AC-1", "result": "pass"}]), "'evidence' is a required property"),
    (Update("P6", "running", qa=[{"ac": "AC-1", "result": "ok", "evidence": "x"}]), "qa[0].result: 'ok' is not one of"),
    (Update("P6", "running", coverage={"percent": 101, "source": "coverage.xml"}), "coverage.percent: 101 is greater than the maximum of 100"),
    (Update("P6", "running", agent="qa agent"), "invalid agent: 'qa agent' does not match"),
    (Update("P6", "running", model="glm 4.7"), "invalid model"),
    (Update("P6", "running", artifacts=[""]), "invalid artifacts[0]"),
    (Update("P6", "running", artifacts=["a", "a"]), "invalid artifacts: ['a', 'a'] has non-unique elements"),
    (Update("P6", "running", summary="x" * 2001), "invalid summary"),
]


@pytest.mark.parametrize("update, message", BAD_INPUT, ids=[m[:40] for _, m in BAD_INPUT])
def test_bad_input_is_refused_clearly_and_changes_nothing(project, update, message):
    set_up(project, "approved")
    before = checkpoint_files(project)
    with pytest.raises(CheckpointError, match=re.escape(message)):
        write_checkpoint(project, STORY, update, GLOB, now=at(60))
    assert checkpoint_files(project) == before


@pytest.mark.parametrize("story", ["../x", "a/b", "..", "", ".hidden", "01.2/../01.2", "x" * 65, "01 2", "01*"])
def test_bad_story_ids_are_refused_everywhere_and_change_nothing(project, story):
    set_up(project, "p1")
    before = checkpoint_files(project)
    for attempt in (
        lambda: write(project, "P2", "running", story=story),
        lambda: open_checkpoint(project, story, GLOB),
        lambda: load_checkpoint(project, story),
        lambda: list_checkpoints(project, [story]),
    ):
        with pytest.raises(StoryIdError, match="is not valid"):
            attempt()
    assert checkpoint_files(project) == before
    assert sorted(p.name for p in project.parent.iterdir()) == ["proj"]


# --- Hand-corrupted files -----------------------------------------------------------------------

CORRUPTIONS = [
    (lambda t: t.replace("status: done", "status: [done", 1), r"is not valid YAML: line \d+, column \d+: "),
    (lambda t: t.replace("  P2:\n", "  P2:\n\t", 1), r"is not valid YAML: line \d+, column \d+"),
    (lambda t: t.replace("status: done", "status: finished", 1),
     r"does not match the checkpoint schema: phases\.P1\.status: 'finished' is not one of"),
    (lambda t: t.replace("iteration: 1", "iteration: 0", 1), r"phases\.P1\.iteration: 0 is less than the minimum of 1"),
    (lambda t: t.replace("\nrevision:", "\nextra: 1\nrevision:"), r"Additional properties are not allowed \('extra'"),
    (lambda t: t.replace("version: 1", "version: 2"), r"version: 1 was expected"),
    (lambda t: t.replace("story: '01.2'", "story: '01.3'"), r"says story '01\.3', but its name says '01\.2'"),
    (lambda t: t.replace("title: User Roles", "title: User Roles\ntitle: Again"), r"key 'title' appears twice"),
    (lambda t: t + "P1: done by me\n", r"history line 'P1: done by me' is not in the form 'P1: ✓ ux-designer 14:05'"),
    (lambda t: t + "P9: ✓ x 10:00\n", r"history line 'P9: ✓ x 10:00'"),
    (lambda t: "", r"must hold a YAML mapping .*it holds nothing"),
    (lambda t: "- a\n- b\n", r"it holds a list"),
]


@pytest.mark.parametrize("corrupt, problem", CORRUPTIONS, ids=range(len(CORRUPTIONS)))
def test_a_hand_corrupted_file_is_reported_and_never_overwritten(project, corrupt, problem):
    set_up(project, "p1")
    path = checkpoint_path(project, STORY)
    path.write_text(corrupt(path.read_text(encoding="utf-8")), encoding="utf-8")
    before = checkpoint_files(project)
    with pytest.raises(CheckpointError, match=problem) as read_error:
        load_checkpoint(project, STORY)
    assert str(read_error.value).startswith(str(path))
    with pytest.raises(CheckpointError, match=problem):
        open_checkpoint(project, STORY, GLOB)
    with pytest.raises(CheckpointError, match=f"{problem}.*; nothing was written") as write_error:
        write(project, "P2", "running", 60)
    assert str(path) in str(write_error.value)
    assert checkpoint_files(project) == before
    [row] = list_checkpoints(project)
    assert row.checkpoint is None and str(path) in row.problem


def test_a_hand_edit_that_stays_valid_is_accepted(project):
    set_up(project, "p1")
    path = checkpoint_path(project, STORY)
    text = path.read_text().replace("summary: null", "summary: written by hand", 1)
    path.write_text(text.replace("'2026-01-05T14:05:00+00:00'", "2026-01-05T14:05:00Z", 1))  # an unquoted time stays a string
    assert load_checkpoint(project, STORY).phases["P1"]["summary"] == "written by hand"
    write(project, "P2", "running", 5)


# --- Tokens from the usage ledger ----------------------------------------------------------------


def test_tokens_are_the_ledgers_totals_for_story_and_phase(project):
    ledger = Ledger(ledger_path(project))
    ledger.record(UsageRow("glm", "glm-4.7", story=STORY, phase="P3", prompt_tokens=1000, cached_tokens=200, completion_tokens=300))
    ledger.record(UsageRow("glm", "glm-4.5-air", story=STORY, phase="P3", prompt_tokens=500, completion_tokens=100))
    ledger.record(UsageRow("anthropic", "claude-sonnet-4-5", story=STORY, phase="P3", prompt_tokens=50, completion_tokens=5))
    ledger.record(UsageRow("glm", "glm-4.7", story="01.3", phase="P3", prompt_tokens=9999))
    ledger.record(UsageRow("anthropic", "claude-sonnet-4-5", story=STORY, phase="P1", prompt_tokens=70, cached_tokens=60, completion_tokens=7))
    assert len(ledger.totals_by_model(story=STORY)) == 3  # the old call is unchanged
    assert len(ledger.totals_by_model(story=STORY, phase="P3")) == 3
    ledger.close()
    run(project, ("P1", "done"), ("P2", "done"), ("P3", "done"))
    phases = load_checkpoint(project, STORY).phases
    assert phases["P3"]["tokens"] == {
        "glm": {"prompt": 1500, "cached": 200, "completion": 400},
        "anthropic": {"prompt": 50, "cached": 0, "completion": 5},
    }
    assert phases["P1"]["tokens"]["anthropic"] == {"prompt": 70, "cached": 60, "completion": 7}
    assert phases["P2"]["tokens"] == checkpoints.zero_tokens()


def test_without_a_ledger_tokens_are_zero_and_no_ledger_appears(project):
    outcome = write(project, "P1", "done")
    assert outcome.checkpoint.phases["P1"]["tokens"] == checkpoints.zero_tokens()
    assert not ledger_path(project).exists()


# --- Concurrency and crashes ---------------------------------------------------------------------

SUBPROCESS_ENV = {**os.environ, "PYTHONPATH": str(REPO)}

MANY_WRITES = textwrap.dedent(
    """\
    import sys
    from pathlib import Path
    from mcp_server.checkpoints import Update, write_checkpoint
    root, worker, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    for index in range(count):
        update = Update("P2", "running", artifacts=[f"w{worker}/u{index}"])
        write_checkpoint(root, "01.2", update, "docs/**/{story}*.md")
    """
)


def test_eight_processes_times_fifty_updates_lose_nothing(project):
    write(project, "P1", "done")
    writers = [
        subprocess.Popen([sys.executable, "-c", MANY_WRITES, str(project), str(w), "50"], env=SUBPROCESS_ENV)
        for w in range(8)
    ]
    deadline, reads = time.monotonic() + 120, 0
    while any(w.poll() is None for w in writers) and time.monotonic() < deadline:
        load_checkpoint(project, STORY)  # a reader never sees a torn file
        reads += 1
        time.sleep(0.01)
    assert [w.wait(timeout=10) for w in writers] == [0] * 8
    checkpoint = load_checkpoint(project, STORY)
    artifacts = checkpoint.phases["P2"]["artifacts"]
    assert len(artifacts) == 400
    assert set(artifacts) == {f"w{w}/u{i}" for w in range(8) for i in range(50)}
    for w in range(8):  # each writer's updates landed in the order it made them
        mine = [a for a in artifacts if a.startswith(f"w{w}/")]
        assert mine == [f"w{w}/u{i}" for i in range(50)]
    assert checkpoint.data["revision"] == 2 + 400
    assert reads > 0 and not list(checkpoint_path(project, STORY).parent.glob("*.tmp"))


HANGS_MID_WRITE = textwrap.dedent(
    """\
    import sys, time
    from pathlib import Path
    import os
    from mcp_server import checkpoints

    def hang(fd):  # the temp file is written and the lock held: stop here until killed
        print("in the middle of the write", flush=True)
        time.sleep(60)

    os.fsync = hang
    update = checkpoints.Update("P2", "running", artifacts=["never-committed"])
    checkpoints.write_checkpoint(Path(sys.argv[1]), "01.2", update, "docs/**/{story}*.md")
    """
)


def test_a_writer_killed_in_the_middle_of_a_write_leaves_the_previous_file(project, monkeypatch):
    write(project, "P1", "done")
    path = checkpoint_path(project, STORY)
    before = path.read_bytes()
    writer = subprocess.Popen(
        [sys.executable, "-c", HANGS_MID_WRITE, str(project)], env=SUBPROCESS_ENV, stdout=subprocess.PIPE
    )
    try:
        assert writer.stdout.readline() == b"in the middle of the write\n"
        [temp] = path.parent.glob(".01.2~*.tmp")
        assert b"never-committed" in temp.read_bytes()
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
    assert path.read_bytes() == before
    assert load_checkpoint(project, STORY).phases["P2"]["status"] == "pending"
    monkeypatch.setattr(checkpoint_store, "LOCK_TIMEOUT_S", 5.0)  # the lock died with the writer
    outcome = write(project, "P2", "running", 1, artifacts=["after"])
    assert outcome.checkpoint.phases["P2"]["artifacts"] == ["after"]
    assert not list(path.parent.glob("*.tmp"))  # the dead writer's temp file was cleaned up


LOOPS_WRITING = textwrap.dedent(
    """\
    import sys
    from pathlib import Path
    from mcp_server.checkpoints import Update, write_checkpoint
    root, start = Path(sys.argv[1]), int(sys.argv[2])
    print("ready", flush=True)
    for index in range(start, start + 100000):
        write_checkpoint(root, "01.2", Update("P2", "running", artifacts=[f"a{index}"]), "docs/**/{story}*.md")
    """
)


def test_writers_killed_at_random_points_always_leave_a_valid_file(project):
    write(project, "P1", "done")
    rng = random.Random(20260105)
    committed = 0
    for _ in range(8):
        writer = subprocess.Popen(
            [sys.executable, "-c", LOOPS_WRITING, str(project), str(committed)], env=SUBPROCESS_ENV, stdout=subprocess.PIPE
        )
        assert writer.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.02, 0.3))
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
        artifacts = load_checkpoint(project, STORY).phases["P2"]["artifacts"]  # parses and validates
        # The old state or a newer complete one: every committed update, in order, with no gap.
        assert artifacts == [f"a{i}" for i in range(len(artifacts))] and len(artifacts) >= committed
        committed = len(artifacts)
    assert committed > 0


def test_a_writer_gives_up_when_the_story_stays_locked(project, monkeypatch):
    write(project, "P1", "done")
    before = checkpoint_files(project)
    monkeypatch.setattr(checkpoint_store, "LOCK_TIMEOUT_S", 0.2)
    with story_lock(project, STORY):
        with pytest.raises(CheckpointError, match="stayed locked by another writer"):
            write(project, "P2", "running")
    assert checkpoint_files(project) == before


# --- Listing, next action, CLI ----------------------------------------------------------------


def add_story(project: Path, story: str, title: str) -> None:
    (project / "docs" / "stories" / f"{story}-x.md").write_text(f"# {story} {title}\n\nAC-1: it works\n")


def test_status_table_shows_every_story_and_its_next_action(project):
    add_story(project, "01.10", "Later")
    add_story(project, "01.3", "Permissions")
    run(project, ("P1", "done"), ("P2", "failed"))
    write(project, "P1", "running", story="01.10")
    open_checkpoint(project, "01.3", GLOB)
    listings = list_checkpoints(project)
    assert [row.story for row in listings] == ["01.2", "01.3", "01.10"]  # natural order
    table = status_table(listings, titles=True).splitlines()
    assert table[0].split() == ["story", "title", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "next"]
    assert table[1].split() == ["01.2", "User", "Roles", "✓", "✗", "·", "·", "·", "·", "·", "blocked:", "P2", "failed"]
    assert table[2].endswith("P1 ux-designer") and table[3].endswith("running: P1 ux-designer")
    assert table[-1].startswith("✓ done")


def test_cli_status_show_and_stories(project, capsys):
    add_story(project, "01.3", "Permissions")
    set_up(project, "changes")
    assert hybrid(["status", "--project", str(project)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines()}
    assert rows["01.2"][:12] == ["01.2", "User", "Roles", *"✓✓✓·✓··", "P3", "backend-dev"]
    assert rows["01.3"] == ["01.3", "Permissions", *"·······", "P1", "ux-designer", "(not", "started)"]
    assert not checkpoint_path(project, "01.3").exists()  # listed, and status creates none
    assert hybrid(["status", "01.2,01.3", "--project", str(project)]) == 0  # not started is no error
    capsys.readouterr()
    assert hybrid(["status", "01.3", "09.9", "--project", str(project)]) == 1  # no file, no checkpoint
    assert capsys.readouterr().err == "hybrid: unknown story 09.9; known: 01.2, 01.3\n"

    assert hybrid(["checkpoint", "show", STORY, "--project", str(project)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "# .claude/checkpoints/01.2.yaml (next: P3 backend-dev (iteration 2): the review requested changes)"
    assert lines[-1] == f"P5: ✓ code-reviewer {hhmm(3)}"

    assert hybrid(["stories", "--project", str(project)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["story", "ACs", "title", "file"]
    assert out[1].split() == ["01.2", "2", "User", "Roles", "docs/stories/01.2-user-roles.md"]
    assert out[2].split() == ["01.3", "1", "Permissions", "docs/stories/01.3-x.md"]
    assert not checkpoint_path(project, "01.3").exists()
    (project / "docs" / "stories" / "01.4-broken.md").write_text("# 01.4 Broken\n\nAC-1: a\nAC-1: b\n")
    assert hybrid(["stories", "--project", str(project)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[2].startswith("01.3") and out[3].startswith("01.4") and "cannot be used" in out[3] and "appears twice" in out[3]


def test_cli_errors_are_one_clear_line(project, capsys):
    assert hybrid(["status", "--project", str(project)]) == 0  # a story not started is no error
    assert "01.2" in capsys.readouterr().out
    nothing = project / "nothing"
    nothing.mkdir()
    assert hybrid(["status", "--project", str(nothing)]) == 1  # nothing to show (docs/cli.md)
    assert "no stories yet" in capsys.readouterr().err
    assert hybrid(["checkpoint", "show", "09.9", "--project", str(project)]) == 1
    assert "no checkpoint for 09.9 yet" in capsys.readouterr().err
    assert hybrid(["checkpoint", "show", "../x", "--project", str(project)]) == 2  # a bad argument
    assert "story id '../x' is not valid" in capsys.readouterr().err
    set_up(project, "p1")
    path = checkpoint_path(project, STORY)
    path.write_text(path.read_text().replace("status: done", "status: finished"))
    assert hybrid(["checkpoint", "show", STORY, "--project", str(project)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"hybrid: {path} does not match the checkpoint schema: phases.P1.status") and err.count("\n") == 1
    empty = project / "empty"
    empty.mkdir()
    assert hybrid(["stories", "--project", str(empty)]) == 1
    assert "no story files match docs/**/*.md" in capsys.readouterr().err


def test_history_entry_renders_the_seed_form():
    assert HistoryEntry("P3", "↻", "backend-dev", "14:52").render() == "P3: ↻ backend-dev 14:52"
    assert json.loads(json.dumps(schema()))["$defs"]["phase"]["properties"]["status"]["enum"] == [
        "pending", "running", "done", "skipped", "failed"
    ]


def test_an_approving_review_with_issues_points_at_p4_and_a_clean_one_at_p6(project):
    minor = {"verdict": "APPROVED", "score": 8, "issues": [{"severity": "minor", "file": "app/roles.py", "line": 2, "text": "naming"}]}
    set_up(project, "p3")
    write(project, "P5", "done", 5, review=minor)
    assert next_action(load_checkpoint(project, STORY)) == "P4 senior-dev"
    write(project, "P4", "done", 6)
    assert next_action(load_checkpoint(project, STORY)) == "P6 qa-agent"


def test_listing_named_stories_can_create_their_checkpoints(project):
    assert list_checkpoints(project, [STORY])[0].checkpoint is None  # plain listing creates nothing
    [listing] = list_checkpoints(project, [STORY], create_from=GLOB)
    assert listing.checkpoint is not None and checkpoint_path(project, STORY).is_file()
    [missing] = list_checkpoints(project, ["09.9"], create_from=GLOB)
    assert missing.checkpoint is None and "no story file" in str(missing.problem)


@pytest.mark.parametrize("field", ["agent", "model"])
def test_a_name_with_a_newline_would_break_tail_1_and_is_refused(project, field):
    set_up(project, "fresh")
    before = checkpoint_files(project)
    with pytest.raises(CheckpointError, match="newline or a control character"):
        write(project, "P1", "done", **{field: "ux-designer\n"})
    assert checkpoint_files(project) == before



@pytest.mark.parametrize("setup, point", [
    ("p1", {"done": ["P1"], "round": 1}),
    ("changes", {"done": ["P1", "P2"], "round": 2}),  # P3's new round, then its review: round 2
    ("approved", {"done": ["P1", "P2", "P3", "P5", "P4"], "round": 1}),  # P4 skipped by the clean review
    ("p4 running", {"done": ["P1", "P2", "P3"], "round": 1}),  # a running phase runs again
    ("qa failed", {"done": ["P1", "P2"], "round": 2}),
])
def test_resume_plan_says_what_each_story_has_finished(project, setup, point):
    set_up(project, setup)
    assert resume_plan(project, GLOB) == {"stories": [STORY], "resume": {STORY: point}, "developer": {}, "left": {}}


def test_resume_plan_leaves_out_done_blocked_and_unstarted_stories_unless_named(project, capsys):
    add_story(project, "01.3", "Permissions")
    add_story(project, "01.4", "Audit")
    run(project, ("P1", "done"), ("P2", "done"), ("P3", "done"), ("P5", "done", {"review": APPROVED}),
        ("P6", "done", {"qa": ALL_PASS}), ("P7", "done"))
    write(project, "P1", "failed", story="01.4")
    plan = resume_plan(project, GLOB)
    assert plan["stories"] == [] and plan["left"] == {
        "01.2": "done", "01.3": "P1 ux-designer (not started)", "01.4": "blocked: P1 failed"}
    assert resume_plan(project, GLOB, ["01.3"]) == {"stories": ["01.3"], "resume": {}, "developer": {}, "left": {}}
    assert hybrid(["resume-args", "01.3", "--no-workflow", "--project", str(project)]) == 0
    assert json.loads(capsys.readouterr().out)["stories"] == ["01.3"]
    assert hybrid(["resume-args", "--project", str(project)]) == 0
    assert "nothing to resume" in capsys.readouterr().err
    assert hybrid(["resume-args", "09.9", "--project", str(project)]) == 1
    assert capsys.readouterr().err == "hybrid: unknown story 09.9; known: 01.2, 01.3, 01.4\n"


def test_resume_plan_keeps_a_frontend_storys_developer(project):
    run(project, ("P1", "done"), ("P2", "done"), ("P3", "done", {"agent": "frontend-dev"}))
    assert resume_plan(project, GLOB)["developer"] == {STORY: "frontend-dev"}
