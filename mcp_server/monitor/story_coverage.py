"""Each story's coverage: the percent read from the coverage report its checkpoint names (Cobertura,
lcov or coverage.py JSON, see ``coverage``), else the percent the checkpoint recorded, with a
warning for a report that is unreadable or now says otherwise. What a file said is kept in the
``coverage`` section of the cache by the file's size, mtime and inode, so an unchanged report is
not parsed again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp_server.monitor.cache import MonitorCache
from mcp_server.coverage import CoverageError, CoverageReading, read_coverage
from mcp_server.monitor.inputs import CoverageInfo, StoryInput, file_key
from mcp_server.monitor.wording import listed

Reading = CoverageReading | CoverageError | None  # None: there is no such file


class CoverageFiles:
    def __init__(self, cache: MonitorCache):
        self.cache = cache
        self.entries = cache.section("coverage")

    def read(self, path: Path) -> Reading:
        if not path.is_file():
            return None
        key = file_key(path)
        entry = self.entries.get(str(path))
        if key is not None and isinstance(entry, dict) and entry.get("key") == list(key):
            try:
                if "error" in entry:
                    return CoverageError(str(entry["error"]))
                return CoverageReading(float(entry["percent"]), str(entry["format"]), entry.get("covered"), entry.get("total"))
            except (KeyError, TypeError, ValueError):
                pass
        try:
            reading: Reading = read_coverage(path)
        except CoverageError as error:
            reading = error
        if key is not None and key == file_key(path):  # unchanged while it was read
            if isinstance(reading, CoverageError):
                self.entries[str(path)] = {"key": list(key), "error": str(reading)}
            else:
                self.entries[str(path)] = {"key": list(key), "percent": reading.percent, "format": reading.format,
                                           "covered": reading.covered, "total": reading.total}
            self.cache.mark_changed()
        return reading


def with_coverage(root: Path, inputs: dict[str, StoryInput], warnings: list[str], files: CoverageFiles) -> dict[str, StoryInput]:
    """Each story's coverage: read from the file its checkpoint names, else the recorded percent."""
    cache: dict[Path, Any] = {}
    bad: dict[str, list[str]] = {}
    drift: dict[str, list[str]] = {}
    result = {}
    for story, item in inputs.items():
        recorded = (item.data or {}).get("coverage")
        if not recorded:
            result[story] = item
            continue
        source, percent = str(recorded["source"]), float(recorded["percent"])
        path = Path(source) if Path(source).is_absolute() else root / source
        if path not in cache:
            cache[path] = files.read(path)
        reading = cache[path]
        if reading is None:
            info = CoverageInfo(percent, source, "checkpoint", percent, note=f"{source} not found; the checkpoint's value")
        elif isinstance(reading, CoverageError):
            bad.setdefault(source, []).append(story)
            info = CoverageInfo(percent, source, "checkpoint", percent, note=f"{source} unreadable; the checkpoint's value")
            cache[path] = reading
        else:
            info = CoverageInfo(reading.percent, source, reading.format, percent)
            if abs(reading.percent - percent) >= 0.05:
                drift.setdefault(source, []).append(f"{story} recorded {percent:g}%")
        result[story] = StoryInput(item.story, item.data, item.problem, item.next_action, item.reviews, info)
    for source, stories in bad.items():
        path = Path(source) if Path(source).is_absolute() else root / source
        warnings.append(
            f"coverage report {source} is unreadable ({_reason(cache[path], path)}); "
            f"the report uses the percent the checkpoint recorded for {listed(stories)}"
        )
    for source, notes in drift.items():
        path = Path(source) if Path(source).is_absolute() else root / source
        warnings.append(
            f"coverage report {source} now says {cache[path].percent:.1f}%, which the report uses; "
            f"its checkpoints recorded otherwise: {listed(notes)}"
        )
    return result


def _reason(error: CoverageError, path: Path) -> str:
    text = str(error)
    prefix = f"{path}: "
    return text[len(prefix):] if text.startswith(prefix) else text
