"""A git host on loopback: `git http-backend` (git's smart HTTP protocol) behind a small server.

Claude Code clones a marketplace given as a URL with `git clone --depth 1`, which git's dumb HTTP
transport cannot serve; the smart protocol can, as GitHub does. A clone made this way holds the
committed files only, as a GitHub install does.
"""

from __future__ import annotations

import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit


class GitHttpServer:
    """Serves every bare repository under ``root`` at ``http://127.0.0.1:<port>/<name>.git``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        handler = type("Handler", (_CgiHandler,), {"repo_root": str(root)})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "GitHttpServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def publish(work_tree: Path, root: Path, name: str) -> Path:
    """A bare copy of ``work_tree``'s committed history, as a git host would hold it."""
    bare = root / f"{name}.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(work_tree), str(bare)], check=True)
    return bare


class _CgiHandler(BaseHTTPRequestHandler):
    repo_root = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's names)
        self._backend()

    def do_POST(self) -> None:  # noqa: N802
        self._backend()

    def log_message(self, *args) -> None:  # quiet: the test's output is the install's
        pass

    def _backend(self) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {
            "GIT_PROJECT_ROOT": self.repo_root, "GIT_HTTP_EXPORT_ALL": "1", "PATH": "/usr/bin:/bin",
            "REQUEST_METHOD": self.command, "PATH_INFO": url.path, "QUERY_STRING": url.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""), "REMOTE_ADDR": "127.0.0.1",
        }
        done = subprocess.run(["git", "http-backend"], input=body, capture_output=True, env=env)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
