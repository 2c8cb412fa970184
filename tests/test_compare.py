"""hybrid report --compare A B: a Claude-only run (A, built here) against the hybrid scripted run
(B, tests/test_monitor_builders.scripted_run, priced by hand in tests/test_monitor.py), every
figure worked out by hand below. µ$ = micro-dollars.

Side A, Claude only (prices in tests/test_monitor.py's docstring). Per story, 01.2 and 01.3 alike:
  P1 sonnet 10,000 (6,000 read, 2,000 5m) / 1,000:       19,600
  P2 haiku 40,000 (30,000 read, 5,000 5m) / 6,000: 5,000x0.1 + 30,000x0.01 + 5,000x0.125 + 6,000x0.5 = 4,425
  P3 haiku 60,000 (50,000 read) / 10,000: 1,000 + 500 + 5,000 = 6,500
  P5 sonnet 20,000 (15,000 read, 1,000 1h) / 2,000:      33,500
  P6 sonnet 12,000 (10,000 read) / 1,500:                20,000
  P7 haiku 10,000 / 5,000: 1,000 + 2,500 = 3,500
  story 87,525 (all Claude); tokens: uncached 33,000, reads 111,000, writes 8,000, output 25,500
  orchestration: opus 5,000 (4,000 read, 1,000 5m) / 500: 15,800; uncached 0
  total 2 x 87,525 + 15,800 = 190,850; uncached 66,000, reads 226,000, writes 17,000, output 51,500
Side B (the scripted run): total 481,225 (Claude 230,075, GLM 251,150); 01.2 187,325; 01.3 262,300
  Claude tokens: 01.2 uncached 10,000, reads 36,000, writes 4,000, output 4,900
                 01.3 uncached 70,000, reads 179,000, writes 3,000, output 8,500
                 orchestration uncached 0, reads 8,000, writes 2,000, output 1,000
                 total uncached 80,000, reads 223,000, writes 9,000, output 14,400
  GLM tokens:    01.2 4 requests, uncached 65,000, cached 25,000, output 37,000
                 01.3 4 requests, uncached 135,000, cached 40,000, output 28,000
  Estimated Claude-only (tests/test_monitor.py): "haiku-writes" (Haiku for the code phases)
  344,025 (01.2 98,925, 01.3 213,500); "sonnet-writes" (the primary) 1,286,575 (01.2 73,675 + 502,500 = 576,175,
  01.3 124,800 + 554,000 = 678,800).
The estimate against A's measured 190,850: haiku-writes +153,175 (+80.26%), sonnet-writes +1,095,725
(+574.13%); 01.2 against 87,525: +11,400 (+13.02%) and +488,650 (+558.30%); 01.3: +125,975
(+143.93%) and +591,275 (+675.55%).
Time: A 01.2 10:00-11:04 3,840 s, 01.3 10:00-11:10 4,200 s, wall 4,200 s; B 01.2 10:00-10:58
3,480 s, 01.3 10:02-11:30 5,280 s, wall 10:00-11:30 5,400 s.
Quality: A ACs 2/3 + 2/2 = 80%, coverage (recorded) 90 and 80, mean 85; reviews 8 and 9, mean 8.5,
1 round each; fix rounds from the P3 summaries 1 and 2. B ACs 5/5, coverage 92.5 and 85, mean
88.75; reviews 9 and 8.5, mean 8.75, rounds 1 and 2; fix rounds from the ledger: 01.2 2 implement
requests - 1 P3 round = 1, 01.3 2 - 2 = 0.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from mcp_server.ledger import Ledger, ledger_path
from mcp_server.ledger_test_runs import CallTests
from mcp_server.monitor import main

from tests.test_monitor_builders import finished, review, scripted_run, usage, write_checkpoint


def claude_only_run(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_checkpoint(root, _with_summary(finished(
        "01.2", title="User Roles", acs=3, qa=["pass", "pass", "fail"], coverage=(90.0, "reports/gone.xml"),
        current_review=review(8, when="10:50"),
        times={"P1": ("10:00", "10:06"), "P2": ("10:06", "10:16"), "P3": ("10:16", "10:40"), "P5": ("10:40", "10:50"),
               "P6": ("10:50", "10:58"), "P7": ("10:58", "11:04")},
    ), "3 files, tests passed after 1 fix round"))
    write_checkpoint(root, _with_summary(finished(
        "01.3", title="Permissions", acs=2, qa=["pass", "pass"], coverage=(80.0, "reports/gone.info"),
        current_review=review(9, when="10:55"),
        times={"P1": ("10:00", "10:07"), "P2": ("10:07", "10:20"), "P3": ("10:20", "10:45"), "P5": ("10:45", "10:55"),
               "P6": ("10:55", "11:05"), "P7": ("11:05", "11:10")},
    ), "2 files, tests passed after 2 fix rounds"))
    ledger = Ledger(ledger_path(root))
    sonnet, haiku, opus = "claude-sonnet-5-5", "claude-haiku-5-5", "claude-opus-5-5"
    for story in ("01.2", "01.3"):
        usage(ledger, "anthropic", sonnet, story, "P1", 10_000, cached=6_000, w5m=2_000, out=1_000, clock="10:05")
        usage(ledger, "anthropic", haiku, story, "P2", 40_000, cached=30_000, w5m=5_000, out=6_000, clock="10:10")
        usage(ledger, "anthropic", haiku, story, "P3", 60_000, cached=50_000, out=10_000, clock="10:30")
        usage(ledger, "anthropic", sonnet, story, "P5", 20_000, cached=15_000, w1h=1_000, out=2_000, clock="10:45")
        usage(ledger, "anthropic", sonnet, story, "P6", 12_000, cached=10_000, out=1_500, clock="10:55")
        usage(ledger, "anthropic", haiku, story, "P7", 10_000, out=5_000, clock="11:02")
    usage(ledger, "anthropic", opus, None, None, 5_000, cached=4_000, w5m=1_000, out=500, clock="10:01")
    ledger.close()
    return root


def _with_summary(data: dict, summary: str) -> dict:
    data["phases"]["P3"]["summary"] = summary
    return data


def hybrid_run(root: Path) -> Path:
    """The scripted run, its GLM P3 calls marked as `implement` (as the MCP server records them)."""
    scripted_run(root)
    with sqlite3.connect(ledger_path(root)) as conn:
        conn.execute("UPDATE usage SET tool = 'implement' WHERE provider = 'glm' AND phase = 'P3'")
    conn.close()
    return root


@pytest.fixture
def sides(tmp_path, monkeypatch):
    monkeypatch.delenv("CLAUDE_PROJECT_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    return claude_only_run(tmp_path / "claude"), hybrid_run(tmp_path / "hybrid")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def compare_json(capsys, a: Path, b: Path, *extra: str) -> dict:
    code, out, err = run(capsys, "--compare", str(a), str(b), "--json", *extra)
    assert code == 0, err
    return json.loads(out)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file, SQLite's -wal and -shm aside (a reader of a WAL ledger opens them; the
    ledger's content is usage.db's bytes, compared here)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


def test_totals_side_by_side_by_hand(capsys, sides):
    before = [snapshot(side) for side in sides]
    data = compare_json(capsys, *sides)
    total = data["total"]
    assert total["cost_usd"] == {"unit": "usd", "a": 0.19085, "b": 0.481225, "diff": 0.290375, "ratio": round(481_225 / 190_850, 4)}
    assert (total["claude_usd"]["a"], total["claude_usd"]["b"], total["glm_usd"]["a"], total["glm_usd"]["b"]) == (0.19085, 0.230075, 0.0, 0.25115)
    assert {key: (total[key]["a"], total[key]["b"], total[key]["diff"]) for key in
            ("claude_input", "claude_cache_read", "claude_cache_write", "claude_output")} == {
        "claude_input": (66_000, 80_000, 14_000), "claude_cache_read": (226_000, 223_000, -3_000),
        "claude_cache_write": (17_000, 9_000, -8_000), "claude_output": (51_500, 14_400, -37_100)}
    assert {key: (total[key]["a"], total[key]["b"], total[key]["ratio"]) for key in ("glm_requests", "glm_input", "glm_cached", "glm_output")} == {
        "glm_requests": (0, 8, None), "glm_input": (0, 200_000, None), "glm_cached": (0, 65_000, None), "glm_output": (0, 65_000, None)}
    assert (total["wall_s"]["a"], total["wall_s"]["b"], total["wall_s"]["diff"], total["wall_s"]["ratio"]) == (4_200, 5_400, 1_200, round(5_400 / 4_200, 4))
    assert (total["ac_pass_rate"]["a"], total["ac_pass_rate"]["b"], total["ac_pass_rate"]["ratio"]) == (80.0, 100.0, 1.25)
    assert (total["coverage"]["a"], total["coverage"]["b"], total["coverage"]["diff"]) == (85.0, 88.75, 3.75)
    assert (total["review_score"]["a"], total["review_score"]["b"], total["review_score"]["diff"]) == (8.5, 8.75, 0.25)
    assert (total["review_rounds"]["a"], total["review_rounds"]["b"], total["fix_rounds"]["a"], total["fix_rounds"]["b"]) == (2, 3, 3, 1)
    assert data["sides"]["A"]["engine"] == "claude" and data["sides"]["B"]["engine"] == "hybrid"
    assert data["stories"] == ["01.2", "01.3"] and data["only_in"] == {"A": [], "B": []}
    assert [snapshot(side) for side in sides] == before  # read-only: no cache, no ledger change


def test_per_story_by_hand(capsys, sides):
    data = compare_json(capsys, *sides)
    story = {block["story"]: block for block in data["per_story"]}
    assert story["01.2"]["title"] == "User Roles"
    assert story["01.2"]["cost_usd"] == {"unit": "usd", "a": 0.087525, "b": 0.187325, "diff": 0.0998, "ratio": round(187_325 / 87_525, 4)}
    assert story["01.3"]["cost_usd"]["b"] == 0.2623 and story["01.3"]["glm_usd"]["b"] == 0.1375
    assert [story["01.3"][key]["b"] for key in ("claude_input", "claude_cache_read", "claude_cache_write", "claude_output")] == [70_000, 179_000, 3_000, 8_500]
    assert [story["01.2"][key]["b"] for key in ("glm_requests", "glm_input", "glm_cached", "glm_output")] == [4, 65_000, 25_000, 37_000]
    assert [story["01.2"][key]["a"] for key in ("claude_input", "claude_cache_read", "claude_cache_write", "claude_output")] == [33_000, 111_000, 8_000, 25_500]
    assert (story["01.2"]["wall_s"]["a"], story["01.2"]["wall_s"]["b"], story["01.3"]["wall_s"]["b"]) == (3_840, 3_480, 5_280)
    assert (story["01.2"]["ac_pass_rate"]["a"], story["01.2"]["ac_pass_rate"]["b"]) == (66.67, 100.0)
    assert (story["01.3"]["review_score"]["diff"], story["01.3"]["review_rounds"]["b"]) == (-0.5, 2)
    assert [(story[s]["fix_rounds"]["a"], story[s]["fix_rounds"]["b"]) for s in ("01.2", "01.3")] == [(1, 1), (2, 0)]
    assert story["01.3"]["fix_rounds"]["ratio"] == 0.0


def test_the_estimate_next_to_the_measured_claude_only_cost(capsys, sides):
    estimate = compare_json(capsys, *sides)["estimate"]
    assert estimate["hybrid_side"] == "B" and estimate["missing"] is None
    rows = {(row["baseline"], row["story"]): (row["estimated_usd"], row["measured_usd"], row["off_usd"], row["off_pct"]) for row in estimate["rows"]}
    assert rows == {
        ("haiku-writes", None): (0.344025, 0.19085, 0.153175, 80.26),
        ("haiku-writes", "01.2"): (0.098925, 0.087525, 0.0114, 13.02),
        ("haiku-writes", "01.3"): (0.2135, 0.087525, 0.125975, 143.93),
        ("sonnet-writes", None): (1.286575, 0.19085, 1.095725, 574.13),
        ("sonnet-writes", "01.2"): (0.576175, 0.087525, 0.48865, 558.3),
        ("sonnet-writes", "01.3"): (0.6788, 0.087525, 0.591275, 675.55),
    }


def test_sides_swapped_swap_the_figures(capsys, sides):
    data = compare_json(capsys, sides[1], sides[0])
    assert (data["total"]["cost_usd"]["a"], data["total"]["cost_usd"]["diff"]) == (0.481225, -0.290375)
    assert data["estimate"]["hybrid_side"] == "A"
    assert data["estimate"]["rows"][0]["measured_usd"] == 0.19085


def test_markdown_shows_both_sides_and_the_estimate(capsys, sides):
    code, out, err = run(capsys, "--compare", str(sides[0]), str(sides[1]), "--note", "simulated")
    assert code == 0, err
    assert "_simulated_" in out
    assert "| measured cost | $0.1909 | $0.4812 | +$0.2904 | ×2.52 |" in out
    assert "| Claude output | 51,500 | 14,400 | -37,100 | ×0.28 |" in out
    assert "| **total** | sonnet-writes | $1.2866 | $0.1909 | +$1.0957 | +574.1% |" in out
    assert "| **total** | haiku-writes | $0.3440 | $0.1909 | +$0.1532 | +80.3% |" in out
    assert "Claude only (no GLM request)" in out and "hybrid (8 GLM requests)" in out
    assert "### 01.3 Permissions" in out


def test_hybrid_report_compare_is_the_same_command(capsys, sides):
    from mcp_server import cli as hybrid_cli

    code = hybrid_cli.main(["report", "--compare", str(sides[0]), str(sides[1]), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["total"]["cost_usd"]["b"] == 0.481225


def test_stories_narrow_and_only_in_one_side_is_named(capsys, sides):
    a, b = sides
    write_checkpoint(b, finished("01.9", times={"P1": ("10:00", "10:05")}))
    data = compare_json(capsys, a, b)
    assert data["stories"] == ["01.2", "01.3"] and data["only_in"] == {"A": [], "B": ["01.9"]}
    assert data["per_story"][0]["cost_usd"]["b"] == 0.187325
    data = compare_json(capsys, a, b, "--stories", "01.3")
    assert data["stories"] == ["01.3"]
    assert data["per_story"][0]["cost_usd"]["b"] == 0.2623


# --- errors: one line, the exit code of docs/cli.md, nothing changed -----------------------------


def test_a_missing_folder_is_a_bad_argument(capsys, sides, tmp_path):
    code, out, err = run(capsys, "--compare", str(tmp_path / "nowhere"), str(sides[1]))
    assert (code, out) == (2, "")
    assert err == f"hybrid-monitor: A: no such folder: {tmp_path / 'nowhere'}\n"


def test_no_ledger_no_checkpoints_no_common_story(capsys, sides, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, "--compare", str(sides[0]), str(empty))
    assert code == 1 and err.startswith("hybrid-monitor: B: no usage ledger at ") and err.count("\n") == 1
    ledger = Ledger(ledger_path(empty))
    ledger.rows()  # the ledger file exists, empty
    ledger.close()
    code, _, err = run(capsys, "--compare", str(sides[0]), str(empty))
    assert code == 1 and "B: no checkpoints under" in err and err.count("\n") == 1
    write_checkpoint(empty, finished("02.1", times={"P1": ("10:00", "10:05")}))
    code, _, err = run(capsys, "--compare", str(sides[0]), str(empty))
    assert (code, err) == (1, "hybrid-monitor: no common story: A has 01.2, 01.3, B has 02.1\n")


def test_a_corrupt_ledger_is_named_and_left_as_it_is(capsys, sides):
    path = ledger_path(sides[1])
    for extra in ("-wal", "-shm"):
        Path(f"{path}{extra}").unlink(missing_ok=True)
    path.write_bytes(b"this is not a database" * 100)
    before = snapshot(sides[1])
    code, out, err = run(capsys, "--compare", str(sides[0]), str(sides[1]))
    assert (code, out) == (1, "")
    assert err.startswith(f"hybrid-monitor: B: the usage ledger {path} cannot be read: ") and err.count("\n") == 1
    assert snapshot(sides[1]) == before


def test_bad_arguments_exit_2(capsys, sides):
    a, b = map(str, sides)
    for argv, message in [
        ((a, a), "A and B are the same"),
        ((a, b, "--stories", "../x"), "story id"),
        ((a, b, "--action", "dashboard"), "--compare makes a report only"),
        ((a, b, "--since", "2026-11-25"), "--compare makes a report only"),
        ((a, f"{b}@bad id"), "the run id after '@'"),
    ]:
        code, out, err = run(capsys, "--compare", *argv[:2], *argv[2:])
        assert (code, out) == (2, ""), argv
        assert message in err and err.count("\n") == 1, err


# --- run ids ----------------------------------------------------------------------------------------


def _without_run_ids(path: Path) -> None:
    """The ledger as written before run ids: no run_id column (nor an index on it)."""
    with sqlite3.connect(path) as conn:
        if any(column[1] == "run_id" for column in conn.execute("PRAGMA table_info(usage)")):
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '%run_id%'").fetchall():
                conn.execute(f"DROP INDEX {name}")
            conn.execute("ALTER TABLE usage DROP COLUMN run_id")
    conn.close()


def _with_run_ids(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        if not any(column[1] == "run_id" for column in conn.execute("PRAGMA table_info(usage)")):
            conn.execute("ALTER TABLE usage ADD COLUMN run_id TEXT")
    conn.close()


def test_a_run_id_on_a_ledger_without_run_ids_is_refused(capsys, sides):
    _without_run_ids(ledger_path(sides[1]))
    code, _, err = run(capsys, "--compare", str(sides[0]), f"{sides[1]}@r1")
    assert code == 1
    assert err == f"hybrid-monitor: B: the ledger {ledger_path(sides[1])} records no run ids, so @r1 cannot narrow it; compare the whole folder\n"


def test_a_run_id_narrows_a_side_to_that_run(capsys, sides):
    """Run ids as the pilot will record them (a run_id column): B's ledger gets a second, later
    run of 01.2 (run r2, one Sonnet call: 2,000 x 2.00 + 1,000 x 10 = 14,000 µ$)."""
    a, b = sides
    path = ledger_path(b)
    _with_run_ids(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE usage SET run_id = 'r1'")
    conn.close()
    ledger = Ledger(path)
    usage(ledger, "anthropic", "claude-sonnet-5-5", "01.2", "P5", 2_000, out=1_000, clock="15:00")
    ledger.close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE usage SET run_id = 'r2' WHERE run_id IS NULL")
    conn.close()
    whole = compare_json(capsys, a, b)["total"]["cost_usd"]["b"]
    assert whole == 0.495225  # 481,225 + 14,000
    data = compare_json(capsys, a, f"{b}@r1")
    assert data["total"]["cost_usd"]["b"] == 0.481225 and data["sides"]["B"]["run"] == "r1"
    data = compare_json(capsys, a, f"{b}@r2")
    assert data["stories"] == ["01.2"] and data["per_story"][0]["cost_usd"]["b"] == 0.014
    code, _, err = run(capsys, "--compare", str(a), f"{b}@r9")
    assert (code, err) == (1, f"hybrid-monitor: B: no run r9 in {path}; its latest runs: r2, r1\n")


def test_a_locked_ledger_is_one_line_with_exit_1(capsys, sides, monkeypatch):
    from tests.support import ledger_locked

    monkeypatch.setenv("HYBRID_LEDGER_TIMEOUT_S", "0.2")
    with ledger_locked(ledger_path(sides[0])):
        code, out, err = run(capsys, "--compare", str(sides[0]), str(sides[1]))
    assert (code, out) == (1, "")
    assert err.startswith("hybrid-monitor: A: the usage ledger ") and "locked" in err and err.count("\n") == 1, err


def _record_runs(root: Path, *runs: tuple[str, str]) -> None:
    """The pilot's run records (the `run` table), as a ledger with run ids has them."""
    with sqlite3.connect(ledger_path(root)) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS run (id TEXT PRIMARY KEY, engine TEXT NOT NULL, stories TEXT NOT NULL,"
                     " session_id TEXT, started_at TEXT NOT NULL)")
        conn.executemany("INSERT INTO run VALUES (?, ?, '01.2,01.3', NULL, '2026-11-25T10:00:00.000+00:00')", runs)
    conn.close()


