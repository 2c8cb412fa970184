"""The delegation's budget room, ledger rows and GLM client lifetime, in process, against the fake GLM.

Costs by hand from mcp_server/data/prices.yaml unless a test overrides them: glm-4.7 is
$0.60 in / $2.20 out per million tokens.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading

import anyio
import pytest

from mcp_server.budget import BudgetExceeded
from mcp_server.config import ConfigError, load_settings
from mcp_server.delegation import run as run_module
from mcp_server.delegation.glm import GlmClient, GlmError
from mcp_server.delegation.inflight import InFlight
from mcp_server.delegation.protocol import FileWrite, render_reply
from mcp_server.delegation.run import DelegationRequest, Services, delegate
from mcp_server.delegation.summary import as_text
from mcp_server.ledger import Ledger, UsageRow, ledger_path, utc_now
from mcp_server.pricing import PriceTable
from mcp_server.server import Runtime
from tests.support import TEST_KEY, ledger_locked

pytestmark = pytest.mark.anyio

REPLY = render_reply([FileWrite("app/x.py", "x = 1\n")])


def configure(project, text: str) -> None:
    (project / ".claude").mkdir(exist_ok=True)
    (project / ".claude" / "hybrid.yaml").write_text(text)


def services_for(project, fake, key: str | None = TEST_KEY, **env: str) -> Services:
    environ = {"HYBRID_GLM_BASE_URL": fake.base_url, "HYBRID_GLM_DEADLINE_S": "5", "HYBRID_GLM_BACKOFF_BASE_S": "0.01"}
    settings = load_settings(project, environ=environ | env)
    return Services(
        settings, GlmClient(settings.glm, key), ledger_path(project), PriceTable.load(settings.prices), utc_now()
    )


def implement(instructions: str = "x") -> DelegationRequest:
    return DelegationRequest("implement", "01.2", instructions)


def rows(project):
    ledger = Ledger(ledger_path(project))
    try:
        return ledger.rows()
    finally:
        ledger.close()


# --- in-flight reservations ---------------------------------------------------------------------


async def test_a_reservation_is_seen_by_the_next_check_and_released_after(tmp_path):
    in_flight, seen = InFlight(tmp_path / "usage.db", 60), []

    def check(ledger, story_usd: float, run_usd: float) -> None:
        seen.append((round(story_usd, 6), round(run_usd, 6)))

    async with in_flight.reserve("01.2", 0.25, check):
        async with in_flight.reserve("01.3", 0.5, check):
            async with in_flight.reserve("01.2", 0.125, check):
                pass
    async with in_flight.reserve("01.2", 1.0, check):
        pass
    assert seen == [(0, 0), (0, 0.25), (0.25, 0.75), (0, 0)]
    assert in_flight.reserved("01.2") == (0, 0)


async def test_a_refused_failed_or_cancelled_request_holds_nothing(tmp_path):
    in_flight = InFlight(tmp_path / "usage.db", 60)

    def refuse(ledger, story_usd: float, run_usd: float) -> None:
        raise BudgetExceeded("over")

    with pytest.raises(BudgetExceeded):
        async with in_flight.reserve("01.2", 1.0, refuse):
            pass
    with pytest.raises(GlmError):
        async with in_flight.reserve("01.2", 1.0, lambda *_: None):
            raise GlmError("failed")
    with anyio.move_on_after(0.05):
        async with in_flight.reserve("01.2", 1.0, lambda *_: None):
            await anyio.sleep(10)
    assert in_flight.reserved("01.2") == (0, 0)


async def test_parallel_checks_see_each_others_reservations(tmp_path):
    """The check runs in worker threads: the ledger transaction keeps them from interleaving."""
    in_flight, cap, admitted = InFlight(tmp_path / "usage.db", 60), 0.25, []

    def check(ledger, story_usd: float, run_usd: float) -> None:
        threading.Event().wait(0.02)  # a slow ledger read
        if story_usd + 0.1 > cap:
            raise BudgetExceeded("over")

    async def one(index: int) -> None:
        try:
            async with in_flight.reserve("01.2", 0.1, check):
                admitted.append(index)
                await anyio.sleep(0.2)
        except BudgetExceeded:
            pass

    async with anyio.create_task_group() as group:
        for index in range(4):
            group.start_soon(one, index)
    assert len(admitted) == 2


async def test_another_process_reservation_holds_until_that_process_is_gone(tmp_path):
    """A reservation lives in the ledger, so a second server sees it; a killed server's does not
    hold room for ever."""
    path = tmp_path / "usage.db"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ledger = Ledger(path)
        with ledger.transaction():
            ledger.execute(
                "INSERT INTO reservation (story, usd, host, pid, expires_at) VALUES ('01.2', 0.5, ?, ?, '9999')",
                (socket.gethostname(), other.pid),
            )
        ledger.close()
        assert InFlight(path, 60).reserved("01.2") == (0.5, 0.5)
    finally:
        other.kill()
        other.wait()
    assert InFlight(path, 60).reserved("01.2") == (0, 0)


async def test_an_expired_reservation_holds_nothing(tmp_path):
    path = tmp_path / "usage.db"
    ledger = Ledger(path)
    with ledger.transaction():
        ledger.execute(
            "INSERT INTO reservation (story, usd, host, pid, expires_at) VALUES ('01.2', 0.5, ?, ?, ?)",
            (socket.gethostname(), os.getpid(), "2000-01-01T00:00:00.000+00:00"),
        )
    ledger.close()
    assert InFlight(path, 60).reserved("01.2") == (0, 0)


# --- the estimate and the rows are priced per request tier ---------------------------------------

TIERED = """\
prices:
  glm-4.7:
    input: 1.0
    output: 0.0
    tiers:
      - {above_prompt_tokens: 100, input: 1000.0, output: 0.0}
