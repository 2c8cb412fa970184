"""A fake OpenAI-compatible chat-completions server on loopback, standing in for Z.ai.

It serves scripted replies in order (or asks ``responder`` for each request), can add
latency, 429s and 500s, and records every request with its start and finish times, so a
test can prove from timestamps that calls overlapped.

    python -m tests.fakes.fake_glm --port 0 --delay 1.0 --reply-file reply.txt

serves one reply for every request and prints ``PORT <n>`` first (used by bench/).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

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


@dataclass
class FakeGlm:
    default_delay_s: float = 0.0
    responder: Callable[[Request], Answer] | None = None
    requests: list[Request] = field(default_factory=list)
    _script: deque = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reply(self, text: str, **usage: Any) -> "FakeGlm":
        self._script.append(Reply(text, **usage))
        return self

    def error(self, status: int, code: str | None = None, message: str = "error", **extra: Any) -> "FakeGlm":
        self._script.append(ErrorReply(status, code, message, **extra))
        return self

    def raw(self, status: int, body: bytes) -> "FakeGlm":
        self._script.append(RawReply(status, body))
        return self

    def _answer(self, request: Request) -> Answer:
        if self.responder is not None:
            return self.responder(request)
        with self._lock:
            if self._script:
                return self._script.popleft()
        # Not retryable, so a test that forgot a reply fails at once and says why.
        return ErrorReply(400, "1214", "fake GLM: no scripted reply left")

    def __enter__(self) -> "FakeGlm":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                started = time.monotonic()
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"_unparsed": raw.decode("utf-8", "replace")}
                request = Request(body, {k.lower(): v for k, v in self.headers.items()}, started)
                with fake._lock:
                    fake.requests.append(request)
                if self.path != PATH:
                    self._send(404, {"error": {"code": "404", "message": f"no route {self.path}"}})
                    request.finished = time.monotonic()
                    return
                answer = fake._answer(request)
                delay = answer.delay_s if answer.delay_s is not None else fake.default_delay_s
                if delay:
                    time.sleep(delay)
                if isinstance(answer, Reply):
                    self._send(200, completion(answer, body.get("model", "")))
                elif isinstance(answer, ErrorReply):
                    headers = {"Retry-After": answer.retry_after} if answer.retry_after else {}
                    error = {"message": answer.message}
                    if answer.code is not None:
                        error["code"] = answer.code
                    self._send(answer.status, {"error": error}, headers)
                else:
                    self._send_bytes(answer.status, answer.body, {})
                request.finished = time.monotonic()

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                self._send_bytes(status, json.dumps(payload).encode(), headers or {})

            def _send_bytes(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/paas/v4"


def completion(reply: Reply, requested_model: str) -> dict[str, Any]:
    return {
        "id": "fake-" + str(time.monotonic_ns()),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--reply-file", required=True)
    args = parser.parse_args()
    with open(args.reply_file, encoding="utf-8") as handle:
        text = handle.read()
    fake = FakeGlm(default_delay_s=args.delay, responder=lambda request: Reply(text))
    with fake:
        print(f"PORT {fake.port}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
