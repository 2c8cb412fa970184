"""The telemetry exporter against a loopback OTLP/HTTP collector that decodes every request with
the official opentelemetry-proto package: what is sent, each row once, and a collector that is
down loses nothing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from decimal import Decimal

import pytest

from mcp_server.config import ConfigError, load_settings
from mcp_server.errors import HybridError
from mcp_server.ledger import UsageRow
from mcp_server.pricing import TokenCounts
from mcp_server.telemetry.export import otlp_url, prometheus_name
from mcp_server.telemetry.push import Pusher, push, start_background
from mcp_server.telemetry.state import TelemetryState, state_path
from tests.support import REPO
from tests.telemetry_support import SESSION, closed_port_url, fill_ledger, otlp_receiver, token_totals, usage_rows

pytest.importorskip("opentelemetry.proto", reason="the [otel] extra is not installed")

TOKEN = "tok-9f8e7d6c5b4a39281706"


def settings_for(root, endpoint, **env):
    return load_settings(root, {"HYBRID_TELEMETRY_ENDPOINT": endpoint, **env})


def exported_rows(root) -> int:
    state = TelemetryState(state_path(root))
    try:
        return state.status().exported_rows
    finally:
        state.close()


def test_what_the_collector_gets(tmp_path, prices):
    fill_ledger(tmp_path)
    with otlp_receiver() as (received, url):
        settings = settings_for(
            tmp_path, url,
            HYBRID_TELEMETRY_HEADERS=f"Authorization=Bearer%20{TOKEN}",
            HYBRID_TELEMETRY_RESOURCE_ATTRIBUTES="team=platform,repo=billing",
        )
        result = push(settings)
    assert result.ok and result.rows == 10 and result.waiting == 0
    assert received.paths == ["/v1/metrics"]
    assert received.headers[0]["authorization"] == f"Bearer {TOKEN}"
    request = received.requests[0]
    resource = {a.key: a.value.string_value for a in request.resource_metrics[0].resource.attributes}
    assert resource["service.name"] == "hybrid-orchestrator" and resource["team"] == "platform"
    assert resource["service.instance.id"]
    metrics = {m.name: m for m in request.resource_metrics[0].scope_metrics[0].metrics}
    assert metrics["hybrid.token.usage"].unit == "tokens" and metrics["hybrid.cost.usage"].unit == "USD"
    tokens = metrics["hybrid.token.usage"].sum
    assert tokens.is_monotonic and tokens.aggregation_temporality == 2  # CUMULATIVE

    # tokens by type, as Claude Code's claude_code.token.usage has them
    by_type = received.summed("hybrid.token.usage", "type")
    rows = usage_rows()
    assert by_type[("output",)] == sum(r.completion_tokens for r in rows)
    assert by_type[("cacheRead",)] == sum(r.cached_tokens for r in rows)
    assert by_type[("cacheCreation",)] == sum(r.cache_write_5m_tokens + r.cache_write_1h_tokens for r in rows)
    assert sum(by_type.values()) == sum(r.prompt_tokens + r.completion_tokens for r in rows)
    assert received.summed("hybrid.token.usage", "provider", "model", "story") == {
        key: Decimal(value) for key, value in token_totals(tmp_path, "provider", "model", "story").items()}

    # one point's attributes: Claude Code's names where the meaning is the same, and the resource's
    sonnet = [dict(a) for a in received.points("hybrid.token.usage") if ("model", "claude-sonnet-5-5") in a]
    assert {"type": "output", "session.id": SESSION, "story": "01.2", "phase": "P1", "agent": "hybrid:ux-designer",
            "team": "platform", "repo": "billing", "provider": "anthropic", "model": "claude-sonnet-5-5"} in sonnet

    # cost: each request at its own tier, unpriced models counted apart and never as $0
    cost = received.summed("hybrid.cost.usage", "model")
    haiku_tier = rows[2]
    assert float(cost[("claude-haiku-5-5",)]) == pytest.approx(
        sum(prices.cost(r.model, TokenCounts(r.prompt_tokens, r.cached_tokens, r.cache_write_5m_tokens,
                                             r.cache_write_1h_tokens, r.completion_tokens), prompt_size=r.prompt_tokens)
            for r in rows if r.model == "claude-haiku-5-5"), abs=1e-12)
    assert haiku_tier.prompt_tokens > 100_000
    assert ("glm-9-unlisted",) not in cost
    assert received.summed("hybrid.usage.unpriced", "model") == {("glm-9-unlisted",): 1}

    # baselines: Claude's own rows cost the same; GLM's at each baseline's Claude model
    baseline = received.summed("hybrid.cost.baseline", "baseline", "provider")
    assert baseline[("haiku-writes", "anthropic")] == baseline[("sonnet-writes", "anthropic")] == sum(
        v for (m,), v in cost.items() if m.startswith("claude"))
    glm_implement = rows[4]
    as_sonnet = prices.cost("claude-sonnet-5-5", TokenCounts(glm_implement.prompt_tokens, glm_implement.cached_tokens,
                                                             completion_tokens=glm_implement.completion_tokens))
    implement = received.summed("hybrid.cost.baseline", "baseline.model", "tool", where={"baseline": "sonnet-writes"})
    assert float(implement[("claude-sonnet-5-5", "implement")]) == pytest.approx(as_sonnet, abs=1e-12)

    # delegations and refusals
    assert received.summed("hybrid.delegation.count", "status") == {("ok",): 4, ("error:1305",): 1}
    assert received.summed("hybrid.delegation.attempts") == {(): 11}
    assert received.summed("hybrid.delegation.duration", "tool")[("implement",)] == Decimal("41.25")
    assert received.summed("hybrid.budget.refusals", "cap", "story", "source") == {
        ("budget.per_story_usd", "01.3", "server"): 1}


def test_each_row_once_and_the_next_push_continues_the_series(tmp_path):
    fill_ledger(tmp_path, usage_rows()[:3], refusals=0)
    with otlp_receiver() as (received, url):
        settings = settings_for(tmp_path, url)
        assert push(settings).rows == 3
        assert push(settings).rows == 0
        assert len(received.requests) == 1  # nothing new: nothing sent
        fill_ledger(tmp_path, usage_rows()[3:], refusals=1)
        assert push(settings).rows == 7
    second = received.requests[1]
    sent_models = {dict((a.key, a.value.string_value) for a in p.attributes)["model"]
                   for m in second.resource_metrics[0].scope_metrics[0].metrics if m.name == "hybrid.token.usage"
                   for p in m.sum.data_points}
    assert "claude-opus-5-5" not in sent_models  # only the series the new rows touched
    # the values are cumulative: the last value of each series is the ledger's total
    assert received.summed("hybrid.token.usage", "provider", "model", "story") == {
        key: Decimal(value) for key, value in token_totals(tmp_path, "provider", "model", "story").items()}
    assert exported_rows(tmp_path) == 10
    starts = {p.start_time_unix_nano for r in received.requests for m in r.resource_metrics[0].scope_metrics[0].metrics
              for p in m.sum.data_points}
    assert len(starts) == 1  # one start time for the life of telemetry.db


def test_a_collector_that_is_down_gets_everything_at_the_next_push(tmp_path):
    fill_ledger(tmp_path, usage_rows()[:5], refusals=0)
    down = settings_for(tmp_path, closed_port_url())
    failed = push(down)
    assert not failed.ok and failed.rows == 0 and failed.waiting == 5
    # the hooks and tools go on writing while it is down
    fill_ledger(tmp_path, usage_rows()[5:], refusals=1)
    assert push(down).waiting == 10
    status = subprocess.run([sys.executable, "-m", "mcp_server.cli", "telemetry", "status", "--project", str(tmp_path)],
                            capture_output=True, text=True, env={"PYTHONPATH": str(REPO), "HYBRID_TELEMETRY_ENDPOINT": down.telemetry.endpoint})
    assert "cursor usage: row 0 of 9" in status.stdout and "last success: never" in status.stdout
    assert "last error (" in status.stdout
    assert exported_rows(tmp_path) == 0

    with otlp_receiver() as (received, url):
        up = settings_for(tmp_path, url)
        assert push(up).rows == 10
        assert push(up).rows == 0
    assert len(received.requests) == 1
    assert received.summed("hybrid.token.usage", "provider", "model", "story") == {
        key: Decimal(value) for key, value in token_totals(tmp_path, "provider", "model", "story").items()}
    assert received.summed("hybrid.budget.refusals") == {(): 1}
    assert exported_rows(tmp_path) == 10


def test_a_collector_that_refuses_keeps_the_cursor_and_says_why(tmp_path):
    fill_ledger(tmp_path, usage_rows()[:2], refusals=0)
    with otlp_receiver() as (received, url):
        received.fail_with = 400  # not retryable: one attempt
        settings = settings_for(tmp_path, url, HYBRID_TELEMETRY_HEADERS=f"Authorization={TOKEN}")
        failed = push(settings)
        assert not failed.ok and "400" in failed.error and TOKEN not in failed.error
        received.fail_with = None
        assert push(settings).rows == 2
    assert received.summed("hybrid.token.usage", "model") == {
        ("claude-opus-5-5",): 12_800, ("claude-sonnet-5-5",): 33_000}


def test_rows_wait_until_they_settle(tmp_path):
    fill_ledger(tmp_path, usage_rows()[:2], refusals=0)
    with otlp_receiver() as (received, url):
        pusher = Pusher(settings_for(tmp_path, url))
        try:
            first = pusher.push(settle_s=120, now=lambda: 1000.0)
            assert first.rows == 0 and first.waiting == 2
            fill_ledger(tmp_path, usage_rows()[2:3], refusals=0)
            later = pusher.push(settle_s=120, now=lambda: 1121.0)  # the first two have settled, the third not
            assert later.rows == 2 and later.waiting == 1
            assert pusher.push(settle_s=120, now=lambda: 1242.0).rows == 1
        finally:
            pusher.close()


def test_a_run_id_column_becomes_an_attribute(tmp_path):
    path = fill_ledger(tmp_path, [UsageRow("glm", "glm-4.7", story="01.2", phase="P3", prompt_tokens=100,
                                           completion_tokens=10)], refusals=0)
    with sqlite3.connect(path) as conn:  # the ledger's run id (mcp_server/ledger_runs.py)
        conn.execute("UPDATE usage SET run_id = 'run-7'")
    with otlp_receiver() as (received, url):
        push(settings_for(tmp_path, url))
    assert received.summed("hybrid.token.usage", "run.id") == {("run-7",): 110}


def test_the_server_pushes_in_the_background_and_at_shutdown(tmp_path):
    fill_ledger(tmp_path, usage_rows()[:1], refusals=0)
    with otlp_receiver() as (received, url):
        background = start_background(settings_for(tmp_path, url))  # interval 60 s: only the last push runs
        fill_ledger(tmp_path, usage_rows()[1:2], refusals=0)
        background.stop()
    assert received.summed("hybrid.token.usage", "model") == {
        ("claude-opus-5-5",): 12_800, ("claude-sonnet-5-5",): 33_000}


def test_telemetry_off_loads_no_sdk(tmp_path):
    """(The MCP SDK itself brings opentelemetry-api; the SDK and the exporters are ours.)"""
    assert start_background(load_settings(tmp_path, {})) is None
    code = (
        "import sys, mcp_server.server, mcp_server.cli, mcp_server.telemetry.push;"
        "print(any(m.startswith(('opentelemetry.sdk', 'opentelemetry.exporter')) for m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(REPO)})
    assert done.stdout.strip() == "False", done.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HYBRID_TELEMETRY_ENDPOINT": "collector:4318"}, "telemetry.endpoint: must be an http(s) URL"),
        ({"HYBRID_TELEMETRY_ENDPOINT": "http://c:4318", "HYBRID_TELEMETRY_HEADERS": f"Bad Name={TOKEN}"},
         "is not a valid HTTP header name"),
        ({"HYBRID_TELEMETRY_HEADERS": TOKEN}, "must be key=value pairs"),
        ({"HYBRID_TELEMETRY_RESOURCE_ATTRIBUTES": "team name=x"}, "must be letters, digits"),
    ],
)
def test_bad_settings_are_one_line_without_the_secret(tmp_path, env, message):
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, env)
    assert message in str(caught.value) and TOKEN not in str(caught.value)


def test_a_baseline_model_without_a_price_is_refused(tmp_path):
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "hybrid.yaml").write_text("telemetry:\n  baselines:\n    mine: {P3: claude-nope-1}\n")
    with pytest.raises(ConfigError, match=r"telemetry.baselines.mine.P3: claude-nope-1"):
        Pusher(settings_for(tmp_path, "http://127.0.0.1:9"))
    assert not state_path(tmp_path).exists() or exported_rows(tmp_path) == 0


def test_names_and_urls():
    assert prometheus_name("hybrid.cost.usage") == "hybrid_cost_usage_USD_total"
    assert prometheus_name("hybrid.token.usage") == "hybrid_token_usage_tokens_total"
    assert prometheus_name("hybrid.delegation.duration") == "hybrid_delegation_duration_seconds_total"
    assert prometheus_name("hybrid.budget.refusals") == "hybrid_budget_refusals_total"
    assert otlp_url("http://c:4318") == otlp_url("http://c:4318/") == "http://c:4318/v1/metrics"
    assert otlp_url("https://c/otlp/v1/metrics") == "https://c/otlp/v1/metrics"


def test_plugin_options_reach_the_settings(tmp_path):
    settings = load_settings(tmp_path, {
        "HYBRID_OPTION_TELEMETRY_ENDPOINT": "https://otel.example:4318",
        "HYBRID_OPTION_TELEMETRY_HEADERS": f"x-api-key={TOKEN}",
        "HYBRID_OPTION_TELEMETRY_RESOURCE_ATTRIBUTES": "team=a",
    })
    telemetry = settings.telemetry
    assert telemetry.enabled and telemetry.headers["x-api-key"].get_secret_value() == TOKEN
    assert TOKEN not in repr(settings) and telemetry.resource_attributes == {"team": "a"}
    unset = load_settings(tmp_path, {"HYBRID_OPTION_TELEMETRY_ENDPOINT": "", "HYBRID_OPTION_TELEMETRY_HEADERS": ""})
    assert not unset.telemetry.enabled and unset.telemetry.headers == {}


def test_without_the_extra_the_server_says_so_and_goes_on(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.resources", None)  # as if not installed
    assert start_background(settings_for(tmp_path, "http://127.0.0.1:9")) is None
    assert "pip install 'hybrid-orchestrator[otel]'" in caplog.text


def test_the_plugin_option_brings_the_extra_into_the_plugin_venv(monkeypatch):
    from mcp_server import launcher

    monkeypatch.delenv("HYBRID_TELEMETRY_ENDPOINT", raising=False)
    monkeypatch.setenv("HYBRID_OPTION_TELEMETRY_ENDPOINT", "")  # an unset option arrives empty
    plain, plain_stamp = launcher._requirements(REPO), launcher._stamp(REPO)
    assert not any(r.startswith("opentelemetry") for r in plain)
    monkeypatch.setenv("HYBRID_OPTION_TELEMETRY_ENDPOINT", "http://collector:4318")
    assert any(r.startswith("opentelemetry-exporter-otlp-proto-http") for r in launcher._requirements(REPO))
    assert launcher._stamp(REPO) != plain_stamp  # so the venv is rebuilt with it


def test_an_idle_ledger_adds_no_sightings(tmp_path):
    fill_ledger(tmp_path, usage_rows()[:1], refusals=0)
    with otlp_receiver() as (received, url):
        pusher = Pusher(settings_for(tmp_path, url))
        try:
            for minute in range(5):
                pusher.push(settle_s=120, now=lambda: 1000.0 + 60 * minute)
        finally:
            pusher.close()
    with sqlite3.connect(state_path(tmp_path)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM sighting").fetchone()[0] <= 2  # one per source
    assert received.summed("hybrid.token.usage") == {(): 12_800}


def test_a_state_file_that_cannot_be_opened_leaves_the_server_running(tmp_path, caplog):
    state_path(tmp_path).mkdir(parents=True)  # a directory where the file should be
    assert start_background(settings_for(tmp_path, "http://127.0.0.1:9")) is None
    assert "telemetry is configured but off" in caplog.text
    with pytest.raises(HybridError, match="telemetry: .*telemetry.db"):
        push(settings_for(tmp_path, "http://127.0.0.1:9"))