def test_the_engine_the_pilot_recorded_is_shown_and_checked(capsys, sides):
    a, b = sides
    _record_runs(a, ("r1", "claude"))
    _record_runs(b, ("r2", "claude"))  # a run that says engine=claude, yet its ledger has GLM rows
    data = compare_json(capsys, a, b)
    assert (data["sides"]["A"]["engine_recorded"], data["sides"]["A"]["engine_warning"]) == ("claude", None)
    assert data["sides"]["B"]["engine"] == "claude"
    assert data["sides"]["B"]["engine_warning"] == "it ran engine=claude yet made 8 GLM request(s): not a Claude-only measurement"
    code, out, _ = run(capsys, "--compare", str(a), str(b))
    assert "- **A**: " in out and "Claude only (engine=claude, no GLM request)" in out
    assert "- B: it ran engine=claude yet made 8 GLM request(s)" in out


def test_output_writes_the_comparison_to_a_file(capsys, sides, tmp_path):
    target = tmp_path / "out" / "compare.json"
    code, out, err = run(capsys, "--compare", str(sides[0]), str(sides[1]), "--json", "--output", str(target))
    assert (code, out, err) == (0, "", f"report: {target}\n")
    assert json.loads(target.read_text())["total"]["cost_usd"]["a"] == 0.19085


