"""Price tiers by prompt size (Claude Haiku 5.5), priced per request; budget.spend per tier bucket.

Haiku 5.5 (mcp_server/data/prices.yaml, from platform.claude.com's Haiku 5.5 overview): a request
whose prompt (all input: uncached + cache reads + cache writes) is up to 100,000 tokens pays
$0.10 in / $0.01 cache read / $0.125 5m write / $0.20 1h write / $0.50 out per million; over
100,000 it pays $0.50 / $0.05 / $0.625 / $1.00 / $2.50 on every token, output included.
"""

from decimal import Decimal

import pytest

from mcp_server.budget import spend
from mcp_server.config import load_data_yaml
from mcp_server.ledger import Ledger, UsageRow, ledger_path
from mcp_server.pricing import PriceTable, PriceTableError, TokenCounts

HAIKU = "claude-haiku-5-5"


def test_shipped_haiku_tiers_are_the_published_ones(prices):
    price = prices.lookup(HAIKU)
    assert (price.input, price.cached_input, price.cache_write_5m, price.cache_write_1h, price.output) == (0.10, 0.01, 0.125, 0.20, 0.50)
    [tier] = price.tiers
    assert tier.above_prompt_tokens == 100_000
    r = tier.rates
    assert (r.input, r.cached_input, r.cache_write_5m, r.cache_write_1h, r.output) == (0.50, 0.05, 0.625, 1.00, 2.50)
    row = load_data_yaml("prices.yaml")["models"][HAIKU]
    assert row["source"].startswith("https://platform.claude.com/") and str(row["date"]) >= "2026-11-25"


@pytest.mark.parametrize("model", [
    "claude-haiku-5-5", "claude-sonnet-5-5", "claude-opus-5-5",  # what Claude Code 2.1.330 resolves haiku/sonnet/opus to
    "claude-haiku-5-5-20261007", "claude-opus-5-5[1m]",
    "glm-4.5", "glm-4.5-air", "glm-4.6", "glm-4.7", "glm-5", "glm-5.1", "glm-5.2", "glm-5.3",
])
def test_the_models_the_product_meets_are_priced(prices, model):
    price = prices.lookup(model)
    assert price is not None and price.source.startswith("https://") and price.date


def test_one_request_is_priced_in_the_tier_of_its_own_prompt(prices):
    big = TokenCounts(prompt_tokens=150_000, cached_tokens=100_000, completion_tokens=2_000)
    # 50,000 x 0.50 + 100,000 x 0.05 + 2,000 x 2.50 = 35,000 micro-dollars
    assert prices.request_cost(HAIKU, big) == pytest.approx(0.035)
    assert prices.exact_cost(HAIKU, big, prompt_size=150_000) == Decimal("0.035")
    # without a prompt size: the base rates, as before tiers existed (what callers of cost() got)
    assert prices.cost(HAIKU, big) == pytest.approx((50_000 * 0.10 + 100_000 * 0.01 + 2_000 * 0.50) / 1e6)


@pytest.mark.parametrize("prompt, tier", [(100_000, False), (100_001, True), (1, False)])
def test_the_threshold_is_up_to_100k_inclusive(prices, prompt, tier):
    tokens = TokenCounts(prompt_tokens=prompt, completion_tokens=1_000_000)
    assert prices.request_cost(HAIKU, tokens) == pytest.approx(prompt * (0.50 if tier else 0.10) / 1e6 + (2.50 if tier else 0.50))


def test_cache_writes_in_the_higher_tier(prices):
    tokens = TokenCounts(prompt_tokens=200_000, cached_tokens=50_000, cache_write_5m_tokens=100_000, cache_write_1h_tokens=40_000, completion_tokens=1_000)
    expected = Decimal(10_000) * Decimal("0.50") + 50_000 * Decimal("0.05") + 100_000 * Decimal("0.625") + 40_000 * Decimal("1.00") + 1_000 * Decimal("2.50")
    assert prices.exact_cost(HAIKU, tokens, prompt_size=tokens.prompt_tokens) == expected / 1_000_000


def test_untiered_models_ignore_the_prompt_size(prices):
    tokens = TokenCounts(prompt_tokens=500_000, completion_tokens=1_000)
    assert prices.request_cost("claude-sonnet-5-5", tokens) == prices.cost("claude-sonnet-5-5", tokens)
    assert prices.request_cost("glm-4.7", tokens) == pytest.approx((500_000 * 0.60 + 1_000 * 2.20) / 1e6)


