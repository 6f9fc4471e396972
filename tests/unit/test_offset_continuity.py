"""Kafka offsets that jump (engine/offset_continuity.py), at the level of the pure pieces:
what Bronze holds against the topic as it is now, and a batch that starts past what the
table holds. The job on a real topic with deleted records and a recreated topic:
tests/integration/test_offset_gaps.py."""

from __future__ import annotations

from engine.offset_continuity import gaps_at_start, gaps_in_batch, jumps

HELD = {("t", 0): [[0, 99]], ("t", 1): [[0, 49]], ("other", 0): [[0, 9]]}


def test_retention_past_what_bronze_holds_is_a_gap_of_the_records_never_read():
    gaps = gaps_at_start("t", HELD, "id-1", "id-1", {0: (130, 200), 1: (0, 80)})
    assert [(g.partition, g.first_offset, g.last_offset, g.cause, g.records_lost) for g in gaps] == [
        (0, 100, 129, "RETENTION", 30)]
    assert gaps_at_start("t", HELD, "id-1", "id-1", {0: (100, 200), 1: (50, 50)}) == []  # deleted only what was read


def test_a_new_topic_id_or_offsets_that_went_back_mean_the_topic_was_recreated():
    recreated = gaps_at_start("t", HELD, "id-1", "id-2", {0: (0, 5), 1: (0, 5)})
    assert {(g.partition, g.cause) for g in recreated} == {(0, "TOPIC_RECREATED"), (1, "TOPIC_RECREATED")}
    assert all(g.records_lost is None and "id-1 -> id-2" in g.detail for g in recreated)
    backwards = gaps_at_start("t", HELD, None, "id-2", {0: (0, 40), 1: (0, 60)})  # no id recorded yet
    assert [(g.partition, g.first_offset, g.last_offset, g.cause) for g in backwards] == [
        (0, 40, 99, "OFFSETS_BACKWARDS")]


def test_a_batch_past_what_the_table_holds_is_a_gap_only_where_kafka_lost_the_offsets():
    batch = {("t", 0): [[120, 150]], ("t", 1): [[50, 60]], ("t", 2): [[0, 5]]}
    assert jumps(HELD, batch) == {("t", 0): (100, 119)}  # partition 1 goes on, partition 2 is new
    assert [(g.first_offset, g.last_offset, g.records_lost) for g in gaps_in_batch(jumps(HELD, batch), {0: 110})] == [
        (100, 109, 10)]
    assert gaps_in_batch(jumps(HELD, batch), {0: 0}) == []  # still in Kafka: offsets without records (markers)
