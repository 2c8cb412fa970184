"""`hybrid telemetry push` and `hybrid telemetry status`."""

from __future__ import annotations

import argparse
from pathlib import Path

from mcp_server.config import load_settings, project_root
from mcp_server.ledger import Ledger, ledger_path
from mcp_server.telemetry.state import SOURCES, TelemetryState, state_path


def _root(args: argparse.Namespace) -> Path:
    return Path(args.project).resolve() if args.project else project_root()


def _push(args: argparse.Namespace) -> int:
    from mcp_server.telemetry.push import push  # the exporter loads only when asked for

    settings = load_settings(_root(args))
    result = push(settings, settle_s=args.settle)
    target = settings.telemetry.endpoint
    if result.error:
        print(f"hybrid telemetry: push to {target} failed, {result.waiting} row(s) wait for the next push: {result.error}")
        return 1
    waiting = f"; {result.waiting} row(s) not settled yet" if result.waiting else ""
    print(f"telemetry: sent {result.rows} ledger row(s) as {result.series} series to {target}{waiting}")
    return 0


def _status(args: argparse.Namespace) -> int:
    root = _root(args)
    telemetry = load_settings(root).telemetry
    print(f"endpoint: {telemetry.endpoint or 'not set (telemetry is off)'} ({telemetry.protocol})")
    if telemetry.headers:
        print(f"headers: {', '.join(sorted(telemetry.headers))} (values hidden)")
    path = state_path(root)
    if not path.exists():
        print(f"nothing exported yet ({path} does not exist)")
        return 0
    state = TelemetryState(path)
    try:
        status = state.status()
    finally:
        state.close()
    latest = _latest(root)
    for source in SOURCES:
        print(f"cursor {source}: row {status.cursor[source]} of {latest.get(source, 0)}")
        if status.cursor[source] > latest.get(source, 0):
            print(f"  the ledger's {source} rows end before the cursor: was it replaced? (docs/telemetry.md, Limits)")
    print(f"series: {status.series}; rows exported: {status.exported_rows}; instance: {status.instance_id}")
    print(f"last success: {status.last_success or 'never'}")
    if status.last_error:
        print(f"last error ({status.last_error_at}): {status.last_error}")
    else:
        print("last error: none")
    return 0


def _latest(root: Path) -> dict[str, int]:
    path = ledger_path(root)
    if not path.exists():
        return {}
    ledger = Ledger(path)
    try:
        return {source: ledger.last_id(source) for source in SOURCES}
    finally:
        ledger.close()


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    telemetry = sub.add_parser("telemetry", help="the usage ledger as OpenTelemetry metrics (docs/telemetry.md)")
    actions = telemetry.add_subparsers(dest="telemetry_command", required=True)
    push = actions.add_parser("push", help="send the ledger rows not sent yet to telemetry.endpoint")
    push.add_argument(
        "--settle", type=float, default=0.0, metavar="SECONDS",
        help="send only rows that have been in the ledger this long (default 0: all of them)",
    )
    status = actions.add_parser("status", help="the endpoint, the cursor and the last error")
    for parser in (push, status):
        parser.add_argument("--project", help="project directory (default: CLAUDE_PROJECT_DIR or cwd)")
    push.set_defaults(func=_push)
    status.set_defaults(func=_status)
