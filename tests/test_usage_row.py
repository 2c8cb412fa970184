"""A GLM call's ledger row, built apart from the call (step 6 of a delegation's straight line)."""

from __future__ import annotations

from decimal import Decimal

from mcp_server.delegation.glm import Completion, Usage
from mcp_server.delegation.usage_record import glm_usage_row
from mcp_server.pricing import PriceTable

PRICES = PriceTable({"glm-4.7": {"input": 0.60, "cached_input": 0.11, "output": 2.20}})


def test_a_reply_s_row_holds_its_tokens_cost_and_the_model_glm_answered_as():
    reply = Completion("{}", "glm-4.7", Usage(10_000, 2_000, 4_000, 500), "stop", 1.2345, 2)
    row = glm_usage_row(reply, PRICES, requested_model="glm-4.6", story="01.2", phase="P3", tool="implement",
                        status="ok", attempts=2, run_id="r1")
    assert (row.provider, row.model, row.story, row.phase, row.tool, row.status, row.attempt, row.run_id) == (
        "glm", "glm-4.7", "01.2", "P3", "implement", "ok", 2, "r1")
    assert (row.prompt_tokens, row.cached_tokens, row.completion_tokens, row.reasoning_tokens, row.latency_ms) == (
        10_000, 4_000, 2_000, 500, 1234)
    # 6,000 uncached x 0.60 + 4,000 cached x 0.11 + 2,000 output x 2.20, per million tokens
    assert Decimal(str(row.cost_usd)) == Decimal("0.00844")


def test_a_failed_call_s_row_has_no_tokens_and_the_model_asked_for():
    row = glm_usage_row(None, PRICES, requested_model="glm-4.7", story="01.2", phase="P2", tool="write_tests",
                        status="error:1113", attempts=1, run_id=None)
    assert (row.model, row.prompt_tokens, row.completion_tokens, row.latency_ms, row.status, row.cost_usd) == (
        "glm-4.7", 0, 0, None, "error:1113", Decimal(0))
