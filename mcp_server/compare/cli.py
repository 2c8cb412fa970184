"""`hybrid report --compare A B` (= `hybrid-monitor --compare A B`): the monitor's command line
reads the flags, the settings and the prices (of `--project`, so both sides are priced alike),
then hands over here. Errors are ``CompareInputError`` (exit 1) and ``CompareArgumentError``
(exit 2), one line naming the side.
"""

from __future__ import annotations

from typing import Sequence

from mcp_server.compare.figures import Comparison, compare
from mcp_server.compare.render import render_markdown, report_json
from mcp_server.compare.sides import (
    CompareArgumentError,
    CompareInputError,
    checkpoint_stories,
    load_side,
    named_baselines,
    parse_side,
    read_ledger_facts,
)
from mcp_server.config import Settings
from mcp_server.pricing import PriceTable
from mcp_server.stories import check_story_id, natural_key


def build_comparison(
    a_text: str,
    b_text: str,
    prices: PriceTable,
    settings: Settings,
    *,
    stories: Sequence[str] | None = None,
    note: str | None = None,
) -> Comparison:
    """Both sides read and priced alike; the stories both have (of ``stories`` when given)."""
    for story in stories or ():
        check_story_id(story)  # StoryIdError: exit 2
    specs = [parse_side("A", a_text), parse_side("B", b_text)]
    if specs[0].path == specs[1].path and specs[0].run == specs[1].run:
        raise CompareArgumentError(f"A and B are the same: {specs[0].label}; compare two folders (or two runs)")
    facts = [read_ledger_facts(spec) for spec in specs]
    found = [fact.stories if fact.stories is not None else checkpoint_stories(spec) for spec, fact in zip(specs, facts)]
    wanted = list(dict.fromkeys(stories)) if stories else None
    common = [story for story in found[0] if story in found[1] and (wanted is None or story in wanted)]
    if not common:
        if wanted:
            raise CompareInputError(
                f"no common story among {', '.join(wanted)}: A has {', '.join(found[0]) or 'none'}, B has {', '.join(found[1]) or 'none'}"
            )
        raise CompareInputError(f"no common story: A has {', '.join(found[0])}, B has {', '.join(found[1])}")
    common.sort(key=natural_key)
    baselines = named_baselines(settings)
    problems = [f"{name}: {model}" for name, mapping in baselines for model in mapping.values() if prices.lookup(model) is None]
    if problems:
        raise CompareArgumentError(f"the Claude-only estimate needs a price for {'; '.join(sorted(set(problems)))}")
    sides = []
    for spec, fact, side_found in zip(specs, facts, found):
        # every story of the side (orchestration included in full) when it has only the common
        # ones; else the common stories, with the orchestration of the sessions that ran them
        selection = None if fact.stories is None and side_found == common else common
        sides.append(load_side(spec, fact, selection, prices, settings, baselines))
    only_in = {"A": [s for s in found[0] if s not in common and (wanted is None or s in wanted)],
               "B": [s for s in found[1] if s not in common and (wanted is None or s in wanted)]}
    return compare(sides[0], sides[1], common, only_in, note=note)


def compare_text(
    sides: Sequence[str],
    prices: PriceTable,
    settings: Settings,
    *,
    stories: Sequence[str] | None = None,
    as_json: bool = False,
    note: str | None = None,
) -> str:
    comparison = build_comparison(sides[0], sides[1], prices, settings, stories=stories, note=note)
    return report_json(comparison) if as_json else render_markdown(comparison)


__all__ = ["CompareArgumentError", "CompareInputError", "build_comparison", "compare_text"]
