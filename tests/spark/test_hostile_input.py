"""Hostile input through the real batch function: nothing a producer sends stops the job
or is lost. Every record is in Bronze once and then in Gold or in the audit with a
reason; a batch that fails the same way again and again has the records that cause it
isolated (PROCESSING_ERROR); Bronze and the audit take each Kafka record once even when
the checkpoint (the writer) is new."""

from __future__ import annotations

import json
import uuid

import pytest

from conf.tables import AttributionRules
from tests.attribution_helpers import (
    assert_every_record_accounted_for,
    assert_gold_matches,
    batch_function,
    event,
    gold_rows,
    kafka_frame,
    record,
    tagged,
)
from tests.oracle import attribute

pytestmark = pytest.mark.spark
VALID = json.dumps(event("CLICK", "c9", 1))

# (what, Kafka value, reason): one row per hostile class; the engine and the oracle must agree.
HOSTILE = [
    ("trailing data", VALID + " trailing", "PARSE_ERROR"),
    ("two objects", VALID + VALID, "PARSE_ERROR"),
    ("a closing bracket after the object", VALID + "]", "PARSE_ERROR"),
    ("single quotes", VALID.replace('"', "'"), "PARSE_ERROR"),
    ("a comment", VALID[:-1] + " /* hi */}", "PARSE_ERROR"),
    ("a NaN literal", VALID.replace('"bid_price": 0.0', '"bid_price": NaN'), "PARSE_ERROR"),
    ("invalid UTF-8", VALID.encode()[:-2] + b'\xff"}', "PARSE_ERROR"),
    ("an unpaired surrogate escape", VALID.replace('"US"', '"\\ud800"'), "PARSE_ERROR"),
    ("an escaped backslash before u", VALID.replace('"US"', '"\\\\ud800"'), None),
    ("a surrogate pair", VALID.replace('"US"', '"\\ud83d\\ude00"'), None),
    ("a number as event_id", json.dumps({**event("CLICK", "c9", 1), "event_id": 12345}), "BAD_ID"),
    ("an object as impression_id", json.dumps(event("CLICK", "c9", 1, impression_id={"a": 1})), "BAD_ID"),
    ("a number as platform", json.dumps(event("CLICK", "c9", 1, platform=2.2250738585072014e-308)), "BAD_VALUE"),
    ("a list as geo_country", json.dumps(event("CLICK", "c9", 1, geo_country=["US"])), "BAD_VALUE"),
    ("a 129-character user_id", json.dumps(event("CLICK", "c9", 1, user_id="u" * 129)), "BAD_ID"),
    ("a 128-character user_id", json.dumps(event("CLICK", "c9", 1, user_id="u" * 128)), None),
    ("a timestamp string with underscores", json.dumps(event("CLICK", "c9", 1, event_timestamp="1_767_571_201")),
     "BAD_VALUE"),
    ("a timestamp string with a Java suffix", json.dumps(event("CLICK", "c9", 1, event_timestamp="1767571201d")),
     "BAD_VALUE"),
    ("a hexadecimal float string", json.dumps(event("CONVERSION", "v9", 1, conversion_value="0x1p3")), "BAD_VALUE"),
    ("a padded number string", json.dumps(event("CLICK", "c9", 1, event_timestamp=" 1767571201 ")), "BAD_VALUE"),
    ("Arabic-Indic digits", json.dumps(event("CLICK", "c9", 1, bid_price="\u0661")), "BAD_VALUE"),
    ("a number string in JSON's form", json.dumps(event("CLICK", "c9", 1, event_timestamp="1.767571201e9")), None),
    ("event time before year 1", json.dumps(event("CLICK", "c9", 1, event_timestamp=-6.5e10)), "BAD_VALUE"),
    ("event time after year 9999", json.dumps(event("CLICK", "c9", 1, event_timestamp=2.6e11)), "BAD_VALUE"),
    ("event time in year 3000", json.dumps(event("CLICK", "c9", 1, event_timestamp=32_503_680_000)),
     "IMPLAUSIBLE_TIME"),
    ("event time in 1970", json.dumps(event("CLICK", "c9", 1, event_timestamp=0)), "IMPLAUSIBLE_TIME"),
    ("event time 401 days before arrival", json.dumps(event("CLICK", "c9", 2 - 401 * 86_400)), "IMPLAUSIBLE_TIME"),
    ("event time 2 h after arrival", json.dumps(event("CLICK", "c9", 2 + 7_200)), "IMPLAUSIBLE_TIME"),
    ("event time 59 min after arrival", json.dumps(event("CLICK", "c9", 2 + 3_540)), None),
    ("a bid of 1e300", json.dumps(event("IMPRESSION", "e9", 1, bid_price=1e300)), "IMPLAUSIBLE_AMOUNT"),
    ("a conversion value of 2e9", json.dumps(event("CONVERSION", "v9", 1, conversion_value=2e9)),
     "IMPLAUSIBLE_AMOUNT"),
    ("a UUIDv7 id past year 9999", json.dumps(event("CLICK", "c9", 1,
                                                     impression_id="imp-ffffffff-ffff-7fff-bfff-ffffffffffff")), None),
]


