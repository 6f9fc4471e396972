"""Appends that happen once per Kafka record, whatever the checkpoint says.

foreachBatch is at-least-once: after a crash between an Iceberg commit and the streaming
checkpoint the batch runs again, and after a checkpoint is deleted or moved every record
is read again. Bronze and the audit therefore key their idempotency on what a batch *is*:
the Kafka offsets it holds. Each append records, in its snapshot summary, every offset
range the table holds so far (RANGES_PROPERTY, cumulative) and the batch's own ranges
(BATCH_RANGES_PROPERTY); the next append drops records already covered. A batch's range
per partition is [its smallest offset, its largest]: a Kafka source reads contiguous offset
ranges (offsets it skips hold no record: transaction markers, compacted ones). The newest
snapshot carrying the property among the current snapshot's ancestors is the only one
needed (found by parent links, never by commit time), and table maintenance never expires
it (jobs/maintenance_job.py). A table written before the property existed has
its ranges read from its rows once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from conf.tables import BATCH_RANGES_PROPERTY, RANGES_PROPERTY, TOPIC_IDS_PROPERTY, WRITER_PROPERTY

# {(topic, partition): [[first, last], ...]}: inclusive offset intervals, sorted, disjoint
# and not adjacent (merged).
Ranges = dict[tuple[str, int], list[list[int]]]


def merge_ranges(*sets: Ranges) -> Ranges:
    """Union of range sets, normalised."""
    merged: Ranges = {}
    for ranges in sets:
        for key, intervals in ranges.items():
            merged.setdefault(key, []).extend([first, last] for first, last in intervals)
    for key, intervals in merged.items():
        intervals.sort()
        normal: list[list[int]] = []
        for first, last in intervals:
            if normal and first <= normal[-1][1] + 1:
                normal[-1][1] = max(normal[-1][1], last)
            else:
                normal.append([first, last])
        merged[key] = normal
    return merged


def overlap(committed: Ranges, batch: Ranges) -> Ranges:
    """The parts of `batch`'s ranges that `committed` already holds."""
    result: Ranges = {}
    for key, intervals in batch.items():
        for first, last in intervals:
            for done_first, done_last in committed.get(key, []):
                low, high = max(first, done_first), min(last, done_last)
                if low <= high:
                    result.setdefault(key, []).append([low, high])
    return merge_ranges(result)


def covers(committed: Ranges, batch: Ranges) -> bool:
    return overlap(committed, batch) == merge_ranges(batch)


def to_json(ranges: Ranges) -> str:
    nested: dict[str, dict[str, list]] = {}
    for (topic, partition), intervals in sorted(ranges.items()):
        nested.setdefault(topic, {})[str(partition)] = intervals
    return json.dumps(nested, separators=(",", ":"))


def from_json(text: str | None) -> Ranges:
    if not text:
        return {}
    return merge_ranges({(topic, int(partition)): intervals
                         for topic, partitions in json.loads(text).items()
                         for partition, intervals in partitions.items()})


def exclusion_sql(ranges: Ranges) -> str:
    """SQL: true for a record outside `ranges` (topic/partition/offset as Bronze names them)."""
    terms = [f"(kafka_topic = '{topic.replace(chr(39), chr(39) * 2)}' AND kafka_partition = {partition} "
             f"AND kafka_offset BETWEEN {first} AND {last})"
             for (topic, partition), intervals in sorted(ranges.items()) for first, last in intervals]
    return f"NOT ({' OR '.join(terms)})" if terms else "true"


Snapshots = dict[int, tuple[int | None, bool, object]]  # id -> (parent id, carries the ranges, committed at)


def marked_lineage(current: int | None, snapshots: Snapshots) -> tuple[int | None, list[int]]:
    """(the newest snapshot carrying the ranges among `current` and its ancestors, the ids
    from `current` back to it). By parent links, not by commit time: a clock set back or a
    table rolled back orders commit times otherwise. Where expiry already cut the line (an
    ancestor is gone), the newest marked snapshot by commit time stands in."""
    lineage, seen = [], set()
    while current is not None and current in snapshots and current not in seen:
        seen.add(current)
        lineage.append(current)
        parent, marked, _ = snapshots[current]
        if marked:
            return current, lineage
        current = parent
    if current is None or current in seen:  # the whole line was read: nothing carries the ranges
        return None, lineage
    marked = [(committed, snapshot) for snapshot, (_, carries, committed) in snapshots.items() if carries]
    return (max(marked)[1] if marked else None), lineage


def nearest_marked_ancestor(current: int | None, snapshots: Snapshots) -> int | None:
    return marked_lineage(current, snapshots)[0]


def snapshot_lineage(spark, table: str) -> tuple[int | None, list[int]]:
    """marked_lineage of the table's current snapshot."""
    main = spark.sql(f"SELECT snapshot_id FROM {table}.refs WHERE name = 'main'").first()
    if main is None:
        return None, []
    snapshots = {row.snapshot_id: (row.parent_id, row.marked, row.committed_at) for row in spark.sql(
        f"SELECT snapshot_id, parent_id, summary['{RANGES_PROPERTY}'] IS NOT NULL AS marked, committed_at "
        f"FROM {table}.snapshots").collect()}
    return marked_lineage(main.snapshot_id, snapshots)


def marked_snapshot(spark, table: str) -> int | None:
    """The snapshot whose ranges describe the table as it is now (marked_lineage)."""
    return snapshot_lineage(spark, table)[0]


