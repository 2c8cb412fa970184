"""One side of a comparison: its folder, its ledger, the run it is narrowed to, and what the
monitor reports for it. Read-only: nothing here writes to either side's folder (the monitor's
cache is not used), and the ledger is opened read-only.

A side is `PATH` or `PATH@RUN_ID`. The run id narrows the side to that run's stories and to the
time from its first ledger row to its last; it needs a ledger that records run ids (a `run_id`
column in `usage`), and is refused, with a line that says so, on one that does not.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping, Sequence

from mcp_server.checkpoints import CHECKPOINTS_RELATIVE, checkpoints_dir
from mcp_server.config import Settings
from mcp_server.errors import HybridError
from mcp_server.ledger import ledger_path
from mcp_server.ledger_faults import timeout_s
from mcp_server.monitor import MonitorInputError, Report, build_report, load_input, parse_bound
from mcp_server.pricing import PriceTable
from mcp_server.stories import natural_key

RUN_COLUMN = "run_id"  # written by the pilot's run records; older ledgers have none
CODE_TOOLS = ("implement", "refactor")  # the GLM tools whose tests may send a fix round
_FIX_ROUNDS = re.compile(r"after (\d+) fix rounds?\b")


class CompareInputError(HybridError):
    """Nothing to compare yet: no ledger, no checkpoints, no common story, an unreadable ledger."""

    exit_code = 1


class CompareArgumentError(HybridError):
    """A side or flag that cannot be used: a missing folder, a malformed run id."""

    exit_code = 2


@dataclass(frozen=True)
class SideSpec:
    name: str  # "A" or "B"
    path: Path
    run: str | None = None

    @property
    def label(self) -> str:
        return f"{self.path}@{self.run}" if self.run else str(self.path)


_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def parse_side(name: str, text: str) -> SideSpec:
    """`PATH` or `PATH@RUN_ID`; a folder whose own name holds an `@` is taken whole."""
    whole = Path(text).expanduser()
    path_text, run = text, None
    if "@" in text and not whole.is_dir():
        path_text, _, run = text.rpartition("@")
        if not _RUN_ID.match(run):
            raise CompareArgumentError(f"{name}: {text!r}: the run id after '@' must be letters, digits, '.', '_', ':' or '-'")
    path = Path(path_text).expanduser().resolve()
    if not path.is_dir():
        raise CompareArgumentError(f"{name}: no such folder: {path}")
    return SideSpec(name, path, run)


@dataclass(frozen=True)
class LedgerFacts:
    """What the comparison needs from a side's ledger besides the monitor's sums."""

    stories: list[str] | None  # the run's stories (None: every story with a checkpoint)
    since: str | None  # the run's first row ...
    until: str | None  # ... and just after its last (the monitor's bound is exclusive)
    code_requests: dict[str, int]  # per story, GLM requests of implement and refactor
    engine: str | None = None  # as the ledger's run records say (one engine for all its runs), else None
    recorded_fix_rounds: dict[str, int] = field(default_factory=dict)  # per story, the test_run table's


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=timeout_s())  # the ledger's own busy timeout


def read_ledger_facts(spec: SideSpec) -> LedgerFacts:
    path = ledger_path(spec.path)
    if not path.is_file():
        raise CompareInputError(f"{spec.name}: no usage ledger at {path}: run /hybrid:pilot there first")
    try:
        conn = _connect(path)
        try:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(usage)")}
            if not columns:
                raise CompareInputError(f"{spec.name}: {path} is not a usage ledger (it has no usage table)")
            where, params, stories, since, until = "", [], None, None, None
            if spec.run is not None:
                stories, since, until = _run_window(conn, spec, columns, path)
                where, params = f" AND {RUN_COLUMN} = ?", [spec.run]
            requests = {}
            if "tool" in columns:
                rows = conn.execute(
                    "SELECT story, COUNT(*) FROM usage WHERE provider = 'glm' AND story IS NOT NULL"
                    f" AND tool IN (?, ?){where} GROUP BY story", [*CODE_TOOLS, *params]
                ).fetchall()
                requests = {story: int(count) for story, count in rows}
            recorded = _recorded_fix_rounds(conn, spec.run)
            engine = _recorded_engine(conn, spec.run)
        finally:
            conn.close()
    except sqlite3.Error as error:
        raise CompareInputError(f"{spec.name}: the usage ledger {path} cannot be read: {error}") from None
    return LedgerFacts(stories, since, until, requests, engine, recorded)


def _recorded_fix_rounds(conn: sqlite3.Connection, run: str | None) -> dict[str, int]:
    """Per story, the fix rounds its GLM code calls recorded as they ran their tests (the
    ``test_run`` table, mcp_server/ledger_test_runs.py); {} on a ledger from before it."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'test_run'").fetchone():
        return {}
    rows = conn.execute("SELECT story, SUM(fix_rounds) FROM test_run" + (" WHERE run_id = ?" if run else "")
                        + " GROUP BY story", [run] if run else []).fetchall()
    return {story: int(total) for story, total in rows}


