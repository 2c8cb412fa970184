"""Savings against both Claude-only baselines and the Claude tokens avoided, on the scripted run
(tests/test_monitor_builders.scripted_run), worked out by hand. The costs of each baseline are
worked out in tests/test_monitor.py's docstring; here the tokens.

Claude tokens avoided = the baseline's Claude tokens - the Claude tokens measured. The baseline
gives Claude GLM's tokens one for one (uncached input -> input, cache hits -> cache reads, output
-> output, no cache writes), so the avoided tokens are GLM's, the same for every baseline:

  01.2  P2 glm-4.7 20,000 (5,000 cached) / 8,000; P3 2 x 30,000 (10,000) / 12,000; P7 glm-4.5-air 10,000 / 5,000
        input 15,000 + 40,000 + 10,000 = 65,000; cache read 5,000 + 20,000 = 25,000; output 8,000 + 24,000 + 5,000 = 37,000
        total 127,000
  01.3  P2 20,000 (5,000) / 8,000; P3 120,000 (20,000) / 10,000 and 25,000 (15,000) / 5,000; P7 10,000 / 5,000
        input 15,000 + 100,000 + 10,000 + 10,000 = 135,000; cache read 5,000 + 20,000 + 15,000 = 40,000;
        output 8,000 + 10,000 + 5,000 + 5,000 = 28,000; total 203,000
  total input 200,000; cache read 65,000; cache write 0; output 65,000; 330,000

Claude tokens measured (uncached input / cache read / cache write / output):
  01.2  P1 2,000/6,000/2,000/1,000; P2 2,000/5,000/1,000/400; P5 4,000/15,000/1,000/2,000; P6 2,000/10,000/0/1,500
        = 10,000 / 36,000 / 4,000 / 4,900 (54,900)
  01.3  P1 2,000/6,000/2,000/1,000; P3 50,000/100,000/0/2,000 and 10,000/40,000/0/1,000;
        P5 4,000/15,000/1,000/2,000 and 2,000/8,000/0/1,000; P6 2,000/10,000/0/1,500
        = 70,000 / 179,000 / 3,000 / 8,500 (260,500)
  orchestration 2 x 0/4,000/1,000/500 = 0 / 8,000 / 2,000 / 1,000 (11,000)
  total 80,000 / 223,000 / 9,000 / 14,400 = 326,400
Claude-only's Claude tokens: 326,400 + 330,000 = 656,400; avoided 330,000 / 656,400 = 50.27%
"""

from __future__ import annotations

import json

from mcp_server.monitor import main
from mcp_server.ledger import Ledger, ledger_path
from tests.test_dashboard_browser import dashboard, embedded
from tests.test_monitor_builders import scripted_run, usage


def report(capsys, root, *argv):
    assert main(["--project", str(root), *argv]) == 0
    return capsys.readouterr().out


def test_claude_tokens_avoided_by_kind_per_story_and_in_total(capsys, tmp_path):
    project = scripted_run(tmp_path / "project")
    data = json.loads(report(capsys, project, "--json"))
    stories = {row["story"]: row["cost"] for row in data["per_story"]}
    assert stories["01.2"]["claude_tokens_avoided"] == {"input": 65_000, "cache_read": 25_000, "cache_write": 0, "output": 37_000, "total": 127_000}
    assert stories["01.3"]["claude_tokens_avoided"] == {"input": 135_000, "cache_read": 40_000, "cache_write": 0, "output": 28_000, "total": 203_000}
    assert data["orchestration"]["claude_tokens_avoided"]["total"] == 0  # the orchestrator is Claude's own work
    assert data["totals"]["claude_tokens_avoided"] == {"input": 200_000, "cache_read": 65_000, "cache_write": 0, "output": 65_000, "total": 330_000}
    # what Claude alone would have used: measured + avoided
    assert stories["01.2"]["claude_tokens_claude_only"] == {"input": 75_000, "cache_read": 61_000, "cache_write": 4_000, "output": 41_900}
    assert data["totals"]["claude_tokens_claude_only"] == {"input": 280_000, "cache_read": 288_000, "cache_write": 9_000, "output": 79_400}

    markdown = report(capsys, project)
    assert ("Claude Tokens Avoided: 330,000 (50.3% of the 656,400 Claude alone would have used): "
            "200,000 input, 65,000 cache read, 65,000 output") in markdown
    table = markdown.split("## Against each baseline")[1].split("## Phases")[0]
    assert "| story | savings vs sonnet-writes (primary) | savings vs haiku-writes | Claude tokens avoided: input | cache read | cache write | output | total |" in table
    # 01.2: Sonnet 576,175 - 187,325 = 388,850 µ$ (67.5%); Haiku 98,925 - 187,325 = -88,400 µ$ (-89.4%)
    assert "| 01.2 | $0.3889 (67.5%) | -$0.0884 (-89.4%) | 65,000 | 25,000 | 0 | 37,000 | 127,000 |" in table
    # 01.3: Sonnet 678,800 - 262,300 = 416,500 µ$ (61.4%); Haiku 213,500 - 262,300 = -48,800 µ$ (-22.9%)
    assert "| 01.3 | $0.4165 (61.4%) | -$0.0488 (-22.9%) | 135,000 | 40,000 | 0 | 28,000 | 203,000 |" in table
    assert "| orchestration / unattributed | $0.0000 (0%) | $0.0000 (0%) | 0 | 0 | 0 | 0 | 0 |" in table
    assert "| **total** | $0.8054 (62.6%) | -$0.1372 (-39.9%) | 200,000 | 65,000 | 0 | 65,000 | 330,000 |" in table

    data = embedded(dashboard(capsys, project, tmp_path / "dashboard.html"))
    assert data["stories"]["avoided_text"] == ["65,000 / 25,000 / 37,000", "135,000 / 40,000 / 28,000"]
    assert data["headline"]["text"]["avoided_total"] == "330,000"
    assert data["headline"]["text"]["baselines"] == [
        ["sonnet-writes", "$1.29", "$0.805", "62.6%"], ["haiku-writes", "$0.344", "-$0.137", "-39.9%"]]
    assert data["primary_baseline"] == "sonnet-writes"


def test_a_free_model_is_priced_at_zero_never_unpriced(capsys, tmp_path):
    project = scripted_run(tmp_path / "project")
    ledger = Ledger(ledger_path(project))
    # 10,000 in (2,000 cached) / 3,000 out on glm-4.7-flash: $0; as Sonnet 8,000 x 2 + 2,000 x 0.1 + 3,000 x 10 = 46,200 µ$
    usage(ledger, "glm", "glm-4.7-flash", "01.2", "P7", 10_000, cached=2_000, out=3_000, clock="10:56")
    ledger.close()
    data = json.loads(report(capsys, project, "--json"))
    assert data["totals"]["unpriced_models"] == [] and data["verdict"] == "APPROVED"
    [flash] = [row for row in data["per_model"] if row["model"] == "glm-4.7-flash"]
    assert flash["cost"]["total_usd"] == 0.0 and flash["price_date"] == "2026-12-02"
    assert data["totals"]["total_usd"] == 0.481225  # unchanged: the call cost nothing
    assert data["totals"]["claude_only_usd"] == 1.332775  # 1,286,575 + 46,200 µ$: it is compared, at $0
    assert data["totals"]["claude_tokens_avoided"]["total"] == 330_000 + 13_000
