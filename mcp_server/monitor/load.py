"""Everything the report reads, read once: the ledger summed in SQL (``ledger_sums``), the
checkpoints (``checkpoint_reader``: in worker processes for many stories, cached by file key),
and the coverage files each checkpoint names. The result is a ``MonitorInput`` (``inputs``); the
numbers are computed from it by the pure functions of ``report``.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Sequence

from mcp_server.checkpoints import CHECKPOINTS_RELATIVE, checkpoints_dir
from mcp_server.errors import HybridError
from mcp_server.ledger import ledger_path
from mcp_server.ledger_faults import describe, timeout_s
from mcp_server.monitor.cache import MonitorCache
from mcp_server.monitor.checkpoint_reader import CheckpointCache, read_inputs, start_parallel
from mcp_server.monitor.inputs import (
    CoverageInfo,
    MonitorArgumentError,
    MonitorInput,
    MonitorInputError,
    StoryInput,
    UsageGroup,
    ledger_stamp,
    parse_time,
)
from mcp_server.monitor.ledger_sums import LedgerReader, agent_gaps, query_groups, sessions_of, test_runs
from mcp_server.monitor.story_coverage import CoverageFiles, with_coverage
from mcp_server.pricing import PriceTable
from mcp_server.stories import check_story_id, natural_key


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
    cache = MonitorCache(root, enabled=use_cache)
    checkpoints = CheckpointCache(cache)
    cached = {story: item for story in selected if (item := checkpoints.get(root, story)) is not None}
    to_read = [story for story in selected if story not in cached]
    pending = start_parallel(root, to_read)  # fork before SQLite opens anything
    try:
        ledger = LedgerReader(path, cache.section("ledger") if use_cache else None)
        try:
            split_at = sorted(selected)[len(selected) // 2] if len(selected) > 1 else None  # SQL's order
            groups = query_groups(ledger, prices, since, until, split_at=split_at)
            gaps = agent_gaps(ledger)
            tested = test_runs(ledger, selected, since, until)
            inputs = read_inputs(root, to_read, pending, checkpoints, cached)
            pending = (None, None)
            chosen = set(selected)
            mine = [g for g in groups if g.story in chosen]
            others = [g for g in groups if g.story is not None and g.story not in chosen]
            window, sessions, shared = None, [], []
            if explicit:
                # The orchestrator's turns belong to the session that ran the stories: they come
                # before the first phase starts and after the last one ends, so no time window
                # holds them. Rows without a session id fall back to the stories' time window.
                sessions, shared = sessions_of(ledger, selected, since, until)
                unattributed = query_groups(ledger, prices, since, until, unattributed_only=True, sessions=sessions) if sessions else []
                window = _story_window(selected, mine, inputs)
                if window is not None:
                    low = max(window[0], since) if since else window[0]
                    # the window's last moment is included: bound it just after
                    high = min(_after(window[1]), until) if until else _after(window[1])
                    unattributed += query_groups(ledger, prices, low, high, unattributed_only=True)
            else:
                unattributed = [g for g in groups if g.story is None]
            if ledger.changed:
                cache.mark_changed()
        finally:
            ledger.close()
    except sqlite3.Error as error:  # locked past the timeout, or not a database: one line naming it
        problem = str(describe(path, error, timeout_s())).removeprefix("usage ledger ")
        raise MonitorInputError(f"the usage ledger cannot be read: {problem}") from None
    finally:
        if pending[0] is not None:
            pending[0].terminate()
    warnings: list[str] = []
    inputs = with_coverage(root, {story: inputs[story] for story in selected}, warnings, CoverageFiles(cache))
    cache.save()
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
        agent_gaps=gaps,
        test_runs=tested,
    )


def _after(stamp: str) -> str:
    moment = parse_time(stamp)
    return ledger_stamp(moment + timedelta(milliseconds=1)) if moment else stamp
