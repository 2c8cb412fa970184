"""The per-model scorecard (`hybrid report --models`), every column worked out by hand on a fixed
ledger and checkpoints: the scripted run of tests/test_monitor.py plus story 01.4 and the ledger's
test_run rows below.

Usage (prices per million: glm-4.7 in 0.60, cached 0.11, out 2.20; glm-5.3 in 1.40, cached 0.26,
out 4.40; the scripted run's figures are worked out in tests/test_monitor.py):
  glm-4.7: the scripted run's 6 calls, 245,000 in (65,000 cached) / 55,000 out, $0.23615; plus
    01.4's two P3 calls of 1,000 / 100: 600 + 220 = 820 µ$ each.
    8 calls, 247,000 / 65,000 / 55,200, 236,150 + 1,640 = 237,790 µ$
  glm-5.3: 01.4 P3 40,000 (10,000 cached) / 8,000: 30,000x1.4 + 10,000x0.26 + 8,000x4.4
    = 42,000 + 2,600 + 35,200 = 79,800 µ$
  claude-sonnet-5-5: 7 calls, 161,000 µ$; claude-haiku-5-5: 3 calls, 37,475 µ$
Tested implement/refactor calls (test_run; write_tests is not a code tool):
  glm-4.7: 01.2 fail then 1 fix; 01.3 pass; 01.3 fail then 2 fixes; 01.2 five days earlier pass
    -> 2/4 first attempts (50%), 3 fix rounds (0.75 per call)
  glm-5.3: 01.4 fail then 2 fixes (still failing); 01.4 pass -> 1/2 (50%), 2 fix rounds (1 per call)
  glm-4.5-air: 01.2 refactor pass -> 1/1 (100%), 0 fix rounds
Stories written (the model that did P3):
  01.2: no model in its checkpoint; its P3 rows are glm-4.7 -> glm-4.7
  01.3: no model in its checkpoint; P3 rows of claude-haiku-5-5 (2) and glm-4.7 (2): GLM first -> glm-4.7
  01.4: the checkpoint names "GLM-5.3" (the ledger's glm-5.3), although its P3 rows are mostly glm-4.7
  01.5: QA results, but no P3 model and no P3 rows -> no writer
  glm-4.7: reviews 9 (01.2), 6 REQUEST_CHANGES and 8.5 (01.3): mean 23.5/3 = 7.83, 1/3 REQUEST_CHANGES
    (33.3%); ACs 3/3 + 2/2 = 5/5 (100%)
  glm-5.3: reviews 5 and 6 REQUEST_CHANGES, 7: mean 6, 2/3 (66.7%); ACs 3/4 (75%)
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from mcp_server.ledger import Ledger, _SCHEMA, ledger_path
from mcp_server.ledger_test_runs import CallTests
from mcp_server.config import load_settings
from mcp_server.monitor import build_report, load_input, main
from mcp_server.monitor.dashboard import dashboard_data
from mcp_server.monitor.render_scorecard import COLUMNS
from mcp_server.pricing import PriceTable

from tests.test_monitor_builders import DAY, finished, review, scripted_run, ts, usage, write_checkpoint


def call_tests(story: str, phase: str, tool: str, model: str, first: bool, fixes: int, passed: bool, clock: str = "10:30", day: str = DAY) -> CallTests:
    return CallTests(story, phase, tool, model, first, fixes, passed, ts=ts(clock, day))


TEST_RUNS = [
    call_tests("01.2", "P3", "implement", "glm-4.7", False, 1, True, "10:31"),
    call_tests("01.3", "P3", "implement", "glm-4.7", True, 0, True, "10:29"),
    call_tests("01.3", "P3", "implement", "glm-4.7", False, 2, True, "10:55"),
    call_tests("01.2", "P3", "implement", "glm-4.7", True, 0, True, "09:00", "2026-11-20"),  # five days earlier
    call_tests("01.4", "P3", "implement", "glm-5.3", False, 2, False, "12:20"),
    call_tests("01.4", "P3", "implement", "glm-5.3", True, 0, True, "12:40"),
    call_tests("01.2", "P4", "refactor", "glm-4.5-air", True, 0, True, "10:50"),
    call_tests("01.2", "P2", "write_tests", "glm-4.7", False, 0, False, "10:16"),  # not a code tool: not scored
]


def scorecard_run(root: Path) -> Path:
    scripted_run(root)
    data = finished(
        "01.4", title="Audit Log", acs=4, qa=["pass", "pass", "fail", "pass"],
        earlier_reviews=[review(5, "REQUEST_CHANGES", when="12:25"), review(6, "REQUEST_CHANGES", iteration=2, when="12:45")],
        current_review=review(7, iteration=3, when="13:05"),
        times={"P1": ("12:00", "12:05"), "P2": ("12:05", "12:10"), "P3": ("12:50", "13:00"), "P5": ("13:00", "13:05"),
               "P6": ("13:05", "13:10"), "P7": ("13:10", "13:15")},
        iterations={"P3": 3, "P5": 3},
    )
    data["phases"]["P3"]["model"] = "GLM-5.3"  # as an agent may spell it
    write_checkpoint(root, data)
    write_checkpoint(root, finished(
        "01.5", title="No writer", acs=1, qa=["pass"],
        times={"P1": ("13:20", "13:25"), "P5": ("13:25", "13:30"), "P6": ("13:30", "13:35"), "P7": ("13:35", "13:40")},
    ))
    ledger = Ledger(ledger_path(root))
    usage(ledger, "glm", "glm-5.3", "01.4", "P3", 40_000, cached=10_000, out=8_000, clock="12:55")
    usage(ledger, "glm", "glm-4.7", "01.4", "P3", 1_000, out=100, clock="12:15")
    usage(ledger, "glm", "glm-4.7", "01.4", "P3", 1_000, out=100, clock="12:35")
    for run in TEST_RUNS:
        ledger.record_test_run(run)
    ledger.close()
    return root


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("CLAUDE_PROJECT_DIR", raising=False)
    for name in ("HYBRID_BUDGET_PER_STORY_USD", "HYBRID_BUDGET_PER_RUN_USD"):
        monkeypatch.delenv(name, raising=False)
    return scorecard_run(tmp_path / "project")


def scorecard(capsys, root: Path, *argv: str) -> dict:
    assert main(["--project", str(root), "--models", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def by_model(data: dict) -> dict[str, dict]:
    return {row["model"]: row for row in data["models"]}


def test_every_column_by_hand(capsys, project):
    data = scorecard(capsys, project)
    models = by_model(data)
    assert list(models) == ["claude-haiku-5-5", "claude-opus-5-5", "claude-sonnet-5-5", "glm-4.5-air", "glm-4.7", "glm-5.3"]
    glm47 = models["glm-4.7"]
    assert (glm47["calls"], glm47["tokens"], glm47["cost_usd"]) == (
        8, {"input": 247_000, "cached": 65_000, "cache_writes": 0, "output": 55_200}, 0.23779)
    assert (glm47["tested_code_calls"], glm47["first_attempt_passed"], glm47["first_attempt_pass_pct"]) == (4, 2, 50.0)
    assert (glm47["fix_rounds"], glm47["fix_rounds_per_call"]) == (3, 0.75)
    assert glm47["stories_written"] == ["01.2", "01.3"]
    assert (glm47["review_rounds"], glm47["review_score_avg"], glm47["request_changes"], glm47["request_changes_pct"]) == (3, 7.83, 1, 33.33)
    assert (glm47["acs_passed"], glm47["acs_judged"], glm47["ac_pass_pct"]) == (5, 5, 100.0)

    glm53 = models["glm-5.3"]
    assert (glm53["calls"], glm53["tokens"]["input"], glm53["tokens"]["cached"], glm53["tokens"]["output"], glm53["cost_usd"]) == (
        1, 40_000, 10_000, 8_000, 0.0798)
    assert (glm53["tested_code_calls"], glm53["first_attempt_pass_pct"], glm53["fix_rounds"], glm53["fix_rounds_per_call"]) == (2, 50.0, 2, 1.0)
    assert glm53["stories_written"] == ["01.4"]  # the checkpoint's "GLM-5.3", not the ledger's majority (glm-4.7)
    assert (glm53["review_rounds"], glm53["review_score_avg"], glm53["request_changes_pct"]) == (3, 6.0, 66.67)
    assert (glm53["acs_passed"], glm53["acs_judged"], glm53["ac_pass_pct"]) == (3, 4, 75.0)

    air = models["glm-4.5-air"]
    assert (air["tested_code_calls"], air["first_attempt_pass_pct"], air["fix_rounds"], air["stories_written"]) == (1, 100.0, 0, [])
    sonnet = models["claude-sonnet-5-5"]
    assert (sonnet["calls"], sonnet["cost_usd"], sonnet["provider"]) == (7, 0.161, "anthropic")
    assert (sonnet["tested_code_calls"], sonnet["first_attempt_pass_pct"], sonnet["review_score_avg"], sonnet["ac_pass_pct"]) == (0, None, None, None)
    assert models["claude-haiku-5-5"]["stories_written"] == []  # 01.3's P3 had Haiku rows too: GLM wrote the code
    assert data["stories_without_writer"] == ["01.5"]
    # the scorecard's dollars are the report's: every model row summed is the report's total
    report = json.loads(run_json(capsys, project))
    assert round(sum(row["cost_usd"] for row in data["models"]), 6) == report["totals"]["total_usd"]


def run_json(capsys, root: Path) -> str:
    assert main(["--project", str(root), "--json"]) == 0
    return capsys.readouterr().out


def test_the_markdown_table(capsys, project):
    assert main(["--project", str(project), "--models"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Hybrid model scorecard\n\nStories: 01.2, 01.3, 01.4, 01.5\n")
    assert "| " + " | ".join(COLUMNS) + " |" in out
    assert "| glm-4.7 | 8 | 247,000 | 65,000 | 55,200 | $0.2378 | 50% (2/4) | 3 (0.75 per call) | 2 | 7.83/10 (3 rounds) | 33.3% (1/3) | 100% (5/5) |" in out
    assert "| glm-5.3 | 1 | 40,000 | 10,000 | 8,000 | $0.0798 | 50% (1/2) | 2 (1 per call) | 1 | 6/10 (3 rounds) | 66.7% (2/3) | 75% (3/4) |" in out
    assert "| claude-sonnet-5-5 | 7 | 94,000 | 70,000 | 10,000 | $0.1610 | no data | no data | 0 | no data | no data | no data |" in out
    assert "No model is known to have done P3 of 01.5" in out
    assert "# Hybrid AI Batch Report" not in out  # --models is the scorecard alone


def test_stories_and_since_narrow_the_test_runs_too(capsys, project):
    glm47 = by_model(scorecard(capsys, project, "--since", "2026-11-25"))["glm-4.7"]
    assert (glm47["tested_code_calls"], glm47["first_attempt_passed"], glm47["fix_rounds"]) == (3, 1, 3)  # the early pass is out
    models = by_model(scorecard(capsys, project, "--stories", "01.2"))
    assert (models["glm-4.7"]["tested_code_calls"], models["glm-4.7"]["first_attempt_passed"], models["glm-4.7"]["fix_rounds"]) == (2, 1, 1)
    assert models["glm-4.7"]["stories_written"] == ["01.2"] and models["glm-4.7"]["review_rounds"] == 1
    assert "glm-5.3" not in models  # no usage, test run or story in 01.2


def test_an_unpriced_model_is_unpriced_never_zero(capsys, project):
    ledger = Ledger(ledger_path(project))
    usage(ledger, "glm", "glm-9-preview", "01.2", "P3", 1_000, out=100, clock="10:33")
    ledger.close()
    row = by_model(scorecard(capsys, project))["glm-9-preview"]
    assert (row["calls"], row["cost_usd"], row["unpriced"]) == (1, None, True)
    assert main(["--project", str(project), "--models"]) == 0
    assert "| glm-9-preview | 1 | 1,000 | 0 | 100 | unpriced |" in capsys.readouterr().out


def test_a_ledger_from_before_test_runs_reads_as_none_and_gets_the_table_when_opened(capsys, tmp_path):
    root = scripted_run(tmp_path / "project")
    path = ledger_path(root)
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE test_run")  # as a ledger written before the table existed
    prices = PriceTable.load()
    inp = load_input(root, prices)  # the report's read: read-only
    assert inp.test_runs == []
    with sqlite3.connect(path) as db:
        assert not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'test_run'").fetchone()
    models = by_model(scorecard(capsys, root))
    assert models["glm-4.7"]["tested_code_calls"] == 0 and models["glm-4.7"]["first_attempt_pass_pct"] is None
    assert models["glm-4.7"]["review_rounds"] == 3  # the checkpoints still score the stories
    ledger = Ledger(path)  # any process that opens it for writing adds the table
    ledger.record_test_run(call_tests("01.2", "P3", "implement", "glm-4.7", True, 0, True))
    assert ledger.test_runs() == [call_tests("01.2", "P3", "implement", "glm-4.7", True, 0, True)]
    ledger.close()
    assert by_model(scorecard(capsys, root))["glm-4.7"]["first_attempt_pass_pct"] == 100.0


def test_the_ledger_schema_has_the_test_runs_table_of_its_own_module():
    assert "test_run" not in _SCHEMA  # kept in mcp_server/ledger_test_runs.py, added to Ledger.SCHEMA
    assert "CREATE TABLE IF NOT EXISTS test_run" in Ledger.SCHEMA


def test_the_dashboard_carries_the_same_cells(capsys, project):
    prices = PriceTable.load()
    report = build_report(load_input(project, prices), prices, load_settings(project).monitor)
    models = dashboard_data(report)["models"]
    assert models["columns"] == list(COLUMNS)
    [glm47] = [row for row in models["rows"] if row[0] == "glm-4.7"]
    assert glm47 == ["glm-4.7", "8", "247,000", "65,000", "55,200", "$0.2378", "50% (2/4)", "3 (0.75 per call)", "2",
                     "7.83/10 (3 rounds)", "33.3% (1/3)", "100% (5/5)"]
