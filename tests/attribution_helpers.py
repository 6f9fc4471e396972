"""Helpers shared by the attribution tests: build Kafka-shaped inputs, run the engine's
transforms and SQL on them, and read Gold back in the oracle's shape."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone

from conf.tables import AttributionRules
from tests.oracle import attribute

GOLD_FIELDS = ("impression_id", "impression_id_day", "campaign_id", "creative_id", "user_id", "geo_country", "platform", "is_clicked",
               "is_converted", "impression_time", "click_time", "conversion_time", "cost", "revenue", "eligible",
               "is_late", "late_by_ms", "revenue_out_of_window", "converted_event_id")
TIME_FIELDS = ("impression_time", "click_time", "conversion_time")
MONEY_FIELDS = ("cost", "revenue", "revenue_out_of_window")
T0 = 1_767_571_200  # 2026-01-05T00:00:00Z


def event(event_type: str, event_id: str, at: float, impression_id: str = "imp-1", **fields) -> dict:
    base = {"event_id": event_id, "event_type": event_type, "event_timestamp": T0 + at,
            "impression_id": impression_id, "campaign_id": "camp-1", "creative_id": "cr-1", "user_id": "u-1",
            "geo_country": "US", "platform": "IOS", "bid_price": 0.0, "conversion_value": 0.0}
    if event_type == "IMPRESSION":
        base["bid_price"] = 1.5
    if event_type == "CONVERSION":
        base["conversion_value"] = 40.0
    base.update(fields)
    return base


def uuid7_id(number: int, at: float, prefix: str = "imp-") -> str:
    """A UUIDv7 impression id created at T0 + `at` seconds (its partition day follows)."""
    ms, tail = int((T0 + at) * 1000), f"{number:018x}"
    return f"{prefix}{ms >> 16:08x}-{ms & 0xFFFF:04x}-7{tail[:3]}-8{tail[3:6]}-{tail[6:]}"


def record(value, arrival: float, offset: int, partition: int = 0, key: str = "imp-1") -> dict:
    """A Kafka record; `value` is an event dict (encoded here), a raw string or raw bytes."""
    text = value if isinstance(value, (str, bytes)) or value is None else json.dumps(value)
    return {"key": key, "value": text, "arrival_ms": int(round((T0 + arrival) * 1000)), "partition": partition,
            "offset": offset}


def kafka_frame(spark, records: list[dict], topic: str = "ad_events"):
    encode = lambda text: text.encode() if isinstance(text, str) else text  # noqa: E731 - bytes pass as they are
    rows = [(encode(r["key"]), encode(r["value"]), topic,
             r["partition"], r["offset"], datetime.fromtimestamp(r["arrival_ms"] / 1000, tz=timezone.utc))
            for r in records]
    return spark.createDataFrame(rows, "key binary, value binary, topic string, partition int, offset long, "
                                       "timestamp timestamp")


def gold_rows(spark, frame_sql: str) -> dict[str, dict]:
    """Gold rows from a query with Gold's columns, timestamps as microseconds, by impression
    id (which must be unique: two rows for one impression fail here)."""
    columns = ", ".join(f"unix_micros({c}) AS {c}" if c in TIME_FIELDS else c for c in GOLD_FIELDS)
    rows = spark.sql(f"SELECT {columns}, touches FROM ({frame_sql})").collect()
    result = {}
    for row in rows:
        values = row.asDict()
        touches = values.pop("touches")
        values["dispositions"] = {(t.kafka_partition, t.kafka_offset): t.disposition for t in touches}
        assert values["impression_id"] not in result, f"two Gold rows for impression {values['impression_id']}"
        result[values["impression_id"]] = values
    return result


def compute_gold(spark, records: list[dict], rules: AttributionRules = AttributionRules()) -> dict[str, dict]:
    """The engine's transforms and Gold derivation on records, without Kafka or Iceberg."""
    from engine.gold_merge import derive_gold
    from engine.transforms import parse_records, to_touches, touches_by_impression, with_validation

    view = "rules_under_test"
    batch = touches_by_impression(to_touches(with_validation(parse_records(kafka_frame(spark, records)))))
    derive_gold(batch, rules).createOrReplaceTempView(view)
    return gold_rows(spark, f"SELECT * FROM {view}")


