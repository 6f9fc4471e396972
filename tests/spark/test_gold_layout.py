"""Gold's layout: partitioned by the day in the impression id alone. A Gold made with the
earlier bucket(8, impression_id) field is evolved in place when the job starts
(conf.tables.ensure_tables): its rows are kept, later batches MERGE into both layouts, and
compaction moves the old files to the new one, Gold equal to the oracle throughout."""

from __future__ import annotations

import json
import uuid

import pytest

from conf.tables import Tables, drop_gold_buckets, ensure_tables, gold_ddl, iceberg_table
from engine.compaction import active_gold_compaction_sql
from tests.attribution_helpers import (
    T0,
    assert_gold_matches,
    batch_function,
    drop_namespaces,
    event,
    gold_rows,
    kafka_frame,
    record,
    uuid7_id,
)
from tests.oracle import attribute

pytestmark = pytest.mark.spark

BUCKETED = "PARTITIONED BY (impression_id_day, bucket(8, impression_id))"


def impressions(first: int, count: int, offset: int) -> list[dict]:
    """Impressions number `first`.. a minute apart, at Kafka offsets from `offset`."""
    records = []
    for k, n in enumerate(range(first, first + count)):
        impression_id = uuid7_id(n, n * 60)
        records.append(record(event("IMPRESSION", f"i{n}", n * 60, impression_id=impression_id), n * 60 + 1,
                              offset + k, key=impression_id))
    return records


def clicks(of: list[dict], offset: int) -> list[dict]:
    """A click on every other impression of `of`, an hour later."""
    out = []
    for k, impression in enumerate(of[::2]):
        value = json.loads(impression["value"])
        at = value["event_timestamp"] - T0 + 3_600
        out.append(record(event("CLICK", f"c-{value['event_id']}", at, impression_id=value["impression_id"]),
                          at + 1, offset + k, key=impression["key"]))
    return out


def gold_equals_oracle(spark, tables, records) -> None:
    spark.sql(f"REFRESH TABLE {tables.gold}")
    assert_gold_matches(gold_rows(spark, f"SELECT * FROM {tables.gold}"), attribute(records).gold)


def test_a_bucketed_gold_is_evolved_in_place_and_merged_into(spark):
    tables = Tables(f"layout{uuid.uuid4().hex[:8]}_")
    try:
        for namespace in tables.namespaces:
            spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {namespace}")
        ddl = gold_ddl(tables)
        assert "PARTITIONED BY (impression_id_day)\n" in ddl
        spark.sql(ddl.replace("PARTITIONED BY (impression_id_day)", BUCKETED))
        old = impressions(0, 40, 0)
        batch_function(tables, "layout", sinks=("gold",))(kafka_frame(spark, old), 0)
        spark.sql(f"REFRESH TABLE {tables.gold}")
        assert spark.sql(f"SELECT count(DISTINCT partition) FROM {tables.gold}.files").first()[0] > 1

        ensure_tables(spark, tables)
        assert [f.name() for f in iceberg_table(spark, tables.gold).spec().fields()] == ["impression_id_day"]
        assert drop_gold_buckets(spark, tables.gold) == []  # once evolved, a restart changes nothing
        gold_equals_oracle(spark, tables, old)

        # Clicks on old rows (in bucketed files) and new impressions, in one batch.
        later = clicks(old, 40) + impressions(40, 10, 60)
        batch_function(tables, "layout")(kafka_frame(spark, later), 1)
        gold_equals_oracle(spark, tables, old + later)
        new_spec = iceberg_table(spark, tables.gold).spec().specId()
        specs = {row.spec_id: row.files for row in spark.sql(
            f"SELECT spec_id, count(*) AS files FROM {tables.gold}.data_files GROUP BY spec_id").collect()}
        assert specs.get(new_spec) == 1, specs  # one file for the batch's one day, not eight

        days = [row.impression_id_day for row in spark.sql(
            f"SELECT DISTINCT impression_id_day FROM {tables.gold}").collect()]
        spark.sql(active_gold_compaction_sql(tables.gold, days))
        spark.sql(f"REFRESH TABLE {tables.gold}")
        assert {row.spec_id for row in spark.sql(f"SELECT spec_id FROM {tables.gold}.data_files").collect()} \
            == {new_spec}
        gold_equals_oracle(spark, tables, old + later)
    finally:
        drop_namespaces(spark, tables)
