"""Fixtures shared by the test modules."""

import pytest

from tests.support import make_project


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def project(tmp_path):
    """A throwaway project with story 01.2 (tests/support.py)."""
    return make_project(tmp_path / "proj")
