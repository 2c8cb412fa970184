"""`hybrid telemetry push` of a large ledger to a loopback OTLP/HTTP collector: rows per second.

A ledger of 20,000 rows (the fixture rows of tests/telemetry_support.py over 40 stories and 200
sessions) is pushed in one go, as after a long offline stretch; then a push with nothing new,
which the running server makes every minute. Goal: the big push well under a minute, the idle
one a few milliseconds.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO

sys.path.insert(0, str(REPO))
from mcp_server.config import load_settings  # noqa: E402
from mcp_server.telemetry.push import Pusher  # noqa: E402
from tests.telemetry_support import fill_ledger, otlp_receiver, usage_rows  # noqa: E402

ROWS = 20_000


def main() -> None:
    template = usage_rows()
    rows = [
        dataclasses.replace(
            template[i % len(template)],
            story=f"{i % 40:02d}.1" if template[i % len(template)].story else None,
            session_id=f"session-{i % 200}" if template[i % len(template)].session_id else None,
        )
        for i in range(ROWS)
    ]
    with tempfile.TemporaryDirectory() as tmp, otlp_receiver() as (received, url):
        root = Path(tmp)
        fill_ledger(root, rows, refusals=0)
        pusher = Pusher(load_settings(root, {"HYBRID_TELEMETRY_ENDPOINT": url}))
        try:
            started = time.perf_counter()
            result = pusher.push()
            big = time.perf_counter() - started
            started = time.perf_counter()
            pusher.push()
            idle = time.perf_counter() - started
        finally:
            pusher.close()
    assert result.ok and result.rows == ROWS, result
    print(f"{ROWS} rows in {big:.2f} s as {result.series} series in {len(received.requests)} request(s); idle push {idle * 1000:.1f} ms")
    print(f"telemetry push = {ROWS / big:,.0f} rows/s")


if __name__ == "__main__":
    main()
