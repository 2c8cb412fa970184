"""Prices, the ledger and the budget check, with costs computed by hand."""

import pytest

from mcp_server.budget import BudgetExceeded, check_budget, spend
from mcp_server.ledger import UsageRow
from mcp_server.pricing import PriceTable, PriceTableError, TokenCounts


def test_every_shipped_price_has_a_source_and_date(prices):
    from mcp_server.config import load_data_yaml

    for model, row in load_data_yaml("prices.yaml")["models"].items():
        assert row["source"].startswith("https://"), model
        assert str(row["date"]), model


def test_glm_cost_by_hand(prices):
    # glm-4.7: 1,000,000 prompt of which 200,000 cached, 100,000 out
    cost = prices.cost("glm-4.7", TokenCounts(prompt_tokens=1_000_000, cached_tokens=200_000, completion_tokens=100_000))
    assert cost == pytest.approx(0.8 * 0.60 + 0.2 * 0.11 + 0.1 * 2.20)


def test_anthropic_cache_writes_by_hand(prices):
    tokens = TokenCounts(
        prompt_tokens=10 + 1000 + 2000, cached_tokens=1000, cache_write_5m_tokens=2000, completion_tokens=500
    )
    cost = prices.cost("claude-sonnet-5-5", tokens)
    assert cost == pytest.approx((10 * 2.00 + 1000 * 0.10 + 2000 * 2.50 + 500 * 10.00) / 1e6)


def test_unknown_model_is_unpriced_not_free(prices):
    assert prices.cost("glm-9-ultra", TokenCounts(prompt_tokens=10)) is None


def test_dated_and_context_suffixes_price_as_the_base_id(prices):
    assert prices.lookup("claude-haiku-5-5-20261007") == prices.lookup("claude-haiku-5-5")
    assert prices.lookup("claude-sonnet-5-5[1m]") == prices.lookup("claude-sonnet-5-5")
    assert prices.lookup("glm-4.7x") is None


def test_malformed_override_is_named():
    with pytest.raises(PriceTableError, match="my-model"):
        PriceTable({"my-model": {"input": "cheap"}})


def test_ledger_rows_and_totals(ledger, prices):
    ledger.record(UsageRow("glm", "glm-4.7", story="01.2", phase="P3", prompt_tokens=1000, completion_tokens=100))
    ledger.record(UsageRow("glm", "glm-4.7", story="01.3", phase="P3", prompt_tokens=500, completion_tokens=50))
    ledger.record(UsageRow("anthropic", "mystery-model", story="01.2", prompt_tokens=7))
    totals = {t.model: t for t in ledger.totals_by_model(story="01.2")}
    assert totals["glm-4.7"].prompt_tokens == 1000 and totals["glm-4.7"].calls == 1
    result = spend(ledger, prices, story="01.2")
    assert result.usd == pytest.approx((1000 * 0.60 + 100 * 2.20) / 1e6)
    assert result.unpriced_models == ("mystery-model",)


def test_ledger_is_wal(ledger):
    ledger.record(UsageRow("glm", "glm-4.7"))
    mode = ledger._connection().execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_message_dedup_keeps_the_largest_copy(ledger):
    for output in (10, 40, 25):
        ledger.record_message(UsageRow("anthropic", "claude-opus-5-5", completion_tokens=output, dedup_key="msg_1:req_1"))
    [row] = ledger.rows()
    assert row.completion_tokens == 40


def test_budget_names_cap_and_spend(ledger, prices):
    ledger.record(UsageRow("glm", "glm-4.7", story="01.2", prompt_tokens=1_000_000))
    with pytest.raises(BudgetExceeded) as error:
        check_budget(
            per_story_usd=0.65, per_run_usd=None, ledger=ledger, prices=prices,
            story="01.2", run_started_at="1970", estimate_usd=0.10,
        )
    message = str(error.value)
    assert "budget.per_story_usd" in message and "$0.65" in message and "$0.6000" in message
    # Another story is not held back by 01.2's spend.
    check_budget(per_story_usd=0.65, per_run_usd=None, ledger=ledger, prices=prices, story="01.3", run_started_at="1970", estimate_usd=0.10)


