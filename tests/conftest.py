"""Fixtures shared by the test modules."""

import pytest

from mcp_server.ledger import Ledger, ledger_path
from mcp_server.pricing import PriceTable
from tests.support import make_project


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def project(tmp_path):
    """A throwaway project with story 01.2 (tests/support.py)."""
    return make_project(tmp_path / "proj")


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
