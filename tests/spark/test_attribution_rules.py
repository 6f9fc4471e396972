"""One named test per rule of docs/design.md §4, each checked against explicit expectations
and against the oracle (tests/oracle.py). Runs the engine's transforms and Gold SQL on a
local Spark session (no Kafka, no Iceberg writes)."""

from __future__ import annotations

import pytest

from tests.attribution_helpers import T0, assert_gold_matches, compute_gold, event, record
from tests.oracle import attribute

pytestmark = pytest.mark.spark
DAY = 86_400
US = 1_000_000


def run(spark, records):
    actual = compute_gold(spark, records)
    expected = attribute(records)
    assert_gold_matches(actual, expected.gold)
    for row in actual.values():
        for coordinates, disposition in row["dispositions"].items():
            assert expected.dispositions[coordinates] == disposition, coordinates
    return actual, expected


def test_impression_sets_cost_time_and_dimensions(spark):
    gold, _ = run(spark, [record(event("IMPRESSION", "e1", 0, bid_price=2.25, geo_country="DE"), 0.5, 0)])
    row = gold["imp-1"]
    assert row["cost"] == 2.25 and row["geo_country"] == "DE" and row["campaign_id"] == "camp-1"
    assert row["impression_time"] == T0 * US
    assert row["eligible"] is True and row["is_clicked"] is False and row["revenue"] == 0.0


def test_latest_valid_click_sets_click_time(spark):
    gold, _ = run(spark, [record(event("IMPRESSION", "e1", 0), 1, 0), record(event("CLICK", "c1", 10), 11, 1),
                          record(event("CLICK", "c2", 30), 31, 2)])
    assert gold["imp-1"]["is_clicked"] and gold["imp-1"]["click_time"] == (T0 + 30) * US


def test_click_before_impression_is_a_fraud_signal_and_not_a_click(spark):
    gold, expected = run(spark, [record(event("IMPRESSION", "e1", 100), 101, 0), record(event("CLICK", "c1", 90), 102, 1)])
    assert gold["imp-1"]["is_clicked"] is False and gold["imp-1"]["click_time"] is None
    assert gold["imp-1"]["dispositions"][(0, 1)] == "CLICK_BEFORE_IMPRESSION"


def test_conversion_is_attributed_to_the_latest_click_at_or_before_it(spark):
    records = [record(event("IMPRESSION", "e1", 0), 1, 0), record(event("CLICK", "c1", 10), 11, 1),
               record(event("CONVERSION", "v1", 500, conversion_value=80.0), 501, 2),
               record(event("CLICK", "c2", 900), 901, 3)]
    gold, _ = run(spark, records)
    row = gold["imp-1"]
    assert row["is_converted"] and row["revenue"] == 80.0 and row["conversion_time"] == (T0 + 500) * US
    assert row["click_time"] == (T0 + 900) * US and row["converted_event_id"] == "v1"


def test_conversion_7_days_plus_1s_after_click_is_out_of_window(spark):
    records = [record(event("IMPRESSION", "e1", 0), 1, 0), record(event("CLICK", "c1", 10), 11, 1),
               record(event("CONVERSION", "v1", 10 + 7 * DAY + 1, conversion_value=55.0), 10 + 7 * DAY + 2, 2)]
    gold, _ = run(spark, records)
    row = gold["imp-1"]
    assert row["is_converted"] is False and row["revenue"] == 0.0 and row["revenue_out_of_window"] == 55.0
    assert row["eligible"] is False and row["dispositions"][(0, 2)] == "OUT_OF_WINDOW"


def test_conversion_exactly_7_days_after_click_is_inside(spark):
    records = [record(event("IMPRESSION", "e1", 0), 1, 0), record(event("CLICK", "c1", 10), 11, 1),
               record(event("CONVERSION", "v1", 10 + 7 * DAY), 10 + 7 * DAY + 2, 2)]
    gold, _ = run(spark, records)
    assert gold["imp-1"]["is_converted"] and gold["imp-1"]["eligible"]


