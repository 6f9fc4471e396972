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

pytestmark = pytest.mark.stack


def consume_all(settings, topic: str, expected: int) -> list:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap_servers,
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=10_000)
    records = []
    for message in consumer:
        records.append(message)
        if len(records) >= expected:
            break
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
        partitions[message.key.decode()].add(message.partition)
    assert all(len(p) == 1 for p in partitions.values())
    assert len({m.partition for m in received}) == settings.kafka_partitions

    # Same records, same bytes; the record timestamp is the arrival time.
    assert sorted((m.key.decode(), m.value.decode(), m.timestamp) for m in received) == sorted(
        (r["key"], r["value"], r["arrival_ms"]) for r in sent
    )


def test_partitions_agree_with_kafkas_default_partitioner(stack, settings):
    """Keys placed by our fast murmur2 land where kafka-python's own partitioner puts them."""
    from kafka import KafkaProducer

    topic = f"gen_part_{uuid.uuid4().hex[:8]}"
    assert main(["--count", "2000", "--seed", "9", "--topic", topic, "--quiet"]) == 0
    received = consume_all(settings, topic, 2000)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    reference = {m.key: producer.send(topic, key=m.key, value=b"probe").get(timeout=10).partition for m in received[:300]}
    producer.close()
    assert all(reference[m.key] == m.partition for m in received[:300])


def test_unreachable_kafka_gets_a_message_that_says_what_to_do():
    result = subprocess.run(
        [sys.executable, "producers/ad_traffic_generator.py", "--count", "10", "--bootstrap-servers", "127.0.0.1:1"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
    )
    assert result.returncode != 0
    assert "Kafka not reachable at 127.0.0.1:1" in result.stderr and "make stack-up" in result.stderr