def ranges_of_snapshot_sql(table: str, snapshot_id: int) -> str:
    return (f"SELECT summary['{RANGES_PROPERTY}'] AS ranges, summary['{BATCH_RANGES_PROPERTY}'] AS batch, "
            f"summary['{TOPIC_IDS_PROPERTY}'] AS topic_ids FROM {table}.snapshots WHERE snapshot_id = {int(snapshot_id)}")


def ranges_from_rows_sql(table: str) -> str:
    """Offset ranges of the records a table holds (gaps and islands): a table written
    before the ranges property existed is read once this way."""
    return f"""
SELECT kafka_topic AS topic, kafka_partition AS partition, min(kafka_offset) AS first, max(kafka_offset) AS last
FROM (SELECT kafka_topic, kafka_partition, kafka_offset,
             kafka_offset - row_number() OVER (PARTITION BY kafka_topic, kafka_partition ORDER BY kafka_offset) AS island
      FROM (SELECT DISTINCT kafka_topic, kafka_partition, kafka_offset FROM {table}))
GROUP BY kafka_topic, kafka_partition, island""".strip()


def rows_to_ranges(rows: Iterable) -> Ranges:
    return merge_ranges({(row.topic, row.partition): [[row.first, row.last]] for row in rows})


def committed_state(spark, table: str) -> tuple[Ranges, Ranges, dict[str, str]]:
    """(every range the table holds, the ranges of its last streaming append, the id of the
    topic they were read from, by topic name: {} before ids were recorded)."""
    marked = marked_snapshot(spark, table)
    row = spark.sql(ranges_of_snapshot_sql(table, marked)).first() if marked is not None else None
    if row is not None:
        return from_json(row.ranges), from_json(row.batch), json.loads(row.topic_ids or "{}")
    return rows_to_ranges(spark.sql(ranges_from_rows_sql(table)).collect()), {}, {}


def committed_ranges(spark, table: str) -> tuple[Ranges, Ranges]:
    """(every range the table holds, the ranges of its last streaming append)."""
    return committed_state(spark, table)[:2]


def without_topics(ranges: Ranges, topics: set[str]) -> Ranges:
    return {key: intervals for key, intervals in ranges.items() if key[0] not in topics}


def resume_offsets(committed: Ranges, last_batch: Ranges, topic: str, partitions: Iterable[int]) -> dict | None:
    """Spark's startingOffsets for a new checkpoint over tables that already hold records of
    `topic`: each partition resumes at the first offset of the last batch appended (its Gold
    MERGE may not have committed before the old checkpoint was lost; re-running it is
    harmless) or else after the last offset held; partitions never seen start at the
    earliest offset (-2). None when the tables hold nothing of the topic."""
    if not any(key[0] == topic for key in committed):
        return None
    offsets = {}
    for partition in sorted(partitions):
        if (topic, partition) in last_batch:
            offsets[str(partition)] = last_batch[(topic, partition)][0][0]
        elif (topic, partition) in committed:
            offsets[str(partition)] = committed[(topic, partition)][-1][1] + 1
        else:
            offsets[str(partition)] = -2
    return {topic: offsets}


class AppendOnce:
    """Appends a batch's records that the table does not hold yet. The committed ranges are
    read once per table per process and kept up to date by this writer's own appends; after
    a failed append (whose commit may have landed anyway) they are read again."""

    def __init__(self, writer_id: str) -> None:
        self.writer_id = writer_id
        self.committed: dict[str, Ranges] = {}
        # The ids of the topics this writer reads ({} when unknown): ranges recorded under
        # another id are a deleted topic's and do not count (engine/offset_continuity.py) ...
        self.topic_ids: dict[str, str] = {}
        # ... nor, until this writer records an id, those of topics found recreated by their
        # offsets alone (tables written before ids were recorded).
        self.forgotten: set[str] = set()
        self.recorded_ids: dict[str, dict[str, str]] = {}

    def held(self, spark, table: str) -> Ranges:
        """The ranges `table` holds of the topics as they are now."""
        if table not in self.committed:
            ranges, _, recorded = committed_state(spark, table)
            stale = {topic for topic, topic_id in self.topic_ids.items() if recorded.get(topic, topic_id) != topic_id}
            stale |= {topic for topic in self.forgotten if topic not in recorded}
            self.committed[table] = without_topics(ranges, stale)
            self.recorded_ids[table] = {**recorded, **self.topic_ids}
        return self.committed[table]

    def __call__(self, frame, table: str, batch_ranges: Ranges) -> int:
        """Appends and returns how many of the batch's records were already in the table
        (-1: all of them, nothing written)."""
        self.held(frame.sparkSession, table)
        if covers(self.committed[table], batch_ranges):
            return -1
        done = overlap(self.committed[table], batch_ranges)
        if done:
            frame = frame.where(exclusion_sql(done))
        cumulative = merge_ranges(self.committed[table], batch_ranges)
        try:
            (frame.writeTo(table)
             .option(f"snapshot-property.{WRITER_PROPERTY}", self.writer_id)
             .option(f"snapshot-property.{RANGES_PROPERTY}", to_json(cumulative))
             .option(f"snapshot-property.{BATCH_RANGES_PROPERTY}", to_json(batch_ranges))
             .option(f"snapshot-property.{TOPIC_IDS_PROPERTY}", json.dumps(self.recorded_ids[table], sort_keys=True))
             .append())
        except Exception:
            self.committed.pop(table, None)
            raise
        self.committed[table] = cumulative
        return sum(last - first + 1 for intervals in done.values() for first, last in intervals)