def test_spend_prices_each_request_in_its_own_tier(ledger, prices):
    ledger.record(UsageRow("anthropic", HAIKU, story="01.3", prompt_tokens=150_000, cached_tokens=100_000, completion_tokens=2_000))
    ledger.record(UsageRow("anthropic", HAIKU, story="01.3", prompt_tokens=50_000, cached_tokens=40_000, completion_tokens=1_000))
    ledger.record(UsageRow("glm", "glm-4.7", story="01.3", prompt_tokens=120_000, cached_tokens=20_000, completion_tokens=10_000))
    result = spend(ledger, prices, story="01.3")
    # 0.035 (tier) + 0.0019 (base: 10,000 x 0.10 + 40,000 x 0.01 + 1,000 x 0.50) + GLM 0.0842
    assert result.usd == pytest.approx(0.035 + 0.0019 + 0.0842)
    assert result.by_provider == pytest.approx({"anthropic": 0.0369, "glm": 0.0842})
    assert result.unpriced_models == ()
    # the summed prompt (200,000) must never pick the tier for both requests
    assert result.by_provider["anthropic"] != pytest.approx(prices.request_cost(HAIKU, TokenCounts(200_000, 140_000, 0, 0, 3_000)))


def test_spend_lists_an_unpriced_model_once(ledger, prices):
    for prompt in (10, 200_000):
        ledger.record(UsageRow("glm", "glm-9-ultra", prompt_tokens=prompt))
    assert spend(ledger, prices).unpriced_models == ("glm-9-ultra",)


def test_buckets_for_several_thresholds():
    table = PriceTable({
        "a": {"input": 1, "output": 1, "tiers": [{"above_prompt_tokens": 200_000, "input": 3, "output": 3}, {"above_prompt_tokens": 100_000, "input": 2, "output": 2}]},
        "b": {"input": 5, "output": 5, "tiers": [{"above_prompt_tokens": 150_000, "input": 6, "output": 6}]},
    })
    assert table.thresholds == (100_000, 150_000, 200_000)
    assert table.bucket_sql() == "((prompt_tokens > 100000) + (prompt_tokens > 150000) + (prompt_tokens > 200000))"
    sizes = [table.bucket_prompt_size(b) for b in range(4)]
    assert sizes == [0, 100_001, 150_001, 200_001]
    one = TokenCounts(prompt_tokens=1_000_000)
    assert [table.cost("a", one, s) for s in sizes] == [1.0, 2.0, 2.0, 3.0]
    assert [table.cost("b", one, s) for s in sizes] == [5.0, 5.0, 6.0, 6.0]
    assert PriceTable({"c": {"input": 1, "output": 1}}).bucket_sql() == "0"


@pytest.mark.parametrize("tiers, message", [
    ("cheap", "'tiers' must be a list"),
    ([{"input": 1, "output": 1}], "above_prompt_tokens"),
    ([{"above_prompt_tokens": -1, "input": 1, "output": 1}], "above_prompt_tokens"),
    ([{"above_prompt_tokens": 10, "input": 1}], "needs numeric 'input' and 'output'"),
    ([{"above_prompt_tokens": 10, "input": 1, "output": 1, "ouput": 2}], "unknown field"),
    ([{"above_prompt_tokens": 10, "input": 1, "output": 1}, {"above_prompt_tokens": 10, "input": 2, "output": 2}], "same"),
])
def test_malformed_tiers_are_named(tiers, message):
    with pytest.raises(PriceTableError, match="my-model") as error:
        PriceTable({"my-model": {"input": 1, "output": 1, "tiers": tiers}})
    assert message in str(error.value)


def test_usage_cli_prices_each_request_in_its_tier(tmp_path, capsys):
    """`hybrid usage` agrees with spend(): a Haiku call over 100,000 prompt tokens uses the upper tier."""
    from mcp_server.budget import spend
    from mcp_server.cli import main
    from mcp_server.ledger import Ledger, UsageRow, ledger_path

    ledger = Ledger(ledger_path(tmp_path))
    ledger.record(UsageRow("anthropic", "claude-haiku-5-5", prompt_tokens=150_000, completion_tokens=1_000))
    ledger.record(UsageRow("anthropic", "claude-haiku-5-5", prompt_tokens=50_000, completion_tokens=1_000))
    expected = spend(ledger, PriceTable.load())
    ledger.close()
    assert main(["usage", "--project", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{expected.by_model[('anthropic', 'claude-haiku-5-5')]:.4f}" in out
    # upper tier: 150k x 0.50 + 1k x 2.50; lower: 50k x 0.10 + 1k x 0.50 (per million)
    assert expected.usd == pytest.approx((150_000 * 0.50 + 1_000 * 2.50 + 50_000 * 0.10 + 1_000 * 0.50) / 1e6)
