"""`hybrid demo`, the README's main-job command, end to end: real CLI, simulated models."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys

from tests.support import REPO
from tests.test_dashboard_browser import assert_charts_readable, inspected_charts


def test_hybrid_demo_runs_the_pilot_and_says_the_models_were_simulated(claude, tmp_path):
    done = subprocess.run([sys.executable, "-m", "mcp_server.cli", "demo", "--dir", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert out.startswith("hybrid demo (simulated models: no Anthropic or GLM API was called)")
    assert out.count("simulated models") == 1 and "simulated" not in done.stderr  # said once, first
    assert re.search(r"^the session took \d+ s$", out, re.M)  # measured, not a guess
    page = tmp_path / "settings-epic" / ".claude" / "hybrid" / "dashboard.html"
    assert (out + done.stderr).count(str(page)) == 1  # the dashboard's path, once
    happened = out.split("what happened:\n")[1].split("\n\n")[0]
    assert "01.3: " in happened and "review 1: request changes (6/10), so P3 ran again on its 1 issue" in happened
    assert "review 2: approved (9/10)" in happened and "minor issue, so P4 refactored it" in happened
    assert re.search(r"failed its tests and passed after \d+ fix rounds?", happened), happened
    for row in ("01.2 ", "01.3 ", "01.4 "):
        assert any(line.startswith(row) and line.rstrip().endswith("done") for line in out.splitlines()), row
    assert "# Hybrid AI Batch Report" in out and "VERDICT:" in out and "AC Pass Rate: 100% (12/12 ACs" in out
    assert "Test Coverage:" in out and "no data" not in out.split("## Stories")[0]
    # both Claude-only baselines side by side, the primary named, and the Claude tokens avoided
    headline = out.split("# Hybrid AI Batch Report")[1].split("Quality:")[0]
    assert re.search(r"^vs Claude-Only: \$[\d.,]+ with sonnet-writes \(primary\)¹ · \$[\d.,]+ with haiku-writes", headline, re.M), headline
    assert re.search(r"^Savings: -?\$[\d.,]+ \(-?[\d.]+%\) vs sonnet-writes · -?\$[\d.,]+ \(-?[\d.]+%\) vs haiku-writes", headline, re.M), headline
    assert re.search(r"^Claude Tokens Avoided: [\d,]+ \([\d.]+% of the [\d,]+ Claude alone would have used\): [\d,]+ input, .*[\d,]+ output$", headline, re.M), headline
    assert "## Against each baseline" in out
    project = tmp_path / "settings-epic"
    assert page.stat().st_size > 10_000 and "simulated models" in page.read_text()
    assert_charts_readable(inspected_charts(tmp_path, page))  # in chromium: axis labels and marks on every chart
    tests = subprocess.run(["python3", "-m", "unittest", "discover", "-s", "tests", "-t", ".", "-q"], cwd=project,
                           capture_output=True, text=True)
    assert tests.returncode == 0, tests.stderr
    assert_a_scorecard_row_per_model(project)


def assert_a_scorecard_row_per_model(project):
    """`hybrid report --models` on the demo's project: a row for every model of its ledger, the
    three stories each written by one, and the test runs its implement calls recorded (01.3's
    first code failed its tests)."""
    with sqlite3.connect(project / ".claude" / "hybrid" / "usage.db") as db:
        models = {row[0] for row in db.execute("SELECT DISTINCT model FROM usage")}
    done = subprocess.run([sys.executable, "-m", "mcp_server.cli", "report", "--project", str(project), "--models", "--json"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["models"]
    assert sorted(row["model"] for row in rows) == sorted(models) and len(models) >= 3
    assert sorted(story for row in rows for story in row["stories_written"]) == ["01.2", "01.3", "01.4"]
    assert all(row["provider"] == "glm" for row in rows if row["stories_written"])
    tested = sum(row["tested_code_calls"] for row in rows)
    assert tested >= 3 and sum(row["first_attempt_passed"] for row in rows) < tested
    assert sum(row["fix_rounds"] for row in rows) >= 1 and sum(row["review_rounds"] for row in rows) >= 4
    assert all(row["ac_pass_pct"] == 100.0 for row in rows if row["stories_written"])
    table = subprocess.run([sys.executable, "-m", "mcp_server.cli", "report", "--project", str(project), "--models"],
                           cwd=REPO, capture_output=True, text=True, timeout=300).stdout
    assert all(f"| {model} | " in table for model in models), table


def test_hybrid_demo_refuses_an_existing_project_folder(tmp_path):
    (tmp_path / "settings-epic").mkdir()
    done = subprocess.run([sys.executable, "-m", "mcp_server.cli", "demo", "--dir", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "already exists" in done.stderr and "Traceback" not in done.stderr
