"""A simulated Anthropic Messages endpoint on loopback, for `hybrid demo` and the end-to-end tests.

It speaks what Claude Code sends (`POST /v1/messages?beta=true`, streamed as SSE, and
`/v1/messages/count_tokens`) and asks a *brain* for each turn: a function from the request
body to the content blocks to answer with. It reports a usage for every answer and keeps a
record of each, so a test can check the ledger against exactly what was reported.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from mcp_server.demo.loopback import LoopbackServer, QuietHandler


@dataclass(frozen=True)
class Turn:
    """One assistant answer: text and/or tool calls, and the delay before it starts."""

    text: str = ""
    tool_calls: tuple[tuple[str, dict[str, Any]], ...] = ()
    delay_s: float = 0.0


@dataclass(frozen=True)
class Served:
    message_id: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int
    label: str


Brain = Callable[[dict[str, Any]], Turn]


def _estimate_tokens(body: dict[str, Any]) -> int:
    # Deterministic, roughly proportional to what was sent: 1 token per 4 characters.
    return max(1, len(json.dumps(body.get("messages", []))) // 4)


@dataclass
class AnthropicSim(LoopbackServer):
    brain: Brain
    label_of: Callable[[dict[str, Any]], str] = lambda body: ""
    served: list[Served] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _answer(self, body: dict[str, Any]) -> tuple[Turn, Served]:
        turn = self.brain(body)
        with self._lock:
            number = next(self._ids)
            self.requests.append(body)
        content_tokens = len(turn.text) // 4 + sum(len(json.dumps(args)) // 4 for _, args in turn.tool_calls)
        prompt = _estimate_tokens(body)
        # Some of each prompt counts as a cache read, as in a real session with prompt caching.
        cached = prompt // 2 if number % 2 == 0 else 0
        served = Served(
            message_id=f"msg_sim_{number:05d}",
            model=str(body.get("model") or "claude-sim"),
            input_tokens=prompt - cached,
            output_tokens=5 + content_tokens,
            cache_read_input_tokens=cached,
            cache_creation_input_tokens=0,
            label=self.label_of(body),
        )
        return turn, served

    def handler(self) -> type[QuietHandler]:
        sim = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if "count_tokens" in self.path:
                    self.send_json(200, {"input_tokens": _estimate_tokens(body)})
                    return
                if not self.path.startswith("/v1/messages"):
                    self.send_json(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})
                    return
                try:
                    turn, served = sim._answer(body)
                except Exception as error:  # a broken script must fail the session at once, not be retried
                    sim.errors.append(f"{type(error).__name__}: {error}")
                    message = f"simulated model failed: {type(error).__name__}: {error}"
                    self.send_json(400, {"type": "error", "error": {"type": "invalid_request_error", "message": message}})
                    return
                if turn.delay_s:
                    time.sleep(turn.delay_s)
                self._stream(turn, served)
                with sim._lock:
                    sim.served.append(served)

            def _event(self, name: str, data: dict[str, Any]) -> None:
                self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())

            def _stream(self, turn: Turn, served: Served) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.send_header("connection", "close")
                self.end_headers()
                self.close_connection = True
                self._event("message_start", {"type": "message_start", "message": {
                    "id": served.message_id, "type": "message", "role": "assistant", "model": served.model,
                    "content": [], "stop_reason": None, "stop_sequence": None,
                    "usage": {"input_tokens": served.input_tokens, "output_tokens": 1,
                              "cache_creation_input_tokens": served.cache_creation_input_tokens,
                              "cache_read_input_tokens": served.cache_read_input_tokens}}})
                index = 0
                if turn.text or not turn.tool_calls:
                    self._event("content_block_start", {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
                    self._event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": turn.text or "Done."}})
                    self._event("content_block_stop", {"type": "content_block_stop", "index": index})
                    index += 1
                for number, (name, arguments) in enumerate(turn.tool_calls):
                    tool_id = f"toolu_{served.message_id[8:]}_{number}"
                    self._event("content_block_start", {"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": tool_id, "name": name, "input": {}}})
                    self._event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": json.dumps(arguments)}})
                    self._event("content_block_stop", {"type": "content_block_stop", "index": index})
                    index += 1
                stop = "tool_use" if turn.tool_calls else "end_turn"
                self._event("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": served.output_tokens}})
                self._event("message_stop", {"type": "message_stop"})
                self.wfile.flush()

        return Handler

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
