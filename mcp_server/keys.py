"""The GLM key reaches the MCP server on a pipe, never in its environment.

Standard library only (the launcher imports it before any venv exists). A process's initial
environment stays readable in ``/proc/<pid>/environ`` by every process of the same user, the
test commands that ``implement`` runs included, and unsetting a variable later does not clear
it there. So whoever starts the server takes the key out of the environment, writes it into a
pipe whose read end the server inherits (its number in ``HYBRID_KEY_FD``), and the server reads
it once at start and closes the pipe.
"""

from __future__ import annotations

import os

# First non-empty wins. The plugin option arrives as HYBRID_GLM_API_KEY and an
# unset option arrives as "", which must never shadow a key the user exported.
API_KEY_VARIABLES = ("ZAI_API_KEY", "GLM_API_KEY", "HYBRID_GLM_API_KEY")
KEY_FD_VARIABLE = "HYBRID_KEY_FD"
MAX_KEY_BYTES = 64 * 1024  # a pipe's buffer: the write never blocks

_received: str | None = None


def api_key_from(environ) -> str | None:
    for name in API_KEY_VARIABLES:
        value = (environ.get(name) or "").strip()
        if value:
            return value
    return None


def holds_key(environ) -> bool:
    return any(name in environ for name in API_KEY_VARIABLES)


def hand_over(environ: dict[str, str]) -> dict[str, str]:
    """The environment to exec the server with: no key variable, and the key (if any) on an
    inheritable pipe named by HYBRID_KEY_FD."""
    key = api_key_from(environ)
    clean = {name: value for name, value in environ.items() if name not in API_KEY_VARIABLES and name != KEY_FD_VARIABLE}
    if key:
        data = key.encode("utf-8")[:MAX_KEY_BYTES]
        read_end, write_end = os.pipe()
        os.write(write_end, data)
        os.close(write_end)
        os.set_inheritable(read_end, True)
        clean[KEY_FD_VARIABLE] = str(read_end)
    return clean


def receive() -> None:
    """In the server, once at start: read the key from the pipe and close it."""
    global _received
    raw = os.environ.pop(KEY_FD_VARIABLE, "")
    if not raw.isdigit():
        return
    fd = int(raw)
    try:
        chunks = []
        while chunk := os.read(fd, MAX_KEY_BYTES):
            chunks.append(chunk)
        _received = b"".join(chunks).decode("utf-8").strip() or None
    except OSError:
        _received = None
    finally:
        try:
            os.close(fd)
        except OSError:
            pass


def received() -> str | None:
    return _received