def test_fix_rounds_recorded_as_the_tests_ran_win_over_the_request_count(capsys, sides):
    """B's ledger counts 1 fix round for 01.2 and 0 for 01.3 from its requests; the test_run
    records (one row per tested call) say 2 + 1 = 3 and 0, in run r1; a row of run r2 counts only
    when the whole folder is compared."""
    a, b = sides
    ledger = Ledger(ledger_path(b))
    for story, rounds, run_id in (("01.2", 2, "r1"), ("01.2", 1, "r1"), ("01.3", 0, "r1"), ("01.3", 4, "r2")):
        ledger.record_test_run(CallTests(story, "P3", "implement", "glm-4.7", rounds == 0, rounds, True, run_id=run_id))
    ledger.close()
    story = {block["story"]: block for block in compare_json(capsys, a, b)["per_story"]}
    assert (story["01.2"]["fix_rounds"]["b"], story["01.3"]["fix_rounds"]["b"]) == (3, 4)
    with sqlite3.connect(ledger_path(b)) as conn:
        conn.execute("UPDATE usage SET run_id = 'r1'")
    conn.close()
    story = {block["story"]: block for block in compare_json(capsys, a, f"{b}@r1")["per_story"]}
    assert (story["01.2"]["fix_rounds"]["b"], story["01.3"]["fix_rounds"]["b"]) == (3, 0)
