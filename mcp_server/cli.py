"""`hybrid`: the umbrella command. Subcommands come from the modules that own them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mcp_server import checkpoint_cli, permission_cli
from mcp_server.config import ConfigError, load_settings, project_root
from mcp_server.errors import HybridError
from mcp_server.budget import spend
from mcp_server.ledger import Ledger, ledger_path
from mcp_server.pricing import PriceTable, PriceTableError
from mcp_server.telemetry import cli as telemetry_cli
from mcp_server.usage import agent_totals


def _usage(args: argparse.Namespace) -> int:
    root = Path(args.project).resolve() if args.project else project_root()
    path = ledger_path(root)
    if not path.exists():
        print(f"no usage recorded yet: {path} does not exist (run a GLM tool or /hybrid:pilot first)")
        return 1
    settings = load_settings(root)
    try:
        prices = PriceTable.load(settings.prices)
    except PriceTableError as error:  # a bad `prices:` override: one line, as for any config error
        raise ConfigError(f"prices: {error}") from None
    ledger = Ledger(path)
    total = spend(ledger, prices, story=args.story)  # priced per request tier, as every report is
    for notice in ledger.notices:  # a corrupt ledger moved aside, spooled rows merged
        print(f"hybrid: {notice}", file=sys.stderr)
    print(f"{'provider':<10} {'model':<22} {'calls':>6} {'prompt':>10} {'cached':>10} {'output':>10} {'usd':>10}")
    partial = 0
    for row in ledger.totals_by_model(story=args.story):
        cost = total.by_model.get((row.provider, row.model))
        shown = "unpriced" if cost is None else ("≥" if row.partial else "") + f"{cost:.4f}"
        partial += row.partial or 0
        print(
            f"{row.provider:<10} {row.model:<22} {row.calls:>6} {row.prompt_tokens:>10} "
            f"{row.cached_tokens:>10} {row.completion_tokens:>10} {shown:>10}"
        )
    line = f"total: {'≥' if partial else ''}${total.usd:.4f}"
    if total.unpriced_models:
        line += f" (unpriced, not included: {', '.join(total.unpriced_models)})"
    print(line)
    if partial:
        print(f"lower bound (≥): {partial} Claude request(s) never got their final usage in their transcript "
              "(a Claude Code defect), so their output is undercounted; see docs/usage-accounting.md")
    for check in agent_totals.cross_check(ledger, with_gap_only=True):
        print(agent_totals.describe(check))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from mcp_server.demo.run import main as run_demo  # the demo's simulators load only when asked for

    return run_demo(args.dir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hybrid", description="Hybrid Orchestrator: Claude + GLM story pipeline")
    sub = parser.add_subparsers(dest="command", required=True)
    usage = sub.add_parser("usage", help="token and cost totals from the usage ledger")
    usage.add_argument("--story", help="only this story")
    usage.add_argument("--project", help="project directory (default: CLAUDE_PROJECT_DIR or cwd)")
    usage.set_defaults(func=_usage)
    checkpoint_cli.add_subcommands(sub)
    telemetry_cli.add_subcommands(sub)
    permission_cli.add_subcommands(sub)
    demo = sub.add_parser(
        "demo", help="run /hybrid:pilot on the bundled example in the real Claude Code CLI, with simulated models (no keys)"
    )
    demo.add_argument("--dir", help="where to put the example project (default: a new temp folder)")
    demo.set_defaults(func=_demo)
    # `hybrid report ...` is hybrid-monitor; main() hands its arguments over as they are.
    sub.add_parser("report", add_help=False, help="cost against Claude-only, quality and a verdict (hybrid-monitor's flags)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["report"]:
        from mcp_server.monitor import main as report_main

        return report_main(argv[1:], prog="hybrid report")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HybridError as error:  # a problem the user can fix: one line, no traceback
        print(f"hybrid: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
