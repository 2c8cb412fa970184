"""The usage ledger's SQLite connection: opened lazily, every error one LedgerError naming the
file, a corrupt file moved aside and a new ledger started, and the spool merged on the first
open that can write. Standard library only (the hooks import the ledger). mcp_server/ledger.py
builds the usage ledger on it."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path

from mcp_server import ledger_spool
from mcp_server.ledger_faults import LedgerError, describe, is_corruption, move_aside, timeout_s


class LedgerConnection:
    """``notices`` collects the lines the user must see (a corrupt ledger moved aside, spooled
    rows merged); the command or tool that opened the ledger shows them."""

    SCHEMA = ""  # the subclass's tables, created on open

    def __init__(self, path: Path):
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self.timeout_s = timeout_s()
        self.notices: list[str] = []

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout_s * 1000)}")
            conn.execute("PRAGMA journal_mode=WAL")
            self._create_schema(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        conn.executescript(self.SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                try:
                    self._conn = self._open()
                except sqlite3.DatabaseError as error:
                    if not is_corruption(error):
                        raise
                    self._notice(move_aside(self.path, error))
                    self._conn = self._open()
            except (sqlite3.Error, OSError) as error:
                raise describe(self.path, error, self.timeout_s) from None
            if ledger_spool.pending(self.path):
                try:
                    merged = ledger_spool.drain(self.path, self._merge_spooled)
                except (sqlite3.Error, OSError):
                    merged = 0  # still unwritable: the rows stay spooled for the next open
                if merged:
                    self._notice(f"{merged} spooled usage row(s) merged into {self.path}")
        return self._conn

    def _notice(self, line: str) -> None:
        """Kept for the command or tool to show, and logged (the MCP server's log, a hook's log)."""
        import logging  # only when there is something to say: the hooks start without it

        self.notices.append(line)
        logger = logging.getLogger("hybrid.ledger")
        if logger.hasHandlers():  # the server's log; a command prints its notices itself
            logger.warning("%s", line)

    def _error(self, error: sqlite3.Error) -> LedgerError:
        """A corrupt file found mid-use is moved aside too: the next open starts a new ledger."""
        if is_corruption(error) and not isinstance(error, LedgerError):
            self.close()
            try:
                self._notice(move_aside(self.path, error))
                return LedgerError(self.notices[-1])
            except OSError:
                pass
        return describe(self.path, error, self.timeout_s)

    def execute(self, sql: str, params=()) -> sqlite3.Cursor:
        """Any statement; an SQLite error comes out as a LedgerError naming the file."""
        conn = self._connection()
        try:
            return conn.execute(sql, params)
        except sqlite3.Error as error:
            raise self._error(error) from None

    def fetchall(self, sql: str, params=()) -> list:
        cursor = self.execute(sql, params)
        try:
            return cursor.fetchall()
        except sqlite3.Error as error:
            raise self._error(error) from None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _merge_spooled(self, spooled: list[dict]) -> None:
        raise NotImplementedError  # the subclass knows its rows

    @contextmanager
    def transaction(self):
        """One write transaction (BEGIN IMMEDIATE): a hook run commits all its rows at once."""
        self.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            if self._conn is not None and self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        self.execute("COMMIT")
