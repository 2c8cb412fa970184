"""Fixtures shared by the test modules."""

import pytest

from mcp_server.ledger import Ledger, ledger_path
from mcp_server.pricing import PriceTable
from tests.fakes.fake_glm import FakeGlm
from tests.support import make_project


@pytest.fixture(autouse=True)
def no_machine_permission_rules(tmp_path_factory, monkeypatch):
    """Tests in this process read only the permission rules they write: never the machine's
    managed settings or the developer's own ~/.claude/settings.json."""
    elsewhere = tmp_path_factory.mktemp("no-settings")
    monkeypatch.setenv("HYBRID_MANAGED_SETTINGS", str(elsewhere / "managed-settings.json"))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(elsewhere / "user"))


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def project(tmp_path):
    """A throwaway project with story 01.2 (tests/support.py)."""
    return make_project(tmp_path / "proj")


@pytest.fixture
def fake():
    """The fake GLM endpoint on loopback (tests/fakes/fake_glm.py)."""
    with FakeGlm() as server:
        yield server


@pytest.fixture
def prices():
    """The shipped price table."""
    return PriceTable.load()


@pytest.fixture
def ledger(tmp_path):
    """An empty usage ledger in a temp project."""
    ledger = Ledger(ledger_path(tmp_path))
    yield ledger
    ledger.close()
