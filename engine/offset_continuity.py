"""Kafka offsets that jump: what the job cannot read as it was, found and stated.

Bronze's snapshot summary holds every offset range it has appended and the id of the topic
they came from (engine/bronze_sink.py). Against the topic as it is now:

- **TOPIC_RECREATED**: the topic's id differs. Its offsets restart at 0, so an old
  checkpoint would skip the new topic's first offsets silently and the old ranges would
  drop the new records as duplicates. With the old checkpoint the job stops with a
  message; with a new checkpoint it reads the new topic from its start and keys Bronze's
  dedup on the new id (the old topic's ranges no longer count).
- **OFFSETS_BACKWARDS**: a partition ends below what Bronze holds (a topic recreated
  before ids were recorded, or truncated): treated as recreated.
- **RETENTION**: a partition's earliest offset is past the last one Bronze holds, at start
  or between two batches: retention deleted records the job never read. The job goes on
  from the earliest offset there is (Spark's failOnDataLoss is off; the loss is recorded here).

Each is a row in ops.kafka_offset_gaps (shown on Pipeline Ops) and a warning in the log.
docs/operations.md states the policy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from engine.bronze_sink import Ranges

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gap:
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    cause: str
    records_lost: int | None
    detail: str


def gaps_at_start(topic: str, held: Ranges, held_topic_id: str | None, topic_id: str,
                  bounds: dict[int, tuple[int, int]]) -> list[Gap]:
    """What Bronze holds of `topic` (ranges, and the id they were read under) against the
    topic now (its id, {partition: (earliest offset, next offset)})."""
    mine = {partition: intervals for (name, partition), intervals in sorted(held.items()) if name == topic}
    if held_topic_id is not None and held_topic_id != topic_id:
        return [Gap(topic, partition, intervals[0][0], intervals[-1][1], "TOPIC_RECREATED", None,
                    f"topic id {held_topic_id} -> {topic_id}: Bronze's offsets {intervals[0][0]}..{intervals[-1][1]} "
                    "belong to the deleted topic")
                for partition, intervals in mine.items()]
    gaps = []
    for partition, intervals in mine.items():
        expected = intervals[-1][1] + 1
        low, high = bounds.get(partition, (0, 0))
        if high < expected:
            gaps.append(Gap(topic, partition, high, expected - 1, "OFFSETS_BACKWARDS", None,
                            f"the partition ends at offset {high}, Bronze holds up to {expected - 1}"))
        elif low > expected:
            gaps.append(Gap(topic, partition, expected, low - 1, "RETENTION", low - expected,
                            f"earliest offset {low}: offsets {expected}..{low - 1} were deleted before the job read them"))
    return gaps


def jumps(committed: Ranges, batch: Ranges) -> dict[tuple[str, int], tuple[int, int]]:
    """Per partition, the offsets between what the table holds and a batch that starts past
    them: {(topic, partition): (first missing, last missing)}. Empty normally (a Kafka source
    reads contiguous ranges); a jump is retention's work only if those offsets are gone from
    Kafka too (transaction markers also leave holes), which gaps_in_batch asks."""
    found = {}
    for key, intervals in batch.items():
        held = committed.get(key)
        first = intervals[0][0]
        if not held or any(low <= first <= high + 1 for low, high in held):
            continue
        below = [high for _, high in held if high < first]
        if below:
            found[key] = (max(below) + 1, first - 1)
    return found


def gaps_in_batch(missing: dict[tuple[str, int], tuple[int, int]], earliest: dict[int, int]) -> list[Gap]:
    """The jumps whose offsets Kafka no longer has (earliest offset past their start)."""
    gaps = []
    for (topic, partition), (first, last) in sorted(missing.items()):
        low = earliest.get(partition, 0)
        if low > first:
            end = min(low - 1, last)
            gaps.append(Gap(topic, partition, first, end, "RETENTION", end - first + 1,
                            f"between two batches: offsets {first}..{end} were deleted before the job read them"))
    return gaps


def gap_rows(gaps: list[Gap], topic_id: str | None, action: str, writer_id: str) -> list[tuple]:
    now = datetime.now(timezone.utc)
    return [(now, g.topic, topic_id, g.partition, g.first_offset, g.last_offset, g.records_lost, g.cause, action,
             writer_id, g.detail) for g in gaps]


def record_gaps(spark, table: str, gaps: list[Gap], topic_id: str | None, action: str, writer_id: str) -> None:
    from conf.tables import OFFSET_GAP_COLUMNS

    if not gaps:
        return
    for gap in gaps:
        log.warning(f"Kafka offset gap ({gap.cause}, {action.lower()}): {gap.topic}/{gap.partition} "
                    f"{gap.first_offset}..{gap.last_offset}: {gap.detail}")
    schema = ", ".join(f"{name} {kind}" for name, kind, _ in OFFSET_GAP_COLUMNS)
    spark.createDataFrame(gap_rows(gaps, topic_id, action, writer_id), schema).writeTo(table).append()
