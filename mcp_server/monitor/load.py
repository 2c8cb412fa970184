"""Everything the report reads, read once: the ledger in one SQL pass, the checkpoints, the
coverage files. The numbers are computed from this by the pure functions of ``report``.

The ledger is summed in SQL by (story, phase, provider, model, price-tier bucket, UTC hour):
a million rows become a few thousand groups, and no Python loop ever sees a single row. The
checkpoints are read with the public ``mcp_server.checkpoints`` API (every read checks the JSON
Schema, about 3 ms a file); for many stories they are read in worker processes while SQLite
sums the ledger, and what was read is kept in ``.claude/hybrid/monitor-cache.json``, keyed by
each file's size, mtime and inode (and by the schema and the checkpoint code), so a file is
parsed again only when it changed.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sqlite3
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from mcp_server import checkpoints as checkpoint_module
from mcp_server.checkpoints import (
    CHECKPOINTS_RELATIVE,
    Checkpoint,
    CheckpointNotFound,
    checkpoints_dir,
    load_checkpoint,
    next_action,
    review_rounds,
)
from mcp_server.errors import HybridError
from mcp_server.ledger import LEDGER_RELATIVE, ledger_path
from mcp_server.ledger_faults import describe, timeout_s
from mcp_server.monitor.coverage import CoverageError, read_coverage
from mcp_server.pricing import PriceTable, TokenCounts
from mcp_server.stories import check_story_id, natural_key

PARALLEL_FROM = 200  # checkpoints to parse; fewer are read in this process
CACHE_RELATIVE = LEDGER_RELATIVE.parent / "monitor-cache.json"
CACHE_FORMAT = "1"


class MonitorInputError(HybridError):
    """Nothing to report on yet (no ledger, no checkpoints, an unreadable ledger); one line for the user."""


class MonitorArgumentError(HybridError):
    """An argument that cannot be used (a story id, a date); one line for the user."""


@dataclass(frozen=True)
class UsageGroup:
    """The ledger's rows of one (story, phase, provider, model, tier bucket, UTC hour), summed."""

    story: str | None
    phase: str | None
    provider: str
    model: str
    bucket: int
    hour: str  # "YYYY-MM-DDTHH", UTC
    calls: int
    tokens: TokenCounts
    first_ts: str
    last_ts: str


@dataclass(frozen=True)
class CoverageInfo:
    percent: float
    source: str  # the file named by the checkpoint
    how: str  # "cobertura" | "lcov" | "coverage.py" (read from the file) | "checkpoint" (recorded value)
    recorded: float  # the percent the checkpoint recorded
    note: str | None = None


@dataclass(frozen=True)
class StoryInput:
    story: str
    data: dict[str, Any] | None  # the checkpoint's data, None when there is none or it is unreadable
    problem: str | None = None
    next_action: str | None = None
    reviews: tuple[dict[str, Any], ...] = ()  # every review round, oldest first
    coverage: CoverageInfo | None = None


@dataclass
class MonitorInput:
    root: Path
    stories: list[str]  # the selected stories, in natural order
    explicit: bool  # chosen with --stories (else: every story with a checkpoint)
    groups: list[UsageGroup]  # the selected stories' groups and the unattributed ones in scope
    other_groups: list[UsageGroup]  # groups of stories outside the selection
    inputs: dict[str, StoryInput]
    since: str | None
    until: str | None
    unattributed_window: tuple[str, str] | None  # set when a subset was chosen
    warnings: list[str] = field(default_factory=list)
    # With a subset: the Claude Code sessions that ran a selected story, whose orchestration is in
    # scope, and the other stories those sessions ran too.
    sessions: list[str] = field(default_factory=list)
    other_stories_in_sessions: list[str] = field(default_factory=list)


# --- time bounds --------------------------------------------------------------------------------