def test_run_cap_counts_only_this_run(ledger, prices):
    ledger.record(UsageRow("glm", "glm-4.7", story="01.2", prompt_tokens=1_000_000, ts="2020-01-01T00:00:00+00:00"))
    check_budget(per_story_usd=None, per_run_usd=0.5, ledger=ledger, prices=prices, story="01.2", run_started_at="2026-01-01", estimate_usd=0.1)
    with pytest.raises(BudgetExceeded, match="budget.per_run_usd"):
        check_budget(per_story_usd=None, per_run_usd=0.5, ledger=ledger, prices=prices, story="01.2", run_started_at="2019-01-01", estimate_usd=0.1)


def test_in_a_pilot_run_the_run_cap_counts_that_run_s_rows(ledger, prices):
    """$0.60 (1M glm-4.7 input tokens) in run r1, $0.30 in r2 and $0.30 outside any run, all
    recorded since the server started: the cap of $0.50 counts each run's own spend."""
    for run_id, tokens in (("r1", 1_000_000), ("r2", 500_000), (None, 500_000)):
        ledger.record(UsageRow("glm", "glm-4.7", story="01.2", prompt_tokens=tokens, run_id=run_id, ts="2026-12-02T10:00:00+00:00"))
    check = dict(per_story_usd=None, per_run_usd=0.5, ledger=ledger, prices=prices, story="01.2", run_started_at="2026-12-01")
    check_budget(**check, run_id="r2", estimate_usd=0.1)  # 0.30 + 0.10 <= 0.50
    with pytest.raises(BudgetExceeded, match=r"budget.per_run_usd is \$0.50; run r1 has spent \$0.6000"):
        check_budget(**check, run_id="r1", estimate_usd=0.0)
    with pytest.raises(BudgetExceeded, match="this run has spent \\$1.2000"):  # no pilot run: since the server started
        check_budget(**check, estimate_usd=0.0)


def test_a_cap_is_reached_at_the_cap_itself(ledger, prices):
    # As the hook guard: spent >= cap blocks, even a call estimated at $0.
    ledger.record(UsageRow("glm", "glm-4.7", story="01.2", prompt_tokens=1_000_000))  # $0.60
    with pytest.raises(BudgetExceeded, match=r"\$0\.6000"):
        check_budget(per_story_usd=0.6, per_run_usd=None, ledger=ledger, prices=prices, story="01.2", run_started_at="1970", estimate_usd=0.0)


def test_calls_in_flight_count_as_spent(prices):
    check = dict(per_story_usd=0.10, per_run_usd=None, ledger=None, prices=prices, story="01.2", run_started_at="1970")
    check_budget(**check, estimate_usd=0.04, reserved_story_usd=0.05)
    with pytest.raises(BudgetExceeded, match=r"\$0\.0700 of it held by calls still running"):
        check_budget(**check, estimate_usd=0.04, reserved_story_usd=0.07)
    run = dict(check, per_story_usd=None, per_run_usd=0.10)
    with pytest.raises(BudgetExceeded, match="budget.per_run_usd"):
        check_budget(**run, estimate_usd=0.04, reserved_run_usd=0.07)


def test_the_prompt_estimate_counts_every_character():
    from mcp_server.delegation.run import MESSAGE_OVERHEAD_TOKENS, estimate_prompt_tokens

    def one(text):
        return estimate_prompt_tokens([{"role": "user", "content": text}], 4) - MESSAGE_OVERHEAD_TOKENS

    assert one("") == 0 and one("abcd") == 1 and one("abcde") == 2  # rounded up, never down
    assert one("日本語のテキスト") == 8  # no tokenizer merges these four to a token
    assert estimate_prompt_tokens([{"role": "system", "content": "x"}] * 3, 4) == 3 * (1 + MESSAGE_OVERHEAD_TOKENS)
