"""Property tests: for random event sets, any processing order, any duplication and any
split into micro-batches give the same Gold, equal to the oracle; re-applying a batch
changes nothing. Wide sweeps run against the oracle alone; the Spark-backed properties
use a few examples each (every example is several real Iceberg MERGEs)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conf.tables import AttributionRules
from tests.attribution_helpers import (
    assert_gold_matches,
    compute_gold,
    event,
    gold_rows,
    kafka_frame,
    record,
    uuid7_id,
)
from tests.oracle import attribute

DAY = 86_400
EVENT_TIMES = st.one_of(st.integers(0, 10 * DAY), st.sampled_from([0, 1, 7 * DAY, 7 * DAY + 1, 7 * DAY + 11]))
LATENESS = st.one_of(st.integers(0, 5), st.integers(0, 3 * DAY))


@st.composite
def event_sets(draw, impressions: int = 3):
    """Kafka records of a few impressions' funnels, some copies resent."""
    records, offset = [], 0
    for number in range(draw(st.integers(1, impressions))):
        # Plain ids share Gold's NULL partition; UUIDv7 ids spread over day partitions, so
        # the batches' MERGEs prune to different days.
        impression_id = draw(st.sampled_from([f"imp-{number}", uuid7_id(number, draw(st.sampled_from([0, DAY, 8 * DAY])))]))
        kinds = (["IMPRESSION"] * draw(st.integers(0, 2)) + ["CLICK"] * draw(st.integers(0, 3))
                 + ["CONVERSION"] * draw(st.integers(0, 3)))
        for index, kind in enumerate(kinds):
            at = draw(EVENT_TIMES)
            extra = {"conversion_value": draw(st.sampled_from([10.0, 25.5, 40.0]))} if kind == "CONVERSION" else {}
            payload = event(kind, f"{impression_id}-{kind[:2]}{index}", at, impression_id=impression_id, **extra)
            partition = number % 2
            for copy in range(1 + draw(st.integers(0, 1)) * draw(st.booleans())):
                arrival = at + draw(LATENESS)
                records.append(record(payload, arrival, offset, partition=partition, key=impression_id))
                offset += 1
    return records


@given(records=event_sets(impressions=6), data=st.data())
@settings(max_examples=300, deadline=None)
def test_oracle_ignores_order_and_repeated_delivery(records, data):
    shuffled = data.draw(st.permutations(records))
    repeated = shuffled + data.draw(st.lists(st.sampled_from(records), max_size=5)) if records else shuffled
    assert attribute(repeated).gold == attribute(records).gold


@pytest.mark.spark
@given(records=event_sets())
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_spark_derivation_equals_the_oracle(spark, records):
    assume(records)
    gold, expected = compute_gold(spark, records), attribute(records)
    assert_gold_matches(gold, expected.gold)
    assert {key: value for row in gold.values() for key, value in row["dispositions"].items()} == expected.dispositions


def relabel(records: list[dict], tag: str) -> list[dict]:
    """Give one example's impressions ids of their own, so examples share a table."""
    import json

    out = []
    for r in records:
        value = json.loads(r["value"])
        value["impression_id"] = f"{tag}-{value['impression_id']}"
        out.append({**r, "key": value["impression_id"], "value": json.dumps(value)})
    return out


@pytest.mark.spark
@given(records=event_sets(), data=st.data())
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_order_and_batching_through_the_merge_gives_the_oracle(spark, tables, records, data):
    from engine.attribution_batch import AttributionBatch

    assume(records)
    tag = uuid.uuid4().hex[:8]
    records = relabel(records, tag)
    # Any delivery order; Kafka numbers each partition's records in the order they arrive, so a
    # micro-batch holds a contiguous offset range per partition (Bronze's idempotency relies on it).
    order, next_offset = [], {}
    for r in data.draw(st.permutations(records)):
        order.append({**r, "offset": next_offset.setdefault(r["partition"], 0)})
        next_offset[r["partition"]] += 1
    records = order
    cuts = sorted(data.draw(st.lists(st.integers(1, max(len(order) - 1, 1)), max_size=2, unique=True)))
    batches = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)]) if order[a:b]]
    apply = AttributionBatch(AttributionRules(), f"prop-{tag}", tables)
    topic = f"prop-{tag}"  # Kafka offsets are unique per topic: each example has its own
    for batch_id, batch in enumerate(batches):
        apply(kafka_frame(spark, batch, topic), batch_id)

    query = f"SELECT * FROM {tables.gold} WHERE impression_id LIKE '{tag}-%'"
    after = gold_rows(spark, query)
    assert_gold_matches(after, attribute(records).gold)

    # A retried batch (same id) and a replayed one (new id, as after a lost checkpoint) change nothing.
    apply(kafka_frame(spark, batches[0], topic), 0)
    apply(kafka_frame(spark, batches[-1], topic), len(batches))
    assert gold_rows(spark, query) == after
    bronze = spark.sql(f"SELECT count(*) AS n FROM {tables.bronze} WHERE kafka_topic = '{topic}'").first().n
    assert bronze == len(records)  # Bronze keys on Kafka offsets: neither the retry nor the replay appended
