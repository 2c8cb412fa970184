"""What each `hybrid` command that reads the usage ledger does first: the project, its settings,
the stories named (each one known), the price table, and the ledger, which must exist."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from mcp_server.cli_grammar import check_known, known_stories, story_list
from mcp_server.config import ConfigError, Settings, load_settings, project_root
from mcp_server.ledger import ledger_path
from mcp_server.pricing import PriceTable, PriceTableError


@dataclass(frozen=True)
class LedgerCommand:
    root: Path
    settings: Settings
    stories: list[str]  # as named on the command line; [] for all
    prices: PriceTable
    ledger_path: Path


def prepare(project: str | None, stories: str | list[str] | None, nothing_yet: str) -> LedgerCommand | None:
    """None, with ``nothing_yet`` (``{path}``: the ledger's) on stderr, when there is no ledger yet.
    An unknown story or a bad setting raises, as everywhere (docs/cli.md)."""
    root = Path(project).resolve() if project else project_root()
    settings = load_settings(root)
    named = story_list(stories)
    check_known(named, known_stories(root, settings.stories.glob))
    path = ledger_path(root)
    if not path.exists():
        print(f"hybrid: {nothing_yet.format(path=path)}", file=sys.stderr)
        return None
    try:
        prices = PriceTable.load(settings.prices)
    except PriceTableError as error:  # a bad `prices:` override: one line, as for any config error
        raise ConfigError(f"prices: {error}") from None
    return LedgerCommand(root, settings, named, prices, path)
