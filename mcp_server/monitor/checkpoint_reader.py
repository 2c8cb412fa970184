"""The checkpoints, each read once: in worker processes when there are many (while SQLite sums
the ledger), and kept in the ``stories`` section of the cache (``cache``), keyed by each file's
size, mtime and inode, so a file is parsed again only when it changed. Reads go through the
public ``mcp_server.checkpoints`` API, which checks the schema.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

from mcp_server.checkpoints import (
    CHECKPOINTS_RELATIVE,
    Checkpoint,
    CheckpointNotFound,
    checkpoint_path,
    load_checkpoint,
    next_action,
    review_rounds,
)
from mcp_server.errors import HybridError
from mcp_server.monitor.cache import MonitorCache
from mcp_server.monitor.inputs import FileKey, StoryInput, file_key

PARALLEL_FROM = 200  # checkpoints to parse; fewer are read in this process


def _story_input(root: Path, story: str) -> tuple[StoryInput, FileKey | None]:
    """The story's checkpoint, and the file's key when it did not change while it was read."""
    path = checkpoint_path(root, story)
    before = file_key(path)
    try:
        checkpoint = load_checkpoint(root, story)
    except CheckpointNotFound:
        return StoryInput(story, None, f"no checkpoint ({(CHECKPOINTS_RELATIVE / f'{story}.yaml').as_posix()} does not exist)"), None
    except HybridError as error:
        return StoryInput(story, None, str(error)), None
    stable = before is not None and before == file_key(path)
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
    """Checkpoints already read and checked, by file key: the ``stories`` section of the cache."""

    def __init__(self, cache: MonitorCache):
        self.cache = cache
        self.entries = cache.section("stories")

    def get(self, root: Path, story: str) -> StoryInput | None:
        entry = self.entries.get(story)
        if not (
            isinstance(entry, dict) and isinstance(entry.get("data"), dict) and isinstance(entry.get("reviews"), list)
            and isinstance(entry.get("next"), (str, type(None))) and all(isinstance(r, dict) for r in entry["reviews"])
        ):
            return None
        key = file_key(checkpoint_path(root, story))
        if key is None or list(key) != entry.get("key"):
            return None
        return StoryInput(story, entry["data"], next_action=entry["next"], reviews=tuple(entry["reviews"]))

    def put(self, item: StoryInput, key: FileKey | None) -> None:
        if key is None or item.data is None:
            return
        self.entries[item.story] = {"key": list(key), "data": item.data, "next": item.next_action, "reviews": list(item.reviews)}
        self.cache.mark_changed()


def start_parallel(root: Path, stories: list[str]):
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


def read_inputs(root: Path, stories: list[str], pending, cache: CheckpointCache, cached: dict[str, StoryInput]) -> dict[str, StoryInput]:
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
