"""Kafka offsets that jump, on the local stack (engine/offset_continuity.py). A topic drained
once; then retention deletes records the job never read (delete_records, as retention
does), and the job goes on, stating the loss in ops.kafka_offset_gaps and on Pipeline Ops;
then the topic is deleted and created again: the old checkpoint is refused with a message
(it would skip the new topic's first offsets), and a new checkpoint reads the new topic
from its start, its records not dropped as duplicates of the old topic's offsets. The job
runs in the test's own process (the same code without a JVM start per run; spark-submit's
path is the kill and end-to-end tests')."""

from __future__ import annotations

import time

import pytest

from stack.kafka_admin import admin_client, ensure_topic, topic_partitions, topic_state
from tests.streaming_helpers import JobRefused, Scenario, generate

pytestmark = [pytest.mark.stack, pytest.mark.xdist_group("offset_gaps")]

DELETED_PER_PARTITION = 40


def produce(scenario, count: int, seed: int, name: str) -> None:
    assert generate(["--count", str(count), "--seed", str(seed), "--topic", scenario.topic,
                     "--output", str(scenario.work / f"{name}.jsonl"), "--quiet"]) == 0


def delete_records_below(bootstrap: str, topic: str, offsets: dict[int, int]) -> None:
    from confluent_kafka import TopicPartition

    admin = admin_client(bootstrap)  # kept alive until the futures resolve
    futures = admin.delete_records([TopicPartition(topic, p, o) for p, o in offsets.items()])
    for future in futures.values():
        future.result(30)


def recreate(settings, topic: str) -> None:
    admin = admin_client(settings.kafka_bootstrap_servers)
    admin.delete_topics([topic])[topic].result(30)
    deadline = time.monotonic() + 60
    while topic_partitions(settings.kafka_bootstrap_servers, topic) is not None:
        assert time.monotonic() < deadline, f"{topic} still exists a minute after its deletion"
        time.sleep(1)
    ensure_topic(settings.kafka_bootstrap_servers, topic, settings.kafka_partitions)


def count(spark, table: str) -> int:
    spark.sql(f"REFRESH TABLE {table}")
    return spark.table(table).count()


def gaps(spark, tables) -> list:
    spark.sql(f"REFRESH TABLE {tables.offset_gaps}")
    return spark.sql(f"SELECT cause, action, kafka_partition, first_offset, last_offset, records_lost "
                     f"FROM {tables.offset_gaps} ORDER BY detected_at, kafka_partition").collect()


def test_retention_and_a_recreated_topic_are_stated_and_lose_nothing_kafka_still_had(
        stack, spark, settings, tmp_path, trino_cursor):
    from dashboards.trino_views import apply_views, qualified_name

    bootstrap = settings.kafka_bootstrap_servers
    scenario = Scenario.generated("gaps", tmp_path, 1_200, 91, settings)
    try:
        scenario.run_here()
        tables = scenario.tables
        old_id, before = topic_state(bootstrap, scenario.topic)
        first = sum(high for _, high in before.values())  # every record the topic holds
        assert count(spark, tables.bronze) == first

        # Retention: ~900 more records, of which the first DELETED_PER_PARTITION of each partition
        # are deleted before the job reads them.
        produce(scenario, 900, 92, "more")
        _, after = topic_state(bootstrap, scenario.topic)
        assert all(after[p][1] - before[p][1] > DELETED_PER_PARTITION for p in after)
        delete_records_below(bootstrap, scenario.topic, {p: before[p][1] + DELETED_PER_PARTITION for p in after})
        scenario.run_here()
        lost = DELETED_PER_PARTITION * len(after)
        sent = sum(after[p][1] - before[p][1] for p in after)
        assert count(spark, tables.bronze) == first + sent - lost  # every record Kafka still had, once
        retention = [g for g in gaps(spark, tables) if g.cause == "RETENTION"]
        assert {(g.kafka_partition, g.first_offset, g.records_lost, g.action) for g in retention} == {
            (p, before[p][1], DELETED_PER_PARTITION, "CONTINUED") for p in after}
        apply_views(trino_cursor, tables.prefix, ["pipeline_health"])
        trino_cursor.execute(f"SELECT kafka_records_lost FROM {qualified_name('pipeline_health', tables.prefix)}")
        assert trino_cursor.fetchone()[0] == lost  # what Pipeline Ops shows

        # The topic deleted and created again, ~300 new records from offset 0 on ...
        recreate(settings, scenario.topic)
        produce(scenario, 300, 93, "reborn")
        new_id, reborn = topic_state(bootstrap, scenario.topic)
        assert new_id != old_id
        held = count(spark, tables.bronze)
        with pytest.raises(JobRefused) as refused:
            scenario.run_here()
        assert "was deleted and created again" in str(refused.value), str(refused.value)[-3000:]
        assert count(spark, tables.bronze) == held  # the old checkpoint read nothing
        # ... a new checkpoint reads them all: before, Bronze's old ranges dropped them as duplicates.
        scenario.checkpoint.rename(scenario.work / "checkpoint.old-topic")
        scenario.run_here()
        assert count(spark, tables.bronze) == held + sum(high for _, high in reborn.values())
        recreated = [(g.action, g.kafka_partition) for g in gaps(spark, tables) if g.cause == "TOPIC_RECREATED"]
        assert sorted(recreated) == sorted([("STOPPED", p) for p in after] + [("CONTINUED", p) for p in after])
    finally:
        scenario.cleanup(spark)
