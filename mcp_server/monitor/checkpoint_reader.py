"""The checkpoints, each read once: in worker processes when there are many (while SQLite sums
the ledger), and kept in ``.claude/hybrid/monitor-cache.json``, keyed by each file's size, mtime
and inode (and by the schema and the checkpoint code), so a file is parsed again only when it
changed. Reads go through the public ``mcp_server.checkpoints`` API, which checks the schema.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from mcp_server import checkpoints as checkpoint_module
from mcp_server.checkpoints import (
    CHECKPOINTS_RELATIVE,
    Checkpoint,
    CheckpointNotFound,
    load_checkpoint,
    next_action,
    review_rounds,
)
from mcp_server.errors import HybridError
from mcp_server.ledger import LEDGER_RELATIVE
from mcp_server.monitor.inputs import StoryInput

PARALLEL_FROM = 200  # checkpoints to parse; fewer are read in this process
CACHE_RELATIVE = LEDGER_RELATIVE.parent / "monitor-cache.json"
CACHE_FORMAT = "1"


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
    package = Path(checkpoint_module.__file__).parent  # every module of the checkpoints package
    for source in (resources.files("mcp_server.data").joinpath("checkpoint.schema.json"), *sorted(package.glob("*.py"))):
        try:
            digest.update(source.read_bytes())
        except OSError:
            digest.update(os.urandom(8))  # unknown: never reuse
    return digest.hexdigest()[:24]


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
