"""Line coverage from a story's coverage report: Cobertura XML, lcov, or coverage.py JSON.

One reader per format, each returning the percent of lines covered; the format is chosen by
the file's name, else by its first bytes. Anything unreadable raises CoverageError with the
file and the reason, so the report can warn about that file and go on.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

FORMATS = ("cobertura", "lcov", "coverage.py")
MAX_BYTES = 256 * 1024 * 1024


class CoverageError(Exception):
    """A coverage report that cannot be read; the message names the file."""


@dataclass(frozen=True)
class CoverageReading:
    percent: float
    format: str  # one of FORMATS
    covered: int | None = None
    total: int | None = None


def detect_format(path: Path, head: bytes) -> str | None:
    name = path.name.lower()
    if name.endswith(".xml"):
        return "cobertura"
    if name.endswith((".info", ".lcov")) or name == "lcov":
        return "lcov"
    if name.endswith(".json"):
        return "coverage.py"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        return "cobertura"
    if text.startswith(b"{"):
        return "coverage.py"
    if text.startswith((b"TN:", b"SF:")):
        return "lcov"
    return None


def read_coverage(path: Path) -> CoverageReading:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise CoverageError(f"{path}: {size} bytes is too large for a coverage report")
        data = path.read_bytes()
    except FileNotFoundError:
        raise CoverageError(f"{path}: no such file") from None
    except OSError as error:
        raise CoverageError(f"{path}: cannot be read ({error.strerror or error})") from None
    kind = detect_format(path, data[:64])
    if kind is None:
        raise CoverageError(f"{path}: not a Cobertura XML, lcov or coverage.py JSON report")
    reader = {"cobertura": parse_cobertura, "lcov": parse_lcov, "coverage.py": parse_coverage_json}[kind]
    try:
        return reader(data)
    except CoverageError as error:
        raise CoverageError(f"{path}: {error}") from None


def _percent(covered: int, total: int) -> float:
    if total <= 0:
        raise CoverageError("the report counts no lines")
    if covered < 0 or covered > total:
        raise CoverageError(f"{covered} of {total} lines covered is impossible")
    return 100.0 * covered / total


def parse_cobertura(data: bytes) -> CoverageReading:
    """``<coverage lines-covered=.. lines-valid=..>`` (or ``line-rate``) on the root element.

    A DOCTYPE (Java tools write one) is fine: expat never fetches it. Entity declarations are
    refused: a coverage report has no use for them, and they are how XML bombs work.
    """
    if b"<!ENTITY" in data:
        raise CoverageError("Cobertura XML that declares entities is refused")
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as error:
        raise CoverageError(f"not well-formed Cobertura XML ({error})") from None
    if root.tag != "coverage":
        raise CoverageError(f"the root element is <{root.tag}>, not <coverage>")
    covered, valid = root.get("lines-covered"), root.get("lines-valid")
    try:
        if covered is not None and valid is not None:
            covered_n, valid_n = int(covered), int(valid)
            return CoverageReading(_percent(covered_n, valid_n), "cobertura", covered_n, valid_n)
        rate = root.get("line-rate")
        if rate is None:
            raise CoverageError("<coverage> has neither lines-covered/lines-valid nor line-rate")
        value = float(rate)
    except ValueError:
        raise CoverageError("<coverage> has a non-numeric line count or line-rate") from None
    if not 0.0 <= value <= 1.0:
        raise CoverageError(f"line-rate {rate} is outside 0..1")
    return CoverageReading(100.0 * value, "cobertura")


def parse_lcov(data: bytes) -> CoverageReading:
    """Sum of ``LH`` (lines hit) over ``LF`` (lines found) of every record; ``DA`` lines when a
    record has no LF/LH summary."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CoverageError("lcov report is not UTF-8 text") from None
    found = hit = 0
    records = 0
    rec_found = rec_hit = None
    da_total = da_hit = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        key, _, value = line.partition(":")
        try:
            if key == "SF":
                rec_found = rec_hit = None
                da_total = da_hit = 0
            elif key == "LF":
                rec_found = int(value)
            elif key == "LH":
                rec_hit = int(value)
            elif key == "DA":
                parts = value.split(",")
                if len(parts) < 2:
                    raise ValueError
                da_total += 1
                da_hit += int(parts[1].split(".")[0]) > 0
            elif line == "end_of_record":
                records += 1
                if rec_found is not None and rec_hit is not None:
                    found, hit = found + rec_found, hit + rec_hit
                else:
                    found, hit = found + da_total, hit + da_hit
            elif key not in ("TN", "FN", "FNDA", "FNF", "FNH", "BRDA", "BRF", "BRH", "VER", "FNL", "FNA"):
                raise CoverageError(f"line {number}: unknown lcov record {raw[:40]!r}")
        except ValueError:
            raise CoverageError(f"line {number}: malformed {key} record {raw[:40]!r}") from None
    if records == 0:
        raise CoverageError("no lcov record (no end_of_record line)")
    return CoverageReading(_percent(hit, found), "lcov", hit, found)


def parse_coverage_json(data: bytes) -> CoverageReading:
    """coverage.py's ``coverage json``: ``totals.covered_lines`` over ``totals.num_statements``
    (``percent_covered`` when the counts are missing)."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise CoverageError(f"not valid JSON ({error})") from None
    totals = document.get("totals") if isinstance(document, dict) else None
    if not isinstance(totals, dict):
        raise CoverageError("no 'totals' object (is this coverage.py's `coverage json` output?)")
    covered, statements = totals.get("covered_lines"), totals.get("num_statements")
    if _is_count(covered) and _is_count(statements):
        return CoverageReading(_percent(covered, statements), "coverage.py", covered, statements)
    percent = totals.get("percent_covered")
    if isinstance(percent, (int, float)) and not isinstance(percent, bool) and 0 <= percent <= 100:
        return CoverageReading(float(percent), "coverage.py")
    raise CoverageError("'totals' has neither covered_lines/num_statements nor a percent_covered in 0..100")


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
