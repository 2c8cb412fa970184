"""``.claude/hybrid/monitor-cache.json``: what the last report read, so that the next one reads
only what changed. Three sections: ``stories`` (each checkpoint as read and schema-checked, by
its file's size, mtime and inode), ``coverage`` (what each coverage report said, keyed the same
way) and ``ledger`` (the answers of the report's queries, for one version of the ledger: see
``usage_version`` in mcp_server/ledger.py). The whole file is
dropped when the schema, the checkpoint code or the cache's format changes. Losing it only
costs time; ``--no-cache`` neither reads nor writes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from mcp_server import checkpoints as checkpoint_module
from mcp_server.ledger import LEDGER_RELATIVE

CACHE_RELATIVE = LEDGER_RELATIVE.parent / "monitor-cache.json"
CACHE_FORMAT = "2"
SECTIONS = ("stories", "ledger", "coverage")


class MonitorCache:
    def __init__(self, root: Path, enabled: bool = True):
        self.path = Path(root) / CACHE_RELATIVE
        self.enabled = enabled
        self.fingerprint = _fingerprint() if enabled else ""
        self.sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
        self.changed = False
        if enabled:
            try:
                stored = json.loads(self.path.read_text(encoding="utf-8"))
                if stored.get("fingerprint") == self.fingerprint:
                    for name in SECTIONS:
                        if isinstance(stored.get(name), dict):
                            self.sections[name] = stored[name]
            except (OSError, ValueError, AttributeError):
                pass

    def section(self, name: str) -> dict[str, Any]:
        """A section to read and change in place (then call ``mark_changed``)."""
        return self.sections[name]

    def mark_changed(self) -> None:
        self.changed = True

    def save(self) -> None:
        if not (self.enabled and self.changed):
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=".monitor-cache~", suffix=".tmp", dir=self.path.parent)
            # dumps, not dump: json.dump streams through the pure-Python encoder, 30x slower here
            text = json.dumps({"fingerprint": self.fingerprint, **self.sections}, separators=(",", ":"))
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(name, self.path)
        except OSError:
            try:
                os.unlink(name)
            except (OSError, UnboundLocalError):
                pass


def _fingerprint() -> str:
    """What a cached read depends on: the schema, the checkpoint code, the cache's own format."""
    digest = hashlib.sha256(CACHE_FORMAT.encode())
    code = Path(checkpoint_module.__file__)
    sources = sorted(code.parent.glob("*.py")) if code.name == "__init__.py" else [code]
    for source in (resources.files("mcp_server.data").joinpath("checkpoint.schema.json"), *sources):
        try:
            digest.update(source.read_bytes())
        except OSError:
            digest.update(os.urandom(8))  # unknown: never reuse
    return digest.hexdigest()[:24]
