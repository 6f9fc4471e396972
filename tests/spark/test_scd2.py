"""SCD Type 2 on the real Iceberg MERGE, against the plain-Python model (tests/scd2_model.py);
invariants are checked after every scenario."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dims.dimensions import COLUMN_TYPES
from dims.scd2 import Dimension, SnapshotError, apply_snapshot, ddl
from tests.scd2_model import apply as model_apply
from tests.scd2_model import check_invariants

pytestmark = pytest.mark.spark
T0 = datetime(2026, 1, 5)
DAY = timedelta(days=1)
COLUMNS = ("campaign_id", "name", "advertiser", "budget_type", "budget_amount", "status")


@pytest.fixture
def dimension(spark, namespace):
    dim = Dimension(table=f"lakehouse.{namespace}.dim_campaigns_{uuid.uuid4().hex[:6]}", natural_key="campaign_id",
                    surrogate_key="campaign_key", tracked=("budget_amount", "budget_type", "status"),
                    type1=("name", "advertiser"))
    spark.sql(ddl(dim, COLUMN_TYPES))
    return dim


def campaign(campaign_id, budget=1000.0, status="ACTIVE", budget_type="DAILY", name=None, advertiser="Acme"):
    return {"campaign_id": campaign_id, "name": name or f"Campaign {campaign_id}", "advertiser": advertiser,
            "budget_type": budget_type, "budget_amount": budget, "status": status}


def frame(spark, rows):
    schema = "campaign_id STRING, name STRING, advertiser STRING, budget_type STRING, budget_amount DOUBLE, status STRING"
    return spark.createDataFrame([tuple(r[c] for c in COLUMNS) for r in rows], schema)


def read(spark, dim) -> list[dict]:
    rows = spark.sql(f"SELECT * FROM {dim.table}").collect()
    # Timestamps compared as text in UTC (the session time zone), not as local datetimes.
    text = {r.campaign_key: (r.s, r.e) for r in spark.sql(
        f"SELECT campaign_key, date_format(start_ts, 'yyyy-MM-dd HH:mm:ss') s, "
        f"date_format(end_ts, 'yyyy-MM-dd HH:mm:ss') e FROM {dim.table}").collect()}
    result = []
    for row in rows:
        values = row.asDict()
        start, end = text[values["campaign_key"]]
        values["start_ts"], values["end_ts"] = datetime.fromisoformat(start), datetime.fromisoformat(end)
        result.append(values)
    return sorted(result, key=lambda r: r["campaign_key"])


def run_series(spark, dim, series):
    model = []
    for as_of, rows in series:
        apply_snapshot(spark, dim, frame(spark, rows), as_of)
        model = model_apply(model, rows, as_of, "campaign_id", dim.tracked, dim.type1, "campaign_key")
    actual = read(spark, dim)
    assert actual == sorted(model, key=lambda r: r["campaign_key"])
    check_invariants(actual, "campaign_id", "campaign_key", {r["campaign_id"] for r in series[-1][1]})
    return actual


def test_first_snapshot_opens_one_version_per_campaign(spark, dimension):
    rows = run_series(spark, dimension, [(T0, [campaign("c1"), campaign("c2")])])
    assert [(r["campaign_id"], r["campaign_key"], r["is_current"]) for r in rows] == [("c1", 1, True), ("c2", 2, True)]
    assert all(r["end_ts"] == datetime(9999, 12, 31) and r["start_ts"] == T0 for r in rows)


def test_rerunning_the_same_snapshot_changes_nothing(spark, dimension):
    snapshot = [campaign("c1"), campaign("c2", budget=50.0)]
    first = run_series(spark, dimension, [(T0, snapshot), (T0 + DAY, [campaign("c1", budget=2.0), campaign("c2")])])
    counts = apply_snapshot(spark, dimension, frame(spark, [campaign("c1", budget=2.0), campaign("c2")]), T0 + DAY)
    assert counts == {"new_versions": 0, "closed_missing": 0, "type1_updates": 0}
    assert read(spark, dimension) == first


def test_budget_change_closes_the_version_at_the_as_of_instant(spark, dimension):
    rows = run_series(spark, dimension, [(T0, [campaign("c1")]), (T0 + DAY, [campaign("c1", budget=2500.0)])])
    old, new = rows
    assert old["end_ts"] == new["start_ts"] == T0 + DAY and not old["is_current"] and new["budget_amount"] == 2500.0


def test_change_and_change_back_opens_three_versions(spark, dimension):
    rows = run_series(spark, dimension, [(T0, [campaign("c1", status="ACTIVE")]),
                                         (T0 + DAY, [campaign("c1", status="PAUSED")]),
                                         (T0 + 2 * DAY, [campaign("c1", status="ACTIVE")])])
    assert [r["status"] for r in rows] == ["ACTIVE", "PAUSED", "ACTIVE"] and [r["campaign_key"] for r in rows] == [1, 2, 3]


def test_null_to_value_and_value_to_null_are_changes(spark, dimension):
    rows = run_series(spark, dimension, [(T0, [campaign("c1", budget_type=None)]),
                                         (T0 + DAY, [campaign("c1", budget_type="DAILY")]),
                                         (T0 + 2 * DAY, [campaign("c1", budget_type=None)])])
    assert [r["budget_type"] for r in rows] == [None, "DAILY", None]


def test_type1_attributes_update_every_version_in_place(spark, dimension):
    rows = run_series(spark, dimension, [(T0, [campaign("c1")]), (T0 + DAY, [campaign("c1", budget=5.0)]),
                                         (T0 + 2 * DAY, [campaign("c1", budget=5.0, name="Renamed")])])
    assert len(rows) == 2 and {r["name"] for r in rows} == {"Renamed"}


def test_missing_campaign_is_closed_and_a_return_opens_a_new_version(spark, dimension):
    rows = run_series(spark, dimension, [(T0, [campaign("c1"), campaign("c2")]), (T0 + DAY, [campaign("c1")]),
                                         (T0 + 2 * DAY, [campaign("c1"), campaign("c2")])])
    c2 = [r for r in rows if r["campaign_id"] == "c2"]
    assert [(r["start_ts"], r["end_ts"] == T0 + DAY, r["is_current"]) for r in c2] == [
        (T0, True, False), (T0 + 2 * DAY, False, True)]


def test_several_snapshots_in_one_run_equal_one_per_run(spark, namespace):
    from dims.campaign_scd2_job import run as run_job
    from producers.campaign_feed import snapshots, write_snapshots

    import tempfile
    from pathlib import Path

    series = snapshots(seed=3, count=4, start=T0, interval=DAY, campaigns=20)
    with tempfile.TemporaryDirectory() as directory:
        paths = write_snapshots(Path(directory), series)
        together = Dimension(f"lakehouse.{namespace}.dim_together", "campaign_id", "campaign_key",
                             ("budget_amount", "budget_type", "status"), ("name", "advertiser"))
        apart = Dimension(f"lakehouse.{namespace}.dim_apart", "campaign_id", "campaign_key",
                          ("budget_amount", "budget_type", "status"), ("name", "advertiser"))
        run_job(spark, together, paths)
        for path in paths:
            run_job(spark, apart, [path])
    assert read(spark, together) == read(spark, apart)
    check_invariants(read(spark, apart), "campaign_id", "campaign_key", {r["campaign_id"] for r in series[-1][1]})


def test_older_snapshot_is_rejected_with_a_clear_message(spark, dimension):
    run_series(spark, dimension, [(T0 + DAY, [campaign("c1")])])
    with pytest.raises(SnapshotError, match=r"older than .* latest change .*apply snapshots in time order"):
        apply_snapshot(spark, dimension, frame(spark, [campaign("c1", budget=1.0)]), T0)


def test_a_different_snapshot_at_the_same_instant_is_rejected(spark, dimension):
    run_series(spark, dimension, [(T0, [campaign("c1")])])
    with pytest.raises(SnapshotError, match="same as-of time"):
        apply_snapshot(spark, dimension, frame(spark, [campaign("c1", budget=7.0)]), T0)


def test_duplicate_campaign_in_a_snapshot_is_an_error_naming_it(spark, dimension):
    with pytest.raises(SnapshotError, match="more than once: c2"):
        apply_snapshot(spark, dimension, frame(spark, [campaign("c1"), campaign("c2"), campaign("c2", budget=3.0)]), T0)
    assert read(spark, dimension) == []


VALUES = {"budget_amount": st.sampled_from([100.0, 250.0, None]), "status": st.sampled_from(["ACTIVE", "PAUSED", None]),
          "name": st.sampled_from(["A", "B"])}


@st.composite
def change_sequences(draw):
    series = []
    for index in range(draw(st.integers(1, 4))):
        listed = draw(st.lists(st.sampled_from(["c1", "c2", "c3"]), unique=True, min_size=0, max_size=3))
        rows = [campaign(cid, budget=draw(VALUES["budget_amount"]), status=draw(VALUES["status"]),
                         name=draw(VALUES["name"])) for cid in sorted(listed)]
        series.append((T0 + index * DAY, rows))
    return series


@given(series=change_sequences())
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_change_sequences_match_the_model(spark, namespace, series):
    dim = Dimension(f"lakehouse.{namespace}.dim_{uuid.uuid4().hex[:8]}", "campaign_id", "campaign_key",
                    ("budget_amount", "budget_type", "status"), ("name", "advertiser"))
    spark.sql(ddl(dim, COLUMN_TYPES))
    run_series(spark, dim, series)
