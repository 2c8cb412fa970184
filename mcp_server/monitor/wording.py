"""Words and figures shared by the loaders, the checks and the renderers: lists cut short, story
counts, percents. Standard library only, so every other monitor module can use it."""

from __future__ import annotations

from typing import Sequence


def listed(items: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def stories(count: int) -> str:
    return f"{count} {'story' if count == 1 else 'stories'}"


def pct_text(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "no data"
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"
