"""The end-to-end tests drive the real, pinned Claude Code CLI (tools/claude-code/node_modules/.bin/claude,
installed by the README's install command) against loopback fakes, with HOME in a temp dir."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from mcp_server.demo.glm_replies import CannedGlm
from mcp_server.demo.run import CLI_VERSION, DEV_CLAUDE, cli_version, replies_dir, session_environment
from tests.fakes.fake_glm import Reply
from tests.support import REPO

CLAUDE = DEV_CLAUDE


@pytest.fixture(scope="session")
def claude() -> str:
    if not CLAUDE.exists():
        pytest.fail(f"{CLAUDE} is missing: run the README's install command (npm ci installs the pinned CLI)")
    assert cli_version(str(CLAUDE)) == CLI_VERSION
    return str(CLAUDE)


def session_env(home: Path, anthropic_url: str, glm_url: str | None = None, **extra: str) -> dict[str, str]:
    """A clean environment: no key or setting of the developer's leaks into the session."""
    return session_environment(home, anthropic_url, glm_url, extra)


def ledger(project: Path) -> list[dict]:
    with sqlite3.connect(project / ".claude" / "hybrid" / "usage.db") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute("SELECT * FROM usage ORDER BY id")]


def clean_copy(destination: Path) -> Path:
    """The repository as a user clones it: no venv, no node_modules, no caches."""
    shutil.copytree(REPO, destination, ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "__pycache__", ".pytest_cache", ".hypothesis", "*.egg-info", ".hybrid-data"))
    return destination


class CountingGlm:
    """The demo's canned GLM replies, each reply's usage noted as (model, prompt, cached, completion):
    what the ledger's GLM rows must equal, token for token."""

    def __init__(self) -> None:
        self.canned, self.reported = CannedGlm(replies_dir()), []

    def __call__(self, request):
        answer = self.canned(request)
        if isinstance(answer, Reply):
            self.reported.append((request.body["model"], answer.prompt_tokens, answer.cached_tokens, answer.completion_tokens))
        return answer
