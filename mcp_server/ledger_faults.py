"""What the usage ledger does when SQLite fails: one error naming the file, and a corrupt file
moved aside. Standard library only (the hooks import the ledger)."""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from mcp_server.errors import HybridError

# How long a write waits for another process's lock before the ledger counts as unavailable.
TIMEOUT_VARIABLE = "HYBRID_LEDGER_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 10.0
_CORRUPT = ("SQLITE_CORRUPT", "SQLITE_NOTADB")


class LedgerError(HybridError, sqlite3.DatabaseError):
    """The usage ledger cannot be used right now; the message names the file and why.
    Also a sqlite3.Error, so code that already catches those keeps working."""


def timeout_s() -> float:
    try:
        value = float(os.environ.get(TIMEOUT_VARIABLE, "") or DEFAULT_TIMEOUT_S)
    except ValueError:
        return DEFAULT_TIMEOUT_S
    return value if 0 <= value < 3600 else DEFAULT_TIMEOUT_S


def is_corruption(error: sqlite3.Error) -> bool:
    if isinstance(error, sqlite3.OperationalError):  # locked, busy, cannot open: the file is fine
        return False
    name = getattr(error, "sqlite_errorname", "") or ""
    text = str(error)
    return name.startswith(_CORRUPT) or "not a database" in text or "malformed" in text


def move_aside(path: Path, error: sqlite3.Error) -> str:
    """Keep the unreadable file (and its WAL) under a new name, so a new ledger can start;
    returns the line to show the user."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            os.replace(source, f"{aside}{suffix}")
    return f"usage ledger {path} was not a readable SQLite database ({error}); kept as {aside.name}, and a new ledger was started"


def describe(path: Path, error: sqlite3.Error | OSError, waited_s: float) -> LedgerError:
    if isinstance(error, LedgerError):
        return error
    if isinstance(error, OSError):
        return LedgerError(f"usage ledger {path} cannot be opened: {error.strerror or error}")
    text = str(error)
    if "locked" in text or "busy" in text:
        return LedgerError(f"usage ledger {path} is locked by another process (waited {waited_s:g} s)")
    return LedgerError(f"usage ledger {path}: {text}")
