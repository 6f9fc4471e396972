"""Hot keys: one impression with thousands of touches derives in O(n log n) and equals the
oracle, touch by touch."""

from __future__ import annotations

import random

import pytest

from conf.tables import AttributionRules
from tests.attribution_helpers import assert_gold_matches, compute_gold, event, kafka_frame, record
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
    from jobs.gold_merge import derivation_steps, derive_gold
    from jobs.transforms import parse_records, to_touches, touches_by_impression, with_validation

    batch = touches_by_impression(to_touches(with_validation(parse_records(
        kafka_frame(spark, [record(event("IMPRESSION", "e0", 0), 1, 0)])))))
    plan = derive_gold(batch, AttributionRules())._jdf.queryExecution().optimizedPlan().toString()
    steps = [name for name, _ in derivation_steps("_all", AttributionRules()) if name.startswith("_")]
    inlined = [name for name in steps if f" AS {name}#" not in plan and name != "_timeline"]
    assert not inlined, f"inlined into their readers: {inlined}"


def test_an_impression_with_thousands_of_touches_equals_the_oracle(spark):
    records = hot_impression(3_000)
    gold, expected = compute_gold(spark, records), attribute(records)
    assert_gold_matches(gold, expected.gold)
    assert gold["imp-1"]["dispositions"] == {key: expected.dispositions[key] for key in gold["imp-1"]["dispositions"]}
    assert len(gold["imp-1"]["dispositions"]) == 3_000
    assert gold["imp-1"]["is_converted"]