def test_hostile_records_get_the_oracles_verdict(spark):
    """Every class at once (one Spark job): record 2k is a valid impression, 2k+1 the class."""
    from engine.transforms import parse_records, to_audit, with_validation

    records = [r for number, (_, value, _) in enumerate(HOSTILE)
               for r in (record(event("IMPRESSION", f"e{number}", 0), 1, 2 * number), record(value, 2, 2 * number + 1))]
    audit = {row.kafka_offset: row.reason
             for row in to_audit(with_validation(parse_records(kafka_frame(spark, records)))).collect()}
    oracle = attribute(records).audit
    wrong = [(what, reason, audit.get(2 * number + 1), oracle.get((0, 2 * number + 1)))
             for number, (what, _, reason) in enumerate(HOSTILE)
             if not audit.get(2 * number + 1) == oracle.get((0, 2 * number + 1)) == reason]
    assert not wrong, "(class, expected, engine, oracle): " + repr(wrong)
    assert set(audit) == {2 * n + 1 for n, (_, _, reason) in enumerate(HOSTILE) if reason}


def hostile_values():
    """Kafka values a producer could send: arbitrary bytes, valid events with one field
    replaced by any JSON value, extreme numbers, and valid events (so Gold has rows)."""
    from hypothesis import strategies as st

    json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                               | st.text(max_size=12), lambda inner: st.lists(inner, max_size=3), max_leaves=4)
    kinds = st.sampled_from(["IMPRESSION", "CLICK", "CONVERSION"])
    valid = st.builds(lambda kind, at: event(kind, f"e{kind[:2]}{at}", at), kinds, st.integers(-5, 60))
    mutated = st.builds(lambda body, field, value: {**body, field: value}, valid,
                        st.sampled_from(["event_id", "event_type", "event_timestamp", "impression_id", "user_id",
                                         "bid_price", "conversion_value", "geo_country"]), json_values)
    extreme = st.builds(lambda body, field, value: {**body, field: value}, valid,
                        st.sampled_from(["event_timestamp", "bid_price", "conversion_value"]),
                        st.sampled_from([1e308, -1e308, 2 ** 63, -(2 ** 63) - 1, 1e-320, 0, -0.0, 253402300800]))
    return st.one_of(st.binary(max_size=60), mutated.map(json.dumps), extreme.map(json.dumps), valid.map(json.dumps))


