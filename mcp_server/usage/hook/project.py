"""Where a hook runs: the project root, whether it uses the plugin, its hooks.log, and the
payload fields every handler reads."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from mcp_server.ledger import utc_now

LOG_RELATIVE = Path(".claude") / "hybrid" / "hooks.log"
LOG_MAX_BYTES = 1 << 20


class HookError(Exception):
    """A payload or environment problem worth one line in hooks.log."""


def uses_hybrid(root: Path) -> bool:
    """The project has the product's state: checkpoints (a pilot) or .claude/hybrid (a GLM tool)."""
    return (root / ".claude" / "checkpoints").is_dir() or (root / LOG_RELATIVE.parent).is_dir()


def project_root(payload: Mapping, env: Mapping[str, str]) -> Path:
    cwd = payload.get("cwd")
    return Path(env.get("CLAUDE_PROJECT_DIR") or (cwd if isinstance(cwd, str) and cwd else None) or os.getcwd())


def log(root: Path, event: str, action: str, error: BaseException | str) -> None:
    """One line per problem; never the payload, never environment values."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    line = f"{utc_now()} {event} ({action}): {' '.join(text.split())[:500]}\n"
    try:
        if not uses_hybrid(root):  # a log file would make the hooks keep a ledger there from now on
            raise HookError("the project does not use the plugin")
        path = root / LOG_RELATIVE
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if path.stat().st_size > LOG_MAX_BYTES:
                os.replace(path, path.with_name(path.name + ".1"))
        except FileNotFoundError:
            pass
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line)
    except Exception:  # nowhere to log: stderr, which Claude Code shows in debug mode only
        try:
            sys.stderr.write("hybrid hook: " + line)
        except Exception:
            pass


def payload_text(payload: Mapping, key: str, *, required: bool = True) -> str | None:
    value = payload.get(key)
    if isinstance(value, str) and value:
        return value
    if required:
        raise HookError(f"the payload has no usable {key!r}")
    return None
