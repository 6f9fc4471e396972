"""Kafka administration shared by the stack, the generator and the benchmarks (librdkafka
through confluent-kafka)."""

from __future__ import annotations

from stack.preflight import tcp_reachable


def admin_client(bootstrap: str):
    from confluent_kafka.admin import AdminClient

    # log_level 0: a broker still starting is reported by our callers, not by
    # librdkafka's connection-refused lines on stderr.
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})


def topic_partitions(bootstrap: str, topic: str, timeout_s: float = 10.0) -> int | None:
    """How many partitions `topic` has, or None if it does not exist."""
    metadata = admin_client(bootstrap).list_topics(timeout=timeout_s)
    found = metadata.topics.get(topic)
    return None if found is None or found.error is not None else len(found.partitions)


def ensure_topic(bootstrap: str, topic: str, partitions: int, timeout_s: float = 15.0) -> None:
    """Create `topic` with `partitions` (replication 1, the local broker) unless it exists."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewTopic

    if topic_partitions(bootstrap, topic, timeout_s) is not None:
        return
    admin = admin_client(bootstrap)  # kept alive until the future resolves
    future = admin.create_topics([NewTopic(topic, partitions, 1)])[topic]
    try:
        future.result(timeout_s)
    except KafkaException as error:
        if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise


def kafka_ready(bootstrap: str, timeout_s: float = 3.0) -> bool:
    """Whether the broker answers a metadata request."""
    from confluent_kafka import KafkaException

    if not tcp_reachable(bootstrap, timeout_s):
        return False
    try:
        admin_client(bootstrap).list_topics(timeout=timeout_s)
        return True
    except KafkaException:
        return False


def topic_state(bootstrap: str, topic: str, timeout_s: float = 15.0) -> tuple[str, dict[int, tuple[int, int]]] | None:
    """(the topic's id, {partition: (earliest offset, next offset)}), or None if it does not
    exist. The id changes when a topic is deleted and created again under its name; the
    earliest offset moves up when retention deletes records."""
    from confluent_kafka import KafkaException, TopicCollection, TopicPartition
    from confluent_kafka.admin import OffsetSpec

    admin = admin_client(bootstrap)
    try:
        description = admin.describe_topics(TopicCollection([topic]))[topic].result(timeout_s)
    except KafkaException:
        return None
    partitions = [info.id for info in description.partitions]
    bounds = {}
    for spec, index in ((OffsetSpec.earliest(), 0), (OffsetSpec.latest(), 1)):
        futures = admin.list_offsets({TopicPartition(topic, p): spec for p in partitions},
                                     request_timeout=timeout_s)
        for partition, future in futures.items():
            bounds.setdefault(partition.partition, [0, 0])[index] = future.result(timeout_s).offset
    return str(description.topic_id), {p: (low, high) for p, (low, high) in sorted(bounds.items())}
