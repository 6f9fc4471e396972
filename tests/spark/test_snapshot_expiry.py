"""Snapshot expiry never removes the newest snapshot carrying the Kafka offset ranges, however
old: a restarted job reads them to append no record twice (engine/bronze_sink.py)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from conf.tables import Tables, ensure_tables
from tests.attribution_helpers import drop_namespaces, event, kafka_frame, record

pytestmark = pytest.mark.spark


def test_expiry_keeps_the_newest_ranges_whatever_their_age(spark):
    from engine.bronze_sink import AppendOnce, committed_ranges
    from jobs.maintenance_job import expire_statement
    from engine.transforms import parse_records, to_bronze

    tables = Tables(f"expiry{uuid.uuid4().hex[:8]}_")
    ensure_tables(spark, tables)
    try:
        bronze = tables.bronze
        # Every snapshot counts as old: Iceberg's own age rule would expire all but the newest.
        spark.sql(f"ALTER TABLE {bronze} SET TBLPROPERTIES ('history.expire.max-snapshot-age-ms'='1')")
        rows = lambda offset: to_bronze(parse_records(kafka_frame(  # noqa: E731
            spark, [record(event("CLICK", f"c{offset}", 0), 1, offset)], topic="expiry")))
        AppendOnce("writer")(rows(0), bronze, {("expiry", 0): [[0, 0]]})  # the marker
        for offset in range(1, 5):  # later commits without ranges (another writer, maintenance)
            rows(offset).writeTo(bronze).append()
        statement = expire_statement(bronze, datetime.now(timezone.utc) + timedelta(days=1), 1, spark)
        assert "older_than => TIMESTAMP '1970-01-01 00:00:00 UTC'" in statement
        spark.sql(statement)
        spark.sql(f"REFRESH TABLE {bronze}")
        assert committed_ranges(spark, bronze)[0] == {("expiry", 0): [[0, 0]]}
        assert spark.sql(f"SELECT count(*) AS n FROM {bronze}.snapshots").first().n == 2  # the marker, the newest
    finally:
        drop_namespaces(spark, tables)
