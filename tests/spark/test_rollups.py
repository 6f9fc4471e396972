"""The dashboard rollups (jobs/rollup_job.py) on real Iceberg tables: after every refresh
they equal sums computed here in plain Python over the Gold rows; a refresh recomputes
only the Gold partitions (impression-id days) that changed, replaces their groups (a group
that no longer exists disappears), does nothing when Gold has not moved, and starts over
from all of Gold when the commits since the snapshot it last reflected have been expired."""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone

import pytest

from conf.tables import Tables, ensure_tables
from jobs.rollup_job import refresh_all
from tests.attribution_helpers import drop_namespaces

pytestmark = pytest.mark.spark
DAYS = (date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7))
PERFORMANCE_KEY = ("impression_id_day", "day", "campaign_id", "creative_id", "geo_country", "platform")


@pytest.fixture
def tables(spark):
    tables = Tables(f"rollup{uuid.uuid4().hex[:6]}_")
    ensure_tables(spark, tables)
    yield tables
    drop_namespaces(spark, tables)


def touch(event_type: str, at: datetime, disposition: str, number: int) -> dict:
    return {"event_id": f"{event_type[:3].lower()}-{number}", "event_type": event_type, "event_time": at,
            "arrival_time": at + timedelta(seconds=30), "kafka_partition": 0, "kafka_offset": number,
            "campaign_id": None, "creative_id": None, "user_id": None, "geo_country": None, "platform": None,
            "bid_price": None, "conversion_value": None, "disposition": disposition}


