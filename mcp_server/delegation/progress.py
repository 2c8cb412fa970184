"""How often a delegation tells the MCP client it is still working, and the callback's type."""

from __future__ import annotations

import math
import os
from typing import Awaitable, Callable, Mapping

from mcp_server.config import ConfigError

# While GLM thinks or the tests run, the client still hears from the call this often (seconds),
# so a long call never looks hung. HYBRID_PROGRESS_INTERVAL_S overrides it (the tests shorten it).
PROGRESS_INTERVAL_S = 5.0
PROGRESS_INTERVAL_VARIABLE = "HYBRID_PROGRESS_INTERVAL_S"

ProgressFn = Callable[[float, float | None, str], Awaitable[None]]


async def no_progress(progress: float, total: float | None, message: str) -> None:
    return None


def progress_interval_s(environ: Mapping[str, str] | None = None) -> float:
    raw = (os.environ if environ is None else environ).get(PROGRESS_INTERVAL_VARIABLE, "").strip()
    if not raw:
        return PROGRESS_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise ConfigError(f"{PROGRESS_INTERVAL_VARIABLE} must be a number of seconds above 0, such as 5")
    return value
