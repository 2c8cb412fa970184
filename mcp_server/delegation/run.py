"""One GLM delegation, top to bottom.

the user's permission rules (a test command they do not allow ends the call at once) -> context
-> GLM (every request checked against the budget first) -> parse (one repair round)
-> confined atomic writes (none where an Edit deny rule covers a path) -> test command and fix
rounds -> ledger rows -> compact summary.
Every step lives in its own module; this one only puts them in order.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sqlite3
import time
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Awaitable, Callable, TypeVar

import anyio
import anyio.to_thread

from mcp_server.budget import BudgetExceeded, check_budget
from mcp_server.config import Settings
from mcp_server.delegation import prompts
from mcp_server.delegation.changes import refuse_test_removal, resolve
from mcp_server.delegation.context import gather_context
from mcp_server.delegation.errors import DelegationError
from mcp_server.delegation.glm import Completion, GlmClient, GlmError
from mcp_server.delegation.inflight import InFlight
from mcp_server.delegation.limits import check_inputs
from mcp_server.delegation.progress import ProgressFn, no_progress, progress_interval_s
from mcp_server.delegation.protocol import ReplyFormatError, output_contract, parse_reply, repair_request
from mcp_server.delegation.summary import DelegationResult, FileLine, TestLine, TokenLine, clip, compact
from mcp_server.delegation.test_record import record_tests
from mcp_server.delegation.testrun import TestCommand, TestOutcome, allowed_test_command, run_test_command
from mcp_server.delegation.usage_record import glm_usage_row, record_or_spool, run_of_story
from mcp_server.delegation.writes import WrittenFile, confine, write_all
from mcp_server.ledger import Ledger
from mcp_server.ledger_test_runs import CallTests
from mcp_server.permissions import ProjectPermissions
from mcp_server.pricing import PriceTable, TokenCounts
from mcp_server.stories import check_story_id

log = logging.getLogger("hybrid.delegation")

TOOL_PHASE = {"write_tests": "P2", "implement": "P3", "refactor": "P4", "write_docs": "P7"}
MAX_FIX_ROUNDS = 5
# The chat format wraps each message in a few tokens of its own (role, separators).
MESSAGE_OVERHEAD_TOKENS = 4
PROGRESS_TEXT_LIMIT = 100  # a test command quoted in a progress message

T = TypeVar("T")


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
    """What lives for the server's whole life. The ledger is opened per use, in a worker
    thread (a SQLite connection belongs to the thread that made it)."""

    settings: Settings
    glm: GlmClient
    ledger_path: Path
    prices: PriceTable
    run_started_at: str


@dataclass
class _Tally:
    calls: int = 0
    usage: TokenCounts = field(default_factory=TokenCounts)
    reasoning_tokens: int = 0
    cost_usd: float | None = 0.0
    model: str = ""


def _check_request(request: DelegationRequest, settings: Settings) -> None:
    check_story_id(request.story)
    check_inputs(
        settings,
        instructions=request.instructions,
        context_files=request.context_files,
        test_command=request.test_command,
        write_under=request.write_under,
    )
    if not request.instructions or not request.instructions.strip():
        raise DelegationError("instructions are empty: say what GLM should write")
    if not 0 <= request.max_fix_rounds <= MAX_FIX_ROUNDS:
        raise DelegationError(f"max_fix_rounds must be between 0 and {MAX_FIX_ROUNDS}")
    if request.test_command is not None and not request.test_command.strip():
        raise DelegationError("test_command is empty: pass a command or leave it out")
    if request.write_under is not None:
        confine(settings.project_root, request.write_under, purpose="write")


def estimate_prompt_tokens(messages: list[dict[str, str]], chars_per_token: int) -> int:
    """The prompt's tokens as well as they can be counted without the model's tokenizer.

    ASCII text (code, English) at ``chars_per_token``, rounded up; any other character (CJK,
    accents, emoji) as a token of its own, as tokenizers rarely merge them; plus the chat
    format's few tokens per message.
    """
    tokens = 0
    for message in messages:
        content = message["content"]
        ascii_chars = len(content.encode("ascii", errors="ignore"))
        tokens += math.ceil(ascii_chars / chars_per_token) + (len(content) - ascii_chars) + MESSAGE_OVERHEAD_TOKENS
    return tokens


# Seconds a budget reservation may outlive the GLM deadline before it stops holding room.
RESERVATION_MARGIN_S = 60.0


def _record_refusal(path: Path, cap: str, story: str) -> None:
    """A refused call leaves a trace for the telemetry; losing it must not hide the refusal."""
    try:
        ledger = Ledger(path)
        try:
            ledger.record_refusal(cap=cap, story=story, source="server")
        finally:
            ledger.close()
    except (sqlite3.Error, OSError) as error:
        log.error("budget refusal for story %s not recorded in %s: %s", story, path, error)


class Delegation:
    def __init__(self, services: Services, request: DelegationRequest, progress: ProgressFn | None):
        self.services = services
        self.request = request
        self.progress = progress or no_progress
        self.settings = services.settings
        self.model = getattr(self.settings.models, request.tool)
        self.phase = TOOL_PHASE[request.tool]
        self.tally = _Tally(model=self.model)
        self.ledger_notices: list[str] = []
        self.usage_spooled = False
        self.run_id: str | None = None  # the pilot run the story is in (ledger_runs)
        self.messages: list[dict[str, str]] = []
        self.step = 0
        self.heartbeat_s = progress_interval_s()
        self.permissions: ProjectPermissions | None = None
        self.test_command: TestCommand | None = None

    async def _say(self, message: str) -> None:
        self.step += 1
        await self.progress(self.step, None, message)

    async def _heartbeat(self, doing: str) -> None:
        started = time.monotonic()
        while True:
            await anyio.sleep(self.heartbeat_s)
            try:
                await self._say(f"{doing} ({time.monotonic() - started:.0f} s)")
            except Exception as error:  # a client that stopped listening must not fail the call
                log.debug("progress not sent: %s", error)
                return

    async def _with_heartbeat(self, doing: str, work: Callable[[], Awaitable[T]]) -> T:
        """Await ``work`` while reporting progress every heartbeat_s. Its error comes out as
        itself: raised inside the task group, it would come out wrapped in an ExceptionGroup."""
        failure: Exception | None = None
        async with anyio.create_task_group() as group:
            group.start_soon(self._heartbeat, doing)
            try:
                result = await work()
            except Exception as error:
                failure = error
            finally:
                group.cancel_scope.cancel()
        if failure is not None:
            raise failure
        return result

    # --- budget: every request is checked, and holds its estimate until its row is recorded ---

    def _request_estimate(self) -> float | None:
        """What the next request may cost at most (its prompt, and max_tokens of output);
        None when no cap is set, as there is nothing to check it against."""
        budget = self.settings.budget
        if budget.per_story_usd is None and budget.per_run_usd is None:
            return None
        tokens = TokenCounts(
            prompt_tokens=estimate_prompt_tokens(self.messages, self.settings.context.chars_per_token),
            completion_tokens=self.settings.glm.max_output_tokens,
        )
        estimate = self.services.prices.request_cost(self.model, tokens)  # the prompt's size picks the tier
        if estimate is None:
            raise DelegationError(
                f"a budget is set but model {self.model!r} has no price in prices.yaml, so the cap "
                "cannot be enforced; add a price under `prices:` in .claude/hybrid.yaml"
            )
        return estimate

    def _check_caps(self, estimate_usd: float, ledger: Ledger, reserved_story_usd: float, reserved_run_usd: float) -> None:
        """Runs in a worker thread, inside the reservation's ledger transaction."""
        self._check_budget(ledger, estimate_usd, reserved_story_usd, reserved_run_usd)

    def _check_budget(
        self, ledger: Ledger | None, estimate_usd: float, reserved_story_usd: float, reserved_run_usd: float
    ) -> None:
        check_budget(
            per_story_usd=self.settings.budget.per_story_usd,
            per_run_usd=self.settings.budget.per_run_usd,
            ledger=ledger,
            prices=self.services.prices,
            story=self.request.story,
            run_started_at=self.services.run_started_at,
            run_id=self.run_id,
            estimate_usd=estimate_usd,
            reserved_story_usd=reserved_story_usd,
            reserved_run_usd=reserved_run_usd,
        )

    def _budget_room(self) -> AbstractAsyncContextManager[None]:
        estimate = self._request_estimate()
        if estimate is None or not self.services.glm.has_key:  # no key: nothing is sent, so nothing to hold
            return nullcontext()
        in_flight = InFlight(self.services.ledger_path, self.settings.glm.deadline_s + RESERVATION_MARGIN_S)
        return in_flight.reserve(self.request.story, estimate, partial(self._check_caps, estimate))

    # --- one GLM request ------------------------------------------------------------------------

    async def _call(self) -> Completion:
        """One GLM request: budget room first (BudgetExceeded: nothing is sent), then the call,
        then its ledger row; the room is given back once the row is there."""
        try:
            async with self._budget_room():
                try:
                    completion = await self._with_heartbeat(
                        f"still waiting for {self.model}", partial(self.services.glm.chat, self.model, self.messages)
                    )
                except GlmError as error:
                    if error.attempts >= 1:  # no row for a call that never sent a request (no key, no slot)
                        status = f"error:{error.code or error.http_status or 'network'}"
                        await self._record(None, status=status, attempts=error.attempts)
                    raise
                status = "ok" if completion.usage.reported else "ok:no-usage"
                await self._record(completion, status=status, attempts=completion.attempts)
        except BudgetExceeded as refusal:  # only the room's check raises it: nothing was sent
            if refusal.cap:  # a cap stopped it (not a ledger too busy to check): after its transaction
                await anyio.to_thread.run_sync(_record_refusal, self.services.ledger_path, refusal.cap, self.request.story)
            raise
        self.messages.append({"role": "assistant", "content": completion.text})
        return completion

    async def _record(self, completion: Completion | None, *, status: str, attempts: int) -> None:
        row = glm_usage_row(completion, self.services.prices, requested_model=self.model, story=self.request.story,
                            phase=self.phase, tool=self.request.tool, status=status, attempts=attempts, run_id=self.run_id)
        # GLM's answer is paid for: a row the ledger cannot take waits in its spool, and the result says so.
        notices = await anyio.to_thread.run_sync(record_or_spool, self.services.ledger_path, row)
        if notices:
            log.warning("usage ledger: %s", "; ".join(notices))
            self.usage_spooled = self.usage_spooled or any(line.startswith("usage only spooled") for line in notices)
            self.ledger_notices += [line for line in notices if line not in self.ledger_notices]
        if completion is None:
            return
        tally, cost = self.tally, row.cost_usd
        tally.calls += 1
        tally.model = row.model
        tally.usage = TokenCounts(
            prompt_tokens=tally.usage.prompt_tokens + row.prompt_tokens,
            cached_tokens=tally.usage.cached_tokens + row.cached_tokens,
            completion_tokens=tally.usage.completion_tokens + row.completion_tokens,
        )
        tally.reasoning_tokens += row.reasoning_tokens
        tally.cost_usd = None if cost is None or tally.cost_usd is None else tally.cost_usd + cost

    # --- replies into file changes --------------------------------------------------------------

    def _changes(self, completion: Completion, *, fixing: bool) -> dict[str, bytes | None]:
        try:
            ops = parse_reply(completion.text)
        except ReplyFormatError as error:
            if completion.finish_reason == "length":
                raise ReplyFormatError(
                    f"the reply was cut off at max_tokens ({self.settings.glm.max_output_tokens}); {error}"
                ) from None
            raise
        changes = resolve(self.settings.project_root, ops, write_under=self.request.write_under)
        if fixing:
            refuse_test_removal(changes)
        return changes

    async def _next_changes(self, *, fixing: bool = False) -> dict[str, bytes | None]:
        """GLM's next reply as file changes, with one repair round for an unusable reply.

        A path outside the project is not a format problem: it ends the call at once.
        """
        completion = await self._call()
        try:
            return self._changes(completion, fixing=fixing)
        except ReplyFormatError as first:
            await self._say(f"reply unusable ({first}); asking GLM once more")
            self.messages.append({"role": "user", "content": repair_request(first)})
            completion = await self._call()
            try:
                return self._changes(completion, fixing=fixing)
            except ReplyFormatError as second:
                raise DelegationError(
                    f"GLM's reply had no usable files, twice ({second}); nothing was written"
                ) from None

    async def _test(self) -> TestOutcome:
        tests, command = self.settings.tests, self.test_command
        shown = clip(command.text, PROGRESS_TEXT_LIMIT)
        await self._say(f"running {shown}")
        return await self._with_heartbeat(
            f"still running {shown}",
            partial(
                run_test_command,
                self.settings.project_root,
                command,
                timeout_s=tests.timeout_s,
                tail_chars=tests.failure_tail_chars,
            ),
        )

    async def run(self) -> DelegationResult:
        started = time.monotonic()
        request, settings = self.request, self.settings
        _check_request(request, settings)
        self.run_id = await anyio.to_thread.run_sync(run_of_story, self.services.ledger_path, request.story)
        # Read per call: the user may change their rules between two calls.
        self.permissions = ProjectPermissions.load(settings.project_root)
        if request.test_command:
            self.test_command = allowed_test_command(request.test_command, self.permissions, settings.tests.commands)
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
        await self._say(f"asking {self.model} ({request.tool}, story {request.story})")
        written: dict[str, WrittenFile] = {}
        for item in write_all(settings.project_root, await self._next_changes(), self.permissions):
            written[item.path] = item
        await self._say(f"wrote {len(written)} file(s)")

        outcome, rounds, note = None, 0, None
        if request.test_command:
            outcome = first = await self._test()
            try:
                while not outcome.passed and rounds < request.max_fix_rounds:
                    rounds += 1
                    await self._say(f"tests failed; fix round {rounds} of {request.max_fix_rounds}")
                    self.messages.append(
                        {"role": "user", "content": prompts.fix_request(request.test_command, outcome.output_tail)}
                    )
                    try:
                        fixed = write_all(settings.project_root, await self._next_changes(fixing=True), self.permissions)
                    except DelegationError as error:
                        # Earlier rounds' files are on disk and stay; say why fixing stopped.
                        note = f"fix round {rounds} stopped: {error}"
                        break
                    _merge(written, fixed)
                    outcome = await self._test()
            finally:  # also when a fix round's request fails: the first attempt's result is known
                await self._record_tests(first.passed, rounds, outcome.passed)
        return self._result(written, outcome, rounds, note, time.monotonic() - started)

    async def _record_tests(self, first_passed: bool, rounds: int, passed: bool) -> None:
        run = CallTests(self.request.story, self.phase, self.request.tool, self.tally.model, first_passed, rounds, passed,
                        run_id=self.run_id)
        with anyio.CancelScope(shield=True):  # a cancelled call still ran its tests
            notices = await anyio.to_thread.run_sync(record_tests, self.services.ledger_path, run)
        self.ledger_notices += [line for line in notices if line not in self.ledger_notices]

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
                files=[FileLine(path=f.path, lines=f.lines, created=f.created, deleted=f.deleted) for f in written.values()],
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
                note="; ".join(filter(None, [note, *[n for n in self.ledger_notices if not n.startswith("usage only spooled")]])) or None,
                usage_spooled=self.usage_spooled,
            )
        )


def _merge(written: dict[str, WrittenFile], fixed: list[WrittenFile]) -> None:
    """A fix round's files over the earlier rounds': a file is "created" if any round created it."""
    for item in fixed:
        earlier = written.get(item.path)
        created = item.created or bool(earlier and earlier.created)
        if item.deleted and created:
            del written[item.path]  # made and removed within this call: nothing changed on disk
            continue
        written[item.path] = dataclasses.replace(item, created=created)


async def delegate(services: Services, request: DelegationRequest, progress: ProgressFn | None = None) -> DelegationResult:
    return await Delegation(services, request, progress).run()