def test_two_conversions_first_eligible_wins_the_other_is_extra(spark):
    records = [record(event("IMPRESSION", "e1", 0), 1, 0), record(event("CLICK", "c1", 10), 11, 1),
               record(event("CONVERSION", "v2", 900, conversion_value=30.0), 901, 2),
               record(event("CONVERSION", "v1", 600, conversion_value=70.0), 950, 3)]
    gold, _ = run(spark, records)
    row = gold["imp-1"]
    assert row["revenue"] == 70.0 and row["revenue_out_of_window"] == 30.0 and row["converted_event_id"] == "v1"
    assert row["dispositions"][(0, 3)] == "ATTRIBUTED" and row["dispositions"][(0, 2)] == "EXTRA_CONVERSION"


def test_conversion_without_click_is_no_click_and_the_row_is_not_eligible(spark):
    gold, _ = run(spark, [record(event("IMPRESSION", "e1", 0), 1, 0),
                          record(event("CONVERSION", "v1", 60, conversion_value=12.0), 61, 1)])
    row = gold["imp-1"]
    assert row["eligible"] is False and row["revenue_out_of_window"] == 12.0
    assert row["dispositions"][(0, 1)] == "NO_CLICK"


def test_conversion_arriving_before_its_click_gives_the_same_row(spark):
    in_order = [record(event("IMPRESSION", "e1", 0), 1, 0), record(event("CLICK", "c1", 10), 11, 1),
                record(event("CONVERSION", "v1", 100), 101, 2)]
    conversion_first = [record(event("IMPRESSION", "e1", 0), 1, 0), record(event("CONVERSION", "v1", 100), 5, 1),
                        record(event("CLICK", "c1", 10), 200, 2)]
    first, _ = run(spark, in_order)
    second, _ = run(spark, conversion_first)
    assert second["imp-1"]["is_converted"] and second["imp-1"]["revenue"] == first["imp-1"]["revenue"]


def test_click_arriving_before_its_impression_creates_the_row_the_impression_fills(spark):
    gold, _ = run(spark, [record(event("CLICK", "c1", 10), 11, 0)])
    row = gold["imp-1"]
    assert row["impression_time"] is None and row["campaign_id"] is None and row["eligible"] is False
    assert row["dispositions"][(0, 0)] == "AWAITING_IMPRESSION"
    gold, _ = run(spark, [record(event("CLICK", "c1", 10), 11, 0), record(event("IMPRESSION", "e1", 0), 300, 1)])
    assert gold["imp-1"]["is_clicked"] and gold["imp-1"]["campaign_id"] == "camp-1"


def test_duplicate_event_id_with_identical_content_counts_once(spark):
    conversion = event("CONVERSION", "v1", 100, conversion_value=25.0)
    gold, _ = run(spark, [record(event("IMPRESSION", "e1", 0), 1, 0), record(event("CLICK", "c1", 10), 11, 1),
                          record(conversion, 101, 2), record(conversion, 160, 3)])
    row = gold["imp-1"]
    assert row["revenue"] == 25.0 and row["revenue_out_of_window"] == 0.0
    assert row["dispositions"][(0, 3)] == "DUPLICATE"


def test_duplicate_event_id_with_different_content_keeps_the_first_arrival(spark):
    gold, _ = run(spark, [record(event("IMPRESSION", "e1", 0), 1, 0), record(event("CLICK", "c1", 10), 11, 1),
                          record(event("CONVERSION", "v1", 100, conversion_value=99.0), 500, 2),
                          record(event("CONVERSION", "v1", 100, conversion_value=25.0), 101, 3, partition=0)])
    assert gold["imp-1"]["revenue"] == 25.0  # the copy that arrived first
    assert gold["imp-1"]["dispositions"][(0, 2)] == "DUPLICATE"