def gold_row(number: int, id_day: date | None) -> dict:
    """A Gold row of impression `number` whose id names `id_day` (None: an id without a day);
    its impression happened that day (or, for the null day, on one of DAYS)."""
    day = id_day or DAYS[number % len(DAYS)]
    impression_time = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(minutes=7 * number % 1440)
    clicked, converted = number % 4 == 0, number % 8 == 0
    conversion_time = impression_time + timedelta(seconds=90 + number) if converted else None
    touches = [touch("IMPRESSION", impression_time, "IMPRESSION", number)]
    if number % 5 == 0:
        touches.append(touch("IMPRESSION", impression_time, "DUPLICATE", number + 100_000))
    if number % 7 == 0:
        touches.append(touch("CONVERSION", impression_time + timedelta(hours=2), "NO_CLICK", number + 200_000))
    return {
        "impression_id": f"imp-{number}", "impression_id_day": id_day, "campaign_id": f"camp-{number // 3 % 3}",
        "creative_id": f"cr-{number // 3 % 3}-{number // 9 % 2}", "user_id": f"u-{number}",
        "geo_country": ("US", "DE")[number // 18 % 2], "platform": ("IOS", "WEB", "ANDROID")[number // 36 % 3],
        "is_clicked": clicked, "is_converted": converted,
        "impression_time": impression_time, "click_time": impression_time + timedelta(seconds=20) if clicked else None,
        "conversion_time": conversion_time, "cost": 0.001 * (number % 13 + 1), "revenue": 12.5 if converted else 0.0,
        "eligible": number % 11 != 0, "is_late": False, "late_by_ms": None,
        "revenue_out_of_window": 3.0 if number % 7 == 0 else 0.0, "last_updated_ts": impression_time,
        "converted_event_id": f"con-{number}" if converted else None, "touches": touches,
    }


def append_gold(spark, tables: Tables, rows: list[dict]) -> None:
    spark.createDataFrame(rows, spark.table(tables.gold).schema).writeTo(tables.gold).append()


def expected_performance(rows: list[dict]) -> dict[tuple, dict]:
    groups = defaultdict(list)
    for row in rows:
        if row["impression_time"] is not None:
            groups[(row["impression_id_day"], row["impression_time"].date(), row["campaign_id"], row["creative_id"],
                    row["geo_country"], row["platform"])].append(row)
    return {key: {
        "impressions": len(members),
        "clicks": sum(r["is_clicked"] for r in members),
        "conversions": sum(r["is_converted"] for r in members),
        "cost": sum(r["cost"] for r in members),
        "revenue": sum(r["revenue"] for r in members),
        "attribution_lags": sum(r["is_converted"] for r in members),
        "attribution_lag_seconds_sum": sum((r["conversion_time"] - r["impression_time"]).total_seconds()
                                           for r in members if r["is_converted"]) or None,
        "revenue_out_of_window": sum(r["revenue_out_of_window"] for r in members),
        "ineligible_impressions": sum(not r["eligible"] for r in members),
        "last_impression_time": max(r["impression_time"] for r in members),
    } for key, members in groups.items()}


def expected_dispositions(rows: list[dict]) -> dict[tuple, int]:
    counts = defaultdict(int)
    for row in rows:
        for t in row["touches"]:
            if t["disposition"] not in ("ATTRIBUTED", "CLICK", "IMPRESSION"):
                counts[(row["impression_id_day"], t["arrival_time"].replace(minute=0, second=0, microsecond=0),
                        t["disposition"])] += 1
    return dict(counts)


def assert_rollups_equal(spark, tables: Tables, rows: list[dict]) -> None:
    performance = {tuple(r[k] for k in PERFORMANCE_KEY): r.asDict()
                   for r in spark.table(tables.performance_rollup).collect()}
    want = expected_performance(rows)
    assert set(performance) == set(want)
    for key, sums in want.items():
        got = performance[key]
        for column, value in sums.items():
            if column == "last_impression_time":
                assert got[column].replace(tzinfo=timezone.utc) == value, (key, column)
            elif isinstance(value, float):
                assert math.isclose(got[column], value, rel_tol=1e-12), (key, column, got[column], value)
            else:
                assert got[column] == value, (key, column)
    dispositions = {(r.impression_id_day, r.hour.replace(tzinfo=timezone.utc), r.reason): r.events
                    for r in spark.table(tables.disposition_rollup).collect()}
    assert dispositions == expected_dispositions(rows)


def snapshot_count(spark, table: str) -> int:
    return spark.sql(f"SELECT count(*) AS n FROM {table}.snapshots").first().n


def test_refresh_recomputes_only_changed_days_and_starts_over_when_its_snapshot_expired(spark, tables):
    rows = [gold_row(n, DAYS[n % 3] if n % 10 else None) for n in range(240)]
    append_gold(spark, tables, rows)

    first = refresh_all(spark, tables)
    assert [r["days"] for r in first] == [None, None]  # nothing reflected yet: all of Gold
    assert first[0]["rows"] == len(expected_performance(rows)) > 20
    assert_rollups_equal(spark, tables, rows)

    snapshots = snapshot_count(spark, tables.performance_rollup)
    idle = refresh_all(spark, tables)
    assert [(r["days"], r["rows"]) for r in idle] == [([], 0), ([], 0)]
    assert snapshot_count(spark, tables.performance_rollup) == snapshots  # no empty commit

    # One day changes in place (merge-on-read UPDATE: a campaign's rows move to another
    # campaign, so their old groups must disappear); the id-less partition gets new rows.
    spark.sql(f"UPDATE {tables.gold} SET campaign_id = 'camp-moved', cost = cost * 2 "
              f"WHERE impression_id_day = DATE '{DAYS[1]}' AND campaign_id = 'camp-1'")
    for row in rows:
        if row["impression_id_day"] == DAYS[1] and row["campaign_id"] == "camp-1":
            row["campaign_id"], row["cost"] = "camp-moved", row["cost"] * 2
    added = [gold_row(n, None) for n in range(1000, 1030)]
    append_gold(spark, tables, added)
    rows += added
    second = refresh_all(spark, tables)
    assert [set(r["days"]) for r in second] == [{DAYS[1], None}, {DAYS[1], None}]
    assert_rollups_equal(spark, tables, rows)

    # Two more commits, then every Gold snapshot but the newest expires: the commits since
    # the one the rollups reflect can no longer be listed, so the next refresh starts over.
    for first in (2000, 3000):
        added = [gold_row(n, DAYS[2]) for n in range(first, first + 10)]
        append_gold(spark, tables, added)
        rows += added
    spark.sql(f"CALL lakehouse.system.expire_snapshots(table => '{tables.gold}', "
              f"older_than => TIMESTAMP '{datetime.now(timezone.utc) + timedelta(seconds=5):%Y-%m-%d %H:%M:%S}', "
              "retain_last => 1)")
    third = refresh_all(spark, tables)
    assert [r["days"] for r in third] == [None, None]
    assert_rollups_equal(spark, tables, rows)


def test_refresh_of_a_gold_never_written_does_nothing(spark, tables):
    assert [(r["gold_snapshot"], r["rows"]) for r in refresh_all(spark, tables)] == [(None, 0), (None, 0)]
    assert spark.table(tables.performance_rollup).count() == 0
