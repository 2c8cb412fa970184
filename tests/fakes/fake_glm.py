"""The scripted fake GLM the tests use: replies served in order, errors and latency on demand.

Built on the package's loopback chat-completions server (mcp_server/demo/chat_sim.py).

    python -m tests.fakes.fake_glm --delay 1.0 --reply-file reply.txt

serves one reply for every request and prints ``PORT <n>`` first (used by bench/).
"""

from __future__ import annotations

import argparse
import threading
from collections import deque
from typing import Any, Callable

from mcp_server.demo.chat_sim import Answer, ChatSim, ErrorReply, RawReply, Reply, Request

__all__ = ["Answer", "ErrorReply", "FakeGlm", "RawReply", "Reply", "Request"]


class FakeGlm(ChatSim):
    """Answers from ``responder`` when set, else from the script; an empty script is a
    non-retryable error, so a test that forgot a reply fails at once and says why."""

    def __init__(self, default_delay_s: float = 0.0, responder: Callable[[Request], Answer] | None = None):
        super().__init__(responder=responder, default_delay_s=default_delay_s)  # type: ignore[arg-type]
        self._script: deque[Answer] = deque()

    def reply(self, text: str, **usage: Any) -> "FakeGlm":
        self._script.append(Reply(text, **usage))
        return self

    def error(self, status: int, code: str | None = None, message: str = "error", **extra: Any) -> "FakeGlm":
        self._script.append(ErrorReply(status, code, message, **extra))
        return self

    def raw(self, status: int, body: bytes) -> "FakeGlm":
        self._script.append(RawReply(status, body))
        return self

    def answer(self, request: Request) -> Answer:
        if self.responder is not None:
            return self.responder(request)
        with self._lock:
            if self._script:
                return self._script.popleft()
        return ErrorReply(400, "1214", "fake GLM: no scripted reply left")


def main() -> None:
    parser = argparse.ArgumentParser(description="a fake GLM that serves one reply to every request")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--reply-file", required=True)
    args = parser.parse_args()
    with open(args.reply_file, encoding="utf-8") as handle:
        text = handle.read()
    with FakeGlm(default_delay_s=args.delay, responder=lambda request: Reply(text)) as fake:
        print(f"PORT {fake.port}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
