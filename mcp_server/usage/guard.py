"""The budget guard's real check: ``python -m mcp_server.usage.guard`` with a PreToolUse payload on stdin.

Runs under the plugin's venv (it needs the YAML config and the price table); the stdlib hook in
mcp_server.usage.hook starts it only when a budget may be configured, after bringing the ledger
up to date. Exit 0: go on. Exit 2: blocked, the reason on stderr. Anything else: the hook logs
it and lets the call through (the guard never blocks by accident).

- Story cap (``budget.per_story_usd``): the story is ``tool_input.story`` for the GLM tools and
  for a phase start (``checkpoint_write`` with status running), and the ``[story <id> <phase>]``
  prefix of an Agent prompt. No story (a Workflow launch): only the run cap applies.
- Run cap (``budget.per_run_usd``): everything recorded in the pilot run the call belongs to
  (its story's run, else its session's: `hybrid runs`). Outside a pilot run: everything recorded
  in the project (Claude and GLM) since this Claude Code session began, the earliest of the first
  timestamp in its main transcript and its first ledger row; when neither is known yet, nothing
  has been spent in it.
- A cap is reached when the spend is at or over it. Spend under a model with no price blocks
  the call: it is named, never counted as $0.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from mcp_server.budget import spend, unpriced_message, usd
from mcp_server.config import load_settings
from mcp_server.ledger import Ledger, ledger_path
from mcp_server.pricing import PriceTable
from mcp_server.usage.transcripts import first_timestamp, parse_prefix

GLM_TOOL_PREFIX = "mcp__plugin_hybrid_glm__"
AGENT_TOOLS = {"Agent", "Task"}


@dataclass(frozen=True)
class SpendSplit:
    total: float
    claude: float
    glm: float
    unpriced: tuple[str, ...]


def story_of(payload: Mapping) -> str | None:
    tool, tool_input = payload.get("tool_name"), payload.get("tool_input")
    if not isinstance(tool_input, dict) or not isinstance(tool, str):
        return None
    if tool in AGENT_TOOLS:
        prefixed = parse_prefix(tool_input.get("prompt") if isinstance(tool_input.get("prompt"), str) else None)
        return prefixed[0] if prefixed else None
    if tool.startswith(GLM_TOOL_PREFIX):
        story = tool_input.get("story")
        return story if isinstance(story, str) and story else None
    return None


def split_spend(ledger: Ledger, prices: PriceTable, **query: str) -> SpendSplit:
    """budget.spend() (Claude and GLM together), with the part each provider had in it."""
    total = spend(ledger, prices, **query)
    return SpendSplit(
        total.usd, total.by_provider.get("anthropic", 0.0), total.by_provider.get("glm", 0.0), total.unpriced_models
    )


def pilot_run_of(ledger: Ledger, payload: Mapping, story: str | None) -> str | None:
    """The pilot run (`hybrid runs`) this call belongs to: its story's, else its session's."""
    session_id = payload.get("session_id")
    return ledger.run_of(story, session_id=session_id if isinstance(session_id, str) and session_id else None)


def run_started_at(ledger: Ledger, payload: Mapping) -> str | None:
    """When this session began: its main transcript's first timestamp or its first ledger row."""
    candidates = []
    path = payload.get("transcript_path")
    if isinstance(path, str) and path:
        try:
            candidates.append(first_timestamp(path))
        except OSError:
            pass
    session_id = payload.get("session_id")
    if isinstance(session_id, str) and session_id:
        candidates.append(ledger.session_started_at(session_id))
    found = [ts for ts in candidates if ts]
    return min(found) if found else None


def _message(setting: str, cap: float, scope: str, spent: SpendSplit, variable: str) -> str:
    if spent.unpriced:
        return "hybrid budget: " + unpriced_message(f"budget.{setting}", cap, scope, spent.unpriced)
    return (
        f"hybrid budget: budget.{setting} is {usd(cap)}; {scope} has spent ${spent.total:.4f} "
        f"(Claude ${spent.claude:.4f} + GLM ${spent.glm:.4f}). Raise or remove it under "
        f"budget: in .claude/hybrid.yaml (or {variable})."
    )


def _refused(ledger: Ledger, payload: Mapping, cap: str, story: str | None) -> None:
    session = payload.get("session_id")
    ledger.record_refusal(cap=cap, story=story, source="hook", session_id=session if isinstance(session, str) else None)


def check(payload: Mapping, environ: Mapping[str, str]) -> str | None:
    """The reason to block this call, or None to let it through."""
    cwd = payload.get("cwd")
    root = Path(environ.get("CLAUDE_PROJECT_DIR") or (cwd if isinstance(cwd, str) and cwd else ".") )
    settings = load_settings(root, dict(environ))
    per_story, per_run = settings.budget.per_story_usd, settings.budget.per_run_usd
    if per_story is None and per_run is None:
        return None
    prices = PriceTable.load(settings.prices)
    ledger = Ledger(ledger_path(settings.project_root))
    try:
        story = story_of(payload)
        if per_story is not None and story:
            spent = split_spend(ledger, prices, story=story)
            if spent.total >= per_story or spent.unpriced:
                _refused(ledger, payload, "budget.per_story_usd", story)
                return _message("per_story_usd", per_story, f"story {story}", spent, "HYBRID_BUDGET_PER_STORY_USD")
        if per_run is not None:
            pilot_run = pilot_run_of(ledger, payload, story)
            since = None if pilot_run else run_started_at(ledger, payload)
            if pilot_run or since:
                spent = split_spend(ledger, prices, run_id=pilot_run) if pilot_run else split_spend(ledger, prices, since=since)
                if spent.total >= per_run or spent.unpriced:
                    _refused(ledger, payload, "budget.per_run_usd", story)
                    scope = f"run {pilot_run}" if pilot_run else f"this run (since {since[:19].replace('T', ' ')} UTC)"
                    return _message("per_run_usd", per_run, scope, spent, "HYBRID_BUDGET_PER_RUN_USD")
    finally:
        ledger.close()
    return None


def main() -> int:
    try:
        payload = json.loads(sys.stdin.buffer.read())
        if not isinstance(payload, dict):
            raise ValueError("the payload is not a JSON object")
        reason = check(payload, os.environ)
    except Exception as error:  # reported by the hook, which lets the call through
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 1
    if reason:
        print(reason, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
