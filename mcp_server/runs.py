"""Pilot runs: `hybrid run-start` (the pilot's step that records a run) and `hybrid runs` (the list).

A run is recorded in the ledger (mcp_server/ledger_runs.py): its id, engine, stories and the
Claude Code session that started it. Every usage row gets the run it was spent in. A run's
start is when it was recorded; its end is its latest usage row; its cost is its rows re-priced
with the current price table, per request tier, as every report prices them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mcp_server.cli_grammar import EXIT_NOT_FOUND, fail, print_json
from mcp_server.config import Settings, load_settings, project_root
from mcp_server import ledger_cli
from mcp_server.engine import agent_models
from mcp_server.errors import HybridError
from mcp_server.ledger import Ledger, ledger_path
from mcp_server.pilot_check import parse_pilot_line
from mcp_server.pricing import PriceTable, TokenCounts

SESSION_VARIABLE = "CLAUDE_CODE_SESSION_ID"  # Claude Code sets it for the commands its Bash tool runs


@dataclass
class RunSummary:
    run: str
    engine: str
    stories: list[str]
    started_at: str
    ended_at: str | None  # its latest usage row; None while it has none
    usd: float  # the priced rows; see unpriced_models
    claude_usd: float
    glm_usd: float
    calls: int
    unpriced_models: list[str] = field(default_factory=list)
    lower_bound: bool = False  # some Claude request never got its final usage: the cost is a lower bound


def start(root: Path, words: list[str], session_id: str | None) -> dict[str, object]:
    """Check the pilot's arguments, record the run, and return what the workflow is given."""
    stories, options, _ = parse_pilot_line(words)
    settings = load_settings(root)
    engine = options.get("engine", "hybrid")
    ledger = Ledger(ledger_path(root))
    try:
        run_id = ledger.start_run(engine=engine, stories=stories, session_id=session_id)
    finally:
        ledger.close()
    return _workflow_args(run_id, engine, settings)


def resume(root: Path, stories: list[str], session_id: str | None) -> dict[str, object]:
    """/hybrid:resume continues the stories' latest run, with its engine (a new hybrid run when
    they were never in one): what the workflow is given besides the resume plan."""
    settings = load_settings(root)
    ledger = Ledger(ledger_path(root))
    try:
        continued = ledger.continue_run(stories, session_id=session_id)
        run_id, engine = continued or (ledger.start_run(engine="hybrid", stories=stories, session_id=session_id), "hybrid")
    finally:
        ledger.close()
    return _workflow_args(run_id, engine, settings)


def _workflow_args(run_id: str, engine: str, settings: Settings) -> dict[str, object]:
    """The run's part of the workflow's args: its id and engine, and engine=claude's agent models."""
    args: dict[str, object] = {"run": run_id, "engine": engine}
    if engine == "claude":
        args["models"] = agent_models(settings)
    return args


def run_start_main(argv: list[str]) -> int:
    """`hybrid run-start [--project DIR] ARGUMENTS...`: the pilot's own words, as for pilot-check."""
    words, root = list(argv), project_root()
    if words[:1] == ["--project"] and len(words) > 1:
        root, words = Path(words[1]).resolve(), words[2:]
    try:
        started = start(root, words, os.environ.get(SESSION_VARIABLE) or None)
    except (HybridError, ValueError) as error:
        return fail("hybrid run-start", error)
    print(f"run: {started['run']} engine={started['engine']}")
    print("workflow args: " + json.dumps(started, sort_keys=True))
    return 0