def ledger_stamp(moment: datetime) -> str:
    """The ledger's own timestamp form (UTC, milliseconds), so that strings compare as times."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def parse_bound(text: str, *, end: bool = False) -> str:
    """--since/--until: a date (YYYY-MM-DD) or an ISO 8601 time; naive times are UTC.

    A bare date as --until means the end of that day (the bound is exclusive).
    """
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            if end:
                moment += timedelta(days=1)
            return ledger_stamp(moment)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MonitorArgumentError(
            f"{'--until' if end else '--since'} {text!r} is not a date (2026-11-25) or an ISO time (2026-11-25T14:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return ledger_stamp(moment)


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# --- the ledger ---------------------------------------------------------------------------------

_SUMS = (
    "COUNT(*), SUM(prompt_tokens), SUM(cached_tokens), SUM(cache_write_5m_tokens),"
    " SUM(cache_write_1h_tokens), SUM(completion_tokens), MIN(ts), MAX(ts)"
)


def _connect(path: Path) -> sqlite3.Connection:
    # read-only: a report never creates or changes the ledger
    conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True, timeout=timeout_s())
    conn.execute(f"PRAGMA busy_timeout={int(timeout_s() * 1000)}")
    for pragma in ("PRAGMA threads=4", "PRAGMA cache_size=-262144", "PRAGMA temp_store=MEMORY"):
        try:
            conn.execute(pragma)
        except sqlite3.Error:
            pass
    return conn


def _groups(rows: Sequence[tuple]) -> list[UsageGroup]:
    return [
        UsageGroup(
            story=story,
            phase=phase,
            provider=provider,
            model=model,
            bucket=int(bucket or 0),
            hour=hour or "",
            calls=int(calls),
            tokens=TokenCounts(int(p or 0), int(c or 0), int(w5 or 0), int(w1 or 0), int(o or 0)),
            first_ts=first or "",
            last_ts=last or "",
        )
        for story, phase, provider, model, bucket, hour, calls, p, c, w5, w1, o, first, last in rows
    ]


def _where(since: str | None, until: str | None, extra: Sequence[str] = ()) -> tuple[str, list[str]]:
    clauses, params = list(extra), []
    if since:
        clauses.append("ts >= ?")
        params.append(since)
    if until:
        clauses.append("ts < ?")
        params.append(until)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params


def query_groups(
    conn: sqlite3.Connection,
    prices: PriceTable,
    since: str | None,
    until: str | None,
    *,
    unattributed_only: bool = False,
    sessions: Sequence[str] | None = None,
) -> list[UsageGroup]:
    """Usage summed per (story, phase, provider, model, price tier, hour). ``unattributed_only``
    keeps rows without a story: of the given ``sessions``, or, with ``sessions`` None, rows that
    have no session id (GLM calls and older rows; a time window decides for those)."""
    extra = ["story IS NULL"] if unattributed_only else []
    if unattributed_only:
        extra.append(f"session_id IN ({', '.join('?' for _ in sessions)})" if sessions else "session_id IS NULL")
    where, params = _where(since, until, extra)
    if unattributed_only and sessions:
        params = [*sessions, *params]
    sql = (
        f"SELECT story, phase, provider, model, {prices.bucket_sql()} AS bucket, substr(ts, 1, 13) AS hour, {_SUMS}"
        f" FROM usage {where} GROUP BY story, phase, provider, model, bucket, hour"
    )
    return _groups(conn.execute(sql, params).fetchall())


# --- checkpoints --------------------------------------------------------------------------------


FileKey = tuple[int, int, int]  # size, mtime_ns, inode


def _file_key(path: Path) -> FileKey | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns, stat.st_ino)


def _story_input(root: Path, story: str) -> tuple[StoryInput, FileKey | None]:
    """The story's checkpoint, and the file's key when it did not change while it was read."""
    path = checkpoint_module.checkpoint_path(root, story)
    before = _file_key(path)
    try:
        checkpoint = load_checkpoint(root, story)
    except CheckpointNotFound:
        return StoryInput(story, None, f"no checkpoint ({(CHECKPOINTS_RELATIVE / f'{story}.yaml').as_posix()} does not exist)"), None
    except HybridError as error:
        return StoryInput(story, None, str(error)), None
    stable = before is not None and before == _file_key(path)
    return _from_checkpoint(checkpoint), before if stable else None


def _from_checkpoint(checkpoint: Checkpoint) -> StoryInput:
    return StoryInput(
        checkpoint.story,
        checkpoint.data,
        next_action=next_action(checkpoint),
        reviews=tuple(review_rounds(checkpoint)),
    )


def _load_chunk(job: tuple[str, list[str]]) -> list[tuple[StoryInput, FileKey | None]]:
    root, stories = job
    return [_story_input(Path(root), story) for story in stories]


class CheckpointCache:
    """Checkpoints already read and checked, by file key. Losing it only costs time."""

    def __init__(self, root: Path, enabled: bool = True):
        self.path = Path(root) / CACHE_RELATIVE
        self.enabled = enabled
        self.fingerprint = _fingerprint()
        self.entries: dict[str, dict[str, Any]] = {}
        self.changed = False
        if enabled:
            try:
                stored = json.loads(self.path.read_text(encoding="utf-8"))
                if stored.get("fingerprint") == self.fingerprint and isinstance(stored.get("stories"), dict):
                    self.entries = stored["stories"]
            except (OSError, ValueError, AttributeError):
                pass

    def get(self, root: Path, story: str) -> StoryInput | None:
        entry = self.entries.get(story)
        if not (
            isinstance(entry, dict) and isinstance(entry.get("data"), dict) and isinstance(entry.get("reviews"), list)
            and isinstance(entry.get("next"), (str, type(None))) and all(isinstance(r, dict) for r in entry["reviews"])
        ):
            return None
        key = _file_key(checkpoint_module.checkpoint_path(root, story))
        if key is None or list(key) != entry.get("key"):
            return None
        return StoryInput(story, entry["data"], next_action=entry["next"], reviews=tuple(entry["reviews"]))

    def put(self, item: StoryInput, key: FileKey | None) -> None:
        if key is None or item.data is None:
            return
        self.entries[item.story] = {"key": list(key), "data": item.data, "next": item.next_action, "reviews": list(item.reviews)}
        self.changed = True

    def save(self) -> None:
        if not (self.enabled and self.changed):
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=".monitor-cache~", suffix=".tmp", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"fingerprint": self.fingerprint, "stories": self.entries}, handle, separators=(",", ":"))
            os.replace(name, self.path)
        except OSError:
            try:
                os.unlink(name)
            except (OSError, UnboundLocalError):
                pass


def _fingerprint() -> str:
    """What a cached read depends on: the schema, the checkpoint code, the cache's own format."""
    digest = hashlib.sha256(CACHE_FORMAT.encode())
    for source in (
        resources.files("mcp_server.data").joinpath("checkpoint.schema.json"),
        *sorted(Path(checkpoint_module.__file__).parent.glob("*.py")),  # every module of the package
    ):
        try:
            digest.update(source.read_bytes())
        except OSError:
            digest.update(os.urandom(8))  # unknown: never reuse
    return digest.hexdigest()[:24]


