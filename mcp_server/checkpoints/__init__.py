"""Story checkpoints: `.claude/checkpoints/{story}.yaml`, the one record of where a story stands.

The file is one YAML document: the data, checked against data/checkpoint.schema.json, then the
seed's history lines (``P1: ✓ ux-designer 14:05``) as top-level keys, newest last, so that
``tail -1`` shows the latest event.

Modules, each importing only those before it: ``model`` (constants, dataclasses, errors) ←
``validation`` (the JSON Schema checks) ← ``yaml_document`` (parse and render the file) ←
``history_file`` (a long history read in chunks, its last lines kept, copied on write) ← ``rules``
(transitions, send-back, next step, resume point; pure) ← ``store`` (paths, lock, atomic replace,
read, create, write, list) ← ``views`` (status tables and texts, the resume plan). The rest of the
code imports the names below from this package, not from its modules.
"""

from mcp_server.checkpoints.model import (
    CHECKPOINTS_RELATIVE,
    HISTORY_HEADER,
    HISTORY_KEPT,
    PHASES,
    Checkpoint,
    CheckpointError,
    CheckpointListing,
    CheckpointNotFound,
    HistoryEntry,
    TransitionError,
    Update,
    WriteOutcome,
    zero_tokens,
)
from mcp_server.checkpoints.rules import SendBack, next_action, review_rounds, send_back
from mcp_server.checkpoints.validation import schema, validate_data
from mcp_server.checkpoints.store import (
    NOT_STARTED,
    checkpoint_path,
    checkpoints_dir,
    list_checkpoints,
    list_story_status,
    load_checkpoint,
    open_checkpoint,
    pipeline_outputs,
    story_file_of,
    write_checkpoint,
)
from mcp_server.checkpoints.views import checkpoint_text, phase_report, resume_plan, status_table
from mcp_server.checkpoints.yaml_document import parse_checkpoint, render_checkpoint

__all__ = [
    "CHECKPOINTS_RELATIVE",
    "HISTORY_HEADER",
    "HISTORY_KEPT",
    "NOT_STARTED",
    "PHASES",
    "Checkpoint",
    "CheckpointError",
    "CheckpointListing",
    "CheckpointNotFound",
    "HistoryEntry",
    "TransitionError",
    "SendBack",
    "Update",
    "WriteOutcome",
    "checkpoint_path",
    "checkpoint_text",
    "checkpoints_dir",
    "list_checkpoints",
    "pipeline_outputs",
    "story_file_of",
    "list_story_status",
    "load_checkpoint",
    "next_action",
    "open_checkpoint",
    "parse_checkpoint",
    "phase_report",
    "render_checkpoint",
    "resume_plan",
    "review_rounds",
    "schema",
    "send_back",
    "status_table",
    "validate_data",
    "write_checkpoint",
    "zero_tokens",
]
