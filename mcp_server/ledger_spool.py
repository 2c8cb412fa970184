"""Usage rows that could not be written to the ledger, kept until it can be written again.

Standard library only (the hooks import the ledger). The spool is an append-only JSON-lines
file beside the ledger, ``usage.db.spool.jsonl``. Every spooled row carries a unique
``dedup_key``, so a merge interrupted after its commit and run again inserts nothing twice.
Appending and draining hold an exclusive ``flock`` on the file: a row appended while a merge
runs waits for it and lands in the emptied file, never in a part already merged.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Callable

SPOOL_SUFFIX = ".spool.jsonl"


def spool_path(ledger_file: Path) -> Path:
    return Path(ledger_file).with_name(Path(ledger_file).name + SPOOL_SUFFIX)


def spool_key() -> str:
    return f"spool:{os.urandom(16).hex()}"


def append(ledger_file: Path, values: dict) -> Path:
    """Append one row (a dict of the ledger's columns) durably; OSError if even that fails."""
    path = spool_path(ledger_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(values, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)  # closing releases the lock
    return path


def pending(ledger_file: Path) -> bool:
    """One stat: true when the spool holds rows to merge."""
    try:
        return os.stat(spool_path(ledger_file)).st_size > 0
    except OSError:
        return False


def drain(ledger_file: Path, merge: Callable[[list[dict]], None]) -> int:
    """Hand every spooled row to ``merge`` (which commits them), then empty the spool.

    ``merge`` raising leaves the spool as it was. Lines that are not JSON objects (a torn
    write of a process killed mid-line) are kept aside in ``<spool>.bad`` rather than lost.
    """
    path = spool_path(ledger_file)
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return 0
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read()
        rows, bad = [], []
        for line in data.splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            (rows if isinstance(row, dict) else bad).append(row if isinstance(row, dict) else line)
        if rows:
            merge(rows)
        if bad:
            with open(path.with_name(path.name + ".bad"), "ab") as kept:
                kept.write(b"".join(line + b"\n" for line in bad))
        os.ftruncate(fd, 0)
        return len(rows)
    finally:
        os.close(fd)