def test_arbitrary_bytes_mutated_events_and_extreme_numbers_get_the_oracles_verdict(spark):
    """Hypothesis mixes, each through the engine's parse, validation and Gold derivation in
    one Spark job: no example raises, and the audit and Gold equal the oracle's."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from engine.gold_merge import derive_gold
    from engine.transforms import parse_records, to_audit, to_touches, touches_by_impression, with_validation

    @settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(values=st.lists(hostile_values(), min_size=1, max_size=10))
    def check(values):
        records = [record(value, 30, offset) for offset, value in enumerate(values)]
        parsed = with_validation(parse_records(kafka_frame(spark, records))).persist()
        try:
            audit = {(0, row.kafka_offset): row.reason for row in to_audit(parsed).collect()}
            derive_gold(touches_by_impression(to_touches(parsed)), AttributionRules()) \
                .createOrReplaceTempView("hostile_gold")
            expected = attribute(records)
            assert audit == expected.audit
            assert_gold_matches(gold_rows(spark, "SELECT * FROM hostile_gold"), expected.gold)
        finally:
            parsed.unpersist()

    check()


def test_one_batch_of_every_hostile_class_commits_and_loses_nothing(spark, tables):
    """The records that stopped the job (a UUIDv7 id past year 9999, an event before year 1
    as the batch's latest) and every other class, in one batch with valid events."""
    tag = f"t{uuid.uuid4().hex[:6]}-"
    values = [value for _, value, _ in HOSTILE] + [
        json.dumps(event("IMPRESSION", "e1", 0)), json.dumps(event("CLICK", "c1", 5)),
        json.dumps(event("CONVERSION", "v1", 50)), json.dumps(event("CLICK", "c2", -10, event_timestamp=-6.5e10))]
    records = tagged([record(value, 60, offset, key=None if offset % 3 else "other-key")
                      for offset, value in enumerate(values)], tag)
    apply = batch_function(tables, f"hostile-{tag}")
    apply(kafka_frame(spark, records, topic=f"hostile-{tag}"), 0)
    assert_every_record_accounted_for(spark, tables, records, tag)
    gold = gold_rows(spark, f"SELECT * FROM {tables.gold} WHERE impression_id = '{tag}imp-ffffffff-ffff-7fff-bfff-ffffffffffff'")
    assert [row["impression_id_day"] for row in gold.values()] == [None]  # not time-ordered: the NULL day


# --- poison batches and lost checkpoints


def test_a_batch_that_keeps_failing_has_its_poison_record_isolated(spark, tables, tmp_path):
    from pyspark.sql import functions as F

    from engine.transforms import parse_records, with_validation

    tag = f"p{uuid.uuid4().hex[:6]}-"
    records = tagged([record(event("IMPRESSION", "e1", 0), 10, 0), record(event("CLICK", "poison", 5), 10, 1),
                      record(event("CLICK", "c1", 6), 10, 2), record(event("CONVERSION", "v1", 9), 10, 3),
                      record(event("IMPRESSION", "e2", 0, impression_id="imp-2"), 10, 4)], tag)

    def prepare_with_a_bug(batch, limits):  # a failure the marked record triggers wherever it is
        parsed = with_validation(parse_records(batch), limits)
        return parsed.withColumn("event_id", F.when(F.col("event_id") == "poison",
                                                    F.raise_error(F.lit("injected failure"))).otherwise(F.col("event_id")))

    frame = kafka_frame(spark, records, topic=f"hostile-{tag}")
    counts = tmp_path / "failures.json"
    # Two failures in one job, the third in the next (a restarter started it after the first
    # gave up): the counts outlive the process, as if one job had seen all three.
    for failures in (2, 1):
        apply = batch_function(tables, f"hostile-{tag}", poison_attempts=3, prepare=prepare_with_a_bug)
        apply.keep_failures_in(counts)
        for _ in range(failures):
            with pytest.raises(Exception, match="injected failure"):
                apply(frame, 0)
    apply(frame, 0)  # the fourth attempt isolates offset 1 and commits the rest
    assert json.loads(counts.read_text()) == {}  # the batch committed: nothing left to count
    expected = attribute([r for r in records if r["offset"] != 1])
    expected.audit[(0, 1)] = "PROCESSING_ERROR"
    assert_every_record_accounted_for(spark, tables, records, tag, expected)
    detail = spark.sql(f"SELECT detail FROM {tables.audit} WHERE kafka_topic = 'hostile-{tag}'").first().detail
    assert "injected failure" in detail
    # A replay from Bronze leaves the isolated record out too.
    from jobs.replay_job import replayed_gold

    bronze = spark.table(tables.bronze).where(f"kafka_topic = 'hostile-{tag}'")
    replayed_gold(bronze, AttributionRules(), audit=spark.table(tables.audit)).createOrReplaceTempView("replayed")
    assert_gold_matches(gold_rows(spark, "SELECT * FROM replayed"), expected.gold)

    # `make reprocess`: while the bug is there the record stays quarantined; once it is fixed,
    # the record is re-processed from Bronze, and Gold, the audit and a replay are then the
    # oracle's over every record, as if it had never failed.
    from jobs.reprocess_job import StillFailing, reprocess

    with pytest.raises(StillFailing, match="they still fail: .*injected failure"):
        reprocess(spark, tables, AttributionRules(), prepare=prepare_with_a_bug, topic=f"hostile-{tag}")
    assert_every_record_accounted_for(spark, tables, records, tag, expected)  # nothing changed
    assert reprocess(spark, tables, AttributionRules(), topic=f"hostile-{tag}") == {
        "records": 1, "into_gold": 1, "rejected": {}}
    fixed = attribute(records)
    assert_every_record_accounted_for(spark, tables, records, tag, fixed)
    replayed_gold(bronze, AttributionRules(), audit=spark.table(tables.audit)).createOrReplaceTempView("replayed")
    assert_gold_matches(gold_rows(spark, "SELECT * FROM replayed"), fixed.gold)
    assert reprocess(spark, tables, AttributionRules(), topic=f"hostile-{tag}")["records"] == 0  # none left


def test_a_failure_that_hits_every_record_is_an_outage_not_poison(spark, tables):
    """A storage or credentials failure fails every dry run, a canary's too: the batch is
    retried whole, no record goes to PROCESSING_ERROR, and once the failure ends the batch
    commits like any other. (Before the canary, all 4 records were isolated as poison.)"""
    from pyspark.sql import functions as F

    from engine.transforms import parse_records, with_validation

    tag = f"s{uuid.uuid4().hex[:6]}-"
    records = tagged([record(event("IMPRESSION", "e1", 0), 10, 0), record(event("CLICK", "c1", 5), 10, 1),
                      record(event("CONVERSION", "v1", 9), 10, 2), record(event("IMPRESSION", "e2", 0,
                                                                                   impression_id="imp-2"), 10, 3)], tag)
    outage = {"on": True}

    def prepare_during_an_outage(batch, limits):  # every read fails while the outage lasts
        parsed = with_validation(parse_records(batch), limits)
        return parsed.withColumn("event_id", F.raise_error(F.lit("storage unavailable"))) if outage["on"] else parsed

    apply = batch_function(tables, f"hostile-{tag}", poison_attempts=1, prepare=prepare_during_an_outage)
    frame = kafka_frame(spark, records, topic=f"hostile-{tag}")
    for _ in range(2):  # past the poison threshold: still the whole batch, still failing
        with pytest.raises(Exception, match="storage unavailable"):
            apply(frame, 0)
    assert not apply.isolated
    assert spark.sql(f"SELECT count(*) FROM {tables.audit} WHERE kafka_topic = 'hostile-{tag}'").first()[0] == 0
    outage["on"] = False
    apply(frame, 0)
    assert_every_record_accounted_for(spark, tables, records, tag)  # the oracle's audit: no PROCESSING_ERROR


def test_a_batch_where_each_record_fails_alone_is_not_all_poison():
    from engine.poison import systemic

    batch = [("t", 0, offset) for offset in range(5)]
    assert systemic(batch, batch) and not systemic(batch, batch[:1]) and not systemic(batch[:1], batch[:1])


def test_a_new_writer_rereading_the_topic_appends_no_record_twice(spark, tables):
    """A checkpoint deleted or moved: the new one starts at batch 0 and re-reads records the
    tables hold. Bronze and the audit key on Kafka offsets, not on (writer, batch id)."""
    tag = f"c{uuid.uuid4().hex[:6]}-"
    first = tagged([record(event("IMPRESSION", "e1", 0), 10, 0), record("not json", 10, 1),
                    record(event("CLICK", "c1", 5), 10, 2)], tag)
    second = tagged([record(event("CONVERSION", "v1", 9), 20, 3), record("{}", 20, 4)], tag)
    topic = f"hostile-{tag}"
    batch_function(tables, "old-checkpoint")(kafka_frame(spark, first, topic=topic), 0)
    again = batch_function(tables, "new-checkpoint")
    again(kafka_frame(spark, first + second, topic=topic), 0)  # earliest: the old records again, then new ones
    again(kafka_frame(spark, second, topic=topic), 1)  # and a retry of a batch already committed
    assert_every_record_accounted_for(spark, tables, first + second, tag)