def summaries(ledger: Ledger, prices: PriceTable, stories: list[str] | None = None) -> list[RunSummary]:
    """Every run, oldest first (or those with one of ``stories``)."""
    runs = {
        run_id: RunSummary(run_id, engine, [s for s in named.split(",") if s], started, None, 0.0, 0.0, 0.0, 0)
        for run_id, engine, named, started in ledger.fetchall(
            "SELECT id, engine, stories, started_at FROM run ORDER BY started_at, id"
        )
    }
    rows = ledger.fetchall(
        f"SELECT run_id, provider, model, {prices.bucket_sql()} AS bucket, COUNT(*), SUM(prompt_tokens),"
        " SUM(cached_tokens), SUM(cache_write_5m_tokens), SUM(cache_write_1h_tokens), SUM(completion_tokens),"
        " SUM(status = 'ok:partial-usage'), MAX(ts) FROM usage WHERE run_id IS NOT NULL"
        " GROUP BY run_id, provider, model, bucket"
    )
    for run_id, provider, model, bucket, calls, prompt, cached, write_5m, write_1h, completion, partial, last in rows:
        run = runs.get(run_id)
        if run is None:
            continue  # a run id given by hand with no run recorded
        tokens = TokenCounts(prompt_tokens=prompt or 0, cached_tokens=cached or 0, cache_write_5m_tokens=write_5m or 0,
                             cache_write_1h_tokens=write_1h or 0, completion_tokens=completion or 0)
        cost = prices.cost(model, tokens, prompt_size=prices.bucket_prompt_size(bucket))
        run.calls += calls
        run.lower_bound = run.lower_bound or bool(partial)
        run.ended_at = max(run.ended_at or last, last)
        if cost is None:
            run.unpriced_models = sorted({*run.unpriced_models, model})
            continue
        run.usd += cost
        if provider == "glm":
            run.glm_usd += cost
        else:
            run.claude_usd += cost
    chosen = [run for run in runs.values() if not stories or set(stories) & set(run.stories)]
    return chosen


def _runs(args: argparse.Namespace) -> int:
    command = ledger_cli.prepare(args.project, args.stories,
                                 "no runs recorded yet: {path} does not exist (`/hybrid:pilot` records them)")
    if command is None:
        return EXIT_NOT_FOUND
    named, prices, path = command.stories, command.prices, command.ledger_path
    ledger = Ledger(path)
    try:
        found = summaries(ledger, prices, named)
    finally:
        ledger.close()
    for notice in ledger.notices:
        print(f"hybrid: {notice}", file=sys.stderr)
    if args.json:
        print_json([asdict(run) for run in found])
        return 0
    if not found:
        print("hybrid: no runs recorded yet (`/hybrid:pilot` records one per run)", file=sys.stderr)
        return EXIT_NOT_FOUND
    print(f"{'run':<21} {'engine':<7} {'stories':<20} {'start (UTC)':<17} {'end (UTC)':<17} {'usd':>11}")
    for run in found:
        cost = ("≥" if run.lower_bound else "") + f"${run.usd:.4f}" + ("*" if run.unpriced_models else "")
        print(f"{run.run:<21} {run.engine:<7} {','.join(run.stories):<20} {_minute(run.started_at):<17} "
              f"{_minute(run.ended_at):<17} {cost:>11}")
    unpriced = sorted({model for run in found for model in run.unpriced_models})
    if unpriced:
        print(f"* unpriced, not included: {', '.join(unpriced)}")
    if any(run.lower_bound for run in found):
        print("≥: a lower bound; some Claude requests never got their final usage in their transcript "
              "(docs/usage-accounting.md)")
    return 0


def _minute(ts: str | None) -> str:
    return "-" if not ts else ts[:16].replace("T", " ")


def add_subcommands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    runs = sub.add_parser("runs", help="the pilot runs: id, engine, stories, start, end and cost")
    runs.add_argument("--stories", "--story", dest="stories", nargs="*",
                      help="only runs with one of these stories: 01.2,01.3 or 01.2 01.3")
    runs.add_argument("--project", help="project directory (default: CLAUDE_PROJECT_DIR or cwd)")
    runs.add_argument("--json", action="store_true", help="the runs as JSON, one object each")
    runs.set_defaults(func=_runs)
    # `hybrid run-start ...` is run_start_main(); hybrid's main() hands its words over as they are.
    sub.add_parser("run-start", add_help=False,
                   help="the pilot's step that records a run (its id, engine and stories) and prints the workflow's args")

