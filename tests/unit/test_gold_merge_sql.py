"""The MERGE's partition pruning as SQL text: a row's partition is a function of its key,
so the target condition must name every day of the batch, the NULL day included."""

from __future__ import annotations

from datetime import date

from conf.gold_days import days_predicate
from engine.gold_merge import merge_sql


def test_days_predicate_names_each_day_and_the_null_partition():
    assert days_predicate([date(2026, 1, 6), None, date(2026, 1, 5)], "t.d") == (
        "(t.d IN (DATE '2026-01-05', DATE '2026-01-06') OR t.d IS NULL)")
    assert days_predicate([date(2026, 1, 5)]) == "(impression_id_day IN (DATE '2026-01-05'))"
    assert days_predicate([None]) == "(impression_id_day IS NULL)"
    assert days_predicate([]) == "false"


def test_merge_prunes_the_target_by_the_batch_days_only_when_given():
    pruned = merge_sql("src", "lakehouse.gold.t", [date(2026, 1, 5)])
    assert "ON t.impression_id = s.impression_id AND (t.impression_id_day IN (DATE '2026-01-05'))" in pruned
    assert "impression_id_day" not in merge_sql("src", "lakehouse.gold.t")


def test_the_state_machine_names_exactly_the_contracts_dispositions():
    """Every disposition the Gold derivation can write is one conf.events lists, and each listed one can be written."""
    import re

    from conf.events import DISPOSITIONS
    from conf.tables import AttributionRules
    from engine.gold_merge import derivation_steps

    touches_sql = dict(derivation_steps("_all", AttributionRules()))["touches"]
    named = set(re.findall(r"'([A-Z_]+)'", touches_sql))
    assert named - {"CONVERSION"} == set(DISPOSITIONS)  # CONVERSION is compared as an event type only
