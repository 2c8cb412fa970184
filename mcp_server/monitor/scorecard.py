"""The per-model scorecard: for each model that did work in the selected stories, what it used
(calls, tokens, dollars: the report's own per-model sums) and how its work fared (the
first-attempt test pass rate and fix rounds of its ``implement``/``refactor`` calls; the review
rounds and the acceptance criteria of the stories it wrote).

Where each fact comes from:

- calls, tokens, dollars: the ledger's usage rows of the model, priced as the whole report is
  (``rows.sum_groups``), so the scorecard's dollars add up to the report's total;
- first attempt and fix rounds: the ledger's ``test_run`` rows (one per GLM tool call that ran
  its test command, written where the delegation runs the tests), of the tools in ``CODE_TOOLS``;
- review score, REQUEST_CHANGES rate and AC pass rate: the checkpoints of the stories the model
  wrote. The writer of a story is the model that did its P3: the model P3's checkpoint entry
  names, else the GLM model of the story's P3 usage rows, else its Claude model (the one with the
  most calls; a tie goes to the first name). Every review round of the story counts, and the QA
  results of its current round.

Pure: nothing here reads a file or the clock. docs/monitor.md#the-model-scorecard has the method.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable, Mapping, Sequence

from mcp_server.monitor.inputs import MonitorInput, StoryInput, UsageGroup
from mcp_server.monitor.money import CLAUDE, GLM, Money, Tally, side
from mcp_server.monitor.rows import ModelRow, StoryRow

CODE_TOOLS = ("implement", "refactor")  # the calls whose first attempt is scored
WRITER_PHASE = "P3"
CHANGES = "REQUEST_CHANGES"


@dataclass
class ModelScore:
    provider: str  # "glm" or "anthropic"; "" for a model only a checkpoint names
    model: str
    money: Money = field(default_factory=Money)
    tested_calls: int = 0  # implement/refactor calls that ran their test command
    first_passed: int = 0  # of those, passed before any fix round
    fix_rounds: int = 0  # the fix rounds those calls used
    stories: list[str] = field(default_factory=list)  # the stories whose P3 it did
    review_rounds: int = 0
    review_score_sum: float = 0.0
    changes_requested: int = 0  # review rounds with verdict REQUEST_CHANGES
    acs_passed: int = 0
    acs_judged: int = 0

    @property
    def tokens(self) -> Tally:
        """The model's tokens (a model's rows are all of one provider; both sides summed anyway)."""
        total = Tally()
        for tally in (self.money.tokens[CLAUDE], self.money.tokens[GLM]):
            total.calls += tally.calls
            total.prompt += tally.prompt
            total.cached += tally.cached
            total.cache_writes += tally.cache_writes
            total.completion += tally.completion
        return total

    @property
    def cost(self) -> Decimal | None:
        """Dollars; None when the model has no price (never $0)."""
        if self.model in self.money.unpriced:
            return None
        return self.money.total

    @property
    def first_pass_pct(self) -> float | None:
        return 100.0 * self.first_passed / self.tested_calls if self.tested_calls else None

    @property
    def fix_rounds_per_call(self) -> float | None:
        return self.fix_rounds / self.tested_calls if self.tested_calls else None

    @property
    def review_score(self) -> float | None:
        """The mean score of the review rounds of its stories."""
        return self.review_score_sum / self.review_rounds if self.review_rounds else None

    @property
    def changes_pct(self) -> float | None:
        return 100.0 * self.changes_requested / self.review_rounds if self.review_rounds else None

    @property
    def ac_pct(self) -> float | None:
        return 100.0 * self.acs_passed / self.acs_judged if self.acs_judged else None


@dataclass
class Scorecard:
    rows: list[ModelScore]
    no_writer: list[str]  # stories with review or QA results but no model known to have done P3


def _p3_calls(groups: Iterable[UsageGroup]) -> dict[str, dict[tuple[str, str], int]]:
    """Per story, the calls of each (side, model) in its P3 usage."""
    calls: dict[str, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    for group in groups:
        if group.story is not None and group.phase == WRITER_PHASE:
            calls[group.story][(side(group.provider), group.model)] += group.calls
    return calls


def writer(item: StoryInput, p3_calls: Mapping[tuple[str, str], int], known: Mapping[str, str]) -> str | None:
    """The model that did the story's P3 (see the module's docstring); ``known`` maps the
    lower-cased names of the models in the ledger to their spelling there."""
    named = (((item.data or {}).get("phases") or {}).get(WRITER_PHASE) or {}).get("model")
    if isinstance(named, str) and named.strip():
        return known.get(named.strip().lower(), named.strip())
    for wanted in (GLM, CLAUDE):
        candidates = [(-calls, model) for (which, model), calls in p3_calls.items() if which == wanted and calls > 0]
        if candidates:
            return min(candidates)[1]
    return None


def build_scorecard(inp: MonitorInput, models: Iterable[ModelRow], stories: Sequence[StoryRow]) -> Scorecard:
    scores: dict[str, ModelScore] = {}
    for row in models:
        scores[row.model] = ModelScore(row.provider, row.model, money=row.money)
    known = {name.lower(): name for name in scores}

    def score_of(model: str, provider: str) -> ModelScore:
        if model not in scores:
            scores[model] = ModelScore(provider, model)
        return scores[model]

    for run in inp.test_runs:
        if run.tool in CODE_TOOLS:
            score = score_of(known.get(run.model.lower(), run.model), GLM)
            score.tested_calls += run.calls
            score.first_passed += run.first_passed
            score.fix_rounds += run.fix_rounds

    p3 = _p3_calls(inp.groups)
    no_writer = []
    for row in stories:
        item = inp.inputs[row.story]
        model = writer(item, p3.get(row.story, {}), known)
        reviews = item.reviews
        if model is None:
            if reviews or row.ac is not None:
                no_writer.append(row.story)
            continue
        score = score_of(model, "")
        score.stories.append(row.story)
        score.review_rounds += len(reviews)
        score.review_score_sum += sum(float(review["score"]) for review in reviews)
        score.changes_requested += sum(1 for review in reviews if review.get("verdict") == CHANGES)
        if row.ac is not None:
            score.acs_passed += row.ac.passed
            score.acs_judged += row.ac.total
    return Scorecard(rows=sorted(scores.values(), key=lambda s: (s.provider or "~", s.model)), no_writer=no_writer)
