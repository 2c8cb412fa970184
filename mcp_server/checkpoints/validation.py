"""The shipped JSON Schema (data/checkpoint.schema.json): its validators, built once each, and the
checks of a write's values that need no checkpoint (before any lock or file is touched)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from mcp_server.checkpoints.model import PHASES, WRITABLE_STATUSES, CheckpointError, TransitionError, Update
from mcp_server.quick_schema import quick_validator


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    text = resources.files("mcp_server.data").joinpath("checkpoint.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=None)
def _validator(definition: str | None) -> Any:
    import jsonschema  # imported on first use: the MCP server starts with every session

    root = schema()
    target = root if definition is None else {"$ref": f"#/$defs/{definition}", "$defs": root["$defs"]}
    return jsonschema.Draft202012Validator(target)


@lru_cache(maxsize=32)
def _inline_validator(definition_json: str) -> Any:
    """A validator for a schema of the caller's own, built once per schema (keyed by its JSON)."""
    import jsonschema

    return jsonschema.Draft202012Validator(json.loads(definition_json))


def schema_problem(instance: Any, definition: str | dict[str, Any] | None = None, prefix: str = "") -> str | None:
    """The most relevant schema violation as 'where: what', or None when the instance is valid.

    ``definition`` names a ``$defs`` entry of the shipped schema, or is a schema of its own.
    """
    import jsonschema

    if isinstance(definition, dict):
        validator = _inline_validator(json.dumps(definition, sort_keys=True))
    else:
        validator = _validator(definition)
    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if error is None:
        return None
    where = prefix
    for part in error.absolute_path:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    return f"{where or 'top level'}: {error.message}"


@lru_cache(maxsize=1)
def _quick_check() -> Callable[[Any], bool] | None:
    return quick_validator(schema())


def validate_data(data: Any, path: Path) -> None:
    quick = _quick_check()
    if quick is not None and quick(data):
        return  # only a yes is taken from the quick check; jsonschema decides everything else
    problem = schema_problem(data)
    if problem is not None:
        raise CheckpointError(f"{path} does not match the checkpoint schema: {problem}")


# --- Input checks (before any lock or file) ---------------------------------------------------


def check_update(update: Update) -> None:
    """Refuse an update whose values are wrong in themselves, whatever the checkpoint says."""
    if update.phase not in PHASES:
        raise CheckpointError(f"unknown phase {update.phase!r}: use one of {', '.join(PHASES)}")
    if update.status == "pending":
        raise TransitionError("status 'pending' cannot be written: every phase starts pending")
    if update.status not in WRITABLE_STATUSES:
        raise CheckpointError(f"unknown status {update.status!r}: use one of {', '.join(WRITABLE_STATUSES)}")
    if not isinstance(update.new_iteration, bool):
        raise CheckpointError("new_iteration must be true or false")
    for name, value in (("agent", update.agent), ("model", update.model)):
        # A history line is `P1: ✓ <agent> 14:05`: one line. (Python's `$`, which the schema's
        # patterns use, also matches before a final newline.)
        if isinstance(value, str) and any(not character.isprintable() for character in value):
            raise CheckpointError(f"invalid {name}: {value!r} holds a newline or a control character")
    _check_value(update.agent, "agent", "agent")
    _check_value(update.model, {"type": "string", "pattern": r"^\S{1,100}$"}, "model")
    _check_value(update.summary, {"type": "string", "maxLength": 2000}, "summary")
    _check_value(update.artifacts, schema()["$defs"]["phase"]["properties"]["artifacts"], "artifacts")
    _check_attachment(update, update.review, "review", "P5", "review_input")
    _check_attachment(update, update.qa, "qa", "P6", "qa_input")
    _check_value(update.coverage, "coverage_input", "coverage")


def _check_value(value: Any, definition: str | dict[str, Any], name: str) -> None:
    if value is None:
        return
    problem = schema_problem(value, definition, prefix=name)
    if problem is not None:
        raise CheckpointError(f"invalid {problem}")


def _check_attachment(update: Update, value: Any, name: str, owner: str, definition: str) -> None:
    if value is None:
        return
    if update.phase != owner:
        raise CheckpointError(f"{name} belongs to {owner}; it cannot be written with {update.phase}")
    _check_value(value, definition, name)
