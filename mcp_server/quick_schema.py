"""A quick yes to "does this instance match the JSON Schema?": for a checkpoint, jsonschema-rs
answers in about 30 µs where jsonschema takes about 3 ms, which was most of the time a report
spent reading 1,000 checkpoints. Only its yes is taken; on a no the caller asks jsonschema, whose verdict and
message stand. So jsonschema-rs must never say yes where jsonschema says no.

The one place the two can disagree is the schema's regular expressions: jsonschema runs them
with Python's ``re``, jsonschema-rs with Rust's. Two differences matter: Python's ``$`` also
matches just before a final newline, and Python's ``\\s`` also counts \\x1c-\\x1f as space. The
patterns are rewritten to Python's meaning before jsonschema-rs sees them; a pattern that uses
anything else whose meaning could differ (``\\w``, ``\\d``, ``\\b``, a ``$`` before the end, set
operations in a class, ...) turns the quick check off, and every check goes to jsonschema.
Without jsonschema-rs installed, the quick check is off too.
"""

from __future__ import annotations

import json
from typing import Any, Callable

# escapes that mean the same to both engines (after the rewrite of \s and \S)
_SAME_ESCAPES = set(".-+*?()[]{}|^$/\\")
_PYTHON_SPACE = r"\s\x1c-\x1f"


def python_pattern_for_rust(pattern: str) -> str | None:
    """``pattern`` written so that Rust's regex matches what Python's ``re.search`` matches;
    None when the pattern uses something outside the subset known to mean the same."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if i + 1 >= len(pattern):
                return None
            escaped = pattern[i + 1]
            if escaped in "sS" and not in_class:
                out.append(f"[{_PYTHON_SPACE}]" if escaped == "s" else f"[^{_PYTHON_SPACE}]")
            elif escaped in _SAME_ESCAPES:
                out.append(char + escaped)
            else:
                return None
            i += 2
            continue
        if in_class:
            if char == "[" or pattern[i : i + 2] in ("--", "&&", "~~"):
                return None  # a nested class or a set operation: Rust only
            if char == "]":
                in_class = False
        elif char == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "^":
                out.append("[^")
                i += 2
                continue
        elif char == "$":
            if i != len(pattern) - 1:
                return None
            out.append(r"\n?\z")  # Python's $: the end, or just before a final newline
            i += 1
            continue
        elif char == "(" and pattern[i + 1 : i + 2] == "?":
            return None  # groups with flags or look-arounds
        out.append(char)
        i += 1
    return None if in_class else "".join(out)


def _rewritten(node: Any) -> Any:
    if isinstance(node, dict):
        result = {}
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                value = python_pattern_for_rust(value)
                if value is None:
                    raise ValueError("a pattern whose meaning may differ")
            elif key == "patternProperties":
                raise ValueError("patternProperties: not rewritten")
            result[key] = _rewritten(value)
        return result
    if isinstance(node, list):
        return [_rewritten(item) for item in node]
    return node


def quick_validator(schema: dict[str, Any]) -> Callable[[Any], bool] | None:
    """A function that says True only for an instance that matches ``schema``; None when there
    is no quick check (jsonschema-rs missing, or a pattern it might read otherwise)."""
    try:
        import jsonschema_rs
    except ImportError:
        return None
    try:
        validator = jsonschema_rs.Draft202012Validator(json.loads(json.dumps(_rewritten(schema))))
    except Exception:  # a pattern Rust's regex refuses, or a schema it cannot build
        return None

    def is_valid(instance: Any) -> bool:
        try:
            return validator.is_valid(instance)
        except Exception:  # a value Rust cannot take (a set, a non-string key): ask jsonschema
            return False

    return is_valid