def _start_parallel(root: Path, stories: list[str]):
    """Worker processes reading the checkpoints, started before any thread or connection."""
    if len(stories) < PARALLEL_FROM or (os.cpu_count() or 1) < 2:
        return None, None
    try:
        context = multiprocessing.get_context("fork")
    except ValueError:  # no fork (Windows): read them here
        return None, None
    workers = min(os.cpu_count() or 2, 8)
    size = max(1, -(-len(stories) // (workers * 4)))
    chunks = [(str(root), stories[i : i + size]) for i in range(0, len(stories), size)]
    pool = context.Pool(workers)
    return pool, pool.map_async(_load_chunk, chunks)


def _read_inputs(root: Path, stories: list[str], pending, cache: CheckpointCache, cached: dict[str, StoryInput]) -> dict[str, StoryInput]:
    pool, result = pending
    if pool is None:
        loaded = [_story_input(root, story) for story in stories]
    else:
        try:
            loaded = [pair for chunk in result.get() for pair in chunk]
        finally:
            pool.close()
            pool.join()
    for item, key in loaded:
        cache.put(item, key)
    fresh = {item.story: item for item, _ in loaded}
    return {story: cached.get(story) or fresh[story] for story in (*cached, *fresh)}


def _with_coverage(root: Path, inputs: dict[str, StoryInput], warnings: list[str]) -> dict[str, StoryInput]:
    """Each story's coverage: read from the file its checkpoint names, else the recorded percent."""
    cache: dict[Path, Any] = {}
    bad: dict[str, list[str]] = {}
    drift: dict[str, list[str]] = {}
    result = {}
    for story, item in inputs.items():
        recorded = (item.data or {}).get("coverage")
        if not recorded:
            result[story] = item
            continue
        source, percent = str(recorded["source"]), float(recorded["percent"])
        path = Path(source) if Path(source).is_absolute() else root / source
        if path not in cache:
            try:
                cache[path] = read_coverage(path) if path.is_file() else None
            except CoverageError as error:
                cache[path] = error
        reading = cache[path]
        if reading is None:
            info = CoverageInfo(percent, source, "checkpoint", percent, note=f"{source} not found; the checkpoint's value")
        elif isinstance(reading, CoverageError):
            bad.setdefault(source, []).append(story)
            info = CoverageInfo(percent, source, "checkpoint", percent, note=f"{source} unreadable; the checkpoint's value")
            cache[path] = reading
        else:
            info = CoverageInfo(reading.percent, source, reading.format, percent)
            if abs(reading.percent - percent) >= 0.05:
                drift.setdefault(source, []).append(f"{story} recorded {percent:g}%")
        result[story] = StoryInput(item.story, item.data, item.problem, item.next_action, item.reviews, info)
    for source, stories in bad.items():
        path = Path(source) if Path(source).is_absolute() else root / source
        warnings.append(
            f"coverage report {source} is unreadable ({_reason(cache[path], path)}); "
            f"the report uses the percent the checkpoint recorded for {_listed(stories)}"
        )
    for source, notes in drift.items():
        path = Path(source) if Path(source).is_absolute() else root / source
        warnings.append(
            f"coverage report {source} now says {cache[path].percent:.1f}%, which the report uses; "
            f"its checkpoints recorded otherwise: {_listed(notes)}"
        )
    return result


def _reason(error: CoverageError, path: Path) -> str:
    text = str(error)
    prefix = f"{path}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def _listed(items: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


# --- all of it ----------------------------------------------------------------------------------


def selected_stories(root: Path, stories: Sequence[str] | None) -> tuple[list[str], bool]:
    if stories:
        for story in stories:
            try:
                check_story_id(story)
            except HybridError as error:
                raise MonitorArgumentError(f"--stories: {error}") from None
        return sorted(dict.fromkeys(stories), key=natural_key), True
    directory = checkpoints_dir(root)
    found = [p.stem for p in directory.glob("*.yaml") if not p.name.startswith(".")] if directory.is_dir() else []
    if not found:
        raise MonitorInputError(f"no checkpoints under {CHECKPOINTS_RELATIVE.as_posix()}/: run /hybrid:pilot first")
    return sorted(found, key=natural_key), False


def _story_window(stories: list[str], groups: list[UsageGroup], inputs: dict[str, StoryInput]) -> tuple[str, str] | None:
    """From the selected stories' first activity to their last: ledger rows and phase times."""
    starts, ends = [], []
    for group in groups:
        starts.append(group.first_ts)
        ends.append(group.last_ts)
    for story in stories:
        data = inputs[story].data
        for phase in (data or {}).get("phases", {}).values():
            for key, bucket in (("started_at", starts), ("finished_at", ends)):
                moment = parse_time(phase.get(key))
                if moment is not None:
                    bucket.append(ledger_stamp(moment))
    starts, ends = [s for s in starts if s], [e for e in ends if e]
    if not starts or not ends:
        return None
    return min(starts), max(ends)


def load_input(
    root: Path,
    prices: PriceTable,
    *,
    stories: Sequence[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    use_cache: bool = True,
) -> MonitorInput:
    root = Path(root)
    path = ledger_path(root)
    if not path.is_file():
        raise MonitorInputError(f"no usage ledger at {path}: run /hybrid:pilot (or a GLM tool) first")
    selected, explicit = selected_stories(root, stories)
    cache = CheckpointCache(root, enabled=use_cache)
    cached = {story: item for story in selected if (item := cache.get(root, story)) is not None}
    to_read = [story for story in selected if story not in cached]
    pending = _start_parallel(root, to_read)  # fork before SQLite opens anything
    try:
        conn = _connect(path)
        try:
            groups = query_groups(conn, prices, since, until)
            inputs = _read_inputs(root, to_read, pending, cache, cached)
            pending = (None, None)
            chosen = set(selected)
            mine = [g for g in groups if g.story in chosen]
            others = [g for g in groups if g.story is not None and g.story not in chosen]
            window, sessions, shared = None, [], []
            if explicit:
                # The orchestrator's turns belong to the session that ran the stories: they come
                # before the first phase starts and after the last one ends, so no time window
                # holds them. Rows without a session id fall back to the stories' time window.
                sessions, shared = _sessions_of(conn, selected, since, until)
                unattributed = query_groups(conn, prices, since, until, unattributed_only=True, sessions=sessions) if sessions else []
                window = _story_window(selected, mine, inputs)
                if window is not None:
                    low = max(window[0], since) if since else window[0]
                    # the window's last moment is included: bound it just after
                    high = min(_after(window[1]), until) if until else _after(window[1])
                    unattributed += query_groups(conn, prices, low, high, unattributed_only=True)
            else:
                unattributed = [g for g in groups if g.story is None]
        finally:
            conn.close()
    except sqlite3.Error as error:  # locked past the timeout, or not a database: one line naming it
        problem = str(describe(path, error, timeout_s())).removeprefix("usage ledger ")
        raise MonitorInputError(f"the usage ledger cannot be read: {problem}") from None
    finally:
        if pending[0] is not None:
            pending[0].terminate()
    cache.save()
    warnings: list[str] = []
    inputs = _with_coverage(root, {story: inputs[story] for story in selected}, warnings)
    return MonitorInput(
        root=root,
        stories=selected,
        explicit=explicit,
        groups=mine + unattributed,
        other_groups=others,
        inputs=inputs,
        since=since,
        until=until,
        unattributed_window=window,
        warnings=warnings,
        sessions=sessions,
        other_stories_in_sessions=shared,
    )


def _sessions_of(
    conn: sqlite3.Connection, stories: Sequence[str], since: str | None, until: str | None
) -> tuple[list[str], list[str]]:
    """The sessions with usage of the selected stories, and the other stories they ran."""
    marks = ", ".join("?" for _ in stories)
    where, params = _where(since, until, [f"story IN ({marks})", "session_id IS NOT NULL"])
    sessions = [row[0] for row in conn.execute(f"SELECT DISTINCT session_id FROM usage {where}", [*stories, *params])]
    if not sessions:
        return [], []
    others = conn.execute(
        f"SELECT DISTINCT story FROM usage WHERE session_id IN ({', '.join('?' for _ in sessions)})"
        f" AND story IS NOT NULL AND story NOT IN ({marks})",
        [*sessions, *stories],
    )
    return sorted(sessions), sorted(row[0] for row in others)


def _after(stamp: str) -> str:
    moment = parse_time(stamp)
    return ledger_stamp(moment + timedelta(milliseconds=1)) if moment else stamp