def test_duplicate_impression_the_earliest_wins(spark):
    gold, _ = run(spark, [record(event("IMPRESSION", "e2", 5, bid_price=9.0), 6, 0),
                          record(event("IMPRESSION", "e1", 0, bid_price=1.0), 7, 1)])
    assert gold["imp-1"]["cost"] == 1.0
    assert gold["imp-1"]["dispositions"][(0, 0)] == "DUPLICATE_IMPRESSION"


def test_late_event_two_days_behind_still_counts(spark):
    gold, _ = run(spark, [record(event("IMPRESSION", "e1", 0), 1, 0), record(event("CLICK", "c1", 10), 11, 1),
                          record(event("CONVERSION", "v1", 100, conversion_value=33.0), 100 + 2 * DAY, 2)])
    row = gold["imp-1"]
    assert row["is_converted"] and row["revenue"] == 33.0
    assert row["is_late"] and row["late_by_ms"] == 2 * DAY * 1000


def test_lateness_at_the_threshold_is_not_late(spark):
    gold, _ = run(spark, [record(event("IMPRESSION", "e1", 0), 3600, 0)])
    assert gold["imp-1"]["late_by_ms"] == 3_600_000 and gold["imp-1"]["is_late"] is False


INVALID = [  # (Kafka value, reason)
    ("not json", "PARSE_ERROR"),
    ('{"event_id": "x", "event_type": "CLI', "PARSE_ERROR"),
    ("[1, 2]", "PARSE_ERROR"),
    (None, "PARSE_ERROR"),
    ({k: v for k, v in event("CLICK", "c9", 1).items() if k != "event_id"}, "MISSING_KEY"),
    (event("CLICK", "c9", 1, impression_id=" "), "MISSING_KEY"),
    ({k: v for k, v in event("CLICK", "c9", 1).items() if k != "event_timestamp"}, "MISSING_KEY"),
    (event("IMPRESSION", "e9", 1, campaign_id=""), "MISSING_KEY"),
    (event("VIEW", "e9", 1), "UNKNOWN_TYPE"),
    (event("impression", "e9", 1), "UNKNOWN_TYPE"),
    (event("IMPRESSION", "e9", 1, bid_price=-0.5), "BAD_VALUE"),
    (event("CONVERSION", "v9", 1, conversion_value="lots"), "BAD_VALUE"),
    (event("CLICK", "c9", 1, event_timestamp="yesterday"), "BAD_VALUE"),
    (event("CLICK", "c9", 1, event_timestamp="1e999"), "BAD_VALUE"),
    (event("CLICK", "c9", 1, event_timestamp="NaN"), "BAD_VALUE"),
]


def test_invalid_records_are_audited_not_attributed(spark):
    """Every case in one Spark job: record 2n is a valid impression of its own, 2n+1 the case."""
    from engine.transforms import parse_records, to_audit, to_bronze, with_validation
    from tests.attribution_helpers import kafka_frame

    records = [r for n, (value, _) in enumerate(INVALID)
               for r in (record(event("IMPRESSION", f"e{n}", 0, impression_id=f"imp-v{n}"), 1, 2 * n),
                         record(value, 2, 2 * n + 1))]
    expected = {(0, 2 * n + 1): reason for n, (_, reason) in enumerate(INVALID)}
    validated = with_validation(parse_records(kafka_frame(spark, records)))
    audit = {(row.kafka_partition, row.kafka_offset): row.reason for row in to_audit(validated).collect()}
    wrong = [(INVALID[n], audit.get((0, 2 * n + 1))) for n in range(len(INVALID)) if audit.get((0, 2 * n + 1)) != INVALID[n][1]]
    assert not wrong and audit == expected, "(case, engine): " + repr(wrong)
    assert attribute(records).audit == expected
    bronze = {row.kafka_offset: row.raw_payload for row in to_bronze(validated).collect()}
    assert bronze == {r["offset"]: r["value"] for r in records}
    gold, _ = run(spark, records)
    assert {key: set(row["dispositions"]) for key, row in gold.items()} == {
        f"imp-v{n}": {(0, 2 * n)} for n in range(len(INVALID))}