def _recorded_engine(conn: sqlite3.Connection, run: str | None) -> str | None:
    """The engine the pilot recorded for the run (or for every run of the ledger, when they
    agree), from its ``run`` table; None for a ledger without one."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'run'").fetchone():
        return None
    rows = conn.execute("SELECT DISTINCT engine FROM run" + (" WHERE id = ?" if run else ""), [run] if run else []).fetchall()
    return rows[0][0] if len(rows) == 1 else None


def _run_window(conn: sqlite3.Connection, spec: SideSpec, columns: set[str], path: Path) -> tuple[list[str], str, str]:
    if RUN_COLUMN not in columns:
        raise CompareInputError(
            f"{spec.name}: the ledger {path} records no run ids, so @{spec.run} cannot narrow it; compare the whole folder"
        )
    first, last = conn.execute(f"SELECT MIN(ts), MAX(ts) FROM usage WHERE {RUN_COLUMN} = ?", [spec.run]).fetchone()
    if first is None:
        known = [row[0] for row in conn.execute(
            f"SELECT {RUN_COLUMN} FROM usage WHERE {RUN_COLUMN} IS NOT NULL GROUP BY {RUN_COLUMN} ORDER BY MIN(ts) DESC LIMIT 10"
        )]
        raise CompareInputError(f"{spec.name}: no run {spec.run} in {path}; its latest runs: {', '.join(known) or 'none'}")
    stories = sorted(
        (row[0] for row in conn.execute(f"SELECT DISTINCT story FROM usage WHERE {RUN_COLUMN} = ? AND story IS NOT NULL", [spec.run])),
        key=natural_key,
    )
    return stories, first, _just_after(last)


def _just_after(stamp: str) -> str:
    """The monitor's upper bound is exclusive: one millisecond (the ledger's resolution) past
    the run's last row, in the ledger's own form so that the strings compare as times."""
    return parse_bound(_after_ms(parse_bound(stamp)))


def _after_ms(stamp: str) -> str:
    return (datetime.fromisoformat(stamp) + timedelta(milliseconds=1)).isoformat(timespec="milliseconds")


def checkpoint_stories(spec: SideSpec) -> list[str]:
    directory = checkpoints_dir(spec.path)
    found = sorted((p.stem for p in directory.glob("*.yaml") if not p.name.startswith(".")), key=natural_key) if directory.is_dir() else []
    if not found:
        raise CompareInputError(f"{spec.name}: no checkpoints under {spec.path / CHECKPOINTS_RELATIVE}: run /hybrid:pilot there first")
    return found


# --- the side, as the monitor reports it ----------------------------------------------------------


@dataclass
class Estimate:
    """The Claude-only cost the monitor estimates for a side under one baseline."""

    name: str
    baseline: dict[str, str]
    total: Decimal
    stories: dict[str, Decimal]
    complete: bool  # every group priced under it (else the figure leaves some usage out)


@dataclass
class Side:
    spec: SideSpec
    report: Report
    estimates: list[Estimate] = field(default_factory=list)
    fix_rounds: dict[str, int | None] = field(default_factory=dict)
    recorded_engine: str | None = None  # the pilot's run records; None without them

    @property
    def glm_requests(self) -> int:
        return self.report.total.tokens["glm"].calls

    @property
    def engine(self) -> str:
        return self.recorded_engine or ("hybrid" if self.glm_requests else "claude")

    @property
    def engine_warning(self) -> str | None:
        if self.recorded_engine == "claude" and self.glm_requests:
            return f"it ran engine=claude yet made {self.glm_requests} GLM request(s): not a Claude-only measurement"
        return None


def named_baselines(settings: Settings) -> list[tuple[str, dict[str, str]]]:
    """The baselines a hybrid side's estimate is shown under: every one of `monitor.baselines`,
    the primary (the one `hybrid report`'s verdict is taken against) first."""
    return [(name, dict(settings.monitor.baselines[name])) for name in settings.monitor.baseline_names]


def load_side(
    spec: SideSpec,
    facts: LedgerFacts,
    stories: Sequence[str] | None,
    prices: PriceTable,
    settings: Settings,
    baselines: Sequence[tuple[str, Mapping[str, str]]],
) -> Side:
    """The monitor's report for the side (``stories`` None: every story with a checkpoint), its
    Claude-only estimates under each baseline, and each story's fix rounds."""
    try:
        data = load_input(spec.path, prices, stories=stories, since=facts.since, until=facts.until, use_cache=False)
    except MonitorInputError as error:
        raise CompareInputError(f"{spec.name} ({spec.path}): {error}") from None
    report = build_report(data, prices, settings.monitor)
    complete = report.total.compared == report.total.total and not report.total.unpriced
    estimates = [  # every report prices each baseline of monitor.baselines, in this order
        Estimate(name, dict(mapping), report.total.baseline_at(index),
                 {row.story: row.money.baseline_at(index) for row in report.story_rows}, complete=complete)
        for index, (name, mapping) in enumerate(baselines)
    ]
    rounds = {row.story: facts.recorded_fix_rounds[row.story] if row.story in facts.recorded_fix_rounds
              else fix_rounds(data.inputs[row.story].data, facts.code_requests.get(row.story, 0)) for row in report.story_rows}
    return Side(spec, report, estimates, rounds, facts.engine)


def fix_rounds(data: Mapping[str, Any] | None, code_requests: int) -> int | None:
    """A story's test-fix rounds where the ledger recorded none (older ledgers). With GLM code calls (the hybrid engine): the ledger's GLM
    requests of implement and refactor beyond one per call (one per P3 round, one for a P4 that
    ran), as the demo's narrative counts them. Without (the Claude-only engine writes the code
    itself): the rounds the P3 and P4 summaries state ("tests passed after 1 fix round"); None
    when neither says."""
    phases = (data or {}).get("phases") or {}
    if code_requests:
        p3, p4 = phases.get("P3") or {}, phases.get("P4") or {}
        calls = int(p3.get("iteration") or 1) + (1 if p4.get("status") == "done" else 0)
        return max(0, code_requests - calls)
    stated = [int(match.group(1)) for name in ("P3", "P4")
              for match in [_FIX_ROUNDS.search(str((phases.get(name) or {}).get("summary") or ""))] if match]
    return sum(stated) if stated else None
