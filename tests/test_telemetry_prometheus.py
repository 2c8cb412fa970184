"""End to end: `hybrid telemetry push` into a real Prometheus, checked by PromQL over its HTTP API.

Prometheus is Debian's package (2.42 on Debian 12, installed by ./install), started here on
loopback with a temp storage dir. 2.42 does not take OTLP, so the push goes the other real way
it accepts: Prometheus remote write (`--web.enable-remote-write-receiver`), sent by the
OpenTelemetry SDK's remote-write exporter (`telemetry.protocol: prometheus-remote-write`). The
metric names are those a collector gives the OTLP metrics, so one dashboard serves both paths.
The expected figures come from the ledger by plain SQL and from `hybrid-monitor --json`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.support import REPO
from tests.telemetry_support import closed_port_url, fill_ledger, token_totals, usage_rows

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="the prometheus binary is absent (./install puts Debian's `prometheus` package in)"
)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    """A Prometheus of our own on a free loopback port; its base URL."""
    home = tmp_path_factory.mktemp("prometheus")
    (home / "prometheus.yml").write_text("global:\n  scrape_interval: 15s\n")
    address = closed_port_url().removeprefix("http://")
    log = (home / "prometheus.log").open("w")
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={home / 'prometheus.yml'}", f"--storage.tsdb.path={home / 'data'}",
         f"--web.listen-address={address}", "--web.enable-remote-write-receiver"],
        stdout=log, stderr=subprocess.STDOUT, cwd=home,
    )
    url = f"http://{address}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prometheus did not start: {(home / 'prometheus.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def promql(url: str, query: str, *labels: str) -> dict[tuple, float]:
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': query})}", timeout=10) as answer:
        body = json.load(answer)
    assert body["status"] == "success", body
    return {tuple(item["metric"].get(label) for label in labels): float(item["value"][1]) for item in body["data"]["result"]}


def hybrid(project: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mcp_server.cli", *args, "--project", str(project)],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **env},
    )


def monitor(project: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "mcp_server.monitor.cli", "--stories", "01.2,01.3", "--json", "--project", str(project)],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    return json.loads(done.stdout)


def test_promql_totals_equal_the_ledger(prometheus, tmp_path):
    project = tmp_path / "proj"
    # two pushes: the second one's rows continue the first one's series
    first, rest = usage_rows()[:4], usage_rows()[4:]
    fill_ledger(project, first, refusals=0)
    (project / ".claude" / "hybrid.yaml").write_text(
        "telemetry:\n  protocol: prometheus-remote-write\n  resource_attributes: {team: platform, repo: billing}\n"
    )
    env = {"HYBRID_TELEMETRY_ENDPOINT": f"{prometheus}/api/v1/write"}
    pushed = hybrid(project, "telemetry", "push", env=env)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    fill_ledger(project, rest, refusals=2)
    pushed = hybrid(project, "telemetry", "push", env=env)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert "sent 7 ledger row(s)" in pushed.stdout  # 5 usage rows and 2 refusals, the first 4 not again

    # tokens per provider, model and story: the ledger's own sums
    expected = {key: float(value) for key, value in token_totals(project, "provider", "model", "story").items()}
    got = promql(prometheus, "sum by (provider, model, story) (hybrid_token_usage_tokens_total)", "provider", "model", "story")
    assert got == expected

    # cost and Claude-only baseline per story and per model: what `hybrid-monitor` reports
    report = monitor(project)
    cost = promql(prometheus, "sum by (story) (hybrid_cost_usage_USD_total)", "story")
    baseline = promql(prometheus, 'sum by (story) (hybrid_cost_baseline_USD_total{baseline="sonnet-writes"})', "story")
    for row in report["per_story"]:
        assert cost[(row["story"],)] == pytest.approx(row["cost"]["total_usd"], abs=1e-6)
        assert baseline[(row["story"],)] == pytest.approx(row["cost"]["claude_only_usd"], abs=1e-6)
    assert cost[(None,)] == pytest.approx(report["orchestration"]["total_usd"], abs=1e-6)
    assert sum(cost.values()) == pytest.approx(report["totals"]["total_usd"], abs=1e-6)
    assert sum(baseline.values()) == pytest.approx(report["totals"]["claude_only_usd"], abs=1e-6)
    by_model = promql(prometheus, "sum by (provider, model) (hybrid_cost_usage_USD_total)", "provider", "model")
    assert by_model == pytest.approx(
        {(row["provider"], row["model"]): row["cost"]["total_usd"] for row in report["per_model"] if row["cost"]["unpriced_models"] == []},
        abs=1e-6,
    )

    # the rest of what the ledger knows, and the labels a dashboard filters on
    assert promql(prometheus, "sum(hybrid_budget_refusals_total)") == {(): 2.0}
    assert promql(prometheus, "sum(hybrid_usage_unpriced_total)") == {(): 1.0}
    assert promql(prometheus, "sum by (status) (hybrid_delegation_count_total)", "status") == {
        ("ok",): 4.0, ("error:1305",): 1.0}
    assert promql(prometheus, "sum(hybrid_delegation_attempts_total)") == {(): 11.0}
    assert promql(prometheus, "sum(hybrid_delegation_duration_seconds_total)") == {(): pytest.approx(73.75)}
    labels = promql(prometheus, 'count by (team, repo, job) (hybrid_token_usage_tokens_total{type="cacheRead"})', "team", "repo", "job")
    assert list(labels) == [("platform", "billing", "hybrid-orchestrator")]

    # every query of the Grafana dashboard runs on it; the savings panel says what the report says
    dashboard = json.loads((REPO / "docs" / "grafana" / "hybrid-cost.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            query = target["expr"].replace("$team", ".*").replace("$repo", ".*").replace("$__range", "1h")
            result = promql(prometheus, query, "baseline")
            assert result or "claude_code_" in query, (panel["title"], query)
            if panel["title"] == "Savings against each baseline":
                # every baseline of monitor.baselines, each as the report shows it (the primary's is savings_usd)
                assert set(result) == {("sonnet-writes",), ("haiku-writes",)}
                assert result[("sonnet-writes",)] == pytest.approx(report["totals"]["savings_usd"], abs=1e-6)
                for name, against in report["totals"]["baselines"].items():
                    assert result[(name,)] == pytest.approx(against["savings_usd"], abs=1e-6)
