"""`hybrid`: the umbrella command. Subcommands come from the modules that own them; the grammar
they share (story lists, --json, --version, exit codes) is in cli_grammar (docs/cli.md)."""

from __future__ import annotations

import argparse
import sys

from mcp_server import checkpoint_cli, ledger_cli, permission_cli, pilot_check, runs
from mcp_server.ab import cli as ab_cli
from mcp_server.cli_grammar import EXIT_NOT_FOUND, add_version, fail, print_json
from mcp_server.errors import HybridError
from mcp_server.budget import spend
from mcp_server.ledger import Ledger
from mcp_server.pricing import PriceTable
from mcp_server.telemetry import cli as telemetry_cli
from mcp_server.usage import agent_totals


def _usage(args: argparse.Namespace) -> int:
    command = ledger_cli.prepare(args.project, args.story, "no usage recorded yet: {path} does not exist "
                                 "(`/hybrid:pilot` records it; `hybrid demo` shows one)")
    if command is None:
        return EXIT_NOT_FOUND
    named, prices, path = command.stories, command.prices, command.ledger_path
    ledger = Ledger(path)
    ledger.use_tiers(prices.thresholds)  # the running totals a report reads, bucketed by these prices
    tables = [(story, _usage_table(ledger, prices, story)) for story in (named or [None])]
    for notice in ledger.notices:  # on opening: a corrupt ledger moved aside, spooled rows merged
        print(f"hybrid: {notice}", file=sys.stderr)
    if args.json:
        print_json([{"story": story, **table} for story, table in tables] if named else tables[0][1])
        return 0
    for story, table in tables:
        if named:
            print(f"story {story}")
        print(f"{'provider':<10} {'model':<22} {'calls':>6} {'prompt':>10} {'cached':>10} {'output':>10} {'usd':>10}")
        for row in table["models"]:
            shown = "unpriced" if row["usd"] is None else ("≥" if row["partial_requests"] else "") + f"{row['usd']:.4f}"
            print(f"{row['provider']:<10} {row['model']:<22} {row['calls']:>6} {row['prompt_tokens']:>10} "
                  f"{row['cached_tokens']:>10} {row['completion_tokens']:>10} {shown:>10}")
        partial = table["partial_requests"]
        line = f"total: {'≥' if partial else ''}${table['usd']:.4f}"
        if table["unpriced_models"]:
            line += f" (unpriced, not included: {', '.join(table['unpriced_models'])})"
        print(line)
        if partial:
            print(f"lower bound (≥): {partial} Claude request(s) never got their final usage in their transcript "
                  "(a Claude Code defect), so their output is undercounted; see docs/usage-accounting.md")
    for check in agent_totals.cross_check(ledger, with_gap_only=True):
        print(agent_totals.describe(check))
    return 0


def _usage_table(ledger: Ledger, prices: PriceTable, story: str | None) -> dict[str, object]:
    total = spend(ledger, prices, story=story)  # priced per request tier, as every report is
    models = [
        {"provider": row.provider, "model": row.model, "calls": row.calls, "prompt_tokens": row.prompt_tokens,
         "cached_tokens": row.cached_tokens, "completion_tokens": row.completion_tokens,
         "usd": total.by_model.get((row.provider, row.model)), "partial_requests": row.partial or 0}
        for row in ledger.totals_by_model(story=story)
    ]
    partial = sum(row["partial_requests"] for row in models)  # the totals are lower bounds when > 0
    return {"models": models, "usd": total.usd, "unpriced_models": list(total.unpriced_models),
            "partial_requests": partial, "lower_bound": partial > 0}


def _demo(args: argparse.Namespace) -> int:
    if args.ab:
        from mcp_server.ab.demo import main as run_ab_demo

        return run_ab_demo(args.dir)
    from mcp_server.demo.run import main as run_demo  # the demo's simulators load only when asked for

    return run_demo(args.dir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hybrid", description="Hybrid Orchestrator: Claude + GLM story pipeline",
                                     epilog="Exit codes: 0 done, 1 nothing to show (unknown story, nothing recorded "
                                            "yet), 2 a bad argument or setting (docs/cli.md).")
    add_version(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    usage = sub.add_parser("usage", help="token and cost totals per model from the usage ledger")
    usage.add_argument("--story", "--stories", dest="story", nargs="*",
                       help="only these stories, one table each: 01.2,01.3 or 01.2 01.3")
    usage.add_argument("--project", help="project directory (default: CLAUDE_PROJECT_DIR or cwd)")
    usage.add_argument("--json", action="store_true", help="the totals as JSON (a list, one entry per story, with --story)")
    usage.set_defaults(func=_usage)
    checkpoint_cli.add_subcommands(sub)
    pilot_check.add_subcommand(sub)
    runs.add_subcommands(sub)
    telemetry_cli.add_subcommands(sub)
    permission_cli.add_subcommands(sub)
    demo = sub.add_parser(
        "demo", help="run /hybrid:pilot on the bundled example in the real Claude Code CLI, with simulated models (no keys)"
    )
    demo.add_argument("--dir", help="where to put the example project (default: a new temp folder)")
    demo.add_argument("--ab", action="store_true",
                      help="run the stories with both engines (engine=claude and engine=hybrid) at once and compare them")
    demo.set_defaults(func=_demo)
    ab_cli.add_subcommand(sub)
    # `hybrid report ...` is hybrid-monitor; main() hands its arguments over as they are.
    sub.add_parser("report", add_help=False, help="cost against Claude-only, quality and a verdict (hybrid-monitor's flags)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["pilot-check"]:
        return pilot_check.main(argv[1:])
    if argv[:1] == ["run-start"]:
        return runs.run_start_main(argv[1:])
    if argv[:1] == ["report"]:
        from mcp_server.monitor import main as report_main

        return report_main(argv[1:], prog="hybrid report")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HybridError as error:  # a problem the user can fix: one line, no traceback
        return fail("hybrid", error)


if __name__ == "__main__":
    sys.exit(main())
