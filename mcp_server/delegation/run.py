"""One GLM delegation, top to bottom.

budget check -> context -> GLM -> parse (one repair round) -> confined atomic writes
-> test command and fix rounds -> ledger rows -> compact summary.
Every step lives in its own module; this one only puts them in order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from mcp_server.budget import check_budget
from mcp_server.config import Settings
from mcp_server.delegation import prompts
from mcp_server.delegation.context import gather_context
from mcp_server.delegation.errors import DelegationError
from mcp_server.delegation.glm import Completion, GlmClient, GlmError
from mcp_server.delegation.changes import resolve
from mcp_server.delegation.protocol import ReplyFormatError, output_contract, parse_reply, repair_request
from mcp_server.delegation.summary import DelegationResult, FileLine, TestLine, TokenLine, compact
from mcp_server.delegation.testrun import TestOutcome, run_test_command
from mcp_server.delegation.writes import WrittenFile, confine, write_all
from mcp_server.ledger import Ledger, UsageRow
from mcp_server.pricing import PriceTable, TokenCounts
from mcp_server.stories import check_story_id

TOOL_PHASE = {"write_tests": "P2", "implement": "P3", "refactor": "P4", "write_docs": "P7"}
MAX_FIX_ROUNDS = 5

ProgressFn = Callable[[float, float | None, str], Awaitable[None]]


@dataclass(frozen=True)
class DelegationRequest:
    tool: str
    story: str
    instructions: str
    context_files: list[str] = field(default_factory=list)
    test_command: str | None = None
    max_fix_rounds: int = 0
    write_under: str | None = None  # test_dir / docs_dir: GLM may write only there


@dataclass
class Services:
    """What lives for the server's whole life."""

    settings: Settings
    glm: GlmClient
    ledger: Ledger
    prices: PriceTable
    run_started_at: str


@dataclass
class _Tally:
    calls: int = 0
    usage: TokenCounts = field(default_factory=TokenCounts)
    reasoning_tokens: int = 0
    cost_usd: float | None = 0.0
    model: str = ""


async def _no_progress(progress: float, total: float | None, message: str) -> None:
    return None


def _check_request(request: DelegationRequest, settings: Settings) -> None:
    check_story_id(request.story)
    if not request.instructions or not request.instructions.strip():
        raise DelegationError("instructions are empty: say what GLM should write")
    if not 0 <= request.max_fix_rounds <= MAX_FIX_ROUNDS:
        raise DelegationError(f"max_fix_rounds must be between 0 and {MAX_FIX_ROUNDS}")
    if request.test_command is not None and not request.test_command.strip():
        raise DelegationError("test_command is empty: pass a command or leave it out")
    if request.write_under is not None:
        confine(settings.project_root, request.write_under, purpose="write")


def _estimate_usd(prices: PriceTable, model: str, messages: list[dict[str, str]], settings: Settings) -> float | None:
    prompt_chars = sum(len(m["content"]) for m in messages)
    tokens = TokenCounts(
        prompt_tokens=prompt_chars // settings.context.chars_per_token,
        completion_tokens=settings.glm.max_output_tokens,
    )
    return prices.cost(model, tokens)


