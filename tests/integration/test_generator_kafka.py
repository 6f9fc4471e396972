"""The generator against the real local Kafka."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections import defaultdict

import pytest

from conf.settings import REPO_ROOT
from producers.ad_traffic_generator import main
from producers.partitioning import partition_for

pytestmark = pytest.mark.stack


def consume_all(settings, topic: str, expected: int, idle_s: float = 10.0) -> list:
    """Every record of `topic` from the beginning, until `expected` arrived or none came
    for `idle_s`."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers,
                         "group.id": f"test-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    records = []
    try:
        while len(records) < expected:
            batch = consumer.consume(10_000, timeout=idle_s)
            if not batch:
                break
            for message in batch:
                assert message.error() is None, message.error()
                records.append(message)
    finally:
        consumer.close()
    return records


def test_every_impression_lands_in_one_partition_with_its_arrival_time(stack, settings, tmp_path):
    topic = f"gen_test_{uuid.uuid4().hex[:8]}"
    output = tmp_path / "sent.jsonl"
    assert main(["--count", "20000", "--seed", "3", "--all-faults", "0.01", "--topic", topic,
                 "--output", str(output), "--quiet"]) == 0
    sent = [json.loads(line) for line in output.read_text().splitlines()]
    received = consume_all(settings, topic, len(sent))
    assert len(received) == len(sent)

    partitions = defaultdict(set)
    for message in received:
        partitions[message.key().decode()].add(message.partition())
    assert all(len(p) == 1 for p in partitions.values())
    assert len({m.partition() for m in received}) == settings.kafka_partitions

    # Same records, same bytes; the record timestamp is the arrival time.
    assert sorted((m.key().decode(), m.value().decode(), m.timestamp()[1]) for m in received) == sorted(
        (r["key"], r["value"], r["arrival_ms"]) for r in sent
    )


def test_partitions_agree_with_kafkas_default_partitioner(stack, settings):
    """Records land where the Java client's default partitioner puts their key
    (partition_for, checked against Kafka's own murmur2 vectors in tests/unit)."""
    topic = f"gen_part_{uuid.uuid4().hex[:8]}"
    assert main(["--count", "2000", "--seed", "9", "--topic", topic, "--quiet"]) == 0
    received = consume_all(settings, topic, 2000)
    assert len(received) >= 2000  # and the follow-ups of those impressions
    assert all(m.partition() == partition_for(m.key(), settings.kafka_partitions) for m in received)


def test_unreachable_kafka_gets_a_message_that_says_what_to_do():
    result = subprocess.run(
        [sys.executable, "producers/ad_traffic_generator.py", "--count", "10", "--bootstrap-servers", "127.0.0.1:1"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
    )
    assert result.returncode != 0
    assert "Kafka not reachable at 127.0.0.1:1" in result.stderr and "make stack-up" in result.stderr
