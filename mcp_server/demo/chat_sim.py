"""An OpenAI-compatible chat-completions server on loopback, answering by a responder.

`hybrid demo` uses it as a GLM simulator with canned code; the tests build their scripted
fake GLM on it. Every request is recorded with its start and finish times, so a test can
prove from timestamps that calls overlapped.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from mcp_server.demo.loopback import LoopbackServer, QuietHandler

PATH = "/api/paas/v4/chat/completions"


@dataclass
class Reply:
    text: str
    prompt_tokens: int = 100
    completion_tokens: int = 50
    cached_tokens: int = 0
    model: str | None = None  # default: the model asked for
    delay_s: float | None = None
    finish_reason: str = "stop"


@dataclass
class ErrorReply:
    status: int
    code: str | None = None
    message: str = "error"
    retry_after: str | None = None
    delay_s: float | None = None


@dataclass
class RawReply:
    """Any status and body, for garbage answers."""

    status: int
    body: bytes
    delay_s: float | None = None


@dataclass
class Request:
    body: dict[str, Any]
    headers: dict[str, str]
    started: float
    finished: float = 0.0


Answer = Reply | ErrorReply | RawReply


def completion_body(reply: Reply, requested_model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model or requested_model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": reply.text}, "finish_reason": reply.finish_reason}
        ],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": reply.cached_tokens},
        },
    }


@dataclass
class ChatSim(LoopbackServer):
    responder: Callable[[Request], Answer]
    default_delay_s: float = 0.0
    requests: list[Request] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, request: Request) -> Answer:
        return self.responder(request)

    def handler(self) -> type[QuietHandler]:
        sim = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                started = time.monotonic()
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"_unparsed": raw.decode("utf-8", "replace")}
                request = Request(body, {k.lower(): v for k, v in self.headers.items()}, started)
                with sim._lock:
                    sim.requests.append(request)
                if self.path != PATH:
                    answer: Answer = ErrorReply(404, "404", f"no route {self.path}")
                else:
                    answer = sim.answer(request)
                delay = answer.delay_s if answer.delay_s is not None else sim.default_delay_s
                if delay:
                    time.sleep(delay)
                if isinstance(answer, Reply):
                    self.send_json(200, completion_body(answer, body.get("model", "")))
                elif isinstance(answer, ErrorReply):
                    error = {"message": answer.message} | ({"code": answer.code} if answer.code is not None else {})
                    headers = {"Retry-After": answer.retry_after} if answer.retry_after else {}
                    self.send_json(answer.status, {"error": error}, headers)
                else:
                    self.send_body(answer.status, answer.body)
                request.finished = time.monotonic()

        return Handler

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/paas/v4"