"""


async def test_the_estimate_prices_the_prompt_at_its_tier(project, fake):
    # The prompt is well over 100 tokens, so every one is at $1000/M: about $0.5, far over $0.01.
    # At the base rate ($1/M) it would be about $0.0005 and pass.
    configure(project, TIERED + "budget:\n  per_story_usd: 0.01\n")
    with pytest.raises(BudgetExceeded, match="budget.per_story_usd"):
        await delegate(services_for(project, fake), implement())
    assert fake.requests == []
    # the refusal is in the ledger (for the telemetry), with no usage row
    with sqlite3.connect(ledger_path(project)) as conn:
        assert conn.execute("SELECT cap, story, source FROM budget_refusal").fetchall() == [
            ("budget.per_story_usd", "01.2", "server")]
        assert conn.execute("SELECT COUNT(*) FROM usage").fetchone() == (0,)


async def test_recorded_spend_with_no_price_stops_the_call(project, fake):
    """An endpoint that answers under another model id (z-ai/glm-4.7 on OpenRouter) leaves rows the
    price table cannot cost: under a cap they are never counted as $0."""
    configure(project, "budget:\n  per_story_usd: 5\n")
    ledger = Ledger(ledger_path(project))
    try:
        ledger.record(UsageRow("glm", "z-ai/glm-4.7", story="01.2", prompt_tokens=60_000_000))
    finally:
        ledger.close()
    with pytest.raises(BudgetExceeded, match=r"story 01.2 has calls to z-ai/glm-4.7, which have no price.*not sent"):
        await delegate(services_for(project, fake), implement())
    assert fake.requests == []


async def test_rows_are_priced_at_their_own_tier(project, fake):
    configure(project, TIERED)
    fake.reply(REPLY, prompt_tokens=200, completion_tokens=10)
    result = await delegate(services_for(project, fake), implement())
    [row] = rows(project)
    assert row.cost_usd == pytest.approx(200 * 1000.0 / 1e6)
    assert result.cost_usd == pytest.approx(row.cost_usd)


# --- ledger rows: only for requests sent; a ledger problem never loses GLM's output ----------------


async def test_no_key_records_nothing_and_creates_no_ledger(project, fake):
    with pytest.raises(GlmError, match="ZAI_API_KEY"):
        await delegate(services_for(project, fake, key=None), implement())
    assert not ledger_path(project).exists()


async def test_no_key_with_a_budget_set_creates_no_ledger_either(project, fake):
    configure(project, "budget:\n  per_story_usd: 5\n")
    with pytest.raises(GlmError):
        await delegate(services_for(project, fake, key=None), implement())
    assert not ledger_path(project).exists()


async def test_no_free_slot_records_nothing(project, fake, monkeypatch):
    async def no_slot(self, model, messages):
        raise GlmError(f"waited 5 s for a free slot to {model}; too many parallel calls")  # attempts=0

    monkeypatch.setattr(GlmClient, "_chat", no_slot)
    with pytest.raises(GlmError, match="free slot"):
        await delegate(services_for(project, fake), implement())
    assert not ledger_path(project).exists()


async def test_a_failed_request_that_was_sent_is_recorded(project, fake):
    fake.error(400, code="1211", message="Unknown Model")
    with pytest.raises(GlmError):
        await delegate(services_for(project, fake), implement())
    [row] = rows(project)
    assert (row.status, row.attempt) == ("error:1211", 1)


async def test_a_locked_ledger_after_a_paid_call_keeps_the_output_and_spools_the_row(project, fake, monkeypatch):
    monkeypatch.setenv("HYBRID_LEDGER_TIMEOUT_S", "0.2")
    fake.reply(REPLY, prompt_tokens=1000, completion_tokens=100)
    with ledger_locked(ledger_path(project)):
        result = await delegate(services_for(project, fake), implement())
    assert (project / "app" / "x.py").read_text() == "x = 1\n"
    assert result.attempts == 1 and result.cost_usd == pytest.approx((1000 * 0.60 + 100 * 2.20) / 1e6)
    assert result.usage_spooled and "Usage only spooled" in as_text(result)
    [row] = rows(project)  # merged by the next open, once
    assert (row.prompt_tokens, row.completion_tokens, row.status) == (1000, 100, "ok")
    assert len(rows(project)) == 1


async def test_ledger_rows_are_written_off_the_event_loop(project, fake, monkeypatch):
    threads = []
    real_record = Ledger.record

    def record(self, row):
        threads.append(threading.current_thread())
        return real_record(self, row)

    monkeypatch.setattr(Ledger, "record", record)
    fake.reply(REPLY)
    await delegate(services_for(project, fake), implement())
    assert threads and threading.main_thread() not in threads


async def test_a_bad_progress_interval_is_named(project, fake, monkeypatch):
    monkeypatch.setenv("HYBRID_PROGRESS_INTERVAL_S", "soon")
    with pytest.raises(ConfigError, match="HYBRID_PROGRESS_INTERVAL_S"):
        await delegate(services_for(project, fake), implement())
    assert fake.requests == []


# --- the server's GLM client: replaced when its settings change, and the old pool closed ----------


async def test_a_replaced_client_is_closed(project, fake):
    runtime = Runtime()
    first = (await runtime.services(load_settings(project, environ={"HYBRID_GLM_BASE_URL": fake.base_url, "ZAI_API_KEY": TEST_KEY}))).glm
    first._client()  # the pool exists once a call has used it
    again = (await runtime.services(load_settings(project, environ={"HYBRID_GLM_BASE_URL": fake.base_url, "ZAI_API_KEY": TEST_KEY}))).glm
    assert again is first
    other = load_settings(project, environ={"HYBRID_GLM_BASE_URL": fake.base_url + "/", "ZAI_API_KEY": TEST_KEY})
    second = (await runtime.services(other)).glm
    assert second is not first and first._http is None
    await runtime.close()


async def test_a_replaced_client_finishes_its_running_call_first(project, fake):
    fake.reply("ok", delay_s=0.5)
    runtime = Runtime()
    environ = {"HYBRID_GLM_BASE_URL": fake.base_url, "ZAI_API_KEY": TEST_KEY}
    first = (await runtime.services(load_settings(project, environ=environ))).glm
    answers = []

    async def call() -> None:
        answers.append(await first.chat("glm-4.7", [{"role": "user", "content": "hi"}]))

    async with anyio.create_task_group() as group:
        group.start_soon(call)
        await anyio.sleep(0.2)  # the request is in flight
        await runtime.services(load_settings(project, environ=environ | {"HYBRID_GLM_DEADLINE_S": "60"}))
        assert first._http is not None  # still serving its call
    assert answers[0].text == "ok" and first._http is None
    await runtime.close()


async def test_the_server_buckets_the_ledger_totals_by_its_price_tiers(project, fake):
    """So that a report can sum the running totals instead of every row (ledger_totals)."""
    runtime = Runtime()
    settings = load_settings(project, environ={"HYBRID_GLM_BASE_URL": fake.base_url, "ZAI_API_KEY": TEST_KEY})
    await runtime.services(settings)
    assert not ledger_path(project).exists()  # no ledger is made before a call records usage
    ledger = Ledger(ledger_path(project))
    ledger.record(UsageRow(provider="glm", model="glm-4.7", story="01.1", prompt_tokens=5))
    ledger.close()
    services = await runtime.services(settings)
    with sqlite3.connect(ledger_path(project)) as db:
        tiers = [row[0] for row in db.execute("SELECT tokens FROM usage_tier ORDER BY tokens")]
    assert tuple(tiers) == services.prices.thresholds and tiers
    await runtime.close()
