"""chispa tests of the pure transforms: Kafka records -> Bronze columns, validation
reasons, touches, and the one-row-per-impression MERGE source."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from chispa import assert_df_equality

from engine.transforms import parse_records, to_audit, to_bronze, to_touches, touches_by_impression, with_validation
from tests.attribution_helpers import T0, event, kafka_frame, record

pytestmark = pytest.mark.spark
AT = datetime.fromtimestamp(T0, tz=timezone.utc).replace(tzinfo=None)  # session time zone is UTC


@pytest.fixture
def records():
    return [
        record(event("IMPRESSION", "e1", 0, bid_price=1.25), 1, 0),
        record(event("CLICK", "c1", 10), 12, 1),
        record("{broken", 13, 2),
        record(event("VIEW", "x1", 5), 14, 3),
        record(event("IMPRESSION", "e2", 20, impression_id="imp-2", campaign_id=None), 21, 4, key="imp-2"),
    ]


def test_parse_records_gives_bronze_columns_for_every_record(spark, records):
    bronze = to_bronze(parse_records(kafka_frame(spark, records))).drop("ingested_at")
    expected = spark.createDataFrame(
        [("e1", "IMPRESSION", "imp-1", "camp-1", AT, "imp-1", 0, 0, None),
         ("c1", "CLICK", "imp-1", "camp-1", AT.replace(second=10), "imp-1", 0, 1, None),
         (None, None, None, None, None, "imp-1", 0, 2, "malformed JSON"),
         ("x1", "VIEW", "imp-1", "camp-1", AT.replace(second=5), "imp-1", 0, 3, None),
         ("e2", "IMPRESSION", "imp-2", None, AT.replace(second=20), "imp-2", 0, 4, None)],
        "event_id string, event_type string, impression_id string, campaign_id string, event_timestamp timestamp, "
        "kafka_key string, kafka_partition int, kafka_offset long, parse_error string")
    assert_df_equality(bronze.select(*expected.columns), expected, ignore_row_order=True, ignore_nullable=True)
    payloads = {r.kafka_offset: r.raw_payload for r in bronze.collect()}
    assert payloads[2] == "{broken" and json.loads(payloads[0])["bid_price"] == 1.25


def test_validation_reasons(spark, records):
    audit = to_audit(with_validation(parse_records(kafka_frame(spark, records))))
    expected = spark.createDataFrame(
        [(2, "PARSE_ERROR", "malformed JSON"), (3, "UNKNOWN_TYPE", "event_type VIEW"),
         (4, "MISSING_KEY", "missing: campaign_id")], "kafka_offset long, reason string, detail string")
    assert_df_equality(audit.select("kafka_offset", "reason", "detail"), expected, ignore_row_order=True,
                       ignore_nullable=True)


def test_touches_keep_valid_events_with_their_kafka_coordinates(spark, records):
    touches = to_touches(with_validation(parse_records(kafka_frame(spark, records))))
    flat = touches.select("impression_id", "touch.event_id", "touch.event_type", "touch.kafka_offset",
                          "touch.bid_price", "touch.conversion_value")
    expected = spark.createDataFrame([("imp-1", "e1", "IMPRESSION", 0, 1.25, 0.0), ("imp-1", "c1", "CLICK", 1, 0.0, 0.0)],
                                     "impression_id string, event_id string, event_type string, kafka_offset long, "
                                     "bid_price double, conversion_value double")
    assert_df_equality(flat, expected, ignore_row_order=True, ignore_nullable=True)


def test_merge_source_has_one_row_per_impression(spark, records):
    batch = touches_by_impression(to_touches(with_validation(parse_records(kafka_frame(spark, records * 2)))))
    rows = batch.collect()
    assert [r.impression_id for r in rows] == ["imp-1"] and len(rows[0].touches) == 4


def test_impression_id_day_reads_uuid7_ids_like_the_oracle(spark):
    from conf.gold_days import impression_id_day
    from tests.attribution_helpers import uuid7_id
    from tests.oracle import id_day

    ids = [uuid7_id(1, 0), uuid7_id(2, 86_399.999), uuid7_id(3, 86_400), uuid7_id(4, -0.001, prefix=""),
           uuid7_id(5, 0).upper(), "imp-1", "imp-0190c3f2-7d61-4a30-9e30-d8f16adf91b7",  # version 4
           "imp-0190c3f2-7d61-7a30-ce30-d8f16adf91b7",  # variant bits not RFC 9562
           "0190c3f27d617a309e30d8f16adf91b7", "",
           "imp-ffffffff-ffff-7fff-bfff-ffffffffffff",  # year 10889: no DATE holds it, so no day
           "imp-e677d1cb-7fff-7fff-bfff-ffffffffffff"]  # 9999-12-31, the last day a DATE holds
    frame = spark.createDataFrame([(i,) for i in ids], "impression_id string")
    got = {row.impression_id: row.day for row in frame.selectExpr("impression_id", f"{impression_id_day()} AS day").collect()}
    assert got == {i: id_day(i) for i in ids}
    assert sorted({d.isoformat() for d in got.values() if d}) == ["2026-01-04", "2026-01-05", "2026-01-06",
                                                                    "9999-12-31"]


def test_batch_days_name_the_days_of_valid_records_only_and_keep_the_null_day(spark):
    from conf.gold_days import batch_days_sql, day_of
    from tests.attribution_helpers import uuid7_id
    from tests.oracle import id_day

    day_one, day_two, bad_day = uuid7_id(1, 0), uuid7_id(2, 86_400), uuid7_id(3, 2 * 86_400)
    records = [record(event("IMPRESSION", "e1", 0, impression_id=day_one), 1, 0, key=day_one),
               record(event("CLICK", "c1", 10, impression_id=day_one), 12, 1, key=day_one),
               record(event("IMPRESSION", "e2", 0, impression_id=day_two), 1, 2, key=day_two),
               record(event("IMPRESSION", "e3", 0), 1, 3),  # "imp-1": not a UUIDv7, the NULL day
               record(event("VIEW", "x1", 0, impression_id=bad_day), 1, 4, key=bad_day)]  # rejected
    validated = with_validation(parse_records(kafka_frame(spark, records)))
    days = [day_of(entry.day) for entry in validated.selectExpr(f"{batch_days_sql()} AS days").first().days]
    assert sorted(days, key=str) == sorted([id_day(day_one), id_day(day_two), None], key=str)


def test_the_parse_is_planned_once_whatever_filter_follows(spark, records):
    """to_touches and to_audit filter on reject_reason; pushed below the parse, such a filter
    had from_json and the parse-error regexes inlined about 150 times (a 30k-record replay
    took 80 s instead of 8 s)."""
    validated = with_validation(parse_records(kafka_frame(spark, records)))
    for frame in (touches_by_impression(to_touches(validated)), to_audit(validated)):
        plan = frame._jdf.queryExecution().optimizedPlan().toString()
        assert plan.count("from_json(") == 1 and plan.count("regexp_replace(") <= 2, plan[:3000]
