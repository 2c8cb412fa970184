"""The ledger's running totals (usage_total) always equal the raw rows summed, whatever writes the
rows: inserts, upgraded copies, attribution, deletes, a change of tiers, a ledger from before the
totals (migrated in place, with a column another branch added)."""

from __future__ import annotations

import random
import sqlite3

from mcp_server.ledger import Ledger, UsageRow, _SCHEMA
from mcp_server.monitor.ledger_sums import LedgerReader, query_groups
from mcp_server.pricing import PriceTable

PRICES = PriceTable.load()


def raw_sums(path, thresholds=(100_000,)):
    bucket = "(" + " + ".join(f"(prompt_tokens > {t})" for t in thresholds) + ")" if thresholds else "0"
    with sqlite3.connect(path) as db:
        return db.execute(
            f"SELECT story, phase, provider, model, {bucket}, substr(ts, 1, 13), session_id, COUNT(*),"
            " SUM(prompt_tokens), SUM(cached_tokens), SUM(cache_write_5m_tokens), SUM(cache_write_1h_tokens),"
            " SUM(completion_tokens), MIN(ts), MAX(ts) FROM usage GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7"
        ).fetchall()


def totals(path):
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT story, phase, provider, model, bucket, hour, session_id, calls, prompt_tokens, cached_tokens,"
            " cache_write_5m_tokens, cache_write_1h_tokens, completion_tokens, first_ts, last_ts"
            " FROM usage_total ORDER BY 1, 2, 3, 4, 5, 6, 7"
        ).fetchall()


def some_rows(count, seed=3, dedup=False):
    rng = random.Random(seed)
    for n in range(count):
        yield UsageRow(
            provider=rng.choice(["glm", "anthropic"]),
            model=rng.choice(["glm-4.7", "claude-haiku-5-5"]),
            story=rng.choice([None, "01.1", "01.2"]),
            phase=rng.choice([None, "P2", "P3"]),
            session_id=rng.choice([None, "s1", "s2"]),
            agent_id=rng.choice(["a1", "a2"]),
            prompt_tokens=rng.randint(1_000, 150_000),
            cached_tokens=rng.randint(0, 900),
            cache_write_5m_tokens=rng.randint(0, 50),
            completion_tokens=rng.randint(1, 5_000),
            dedup_key=f"m{n % 40}" if dedup else None,
            ts=f"2026-09-01T{rng.randint(8, 11):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.000+00:00",
        )


def test_totals_follow_inserts_upgrades_attribution_and_deletes(tmp_path):
    path = tmp_path / "usage.db"
    ledger = Ledger(path)
    ledger.use_tiers(PRICES.thresholds)
    for row in some_rows(120, dedup=True):
        ledger.record(UsageRow(**{**row.__dict__, "dedup_key": None}))
        ledger.record_message(row)  # later copies of a message replace it when larger
    ledger.attribute_unattributed(session_id="s1", agent_id="a1", story="01.3", phase="P4")
    assert totals(path) == raw_sums(path)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM usage WHERE id % 3 = 0")
        db.execute("UPDATE usage SET ts = '2026-09-01T12:00:00.000+00:00', prompt_tokens = 120000 WHERE id % 7 = 0")
    assert totals(path) == raw_sums(path)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM usage")
    assert totals(path) == [] == raw_sums(path)
    ledger.close()


def test_a_change_of_tiers_re_sums_the_totals_once(tmp_path):
    path = tmp_path / "usage.db"
    ledger = Ledger(path)
    for row in some_rows(60):
        ledger.record(row)
    assert totals(path) == raw_sums(path, ())  # no tiers written yet: one bucket
    assert ledger.use_tiers((100_000, 32_000)) is True
    assert ledger.use_tiers((32_000, 100_000)) is False
    assert totals(path) == raw_sums(path, (32_000, 100_000))
    ledger.close()


def test_a_ledger_from_before_the_totals_is_migrated_in_place(tmp_path):
    path = tmp_path / "usage.db"
    with sqlite3.connect(path) as db:  # today's schema without the totals, plus another branch's column
        db.executescript(_SCHEMA + "ALTER TABLE usage ADD COLUMN another_branch TEXT;")
        for row in some_rows(200):
            db.execute(
                "INSERT INTO usage (ts, provider, model, story, phase, session_id, prompt_tokens, cached_tokens,"
                " completion_tokens, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'r1')",
                (row.ts, row.provider, row.model, row.story, row.phase, row.session_id,
                 row.prompt_tokens, row.cached_tokens, row.completion_tokens),
            )
    ledger = Ledger(path)
    ledger.use_tiers(PRICES.thresholds)
    ledger.record(UsageRow(provider="glm", model="glm-4.7", story="01.1", prompt_tokens=5, ts="2026-09-01T09:00:00.000+00:00"))
    assert totals(path) == raw_sums(path)
    ledger.close()
    Ledger(path).close()  # opening it again sums nothing twice
    assert totals(path) == raw_sums(path)


def _groups(path, since=None, until=None, **query):
    reader = LedgerReader(path)
    try:
        return sorted(query_groups(reader, PRICES, since, until, **query), key=repr)
    finally:
        reader.close()


def test_the_monitor_sums_from_the_totals_what_it_sums_from_the_rows(tmp_path):
    fast, slow = tmp_path / "fast.db", tmp_path / "slow.db"
    for path in (fast, slow):
        ledger = Ledger(path)
        for row in some_rows(300, seed=9):
            ledger.record(row)
        if path == fast:
            ledger.use_tiers(PRICES.thresholds)
        ledger.close()
    reader = LedgerReader(fast)
    assert reader.totals_match(PRICES)
    reader.close()
    reader = LedgerReader(slow)
    assert not reader.totals_match(PRICES)  # no tiers written: the rows are summed
    reader.close()
    windows = [
        (None, None),
        ("2026-09-01T09:30:00", None),
        (None, "2026-09-01T10:15:00"),
        ("2026-09-01T08:20:00", "2026-09-01T10:40:00.5"),
        ("2026-09-01T09:10:00", "2026-09-01T09:50:00"),
    ]
    for since, until in windows:
        assert _groups(fast, since, until, split_at="01.2") == _groups(slow, since, until, split_at="01.2")
        for sessions in (None, ["s1"]):
            query = dict(unattributed_only=True, sessions=sessions)
            assert _groups(fast, since, until, **query) == _groups(slow, since, until, **query)
