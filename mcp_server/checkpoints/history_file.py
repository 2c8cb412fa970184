"""A checkpoint file read without loading its whole history, and written back by copying it.

A story run in a loop for months can gather millions of history lines (50 MB). The file as the
package writes it is the data, then ``HISTORY_HEADER``, then history lines only. Such a file is
read as: the data part parsed as YAML, the history lines checked in 64 KB chunks by one regular
expression and counted, the last ``HISTORY_KEPT`` kept as entries, and the byte span of the
earlier ones remembered. A write copies that span from the old file in chunks. Time is linear
in the file's size with a small constant; memory is bounded whatever its length.

A file of any other shape (edited by hand, history keys among the data) returns None here and
is parsed whole, with the precise errors of yaml_document.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from mcp_server.checkpoints.model import HISTORY_HEADER, HISTORY_KEPT, HISTORY_LINE, HistoryEntry

CHUNK = 1 << 16  # 64 KB: the regex's backtracking state grows with the lines in a chunk
_HEADER = (HISTORY_HEADER + "\n").encode("utf-8")
_LINES = re.compile(
    # a bytes pattern: each mark is an alternative, as a [class] would match its UTF-8 bytes one by one
    "(?:P[1-7]: (?:✓|✗|↻|–) [A-Za-z0-9][A-Za-z0-9._:-]{0,63} (?:[01][0-9]|2[0-3]):[0-5][0-9]"
    "(?: run=[A-Za-z0-9][A-Za-z0-9._-]{0,63})?\n)*".encode("utf-8")
)


@dataclass(frozen=True)
class SplitFile:
    head: str  # the data part, as YAML text
    earlier: int  # history lines before ``tail``
    span: tuple[int, int]  # their bytes in the file
    tail: list[HistoryEntry]


def read_split(path: Path) -> SplitFile | None:
    with open(path, "rb") as handle:
        head = bytearray()
        while True:
            line = handle.readline()
            if not line:
                return None  # no history header: not the shape the package writes
            if line == _HEADER:
                break
            head += line
        start = handle.tell()
        kept: deque[bytes] = deque(maxlen=HISTORY_KEPT)
        count, carry = 0, b""
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                break
            data = carry + chunk
            cut = data.rfind(b"\n") + 1
            complete, carry = data[:cut], data[cut:]
            if not _LINES.fullmatch(complete):
                return None
            lines = complete.split(b"\n")
            lines.pop()
            count += len(lines)
            kept.extend(lines)
        end = handle.tell()
    if carry:
        if not _LINES.fullmatch(carry + b"\n"):
            return None
        count += 1
        kept.append(carry)
    tail_bytes = sum(len(line) + 1 for line in kept) - (1 if carry else 0)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    tail = []
    for line in kept:
        match = HISTORY_LINE.match(line.decode("utf-8"))
        assert match is not None  # the chunk's regex admitted it
        tail.append(HistoryEntry(match["phase"], match["mark"], match["agent"], match["time"], match["run"]))
    return SplitFile(text, count - len(tail), (start, end - tail_bytes), tail)


def copy_span(path: Path, span: tuple[int, int]) -> Iterator[bytes]:
    """The bytes of ``span`` in ``path``, a chunk at a time."""
    start, end = span
    with open(path, "rb") as handle:
        handle.seek(start)
        left = end - start
        while left > 0:
            chunk = handle.read(min(CHUNK, left))
            if not chunk:
                raise OSError(f"{path} got shorter while its history was copied")
            left -= len(chunk)
            yield chunk
