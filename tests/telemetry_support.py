"""Telemetry test helpers: a ledger with every kind of row, its totals by plain SQL, and a
loopback OTLP/HTTP receiver that decodes what it gets with the official opentelemetry-proto."""

from __future__ import annotations

import gzip
import sqlite3
import threading
from collections import defaultdict
from contextlib import contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

from mcp_server.ledger import Ledger, UsageRow, ledger_path

SESSION = "0c9f3a52-5d7e-4b1e-9a57-2f0d4c1b7e11"


def usage_rows(session: str = SESSION) -> list[UsageRow]:
    """Claude rows (cache reads and writes, a Haiku request over the 100k tier), GLM rows (retries,
    an error), an orchestration row without a story and a model with no price."""
    return [
        UsageRow("anthropic", "claude-opus-5-5", session_id=session, prompt_tokens=12_000, cached_tokens=9_000,
                 cache_write_5m_tokens=2_000, completion_tokens=800),
        UsageRow("anthropic", "claude-sonnet-5-5", story="01.2", phase="P1", agent_type="hybrid:ux-designer",
                 agent_id="a1", session_id=session, prompt_tokens=30_000, cached_tokens=20_000,
                 cache_write_1h_tokens=5_000, completion_tokens=3_000),
        UsageRow("anthropic", "claude-haiku-5-5", story="01.2", phase="P3", agent_type="hybrid:backend-dev",
                 agent_id="a2", session_id=session, prompt_tokens=140_000, cached_tokens=100_000,
                 cache_write_5m_tokens=30_000, completion_tokens=1_200),
        UsageRow("anthropic", "claude-haiku-5-5", story="01.3", phase="P2", agent_type="hybrid:test-writer",
                 agent_id="a3", session_id=session, prompt_tokens=8_000, cached_tokens=4_000, completion_tokens=600),
        UsageRow("glm", "glm-4.7", story="01.2", phase="P3", tool="implement", prompt_tokens=20_000,
                 cached_tokens=5_000, completion_tokens=6_000, reasoning_tokens=100, latency_ms=41_250, attempt=2),
        UsageRow("glm", "glm-4.7", story="01.2", phase="P2", tool="write_tests", prompt_tokens=9_000,
                 completion_tokens=4_000, latency_ms=20_500, attempt=1),
        UsageRow("glm", "glm-4.5-air", story="01.3", phase="P7", tool="write_docs", prompt_tokens=7_000,
                 completion_tokens=2_500, latency_ms=9_000, attempt=1),
        UsageRow("glm", "glm-4.7", story="01.3", phase="P3", tool="implement", status="error:1305", attempt=6),
        UsageRow("glm", "glm-9-unlisted", story="01.3", phase="P4", tool="refactor", prompt_tokens=1_000,
                 completion_tokens=300, latency_ms=3_000, attempt=1),
    ]


def fill_ledger(root: Path, rows: list[UsageRow] | None = None, refusals: int = 1) -> Path:
    path = ledger_path(root)
    ledger = Ledger(path)
    try:
        for row in usage_rows() if rows is None else rows:
            ledger.record(row)
        for _ in range(refusals):
            ledger.record_refusal(cap="budget.per_story_usd", story="01.3", source="server")
    finally:
        ledger.close()
    return path


def token_totals(root: Path, *keys: str) -> dict[tuple, int]:
    """All tokens (input of every kind + output) summed by the given ledger columns, plain SQL."""
    conn = sqlite3.connect(ledger_path(root))
    try:
        columns = ", ".join(keys)
        rows = conn.execute(
            f"SELECT {columns}, SUM(prompt_tokens + completion_tokens) FROM usage GROUP BY {columns}"
        ).fetchall()
    finally:
        conn.close()
    return {tuple(row[:-1]): row[-1] for row in rows if row[-1]}


class Receiver:
    """What the loopback collector was sent, decoded with opentelemetry-proto."""

    def __init__(self) -> None:
        self.requests: list = []  # ExportMetricsServiceRequest, in order
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.fail_with: int | None = None  # answer this HTTP status instead of accepting

    def points(self, metric: str) -> dict[tuple, Decimal]:
        """The latest value of each series of ``metric``: cumulative, so the last one wins."""
        latest: dict[tuple, Decimal] = {}
        for request in self.requests:
            for resource_metrics in request.resource_metrics:
                for scope_metrics in resource_metrics.scope_metrics:
                    for item in scope_metrics.metrics:
                        if item.name != metric:
                            continue
                        for point in item.sum.data_points:
                            attributes = tuple(sorted((a.key, a.value.string_value) for a in point.attributes))
                            value = point.as_int if point.HasField("as_int") else point.as_double
                            latest[attributes] = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        return latest

    def summed(self, metric: str, *keys: str, where: dict[str, str] | None = None) -> dict[tuple, Decimal]:
        sums: dict[tuple, Decimal] = defaultdict(Decimal)
        for attributes, value in self.points(metric).items():
            named = dict(attributes)
            if where and any(named.get(k) != v for k, v in where.items()):
                continue
            sums[tuple(named.get(k) for k in keys)] += value
        return dict(sums)


@contextmanager
def otlp_receiver() -> Iterator[tuple[Receiver, str]]:
    """A loopback OTLP/HTTP collector: (what it got, its base URL)."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
        ExportMetricsServiceResponse,
    )

    received = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if received.fail_with:
                self.send_response(received.fail_with)
                self.end_headers()
                return
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            request = ExportMetricsServiceRequest()
            request.ParseFromString(body)
            received.requests.append(request)
            received.headers.append({k.lower(): v for k, v in self.headers.items()})
            received.paths.append(self.path)
            answer = ExportMetricsServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    """A loopback URL where nothing listens: a collector that is down."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
