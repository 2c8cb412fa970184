"""hybrid-monitor over a scripted run (tests/test_monitor_builders.scripted_run), costs worked out
by hand and asserted to the cent (the JSON carries them to the micro-dollar).

Prices per million tokens (mcp_server/data/prices.yaml):
  claude-sonnet-5-5  in 2.00, cache read 0.10, 5m write 2.50, 1h write 4.00, out 10.00
  claude-haiku-5-5   in 0.10, cache read 0.01, 5m write 0.125, out 0.50; prompt > 100,000: 0.50 / 0.05 / 0.625 / 2.50
  claude-opus-5-5    in 4.00, cache read 0.20, 5m write 5.00, out 20.00
  glm-4.7            in 0.60, cached 0.11, out 2.20;  glm-4.5-air in 0.20, out 1.10
(uncached input = prompt - cache reads - cache writes; results in micro-dollars, µ$)

Against haiku-writes (the strict baseline: Haiku 5.5 for P2, P3, P4, P7):
Story 01.2
  P1 sonnet 10,000 (6,000 read, 2,000 5m) / 1,000 out: 2,000x2 + 6,000x0.1 + 2,000x2.5 + 1,000x10 = 19,600
  P2 haiku 8,000 (5,000 read, 1,000 5m) / 400: 2,000x0.1 + 5,000x0.01 + 1,000x0.125 + 400x0.5 = 575
  P2 glm-4.7 20,000 (5,000 cached) / 8,000: 15,000x0.6 + 5,000x0.11 + 8,000x2.2 = 27,150; as Haiku: 1,500 + 50 + 4,000 = 5,550
  P3 glm-4.7 2 x 30,000 (10,000) / 12,000: 24,000 + 2,200 + 52,800 = 79,000; as Haiku: 4,000 + 200 + 12,000 = 16,200
  P5 sonnet 20,000 (15,000 read, 1,000 1h) / 2,000: 4,000x2 + 1,500 + 4,000 + 20,000 = 33,500
  P6 sonnet 12,000 (10,000 read) / 1,500: 4,000 + 1,000 + 15,000 = 20,000
  P7 glm-4.5-air 10,000 / 5,000: 2,000 + 5,500 = 7,500; as Haiku: 1,000 + 2,500 = 3,500
  Claude 73,675; GLM 113,650; total 187,325; Claude-only (Haiku) 73,675 + 25,250 = 98,925
Story 01.3
  P1 sonnet 19,600; P5 sonnet 33,500 + (10,000 (8,000) / 1,000: 4,000 + 800 + 10,000 = 14,800); P6 sonnet 20,000
  P3 haiku 150,000 (100,000 read) / 2,000, over 100k: 50,000x0.5 + 100,000x0.05 + 2,000x2.5 = 35,000
  P3 haiku 50,000 (40,000 read) / 1,000: 1,000 + 400 + 500 = 1,900
  P2 glm-4.7 27,150 (as Haiku 5,550)
  P3 glm-4.7 120,000 (20,000) / 10,000: 60,000 + 2,200 + 22,000 = 84,200; as Haiku, over 100k: 50,000 + 1,000 + 25,000 = 76,000
  P3 glm-4.7 25,000 (15,000) / 5,000: 6,000 + 1,650 + 11,000 = 18,650; as Haiku: 1,000 + 150 + 2,500 = 3,650
  P7 glm-4.5-air 7,500 (as Haiku 3,500)
  Claude 124,800; GLM 137,500; total 262,300; Claude-only (Haiku) 124,800 + 88,700 = 213,500
Orchestration: 2 x opus 5,000 (4,000 read, 1,000 5m) / 500: 800 + 5,000 + 10,000 = 15,800 each, 31,600
Totals: Claude 230,075; GLM 251,150; total 481,225; Claude-only 344,025; savings -137,200 (-39.88%)
With Sonnet as the baseline for P2, P3, P4, P7 (Sonnet has no tiers):
  01.2 GLM as Sonnet: P2 15,000x2 + 500 + 80,000 = 110,500; P3 80,000 + 2,000 + 240,000 = 322,000; P7 20,000 + 50,000 = 70,000
  01.3 GLM as Sonnet: P2 110,500; P3 200,000 + 2,000 + 100,000 = 302,000 and 20,000 + 1,500 + 50,000 = 71,500; P7 70,000
  Claude-only 73,675 + 502,500 + 124,800 + 554,000 + 31,600 = 1,286,575; savings 805,350 (62.60%)
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from mcp_server import cli as hybrid_cli
from mcp_server.ledger import Ledger, ledger_path
from mcp_server.monitor import checkpoint_reader, main

from tests.test_monitor_builders import (
    checkpoint_data,
    finished,
    phase,
    review,
    scripted_run,
    usage,
    write_checkpoint,
)

HAIKU_PRIMARY = "monitor:\n  primary_baseline: haiku-writes\n"
# The old setting (before monitor.baselines): still read, as the primary baseline "configured"
SONNET_BASELINE = "monitor:\n  baseline: {P2: claude-sonnet-5-5, P3: claude-sonnet-5-5, P4: claude-sonnet-5-5, P7: claude-sonnet-5-5}\n"


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("CLAUDE_PROJECT_DIR", raising=False)
    for name in ("HYBRID_BUDGET_PER_STORY_USD", "HYBRID_BUDGET_PER_RUN_USD"):
        monkeypatch.delenv(name, raising=False)
    return scripted_run(tmp_path / "project")


def configure(root: Path, text: str) -> None:
    (root / ".claude").mkdir(exist_ok=True)
    (root / ".claude" / "hybrid.yaml").write_text(text)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def report_json(capsys, root: Path, *argv: str) -> dict:
    code, out, err = run(capsys, "--project", str(root), "--json", *argv)
    assert code == 0, err
    return json.loads(out)


def cents(value: float) -> str:
    return f"{value:.2f}"


# --- cost, baseline, savings ----------------------------------------------------------------------


def test_scripted_run_costs_to_the_cent(capsys, project):
    data = report_json(capsys, project)
    t = data["totals"]
    assert (t["claude_usd"], t["glm_usd"], t["total_usd"]) == (0.230075, 0.25115, 0.481225)
    # the primary baseline, sonnet-writes; and the strict one, haiku-writes, beside it
    assert data["primary_baseline"] == "sonnet-writes" and list(data["baselines"]) == ["sonnet-writes", "haiku-writes"]
    assert (t["claude_only_usd"], t["savings_usd"], t["savings_pct"]) == (1.286575, 0.80535, 62.6)
    assert t["baselines"] == {
        "sonnet-writes": {"claude_only_usd": 1.286575, "savings_usd": 0.80535, "savings_pct": 62.6},
        "haiku-writes": {"claude_only_usd": 0.344025, "savings_usd": -0.1372, "savings_pct": -39.88},
    }
    assert [cents(t[k]) for k in ("total_usd", "claude_only_usd", "savings_usd")] == ["0.48", "1.29", "0.81"]
    stories = {row["story"]: row["cost"] for row in data["per_story"]}
    assert (stories["01.2"]["claude_usd"], stories["01.2"]["glm_usd"], stories["01.2"]["claude_only_usd"]) == (0.073675, 0.11365, 0.576175)
    assert (stories["01.3"]["claude_usd"], stories["01.3"]["glm_usd"], stories["01.3"]["claude_only_usd"]) == (0.1248, 0.1375, 0.6788)
    assert stories["01.2"]["baselines"]["haiku-writes"]["claude_only_usd"] == 0.098925
    assert stories["01.3"]["baselines"]["haiku-writes"]["claude_only_usd"] == 0.2135
    assert data["orchestration"]["total_usd"] == 0.0316 and data["orchestration"]["claude_only_usd"] == 0.0316
    phases = {row["phase"]: row for row in data["per_phase"]}
    # P2: Haiku's own 575 + GLM as Sonnet 2 x 110,500 µ$; as Haiku 575 + 2 x 5,550
    assert phases["P2"]["cost"]["claude_only_usd"] == 0.221575 and phases["P2"]["baseline_model"] == "claude-sonnet-5-5"
    assert phases["P2"]["cost"]["baselines"]["haiku-writes"]["claude_only_usd"] == 0.011675
    assert phases["P2"]["baseline_models"] == {"sonnet-writes": "claude-sonnet-5-5", "haiku-writes": "claude-haiku-5-5"}
    # P3: Haiku's own 36,900 + GLM as Sonnet 322,000 + 302,000 + 71,500; as Haiku 36,900 + 16,200 + 76,000 + 3,650
    assert (phases["P3"]["cost"]["claude_usd"], phases["P3"]["cost"]["glm_usd"], phases["P3"]["cost"]["claude_only_usd"]) == (0.0369, 0.18185, 0.7324)
    assert phases["P3"]["cost"]["baselines"]["haiku-writes"]["claude_only_usd"] == 0.13275
    assert phases["P4"]["cost"] == {"data": False}
    assert phases["orchestration / unattributed"]["cost"]["claude_usd"] == 0.0316
    models = {row["model"]: row for row in data["per_model"]}
    assert models["claude-haiku-5-5"]["cost"]["total_usd"] == 0.037475 and models["claude-haiku-5-5"]["calls_above_first_tier"] == 1
    assert models["glm-4.7"]["cost"]["total_usd"] == 0.23615 and models["glm-4.7"]["calls_above_first_tier"] == 1
    assert models["glm-4.7"]["cost"]["tokens"]["glm"] == {"calls": 6, "input": 245_000, "cached": 65_000, "cache_writes": 0, "output": 55_000}
    assert data["verdict"] == "APPROVED"
    [savings] = [c for c in data["checks"] if c["name"] == "savings"]
    assert savings["outcome"] == "pass" and "with sonnet-writes, the primary baseline" in savings["text"] and savings["fix"] is None


def test_the_headline_in_the_seeds_shape(capsys, project):
    code, out, _ = run(capsys, "--project", str(project))
    assert code == 0
    assert out.splitlines()[:15] == [
        "# Hybrid AI Batch Report",
        "",
        "Stories: 01.2, 01.3  ",
        "Total Cost: $0.481 (Claude $0.230 + GLM $0.251)  ",  # below $1: three significant digits
        "vs Claude-Only: $1.29 with sonnet-writes (primary)¹ · $0.344 with haiku-writes  ",
        "Savings: $0.805 (62.6%) vs sonnet-writes · -$0.137 (-39.9%) vs haiku-writes  ",
        "Claude Tokens Avoided: 330,000 (50.3% of the 656,400 Claude alone would have used):"
        " 200,000 input, 65,000 cache read, 65,000 output",
        "",
        "Quality:",
        "- AC Pass Rate: 100% (5/5 ACs; 2/2 stories)",
        "- Test Coverage: 88.8% avg (min 85%; 2/2 stories)",
        "- Code Quality: 8.75/10 avg (min 8.5; 1.5 review rounds per story)",
        "",
        "✅ VERDICT: APPROVED - Continue hybrid approach",
        "",
    ]
    assert "- ✓ savings 62.6% ($0.805 of $1.29 Claude-only with sonnet-writes, the primary baseline) ≥ 40%" in out
    assert "| 01.2 | $0.0737 | $0.1137 | $0.1873 | $0.5762 | $0.3889 (67.5%) | 100% (3/3) | 92.5% | 9/10 | 1 | 58m 00s |" in out
    assert "| orchestration / unattributed | $0.0316 | $0.0000 | $0.0316 | $0.0316 |" in out
    footnotes = [line for line in out.splitlines() if line.startswith("¹ ")]
    assert len(footnotes) == 1
    assert "the model each baseline (as shipped) gives the phase" in footnotes[0]
    assert ("In sonnet-writes, the primary baseline the verdict is taken against, that is P2 claude-sonnet-5-5, "
            "P3 claude-sonnet-5-5, P7 claude-sonnet-5-5. In haiku-writes that is P2 claude-haiku-5-5, P3 claude-haiku-5-5, "
            "P7 claude-haiku-5-5.") in footnotes[0]
    assert "The orchestration no story claimed ($0.0316) is in every total, in full." in footnotes[0]
    assert "docs/cost-method.md" in footnotes[0]


def test_haiku_as_the_primary_baseline_rejects_and_says_what_to_change(capsys, project):
    configure(project, HAIKU_PRIMARY)
    data = report_json(capsys, project)
    assert (data["totals"]["claude_only_usd"], data["totals"]["savings_usd"], data["totals"]["savings_pct"]) == (0.344025, -0.1372, -39.88)
    assert list(data["totals"]["baselines"]) == ["haiku-writes", "sonnet-writes"]  # the primary first
    assert data["totals"]["total_usd"] == 0.481225  # the hybrid's own cost does not depend on the baseline
    assert [row["cost"]["claude_only_usd"] for row in data["per_story"]] == [0.098925, 0.2135]
    assert data["verdict"] == "REJECTED"
    [savings] = [c for c in data["checks"] if c["name"] == "savings"]
    assert savings["outcome"] == "reject" and "the hybrid cost more than Claude-only" in savings["text"]
    assert savings["fix"] == ("a cheaper profile, `profile: economy` (every model under Claude Haiku 5.5's price per token), "
                              "or `monitor.primary_baseline` set to the baseline that matches how your team would otherwise "
                              "work (sonnet-writes: 62.6%)")
    code, out, _ = run(capsys, "--project", str(project))
    lines = out.splitlines()
    assert lines[4:6] == ["vs Claude-Only: $0.344 with haiku-writes (primary)¹ · $1.29 with sonnet-writes  ",
                          "Savings: -$0.137 (-39.9%) vs haiku-writes · $0.805 (62.6%) vs sonnet-writes  "]
    assert ("- ✗ hard gate: savings -39.9% (-$0.137 of $0.344 Claude-only with haiku-writes, the primary baseline) is below 0%: "
            "the hybrid cost more than Claude-only; to change it: a cheaper profile, `profile: economy`") in out
    configure(project, HAIKU_PRIMARY + "profile: economy\n")
    [savings] = [c for c in report_json(capsys, project)["checks"] if c["name"] == "savings"]
    assert savings["fix"].startswith("cheaper models for the tools under `models:` (economy is already the cheapest profile)")


def test_the_old_monitor_baseline_setting_still_works(capsys, project):
    """`monitor.baseline` (one phase -> model map over the roles' models) is read as the primary
    baseline "configured": the same comparison as before monitor.baselines."""
    configure(project, SONNET_BASELINE)
    data = report_json(capsys, project)
    assert data["primary_baseline"] == "configured" and list(data["totals"]["baselines"]) == ["configured", "sonnet-writes", "haiku-writes"]
    # the old default under it (haiku-writes, the roles' models), the project's phases over that
    assert data["baselines"]["configured"] == {**data["baselines"]["sonnet-writes"], "other": "claude-haiku-5-5"}
    assert (data["totals"]["claude_only_usd"], data["totals"]["savings_pct"]) == (1.286575, 62.6)
    assert data["verdict"] == "APPROVED"
    code, out, _ = run(capsys, "--project", str(project))
    assert "priced as if a Claude model had written them: the model each baseline (as monitor.baselines sets them) gives the phase" in out


def test_each_request_is_priced_in_its_own_tier(capsys, project):
    data = report_json(capsys, project)
    [haiku] = [m for m in data["per_model"] if m["model"] == "claude-haiku-5-5"]
    # 575 + 35,000 + 1,900 µ$; summed as one 208,000-token prompt it would be 5x the base part
    assert haiku["cost"]["total_usd"] == 0.037475


# --- quality, time, runs ----------------------------------------------------------------------------


def test_quality_and_time(capsys, project):
    data = report_json(capsys, project)
    q = data["quality"]
    assert (q["ac_pass_rate"], q["acs_passed"], q["acs"], q["stories_all_pass"]) == (100.0, 5, 5, 2)
    assert (q["coverage_avg"], q["coverage_min"], q["quality_avg"], q["quality_min"], q["review_rounds_avg"]) == (88.75, 85.0, 8.75, 8.5, 1.5)
    rows = {row["story"]: row for row in data["per_story"]}
    assert rows["01.2"]["coverage"] == {"percent": 92.5, "source": "reports/01.2-coverage.xml", "read_as": "cobertura", "recorded": 92.5}
    assert rows["01.3"]["coverage"]["read_as"] == "lcov" and rows["01.3"]["review_rounds"] == 2
    assert rows["01.2"]["seconds"] == 58 * 60 and rows["01.3"]["seconds"] == 88 * 60
    assert rows["01.3"]["phase_seconds"]["P3"] == 15 * 60  # the last round's times, no earlier_seconds
    t = data["time"]
    assert (t["wall_clock_s"], t["story_sum_s"], t["speedup"]) == (90 * 60, 146 * 60, 1.62)
    phases = {row["phase"]: row for row in data["per_phase"]}
    assert (phases["P1"]["seconds_total"], phases["P1"]["seconds_mean"], phases["P4"]["seconds_total"]) == (960, 480, None)


def test_runs_are_split_by_silent_hours(capsys, project):
    ledger = Ledger(ledger_path(project))
    usage(ledger, "anthropic", "claude-opus-5-5", None, None, 5_000, cached=4_000, w5m=1_000, out=500, clock="15:00", day="2026-11-20")
    ledger.close()
    data = report_json(capsys, project)
    assert [(r["run"], r["stories"], r["cost"]["total_usd"], r["cost_per_story_usd"]) for r in data["runs"]] == [
        (1, 0, 0.0158, None),  # the orchestrator alone, five days earlier
        (2, 2, 0.481225, 0.240613),  # 481,225 / 2 µ$, to the micro-dollar
    ]
    assert data["totals"]["total_usd"] == 0.497025  # every story: unattributed usage is all in


# --- no data, bad input ------------------------------------------------------------------------------


def test_a_story_without_usage_or_qa_is_no_data_never_zero(capsys, project):
    write_checkpoint(project, checkpoint_data("01.4", title="Org Profile", phases={"P1": phase("done", "10:00", "10:05")}))
    code, out, _ = run(capsys, "--project", str(project))
    assert code == 0
    [row, against] = [line for line in out.splitlines() if line.startswith("| 01.4 |")]  # Stories, Against each baseline
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells == ["01.4", *["no data"] * 9, "5m 00s"]
    assert [c.strip() for c in against.strip("|").split("|")] == ["01.4", *["no data"] * 7]  # 2 savings, 5 token counts
    assert "$0.0000" not in row
    data = report_json(capsys, project)
    [story] = [r for r in data["per_story"] if r["story"] == "01.4"]
    assert story["cost"] == {"data": False} and story["ac"] is None and story["coverage"] is None and story["quality"] is None
    assert data["verdict"] == "NEEDS_ATTENTION"
    texts = [c["text"] for c in data["checks"] if c["outcome"] == "missing"]
    assert "AC pass rate: no QA results for 1 story: 01.4" in texts
    assert "no usage data for 1 story: 01.4" in texts
    assert "test coverage: no data for 1 story: 01.4" in texts
    assert any("01.4: no usage in the ledger" in w or "no usage in the ledger for 01.4" in w for w in data["warnings"])


def test_a_corrupt_coverage_file_is_named_and_the_report_still_comes_out(capsys, project):
    configure(project, SONNET_BASELINE)
    (project / "reports" / "01.2-coverage.xml").write_text("<coverage lines-valid=")
    code, out, err = run(capsys, "--project", str(project))
    assert code == 0 and err == ""
    assert "# Hybrid AI Batch Report" in out and "| 01.3 |" in out
    [warning] = [line for line in out.splitlines() if "01.2-coverage.xml" in line]
    assert warning.startswith("- coverage report reports/01.2-coverage.xml is unreadable (not well-formed Cobertura XML")
    assert warning.endswith("; the report uses the percent the checkpoint recorded for 01.2")
    assert "92.5% (checkpoint)" in out
    data = report_json(capsys, project)
    assert data["verdict"] == "NEEDS_ATTENTION"
    assert "a coverage report is unreadable (see the warnings)" in [c["text"] for c in data["checks"]]


def test_missing_ledger_says_what_to_run_first(capsys, tmp_path):
    code, out, err = run(capsys, "--project", str(tmp_path))
    path = tmp_path.resolve() / ".claude" / "hybrid" / "usage.db"
    assert (code, out) == (1, "")
    assert err == f"hybrid-monitor: no usage ledger at {path}: run /hybrid:pilot (or a GLM tool) first\n"
    assert not path.exists()  # a report never creates the ledger


def test_missing_checkpoints_say_what_to_run_first(capsys, tmp_path):
    ledger = Ledger(ledger_path(tmp_path))
    usage(ledger, "glm", "glm-4.7", "01.2", "P3", 10)
    ledger.close()
    code, out, err = run(capsys, "--project", str(tmp_path))
    assert (code, out, err) == (1, "", "hybrid-monitor: no checkpoints under .claude/checkpoints/: run /hybrid:pilot first\n")


def test_a_ledger_that_is_not_sqlite_is_one_line(capsys, project):
    ledger_path(project).write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(str(ledger_path(project)) + suffix).unlink(missing_ok=True)
    code, _, err = run(capsys, "--project", str(project))
    assert code == 1 and err.startswith("hybrid-monitor: the usage ledger cannot be read:") and err.count("\n") == 1


def test_a_broken_checkpoint_is_a_warning_and_an_unknown_story_a_one_line_refusal(capsys, project):
    code, out, err = run(capsys, "--project", str(project), "--stories", "01.2", "99.9")
    assert (code, out) == (1, "") and err == "hybrid-monitor: unknown story 99.9; known: 01.2, 01.3\n"
    (project / ".claude" / "checkpoints" / "01.3.yaml").write_text("story: '01.3'\nphases: [\n")
    data = report_json(capsys, project, "--stories", "01.2, 01.3")
    warnings = "\n".join(data["warnings"])
    assert "01.3: " in warnings and "01.3.yaml is not valid YAML" in warnings
    [row] = [r for r in data["per_story"] if r["story"] == "01.3"]
    assert row["cost"]["total_usd"] == 0.2623  # its usage still counts
    assert data["verdict"] == "NEEDS_ATTENTION"  # 01.3's checkpoint cannot be read


def test_an_unpriced_model_is_a_warning_never_zero(capsys, project):
    configure(project, SONNET_BASELINE)
    ledger = Ledger(ledger_path(project))
    usage(ledger, "glm", "glm-9-ultra", "01.2", "P3", 40_000, out=9_000, clock="10:31")
    ledger.close()
    data = report_json(capsys, project)
    assert data["totals"]["total_usd"] == 0.481225 and data["totals"]["unpriced_models"] == ["glm-9-ultra"]
    assert any(w.startswith("unpriced model glm-9-ultra (1 calls; 40,000 tokens in, 9,000 out): left out of every cost, never counted as $0")
               for w in data["warnings"])
    assert data["verdict"] == "NEEDS_ATTENTION"
    _, out, _ = run(capsys, "--project", str(project))
    assert "Total Cost: $0.481 (Claude $0.230 + GLM $0.251) + unpriced (glm-9-ultra)" in out
    assert "$0.1137 + unpriced" in out
    assert "Unpriced models (glm-9-ultra) are in the token counts above but left out of both sides' dollars." in out


# --- unattributed usage with a subset -----------------------------------------------------------------


def test_a_subset_takes_the_orchestration_of_its_own_window(capsys, project):
    ledger = Ledger(ledger_path(project))
    usage(ledger, "anthropic", "claude-opus-5-5", None, None, 5_000, cached=4_000, w5m=1_000, out=500, clock="15:00", day="2026-11-20")
    usage(ledger, "glm", "glm-4.7", "01.9", "P3", 10_000, out=1_000, clock="10:30")  # a story with no checkpoint
    ledger.close()
    both = report_json(capsys, project, "--stories", "01.2,01.3")
    assert both["orchestration"]["total_usd"] == 0.0316  # 2026-11-20 is outside 10:00..11:30 on 2026-11-25
    assert both["unattributed"]["window"] == ["2026-11-25T10:00:00.000+00:00", "2026-11-25T11:30:00.000+00:00"]
    assert both["unattributed"]["other_stories_in_window"] == 1
    assert "when 1 other story was active" in both["footnote"]
    assert any("usage of 1 story outside the selection, not in this report: 01.9" in w for w in both["warnings"])
    one = report_json(capsys, project, "--stories", "01.2")
    assert one["orchestration"]["total_usd"] == 0.0158  # 10:01 only; 11:29 is after 01.2's last activity (10:58)
    assert one["totals"]["total_usd"] == 0.203125
    assert one["unattributed"]["other_stories_in_window"] == 2  # 01.3 and 01.9
    every = report_json(capsys, project)
    assert every["orchestration"]["total_usd"] == 0.0474  # no --stories: all of it
    assert any("usage of 1 story without a checkpoint" in w for w in every["warnings"])


def test_a_subset_takes_the_orchestration_of_the_sessions_that_ran_it(capsys, project):
    """The orchestrator's turns come before the first phase and after the last: the session
    that ran a story owns them, whenever they happened."""
    ledger = Ledger(ledger_path(project))
    # session A ran 01.2 (its agent's row) and launched it before, and reported after, its phases.
    usage(ledger, "anthropic", "claude-haiku-5-5", "01.2", "P2", 1_000, clock="10:05", session="A")
    usage(ledger, "anthropic", "claude-opus-5-5", None, None, 10_000, out=1_000, clock="09:00", session="A")
    usage(ledger, "anthropic", "claude-opus-5-5", None, None, 10_000, out=1_000, clock="13:00", session="A")
    # session B ran only 01.9 (no checkpoint): its orchestration is not 01.2's.
    usage(ledger, "anthropic", "claude-haiku-5-5", "01.9", "P2", 1_000, clock="10:06", session="B")
    usage(ledger, "anthropic", "claude-opus-5-5", None, None, 50_000, clock="09:30", session="B")
    ledger.close()
    one = report_json(capsys, project, "--stories", "01.2")
    # session A's two turns, 10,000 in + 1,000 out at $4/$20 per million each: 2 x $0.06 = $0.12,
    # plus the window's session-less orchestration: 10:01 only ($0.0158, see the test above)
    assert one["orchestration"]["total_usd"] == 0.1358
    assert one["unattributed"]["sessions"] == 1 and one["unattributed"]["other_stories_in_sessions"] == 0
    assert "comes from the 1 Claude Code session that ran these stories" in one["footnote"]


# --- flags -------------------------------------------------------------------------------------------


def test_output_files_for_each_action(capsys, project, tmp_path):
    out = tmp_path / "out"
    assert run(capsys, "--project", str(project), "--output", str(out / "r.md"))[:2] == (0, "")
    assert (out / "r.md").read_text().startswith("# Hybrid AI Batch Report\n")
    assert run(capsys, "--project", str(project), "--action", "dashboard", "--output", str(out / "d.html"))[0] == 0
    assert (out / "d.html").read_text().startswith("<!DOCTYPE html>")
    code, _, err = run(capsys, "--project", str(project), "--action", "all", "--output", f"{out}/both/")
    assert code == 0 and sorted(p.name for p in (out / "both").iterdir()) == ["hybrid-dashboard.html", "hybrid-report.md"]
    assert f"dashboard: {out}/both/hybrid-dashboard.html (" in err
    assert run(capsys, "--project", str(project), "--action", "all", "--output", str(out / "pilot.md"))[0] == 0
    assert (out / "pilot.md").is_file() and (out / "pilot.html").is_file()
    assert run(capsys, "--project", str(project), "--action", "all", "--json", "--output", str(out / "pilot"))[0] == 0
    assert json.loads((out / "pilot.json").read_text())["verdict"] == "APPROVED"
    code, stdout, _ = run(capsys, "--project", str(project), "--action", "all")
    assert code == 0 and stdout.startswith("# Hybrid AI Batch Report") and (project / ".claude" / "hybrid" / "dashboard.html").is_file()


def test_project_defaults_to_the_current_directory(capsys, project, monkeypatch):
    monkeypatch.chdir(project)
    code, out, _ = run(capsys, "--json")
    assert code == 0 and json.loads(out)["project"] == str(project.resolve())


def test_since_and_until(capsys, project):
    window = report_json(capsys, project, "--since", "2026-11-25T10:30", "--until", "2026-11-25T11:00:00Z")
    # 01.2 P3 10:30 (39,500) + P5 33,500 + P6 20,000 + P7 7,500; 01.3 P5 10:38 33,500 + P3 10:50 18,650 µ$
    assert window["totals"]["total_usd"] == 0.15265 and window["orchestration"] == {"data": False}
    assert report_json(capsys, project, "--until", "2026-11-25")["totals"]["total_usd"] == 0.481225  # a date: to its end
    later = report_json(capsys, project, "--since", "2026-11-26")
    assert later["totals"] == {"data": False} and later["verdict"] == "NEEDS_ATTENTION"
    code, _, err = run(capsys, "--project", str(project), "--since", "yesterday")
    assert code == 2 and "--since 'yesterday' is not a date" in err
    code, _, err = run(capsys, "--project", str(project), "--since", "2026-11-26", "--until", "2026-11-25")
    assert code == 2 and "is not before" in err


def test_prices_file_overrides(capsys, project, tmp_path):
    prices = tmp_path / "my-prices.yaml"
    prices.write_text("models:\n  glm-4.7: {input: 0.06, cached_input: 0.011, output: 0.22, source: 'https://example.invalid/contract', date: 2026-11-25}\n")
    data = report_json(capsys, project, "--prices", str(prices))
    assert data["totals"]["glm_usd"] == 0.038615  # glm-4.7 at a tenth (23,615) + glm-4.5-air 15,000 µ$
    prices.write_text("models: [1, 2]\n")
    code, _, err = run(capsys, "--project", str(project), "--prices", str(prices))
    assert code == 2 and "--prices" in err


def test_empty_stories_means_every_story(capsys, project):
    assert report_json(capsys, project, "--stories", "")["stories"] == ["01.2", "01.3"]
    code, _, err = run(capsys, "--project", str(project), "--stories", "../etc")
    assert code == 2 and err.startswith("hybrid-monitor: --stories: ")


def test_hybrid_report_passes_its_arguments_through(capsys, project):
    code = hybrid_cli.main(["report", "--project", str(project), "--json", "--stories", "01.2,01.3"])
    direct = capsys.readouterr().out
    assert code == 0
    assert json.loads(direct)["totals"] == report_json(capsys, project, "--stories", "01.2,01.3")["totals"]
    assert hybrid_cli.main(["report", "--project", str(project / "nope")]) == 2
    assert "hybrid report: --project" in capsys.readouterr().err


# --- settings ---------------------------------------------------------------------------------------


def test_thresholds_are_data_and_every_reason_is_printed(capsys, project):
    configure(project, SONNET_BASELINE + "  thresholds: {coverage: 90}\n  reject_below: {quality: 9}\n")
    data = report_json(capsys, project)
    assert data["verdict"] == "REJECTED"
    texts = {c["name"]: (c["outcome"], c["text"]) for c in data["checks"]}
    assert texts["coverage"] == ("fail", "test coverage below 90% in 1 of 2 stories: 01.3 (85%)")
    assert texts["quality"] == ("reject", "code quality below the hard gate 9/10 in 1 story: 01.3 (8.5/10)")
    assert texts["savings"][0] == "pass" and texts["ac_pass_rate"][0] == "pass"
    assert data["settings"]["thresholds"]["coverage"] == 90 and data["settings"]["baselines"]["configured"]["P3"] == "claude-sonnet-5-5"
    assert texts["coverage"] == ("fail", "test coverage below 90% in 1 of 2 stories: 01.3 (85%)")
    [coverage] = [c for c in data["checks"] if c["name"] == "coverage"]
    assert coverage["fix"] == ("more tests in those stories (/hybrid:resume <story>), or `profile: quality` for the test "
                               "writer; the bar: `monitor.thresholds.coverage`")


def test_a_failed_ac_rejects(capsys, project):
    configure(project, SONNET_BASELINE)
    write_checkpoint(project, finished(
        "01.2", times={"P1": ("10:00", "10:08"), "P6": ("10:45", "10:53")}, acs=3, qa=["pass", "fail", "pass"],
        current_review=review(9), coverage=(92.5, "reports/01.2-coverage.xml"),
    ))
    result = report_json(capsys, project)
    [ac] = [c for c in result["checks"] if c["name"] == "ac_pass_rate"]
    assert ac["outcome"] == "reject" and ac["text"].startswith("AC pass rate 80% (4/5 ACs); failed: 01.2 AC-2 is below the hard gate 100%")
    assert result["verdict"] == "REJECTED"


def test_bad_monitor_settings_are_named(capsys, project):
    configure(project, "monitor:\n  thresholds: {coverage: 120}\n")
    code, _, err = run(capsys, "--project", str(project))
    assert code == 2 and "monitor.thresholds.coverage" in err
    configure(project, "monitor:\n  baselines: {haiku-writes: {P3: claude-nope-9}}\n")
    code, _, err = run(capsys, "--project", str(project))
    assert code == 2 and "monitor.baselines.haiku-writes.P3: claude-nope-9" in err and err.count("\n") == 1
    configure(project, "monitor:\n  baseline: {P3: claude-nope-9}\n")  # the old key: read as `configured`
    code, _, err = run(capsys, "--project", str(project))
    assert code == 2 and "monitor.baselines.configured.P3: claude-nope-9" in err
    configure(project, "monitor:\n  primary_baseline: opus-writes\n")
    code, _, err = run(capsys, "--project", str(project))
    assert code == 2 and "primary_baseline 'opus-writes' is not one of monitor.baselines: haiku-writes, sonnet-writes" in err
    configure(project, "monitor:\n  baselines: {mine: {P3: claude-opus-5-5}}\n")
    code, _, err = run(capsys, "--project", str(project))
    assert code == 2 and "baselines.mine needs `other`" in err
    configure(project, "monitor:\n  baseline: claude-opus-5-5\n")
    code, _, err = run(capsys, "--project", str(project))
    assert code == 2 and "baseline is now monitor.baselines.<name>" in err and err.count("\n") == 1


# --- loading: cache, parallel readers --------------------------------------------------------------


def test_checkpoints_are_parsed_again_only_when_they_change(capsys, project, monkeypatch):
    calls = []
    real = checkpoint_reader.load_checkpoint
    monkeypatch.setattr(checkpoint_reader, "load_checkpoint", lambda root, story: calls.append(story) or real(root, story))
    first = report_json(capsys, project)
    assert sorted(calls) == ["01.2", "01.3"] and (project / ".claude" / "hybrid" / "monitor-cache.json").is_file()
    calls.clear()
    assert report_json(capsys, project)["per_story"] == first["per_story"] and calls == []
    path = project / ".claude" / "checkpoints" / "01.3.yaml"
    path.write_text(path.read_text().replace("title: Permissions", "title: Permissions v2"))
    again = report_json(capsys, project)
    assert calls == ["01.3"] and again["per_story"][1]["title"] == "Permissions v2"
    calls.clear()
    report_json(capsys, project, "--no-cache")
    assert sorted(calls) == ["01.2", "01.3"]


def test_the_parallel_reader_gives_the_same_report(capsys, project, monkeypatch):
    serial = report_json(capsys, project, "--no-cache")
    monkeypatch.setattr(checkpoint_reader, "PARALLEL_FROM", 1)
    parallel = report_json(capsys, project, "--no-cache")
    for data in (serial, parallel):
        data.pop("generated_at")
    assert parallel == serial


def test_the_collector_is_back_on_after_a_report_or_an_error(capsys, project, tmp_path):
    import gc

    assert gc.isenabled()
    report_json(capsys, project)  # the report runs with the cyclic collector off (monitor/cli.py)
    assert gc.isenabled()
    assert run(capsys, "--project", str(tmp_path / "empty"))[0] == 2  # no such directory
    assert gc.isenabled()


def test_the_report_does_not_change_the_ledger(capsys, project):
    def rows():
        with sqlite3.connect(ledger_path(project)) as db:
            return db.execute("SELECT * FROM usage ORDER BY id").fetchall()

    before = rows()
    report_json(capsys, project)
    assert rows() == before


# --- scale -------------------------------------------------------------------------------------------


def thousand_story_report(root: Path):
    """A report of 1,000 finished stories, built in memory (the bench builds the files)."""
    from mcp_server.config import load_settings
    from mcp_server.monitor import MonitorInput, StoryInput, UsageGroup, build_report
    from mcp_server.pricing import PriceTable, TokenCounts

    stories = [f"{n // 100 + 1:02d}.{n % 100 + 1}" for n in range(1000)]
    inputs, groups = {}, []
    for n, story in enumerate(stories):
        data = finished(story, times={"P1": ("10:00", "10:08"), "P3": ("10:08", "10:30")}, acs=5, qa=["pass"] * 5,
                        title=f"Story {story}: a feature with a title of a usual length", current_review=review(9))
        inputs[story] = StoryInput(story, data, next_action="done", reviews=({"score": 9},))
        for phase_name, provider, model in (("P1", "anthropic", "claude-sonnet-5-5"), ("P3", "glm", "glm-4.7"), ("P3", "anthropic", "claude-haiku-5-5")):
            groups.append(UsageGroup(story, phase_name, provider, model, 0, f"2026-11-{n % 28 + 1:02d}T10", 10,
                                     TokenCounts(50_000 + n, 20_000, 0, 0, 5_000), "2026-11-01T10:00:00.000+00:00", "2026-11-01T10:30:00.000+00:00"))
    settings = load_settings(root, environ={})
    return build_report(MonitorInput(root, stories, False, groups, [], inputs, None, None, None), PriceTable.load(), settings.monitor)


def test_dashboard_stays_small_at_1000_stories(tmp_path):
    from mcp_server.monitor import render_dashboard

    report = thousand_story_report(tmp_path)
    assert len(report.runs) == 28
    html = render_dashboard(report)
    size = len(html.encode())
    assert size < 400_000, size
    assert html.count("<tr>") < 5  # the table's rows are built in the page from the data, not sent as markup


def test_a_note_goes_under_the_title_of_the_report_and_into_the_dashboard(capsys, project, tmp_path):
    code, out, _ = run(capsys, "--project", str(project), "--note", "simulated models: no API was called")
    assert code == 0 and out.splitlines()[2] == "> simulated models: no API was called"
    assert report_json(capsys, project, "--note", "n")["note"] == "n"
    page = tmp_path / "d.html"
    run(capsys, "--project", str(project), "--action", "dashboard", "--output", str(page), "--note", "simulated <b>")
    html = page.read_text()
    assert '"note":"simulated ' in html and "simulated <b>" not in html  # data, never markup


def test_a_prices_file_that_is_not_utf8_is_one_line(capsys, project, tmp_path):
    bad = tmp_path / "prices.yaml"
    bad.write_bytes(b"models:\n  x: {input: \xff}\n")
    code, _, err = run(capsys, "--project", str(project), "--prices", str(bad))
    assert code == 2 and "not UTF-8" in err and "Traceback" not in err



def test_a_phase_time_adds_its_earlier_rounds(capsys, project):
    path = project / ".claude" / "checkpoints" / "01.3.yaml"
    path.write_text(path.read_text().replace("  P3:\n", "  P3:\n    earlier_seconds: 600\n", 1))
    rows = {row["story"]: row for row in report_json(capsys, project)["per_story"]}
    assert rows["01.3"]["phase_seconds"]["P3"] == 15 * 60 + 600
