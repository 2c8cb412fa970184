"""Shared by the benchmarks: a throwaway project, a fake GLM process, and the stdio server."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support import make_project, server_env  # noqa: E402


@contextmanager
def fake_glm_process(reply_text: str, delay_s: float) -> Iterator[str]:
    """A fake GLM in its own process, so its timing is not the benchmark's own event loop."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write(reply_text)
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.fake_glm", "--delay", str(delay_s), "--reply-file", handle.name],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = process.stdout.readline().split()
        assert first[:1] == ["PORT"], f"fake GLM did not start: {first}"
        yield f"http://127.0.0.1:{first[1]}/api/paas/v4"
    finally:
        process.terminate()
        process.wait(5)
        os.unlink(handle.name)


@contextmanager
def project_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield make_project(Path(tmp) / "proj")


__all__ = ["REPO", "fake_glm_process", "project_dir", "server_env"]
