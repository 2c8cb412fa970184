"""A huge checkpoint stays cheap: 1,900,000 history lines (about 50 MB), read, shown and written.

A throwaway project with one story whose checkpoint holds 1.9 million history lines (a story
run in a loop for months). Each step runs in a fresh process, as a user or the MCP server would:
``hybrid checkpoint show`` (the view: the last history lines and the count of the rest), and a
``checkpoint_write`` through the package (read, merge, write back with every line kept). Prints
each step's wall time and peak memory (max RSS), and the worst of them last. Goal: each step
<= 3 s and <= 200 MB, whatever the history's length.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, make_project

from mcp_server import checkpoints  # noqa: E402

LINES = 1_900_000
WRITE = """
import resource, sys, time
from mcp_server import checkpoints
started = time.monotonic()
checkpoints.write_checkpoint(sys.argv[1], "01.2", checkpoints.Update(phase="P1", status="running"), "docs/**/{story}*.md")
print(time.monotonic() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""
SHOW = """
import contextlib, io, resource, sys, time
from mcp_server.cli import main
started = time.monotonic()
with contextlib.redirect_stdout(io.StringIO()) as out:
    main(["checkpoint", "show", "01.2", "--project", sys.argv[1]])
assert "earlier history lines" in out.getvalue(), out.getvalue()[-500:]
print(time.monotonic() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def huge_checkpoint(root: Path) -> Path:
    make_project(root)
    path = checkpoints.open_checkpoint(root, "01.2", "docs/**/{story}*.md").path
    line = "P3: ↻ backend-dev 14:05\n".encode("utf-8")
    with open(path, "ab") as handle:
        block = line * 100_000
        for _ in range(LINES // 100_000):
            handle.write(block)
    return path


def step(code: str, root: Path) -> tuple[float, int]:
    done = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, cwd=REPO, check=True)
    seconds, rss_mb = done.stdout.split()
    return float(seconds), int(rss_mb)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "proj"
        path = huge_checkpoint(root)
        print(f"checkpoint: {path.stat().st_size / 1e6:.1f} MB, {LINES:,} history lines")
        results = {"show": step(SHOW, root), "write": step(WRITE, root), "show after write": step(SHOW, root)}
        lines_after = path.read_bytes().count(b"\n" + "P".encode())
        assert lines_after >= LINES, f"history lost: {lines_after} lines"
        for name, (seconds, rss) in results.items():
            print(f"{name}: {seconds:.2f} s, max RSS {rss} MB")
        worst_s = max(seconds for seconds, _ in results.values())
        worst_mb = max(rss for _, rss in results.values())
        print(f"worst step: {worst_s:.2f} s, {worst_mb} MB max RSS (goal <= 3 s and <= 200 MB)")


if __name__ == "__main__":
    main()
