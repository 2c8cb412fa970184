"""The report's cache of the ledger: the sums are taken again only when a usage row changed.

``usage_version`` in the ledger is bumped by a trigger on every insert, update and delete of a
usage row; the report keeps its query answers for one version (in monitor-cache.json).
"""

from __future__ import annotations

import sqlite3

import pytest

from mcp_server.ledger import Ledger, UsageRow, ledger_path
from mcp_server.monitor import ledger_sums
from tests.test_monitor import project, report_json  # noqa: F401  (the fixture and the helper)


@pytest.fixture
def queries(monkeypatch):
    """The ledger queries that ran (not answered from the cache)."""
    ran: list[str] = []
    real = ledger_sums.LedgerReader._run

    def counting(conn, sql, params):
        ran.append(sql)
        return real(conn, sql, params)

    monkeypatch.setattr(ledger_sums.LedgerReader, "_run", staticmethod(counting))
    return ran


def version(root) -> tuple:
    with sqlite3.connect(ledger_path(root)) as db:
        return db.execute("SELECT ledger, version FROM usage_version").fetchone()


def without_generated_at(data: dict) -> dict:
    return {key: value for key, value in data.items() if key != "generated_at"}


def test_every_change_of_a_usage_row_bumps_the_version(tmp_path):
    ledger = Ledger(ledger_path(tmp_path))
    ledger.record(UsageRow(provider="glm", model="glm-4.7", prompt_tokens=10, completion_tokens=5))
    first = version(tmp_path)
    with sqlite3.connect(ledger_path(tmp_path)) as db:
        db.execute("UPDATE usage SET story = '01.2'")
    second = version(tmp_path)
    with sqlite3.connect(ledger_path(tmp_path)) as db:
        db.execute("DELETE FROM usage")
    third = version(tmp_path)
    assert first[0] == second[0] == third[0] and (first[1], second[1], third[1]) == (1, 2, 3)
    other = Ledger(ledger_path(tmp_path / "other"))
    other.record(UsageRow(provider="glm", model="glm-4.7", prompt_tokens=10))
    assert version(tmp_path / "other")[0] != first[0]  # a new ledger never takes up an old one's numbers


def test_a_report_after_a_report_does_not_sum_the_ledger_again(capsys, project, queries):
    first = report_json(capsys, project)
    assert queries
    queries.clear()
    again = report_json(capsys, project)
    assert queries == [] and without_generated_at(again) == without_generated_at(first)
    queries.clear()
    report_json(capsys, project, "--no-cache")
    assert queries


def test_a_changed_usage_row_is_summed_again(capsys, project, queries):
    first = report_json(capsys, project)
    with sqlite3.connect(ledger_path(project)) as db:
        db.execute("UPDATE usage SET completion_tokens = completion_tokens + 1000000 WHERE id = (SELECT MIN(id) FROM usage)")
    queries.clear()
    again = report_json(capsys, project)
    assert queries and again["totals"] != first["totals"]
    assert again == report_json(capsys, project, "--no-cache") | {"generated_at": again["generated_at"]}


def test_a_subset_report_keeps_its_own_answers(capsys, project, queries):
    every = report_json(capsys, project)
    one = report_json(capsys, project, "--stories", "01.2")
    queries.clear()
    assert report_json(capsys, project, "--stories", "01.2")["totals"] == one["totals"]
    assert report_json(capsys, project)["totals"] == every["totals"] and queries == []


def test_a_ledger_without_the_version_table_is_summed_every_time(capsys, project, queries):
    with sqlite3.connect(ledger_path(project)) as db:
        for change in ("insert", "update", "delete"):
            db.execute(f"DROP TRIGGER usage_version_{change}")
        db.execute("DROP TABLE usage_version")
    first = report_json(capsys, project)
    queries.clear()
    assert without_generated_at(report_json(capsys, project)) == without_generated_at(first) and queries


def test_a_changed_coverage_report_is_read_again(capsys, project):
    first = report_json(capsys, project)
    assert first["per_story"][0]["coverage"]["percent"] == 92.5
    report = project / "reports" / "01.2-coverage.xml"
    report.write_text(report.read_text().replace('lines-covered="185"', 'lines-covered="170"').replace('line-rate="0.925"', 'line-rate="0.85"'))
    again = report_json(capsys, project)
    assert again["per_story"][0]["coverage"]["percent"] == 85.0 and any("now says 85.0%" in w for w in again["warnings"])
    report.write_text("<coverage")
    broken = report_json(capsys, project)
    assert broken["per_story"][0]["coverage"]["read_as"] == "checkpoint" and any("is unreadable" in w for w in broken["warnings"])
    assert report_json(capsys, project)["warnings"] == broken["warnings"]  # the cached error reads the same


def test_the_ledger_summed_in_two_halves_at_once_gives_the_same_groups(project, monkeypatch):
    from mcp_server.pricing import PriceTable

    reader = ledger_sums.LedgerReader(ledger_path(project))
    try:
        whole = ledger_sums.query_groups(reader, PriceTable.load(), None, None)
        halves = ledger_sums.query_groups(reader, PriceTable.load(), None, None, split_at="01.3")
        monkeypatch.setattr(ledger_sums, "_version", lambda conn: [id(conn)])  # the two connections disagree
        one_after_the_other = ledger_sums.query_groups(reader, PriceTable.load(), None, None, split_at="01.3")
    finally:
        reader.close()
    key = lambda g: (g.story or "", g.phase or "", g.provider, g.model, g.bucket, g.hour)  # noqa: E731
    assert sorted(whole, key=key) == sorted(halves, key=key) == sorted(one_after_the_other, key=key)
    assert {g.story for g in halves} >= {"01.2", "01.3", None}
