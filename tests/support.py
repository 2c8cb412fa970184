"""Shared test helpers: a throwaway project and the real MCP server over stdio."""

from __future__ import annotations

import json
import sys
import textwrap
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import AsyncIterator, Iterator

from mcp import Client
from mcp.client.stdio import StdioServerParameters

REPO = Path(__file__).resolve().parent.parent
TEST_KEY = "test-key-0123456789abcdef.NotARealSecret1"

STORY_01_2 = """\
# 01.2 User Roles

As an admin I want to assign roles to users.

## Acceptance Criteria
- AC-1: A user can be given the role `admin` or `member`.
- AC-2: An unknown role is refused with ValueError.
"""


def make_project(root: Path) -> Path:
    (root / "docs" / "stories").mkdir(parents=True)
    (root / "docs" / "stories" / "01.2-user-roles.md").write_text(STORY_01_2)
    (root / "app").mkdir()
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "roles.py").write_text(
        textwrap.dedent(
            """\
            ROLES = ("admin", "member")
            """
        )
    )
    return root


def allow_commands(project: Path, *commands: str, deny: tuple[str, ...] = ()) -> Path:
    """The project's .claude/settings.json with these Bash allow rules, as a user writes it."""
    path = project / ".claude" / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    rules = {"allow": [f"Bash({command})" for command in commands], "deny": list(deny)}
    path.write_text(json.dumps({"permissions": rules}, indent=2))
    return path


def server_env(project: Path, base_url: str, **extra: str) -> dict[str, str]:
    env = {
        "CLAUDE_PROJECT_DIR": str(project),
        # Only the project's own permission rules: never the machine's managed or user settings.
        "HOME": str(project.parent / "home"),
        "HYBRID_MANAGED_SETTINGS": str(project.parent / "managed-settings.json"),
        "ZAI_API_KEY": TEST_KEY,
        "HYBRID_GLM_BASE_URL": base_url,
        "HYBRID_GLM_DEADLINE_S": "8",
        "HYBRID_GLM_BACKOFF_BASE_S": "0.05",
        "PYTHONPATH": str(REPO),
    }
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


@asynccontextmanager
async def mcp_client(project: Path, base_url: str, **extra: str) -> AsyncIterator[Client]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_server"], env=server_env(project, base_url, **extra), cwd=str(project)
    )
    async with Client(params, read_timeout_seconds=60) as client:
        yield client


def tree_snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root except the product's own .claude/ folder."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".claude" not in p.relative_to(root).parts
    }


@contextmanager
def ledger_locked(path: Path) -> Iterator[None]:
    """Another process's exclusive lock on the ledger, as a long write would hold it: every
    read and write of it waits for the busy timeout, then fails."""
    import sqlite3

    from mcp_server.ledger import Ledger

    ledger = Ledger(path)
    ledger.rows()  # the ledger exists, in WAL mode
    ledger.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA locking_mode=EXCLUSIVE")
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("DELETE FROM transcript_cursor WHERE 0")
    try:
        yield
    finally:
        conn.execute("COMMIT")
        conn.close()
