"""Wrong Kafka keys are accepted (Gold keys on the value's impression_id) and counted per
hour on the ops dashboard: the Trino view ops.kafka_keys_hourly over Bronze."""

from __future__ import annotations

import uuid

import pytest

from conf.tables import AttributionRules, Tables, ensure_tables
from dashboards.trino_views import select_sql
from engine.attribution_batch import AttributionBatch
from tests.attribution_helpers import drop_namespaces, event, kafka_frame, record

pytestmark = pytest.mark.stack


def test_null_and_mismatched_keys_are_accepted_and_counted(spark, trino_cursor):
    tables = Tables(f"keys{uuid.uuid4().hex[:8]}_")  # the view reads a whole table: this test's own
    ensure_tables(spark, tables)
    try:
        records = [record(event("IMPRESSION", "e1", 0), 10, 0, key="imp-1"),
                   record(event("CLICK", "c1", 5), 10, 1, key=None),
                   record(event("CONVERSION", "v1", 9), 10, 2, key="other-key"),
                   record("not json", 10, 3, key=None),  # no impression_id: not a mismatch
                   record("not json", 10, 4, key="other-key")]
        AttributionBatch(AttributionRules(), "keys", tables)(kafka_frame(spark, records, topic="keys"), 0)
        gold = spark.table(tables.gold).collect()
        assert [(row.impression_id, row.is_converted) for row in gold] == [("imp-1", True)]
        trino_cursor.execute(f"SELECT sum(null_keys), sum(mismatched_keys), sum(records) FROM "
                             f"({select_sql('kafka_keys_hourly', tables.prefix)}) AS keys")
        assert trino_cursor.fetchall() == [[2, 1, 5]]
    finally:
        drop_namespaces(spark, tables)
