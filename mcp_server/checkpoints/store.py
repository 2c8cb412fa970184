"""Checkpoint files: paths, the per-story lock, atomic replace; read, create, write and list.

Writes are serialised per story by a flock on a sidecar file and land by rename, so a reader
sees the old file or the new one, never a mix, and a writer killed mid-write leaves the old one.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from mcp_server.checkpoints.model import (
    CHECKPOINTS_RELATIVE,
    PHASES,
    Checkpoint,
    CheckpointError,
    CheckpointListing,
    CheckpointNotFound,
    Update,
    WriteOutcome,
    new_checkpoint_data,
    zero_tokens,
)
from mcp_server.checkpoints.history_file import copy_span, read_split
from mcp_server.checkpoints.rules import apply_update
from mcp_server.checkpoints.validation import check_update, validate_data
from mcp_server.checkpoints.yaml_document import parse_checkpoint, render_checkpoint
from mcp_server.errors import HybridError
from mcp_server.ledger import Ledger, ledger_path
from mcp_server.stories import (
    StoryFileError, check_story_id, find_story_file, is_pipeline_output, natural_key, parse_story, story_files,
)

log = logging.getLogger("hybrid.checkpoints")

LOCK_TIMEOUT_S = 30.0


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


def replace_atomically(path: Path, content: bytes | Iterable[bytes]) -> None:
    """Temp file in the same folder, fsync, rename: readers see the old bytes or the new ones.
    ``content`` may come in parts (a long history copied from the old file a chunk at a time)."""
    for stale in path.parent.glob(f".{path.stem}~*.tmp"):  # left by a killed writer; we hold the lock
        stale.unlink(missing_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}~", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            for part in [content] if isinstance(content, bytes) else content:
                handle.write(part)
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
        split = read_split(path)
        if split is not None:
            data, head_history = parse_checkpoint(split.head, path, story)
            if not head_history:
                return Checkpoint(path, data, split.tail, split.earlier, split.span if split.earlier else None)
        text = path.read_text(encoding="utf-8")  # another shape: parsed whole, for its precise errors
    except FileNotFoundError:
        raise CheckpointNotFound(f"no checkpoint for {story} yet: {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CheckpointError(f"cannot read {path}: {error}") from None
    data, history = parse_checkpoint(text, path, story)
    return Checkpoint(path, data, history)


def _file_parts(checkpoint: Checkpoint) -> Iterator[bytes]:
    """The checkpoint's file: the data, the earlier history copied from the file as it is, then
    the history held in memory."""
    yield render_checkpoint(checkpoint.data, []).encode("utf-8")
    if checkpoint.history_span is not None:
        yield from copy_span(checkpoint.path, checkpoint.history_span)
    yield "".join(entry.render() + "\n" for entry in checkpoint.history).encode("utf-8")


def story_file_for(root: Path, story: str, story_glob: str) -> Path:
    """The file a new checkpoint is created from: the first match of the glob that is not one of
    the pipeline's outputs (P1's design documents, any phase's recorded artifacts)."""
    story_file = find_story_file(Path(root), story, story_glob, pipeline_outputs(root))
    if story_file is None:
        raise CheckpointError(f"no story file for {story}: nothing matches {story_glob.format(story=story)}")
    return story_file


def story_file_of(root: Path, story: str, story_glob: str) -> Path:
    """The story's file: the one its checkpoint recorded when it was created, whatever the glob
    matches since; for a story without a checkpoint, the one a new checkpoint would record."""
    try:
        checkpoint = load_checkpoint(root, story)
    except CheckpointNotFound:
        return story_file_for(root, story, story_glob)
    recorded = checkpoint.data["story_file"]
    path = Path(root) / recorded
    if is_pipeline_output(recorded):  # recorded by an older version that took a design document for the story
        raise CheckpointError(f"{checkpoint.path.name} was created from {recorded}, a design document, not the story: "
                              "delete it to start the story over from its story file")
    if not path.is_file():
        raise CheckpointError(f"{story}'s story file {recorded}, recorded in {checkpoint.path.name}, is gone: "
                              "restore it, or delete the checkpoint to start the story over")
    return path


def pipeline_outputs(root: Path) -> set[str]:
    """Every file a readable checkpoint lists as a phase's artifact: what the pipeline wrote."""
    outputs: set[str] = set()
    for story in checkpoint_ids(root):
        try:
            checkpoint = load_checkpoint(root, story)
        except HybridError:
            continue
        for phase in checkpoint.phases.values():
            outputs.update(phase.get("artifacts") or [])
    return outputs


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
    run = run_of(root, story, now)
    with story_lock(root, story):
        try:
            current = load_checkpoint(root, story)
        except CheckpointNotFound:
            current = create_checkpoint(root, story, story_glob, now)
        except CheckpointError as error:
            raise CheckpointError(f"{error}; nothing was written (fix the file or delete it to start over)") from None
        outcome = apply_update(current, update, now, tokens, run)
        validate_data(outcome.checkpoint.data, outcome.checkpoint.path)  # never write what a read would refuse
        replace_atomically(outcome.checkpoint.path, _file_parts(outcome.checkpoint))
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


def run_of(root: Path, story: str, now: datetime) -> str | None:
    """The pilot run the story is in at ``now`` (mcp_server/ledger_runs.py), for the history lines
    a write adds; None without a ledger or run, or when the ledger cannot be read (the write
    then goes ahead without it: progress is recorded whatever the ledger's state)."""
    path = ledger_path(Path(root))
    if not path.exists():
        return None
    ledger = Ledger(path)
    try:
        return ledger.run_of(story, ts=now.astimezone(timezone.utc).isoformat(timespec="milliseconds"))
    except sqlite3.Error as error:
        log.warning("checkpoint %s: usage ledger %s unreadable (%s); history line without its run", story, path, error)
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
    files = dict(story_files(root, story_glob, pipeline_outputs(root)))
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