class Delegation:
    def __init__(self, services: Services, request: DelegationRequest, progress: ProgressFn | None):
        self.services = services
        self.request = request
        self.progress = progress or _no_progress
        self.settings = services.settings
        self.model = getattr(self.settings.models, request.tool)
        self.phase = TOOL_PHASE[request.tool]
        self.tally = _Tally(model=self.model)
        self.messages: list[dict[str, str]] = []
        self.step = 0

    async def _say(self, message: str) -> None:
        self.step += 1
        await self.progress(self.step, None, message)

    async def _call(self) -> Completion:
        try:
            completion = await self.services.glm.chat(self.model, self.messages)
        except GlmError as error:
            self._record(None, status=f"error:{error.code or error.http_status or 'network'}", attempts=error.attempts)
            raise
        self._record(completion, status="ok" if completion.usage.reported else "ok:no-usage", attempts=completion.attempts)
        self.messages.append({"role": "assistant", "content": completion.text})
        return completion

    def _record(self, completion: Completion | None, *, status: str, attempts: int) -> None:
        usage = completion.usage if completion else None
        tokens = TokenCounts(
            prompt_tokens=usage.prompt_tokens if usage else 0,
            cached_tokens=usage.cached_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )
        model = completion.model if completion else self.model
        cost = self.services.prices.cost(model, tokens)
        self.services.ledger.record(
            UsageRow(
                provider="glm",
                model=model,
                story=self.request.story,
                phase=self.phase,
                tool=self.request.tool,
                prompt_tokens=tokens.prompt_tokens,
                cached_tokens=tokens.cached_tokens,
                completion_tokens=tokens.completion_tokens,
                reasoning_tokens=usage.reasoning_tokens if usage else 0,
                latency_ms=int(completion.latency_s * 1000) if completion else None,
                status=status,
                attempt=attempts,
                cost_usd=cost,
            )
        )
        if completion is None:
            return
        tally = self.tally
        tally.calls += 1
        tally.model = model
        tally.usage = TokenCounts(
            prompt_tokens=tally.usage.prompt_tokens + tokens.prompt_tokens,
            cached_tokens=tally.usage.cached_tokens + tokens.cached_tokens,
            completion_tokens=tally.usage.completion_tokens + tokens.completion_tokens,
        )
        tally.reasoning_tokens += usage.reasoning_tokens
        tally.cost_usd = None if cost is None or tally.cost_usd is None else tally.cost_usd + cost

    def _changes(self, completion: Completion) -> dict[str, bytes | None]:
        try:
            ops = parse_reply(completion.text)
        except ReplyFormatError as error:
            if completion.finish_reason == "length":
                raise ReplyFormatError(
                    f"the reply was cut off at max_tokens ({self.settings.glm.max_output_tokens}); {error}"
                ) from None
            raise
        return resolve(self.settings.project_root, ops, write_under=self.request.write_under)

    async def _next_changes(self) -> dict[str, bytes | None]:
        """GLM's next reply as file changes, with one repair round for an unusable reply.

        A path outside the project is not a format problem: it ends the call at once.
        """
        completion = await self._call()
        try:
            return self._changes(completion)
        except ReplyFormatError as first:
            await self._say(f"reply unusable ({first}); asking GLM once more")
            self.messages.append({"role": "user", "content": repair_request(first)})
            completion = await self._call()
            try:
                return self._changes(completion)
            except ReplyFormatError as second:
                raise DelegationError(
                    f"GLM's reply had no usable files, twice ({second}); nothing was written"
                ) from None

    def _check_budget(self) -> None:
        budget = self.settings.budget
        if budget.per_story_usd is None and budget.per_run_usd is None:
            return
        estimate = _estimate_usd(self.services.prices, self.model, self.messages, self.settings)
        if estimate is None:
            raise DelegationError(
                f"a budget is set but model {self.model!r} has no price in prices.yaml, so the cap "
                "cannot be enforced; add a price under `prices:` in .claude/hybrid.yaml"
            )
        check_budget(
            per_story_usd=budget.per_story_usd,
            per_run_usd=budget.per_run_usd,
            ledger=self.services.ledger,
            prices=self.services.prices,
            story=self.request.story,
            run_started_at=self.services.run_started_at,
            estimate_usd=estimate,
        )

    async def _test(self) -> TestOutcome:
        tests = self.settings.tests
        await self._say(f"running {self.request.test_command}")
        return await run_test_command(
            self.settings.project_root,
            self.request.test_command,
            timeout_s=tests.timeout_s,
            tail_chars=tests.failure_tail_chars,
        )

    async def run(self) -> DelegationResult:
        started = time.monotonic()
        request, settings = self.request, self.settings
        _check_request(request, settings)
        context = gather_context(settings, request.story, request.context_files)
        self.messages = [
            {"role": "system", "content": prompts.system_prompt(request.tool, output_contract())},
            {
                "role": "user",
                "content": prompts.user_message(
                    context, request.instructions, write_under=request.write_under, test_command=request.test_command
                ),
            },
        ]
        self._check_budget()
        await self._say(f"asking {self.model} ({request.tool}, story {request.story})")
        written: dict[str, WrittenFile] = {}
        for item in write_all(settings.project_root, await self._next_changes()):
            written[item.path] = item
        await self._say(f"wrote {len(written)} file(s)")

        outcome, rounds, note = None, 0, None
        if request.test_command:
            outcome = await self._test()
            while not outcome.passed and rounds < request.max_fix_rounds:
                rounds += 1
                await self._say(f"tests failed; fix round {rounds} of {request.max_fix_rounds}")
                self.messages.append(
                    {"role": "user", "content": prompts.fix_request(request.test_command, outcome.output_tail)}
                )
                try:
                    self._check_budget()
                    fixed = write_all(settings.project_root, await self._next_changes())
                except DelegationError as error:
                    # Earlier rounds' files are on disk and stay; say why fixing stopped.
                    note = f"fix round {rounds} stopped: {error}"
                    break
                for item in fixed:
                    earlier = written.get(item.path)
                    written[item.path] = WrittenFile(
                        item.path, item.lines, item.bytes, item.created or bool(earlier and earlier.created)
                    )
                outcome = await self._test()
        return self._result(written, outcome, rounds, note, time.monotonic() - started)

    def _result(
        self, written: dict[str, WrittenFile], outcome: TestOutcome | None, rounds: int, note: str | None, duration: float
    ) -> DelegationResult:
        tally = self.tally
        return compact(
            DelegationResult(
                story=self.request.story,
                tool=self.request.tool,
                phase=self.phase,
                model=tally.model,
                files=[FileLine(path=f.path, lines=f.lines, created=f.created) for f in written.values()],
                lines_written=sum(f.lines for f in written.values()),
                tests=None
                if outcome is None
                else TestLine(
                    command=outcome.command,
                    passed=outcome.passed,
                    exit_code=outcome.exit_code,
                    timed_out=outcome.timed_out,
                    fix_rounds=rounds,
                    failure_tail=None if outcome.passed else outcome.output_tail,
                ),
                tokens=TokenLine(
                    prompt=tally.usage.prompt_tokens,
                    cached=tally.usage.cached_tokens,
                    completion=tally.usage.completion_tokens,
                    reasoning=tally.reasoning_tokens,
                ),
                cost_usd=None if tally.cost_usd is None else round(tally.cost_usd, 6),
                attempts=tally.calls,
                duration_s=round(duration, 2),
                note=note,
            )
        )


async def delegate(services: Services, request: DelegationRequest, progress: ProgressFn | None = None) -> DelegationResult:
    return await Delegation(services, request, progress).run()