def assert_gold_matches(actual: dict[str, dict], expected: dict[str, dict]) -> None:
    assert set(actual) == set(expected), f"impressions differ: {set(actual) ^ set(expected)}"
    for impression_id, want in expected.items():
        got = actual[impression_id]
        for name in GOLD_FIELDS:
            if name in MONEY_FIELDS:
                assert math.isclose(got[name], want[name], rel_tol=1e-9, abs_tol=1e-9), (impression_id, name, got, want)
            else:
                assert got[name] == want[name], (impression_id, name, got[name], want[name])


def spark_submit_env(table_prefix: str, short_lived: bool = True, **extra: str) -> dict[str, str]:
    """Environment for running a job with the venv's spark-submit, as the Makefile does."""
    import os
    import sys

    from stack.spark_conf import spark_conf_dir

    venv_bin = os.path.dirname(sys.executable)
    # A test's driver lives for a few batches: the JIT's first tier only starts it ~10 s sooner
    # (what it computes does not depend on the JIT). A long-running job (the freshness
    # benchmark) needs the full JIT: the first tier alone makes it several times slower. The
    # first tier alone gets a small code cache (48 MB), which Spark's generated code fills in
    # about a minute under load ("CodeCache is full. Compiler has been disabled": interpreted
    # from then on, slow enough for its writer lease to lapse): the tiered default's size.
    jit = {"SPARK_SUBMIT_OPTS": "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m"} if short_lived else {}
    return {**os.environ, "TABLE_NAMESPACE_PREFIX": table_prefix, "SPARK_CONF_DIR": str(spark_conf_dir()),
            "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable, **jit,
            "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}", **extra}


def drop_namespace(spark, namespace: str) -> None:
    """Drop a test namespace with its tables and views (Trino creates views there too)."""
    for row in spark.sql(f"SHOW VIEWS IN {namespace}").collect():
        if not getattr(row, "isTemporary", False):  # session temp views are listed everywhere
            spark.sql(f"DROP VIEW {namespace}.{row.viewName}")
    for row in spark.sql(f"SHOW TABLES IN {namespace}").collect():
        if not getattr(row, "isTemporary", False):
            spark.sql(f"DROP TABLE {namespace}.{row.tableName} PURGE")
    spark.sql(f"DROP NAMESPACE {namespace}")


def drop_namespaces(spark, tables) -> None:
    existing = {row.namespace for row in spark.sql("SHOW NAMESPACES IN lakehouse").collect()}
    for namespace in tables.namespaces:
        if namespace.split(".", 1)[1] in existing:
            drop_namespace(spark, namespace)


def batch_function(tables, writer: str, **options):
    from engine.attribution_batch import AttributionBatch

    return AttributionBatch(AttributionRules(), writer, tables, **options)


def assert_every_record_accounted_for(spark, tables, records, tag: str, expected=None) -> None:
    """Bronze holds each record once; each is in Gold (as a touch) or in the audit, not both;
    Gold and the audit equal the oracle."""
    expected = expected or attribute(records)
    for table in (tables.bronze, tables.gold, tables.audit):
        spark.sql(f"REFRESH TABLE {table}")
    topic = f"'hostile-{tag}'"
    bronze = [(r.kafka_partition, r.kafka_offset) for r in spark.sql(
        f"SELECT kafka_partition, kafka_offset FROM {tables.bronze} WHERE kafka_topic = {topic}").collect()]
    assert sorted(bronze) == sorted((r["partition"], r["offset"]) for r in records)
    audit = {(r.kafka_partition, r.kafka_offset): r.reason for r in spark.sql(
        f"SELECT kafka_partition, kafka_offset, reason FROM {tables.audit} WHERE kafka_topic = {topic}").collect()}
    assert audit == expected.audit
    gold = gold_rows(spark, f"SELECT * FROM {tables.gold} WHERE impression_id LIKE '{tag}%'")
    in_gold = {coordinates for row in gold.values() for coordinates in row["dispositions"]}
    assert not in_gold & set(audit) and in_gold | set(audit) == set(bronze)
    assert_gold_matches(gold, expected.gold)


def tagged(records: list[dict], tag: str) -> list[dict]:
    """Prefix every impression id that is a string (ids of examples sharing tables differ)."""
    out = []
    for r in records:
        value = r["value"]
        try:
            payload = json.loads(value)
        except (TypeError, ValueError):
            out.append(r)
            continue
        if isinstance(payload, dict) and isinstance(payload.get("impression_id"), str):
            payload["impression_id"] = tag + payload["impression_id"]
            value = json.dumps(payload)
        out.append({**r, "value": value})
    return out
