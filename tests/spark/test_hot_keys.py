"""Hot keys: one impression with thousands of touches derives in O(n log n) and equals the
oracle, touch by touch."""

from __future__ import annotations

import random
import uuid

import pytest

from conf.settings import ValidationLimits
from conf.tables import AttributionRules
from tests.attribution_helpers import (
    T0,
    assert_every_record_accounted_for,
    assert_gold_matches,
    batch_function,
    compute_gold,
    event,
    gold_rows,
    kafka_frame,
    record,
    tagged,
)
from tests.oracle import attribute

pytestmark = pytest.mark.spark


def hot_impression(touches: int, seed: int = 1) -> list[dict]:
    """One impression's records: impressions, clicks and conversions (10%) spread over ten
    days, each event id sent about twice (half the records are duplicates)."""
    rng = random.Random(seed)
    records = [record(event("IMPRESSION", "e0", 0), 1, 0)]
    for offset in range(1, touches):
        kind = "CONVERSION" if offset % 10 == 0 else "CLICK" if offset % 3 == 0 else "IMPRESSION"
        at = rng.randint(0, 10 * 86_400)
        records.append(record(event(kind, f"e{offset % (touches // 2 + 1)}", at), at + rng.randint(0, 5), offset,
                              partition=rng.randint(0, 1)))
    return records


def test_derivation_steps_read_by_lambdas_are_computed_once_per_row(spark):
    """The optimizer inlines a step referenced once, even inside a lambda, where it then
    runs once per element (quadratic in a row's touches): every step but the timeline, which
    is read once and outside any lambda, must stay a column of its own."""
    from engine.gold_merge import derivation_steps, derive_gold
    from engine.transforms import parse_records, to_touches, touches_by_impression, with_validation

    batch = touches_by_impression(to_touches(with_validation(parse_records(
        kafka_frame(spark, [record(event("IMPRESSION", "e0", 0), 1, 0)])))))
    plan = derive_gold(batch, AttributionRules())._jdf.queryExecution().optimizedPlan().toString()
    steps = [name for name, _ in derivation_steps("_all", AttributionRules()) if name.startswith("_")]
    inlined = [name for name in ["_sorted", "_distinct", *steps] if f" AS {name}#" not in plan and name != "_timeline"]
    assert not inlined, f"inlined into their readers: {inlined}"


def test_an_impression_with_thousands_of_touches_equals_the_oracle(spark):
    records = hot_impression(2_000)
    gold, expected = compute_gold(spark, records), attribute(records)
    assert_gold_matches(gold, expected.gold)
    assert gold["imp-1"]["dispositions"] == {key: expected.dispositions[key] for key in gold["imp-1"]["dispositions"]}
    assert len(gold["imp-1"]["dispositions"]) == 2_000
    assert gold["imp-1"]["is_converted"]


def test_copies_beyond_a_rows_cap_go_to_the_audit_whatever_the_batches(spark, tables):
    """A row keeps its first copies by (partition, offset); the rest are TOO_MANY_TOUCHES in
    the audit. The impression's records are on two partitions (a producer that keys by
    something else), so a later batch brings copies that sort before ones Gold holds: they
    displace them, and Gold, the audit and a replay still equal the oracle."""
    from jobs.replay_job import replayed_gold

    tag, limits = f"h{uuid.uuid4().hex[:6]}-", ValidationLimits(max_touches=40)
    records = tagged(hot_impression(120, seed=2), tag)
    by_partition = {p: sorted((r for r in records if r["partition"] == p), key=lambda r: r["offset"]) for p in (0, 1)}
    # Kafka hands out contiguous offset ranges per partition: partition 1's first 30, then the rest.
    batches = [by_partition[1][:30], by_partition[0] + by_partition[1][30:]]
    topic = f"hostile-{tag}"
    job = batch_function(tables, "hot-writer", limits=limits)
    for batch_id, batch in enumerate(batches):
        job(kafka_frame(spark, batch, topic=topic), batch_id)
    job(kafka_frame(spark, batches[1], topic=topic), 1)  # a retried batch changes nothing
    expected = attribute(records, max_touches=40)
    assert list(expected.audit.values()).count("TOO_MANY_TOUCHES") == 80
    assert_every_record_accounted_for(spark, tables, records, tag, expected)
    displaced = spark.sql(f"SELECT count(*) FROM {tables.audit} WHERE kafka_topic = '{topic}' AND kafka_partition = 1 "
                          f"AND kafka_offset <= {batches[0][-1]['offset']} AND raw_payload IS NULL").first()[0]
    assert displaced > 0  # copies Gold held after the first batch, pushed out by partition 0's

    bronze = spark.table(tables.bronze).where(f"kafka_topic = '{topic}'")
    replayed = replayed_gold(bronze, AttributionRules(), limits, spark.table(tables.audit))
    replayed.createOrReplaceTempView("hot_replayed")
    assert_gold_matches(gold_rows(spark, "SELECT * FROM hot_replayed"), expected.gold)


def test_the_touch_bound_never_hides_copies_over_the_cap(spark, tables):
    """A writer skips the cap's exact check while its bound on Gold's copies per row proves
    no impression can reach the cap. Another writer's MERGE between two of its batches
    brings the row close to the cap: the first writer's bound is dropped, it counts again,
    and the copies over the cap reach the audit (not lost)."""
    tag, limits = f"b{uuid.uuid4().hex[:6]}-", ValidationLimits(max_touches=40)
    millis = f"{int(T0 * 1000):012x}"  # a UUIDv7 id: a Gold day of its own, away from the other tests' rows
    impression = f"{millis[:8]}-{millis[8:]}-7000-8000-{uuid.uuid4().hex[:12]}"
    records = tagged([record(event("IMPRESSION", "e0", 0, impression), 1, 0, key=impression)]
                     + [record(event("CLICK", f"e{n}", 100 + n, impression), 101 + n, n, key=impression)
                        for n in range(1, 45)], tag)
    topic = f"hostile-{tag}"
    first, other = batch_function(tables, "bound-first", limits=limits), batch_function(tables, "bound-other",
                                                                                       limits=limits)
    first(kafka_frame(spark, records[:10], topic=topic), 0)
    assert list(first.touch_bound.bounds.values()) == [10]  # read once (0 copies), raised by its MERGE
    other(kafka_frame(spark, records[10:35], topic=topic), 0)
    first(kafka_frame(spark, records[35:], topic=topic), 1)
    assert list(first.touch_bound.bounds.values()) == [35 + 10]  # the other writer's MERGE: read again
    expected = attribute(records, max_touches=40)
    assert list(expected.audit.values()).count("TOO_MANY_TOUCHES") == 5
    assert_every_record_accounted_for(spark, tables, records, tag, expected)
