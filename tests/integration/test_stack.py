"""Proof that the local stack is real: Spark writes Iceberg tables through the REST
catalog onto S3 and Trino reads the same rows; keyed records from a Python producer come back
through Spark's Kafka source; the launcher reports status and refuses taken ports."""

from __future__ import annotations

import json
import socket
import uuid

import pytest

from stack.launcher import LocalStack, StackError, port_owner

pytestmark = pytest.mark.stack


def test_spark_writes_iceberg_on_s3_and_trino_reads_the_same_rows(spark, namespace, trino_cursor, settings):
    table = f"lakehouse.{namespace}.campaign_spend"
    spark.sql(
        f"CREATE TABLE {table} (campaign_id string, spend decimal(12,2), day date) "
        "USING iceberg PARTITIONED BY (day) TBLPROPERTIES ('format-version'='2')"
    )
    rows = [(f"camp-{i}", f"{i * 1.25:.2f}", f"2026-11-{1 + i % 3:02d}") for i in range(50)]
    spark.createDataFrame(rows, "campaign_id string, spend string, day string").selectExpr(
        "campaign_id", "cast(spend as decimal(12,2)) spend", "cast(day as date) day"
    ).writeTo(table).append()

    location = spark.sql(f"DESCRIBE TABLE EXTENDED {table}").where("col_name = 'Location'").first().data_type
    assert location.startswith(f"s3://{settings.s3_bucket}/warehouse/")

    trino_cursor.execute(f"SELECT count(*), sum(spend), count(DISTINCT day) FROM {table}")
    count, total, days = trino_cursor.fetchone()
    assert (count, float(total), days) == (50, sum(i * 1.25 for i in range(50)), 3)

    trino_cursor.execute(f"SELECT campaign_id, spend FROM {table} WHERE day = DATE '2026-11-02' ORDER BY campaign_id")
    from_trino = [(c, float(s)) for c, s in trino_cursor.fetchall()]
    from_spark = sorted(
        (r.campaign_id, float(r.spend)) for r in spark.table(table).where("day = '2026-11-02'").collect()
    )
    assert from_trino == from_spark and len(from_trino) == 17


def test_trino_sees_spark_row_level_deletes(spark, namespace, trino_cursor):
    """Merge-on-read delete files written by Spark are applied by Trino."""
    table = f"lakehouse.{namespace}.state"
    spark.sql(
        f"CREATE TABLE {table} (id bigint, value string) USING iceberg TBLPROPERTIES "
        "('format-version'='2', 'write.merge.mode'='merge-on-read', 'write.update.mode'='merge-on-read', "
        "'write.delete.mode'='merge-on-read')"
    )
    spark.sql(f"INSERT INTO {table} VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    spark.sql(
        f"MERGE INTO {table} t USING (SELECT 2 AS id, 'B' AS value UNION ALL SELECT 4, 'd') s "
        "ON t.id = s.id WHEN MATCHED THEN UPDATE SET value = s.value WHEN NOT MATCHED THEN INSERT *"
    )
    trino_cursor.execute(f"SELECT id, value FROM {table} ORDER BY id")
    assert trino_cursor.fetchall() == [[1, "a"], [2, "B"], [3, "c"], [4, "d"]]


def test_keyed_python_records_come_back_through_the_spark_kafka_source(spark, stack, settings):
    from confluent_kafka import Producer

    from stack.kafka_admin import ensure_topic

    topic = f"stack_test_{uuid.uuid4().hex[:8]}"
    ensure_topic(settings.kafka_bootstrap_servers, topic, 3)

    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "acks": "all",
                         "partitioner": "murmur2_random"})
    sent = []
    for i in range(300):
        key = f"imp-{i % 40}"
        value = json.dumps({"event_id": f"e-{i}", "impression_id": key})
        sent.append((key, value))
        producer.produce(topic, value.encode(), key.encode())
    assert producer.flush(30) == 0

    received = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap_servers)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .load()
        .selectExpr("CAST(key AS STRING) key", "CAST(value AS STRING) value", "partition")
        .collect()
    )
    assert sorted((r.key, r.value) for r in received) == sorted(sent)
    partitions_per_key = {}
    for row in received:
        partitions_per_key.setdefault(row.key, set()).add(row.partition)
    assert all(len(p) == 1 for p in partitions_per_key.values()), "a key spread over partitions"
    assert len({row.partition for row in received}) > 1


def test_status_reports_every_service_healthy(stack, capsys):
    assert stack.status() is True
    output = capsys.readouterr().out
    for name, port in [("seaweedfs", 8333), ("kafka", 9092), ("iceberg-rest", 8181), ("trino", 8080)]:
        assert any(name in line and str(port) in line and "healthy" in line for line in output.splitlines())


def test_up_is_idempotent(stack, capsys):
    core = stack.required()
    pids = {s.name: stack.process(s).pid for s in core}
    stack.up()
    assert {s.name: stack.process(s).pid for s in core} == pids
    assert capsys.readouterr().out.count("already running") == 4


def test_every_service_listens_on_loopback_only(stack):
    import psutil

    ours = set()
    for process in filter(None, map(stack.process, stack.services)):  # Superset too, when it runs
        ours |= {process.pid, *(child.pid for child in process.children(recursive=True))}
    listening = [c for c in psutil.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN and c.pid in ours]
    assert listening
    assert all(c.laddr.ip in ("127.0.0.1", "::ffff:127.0.0.1") for c in listening), listening


def test_the_runtime_dir_and_its_secrets_are_this_users_only(stack, settings):
    """Keys and data under the runtime dir: the dir 0700, the S3 credentials and (when Superset
    runs) its key and metadata 0600; no process of the stack has a password in its argv."""
    from pathlib import Path

    runtime = Path(settings.runtime_dir)
    mode = lambda path: path.stat().st_mode & 0o777  # noqa: E731
    assert mode(runtime) == 0o700
    assert mode(runtime / "seaweedfs" / "s3.json") == 0o600
    for secret in ("superset.db", "secret_key"):
        if (runtime / "superset" / secret).exists():
            assert mode(runtime / "superset" / secret) == 0o600, secret
    import psutil

    for process in filter(None, map(stack.process, stack.services)):
        for member in (process, *process.children(recursive=True)):
            try:
                command = member.cmdline()
            except psutil.Error:  # a helper that just ended (a zombie): it has no arguments left
                continue
            assert "--password" not in command, command


def test_a_taken_port_is_refused_with_its_owner(settings, tmp_path):
    """A second stack aimed at a port something else holds names the port and the owner."""
    from conf.settings import Settings

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        other = Settings(
            runtime_dir=str(tmp_path),
            trino_port=taken,
            kafka_bootstrap_servers="127.0.0.1:1",  # never reached: trino fails first
        )
        trino = [s for s in LocalStack(other).services if s.name == "trino"][0]
        with pytest.raises(StackError, match=rf"port {taken} \(needed by trino\) is taken by pid \d+ \(python"):
            LocalStack(other)._check_ports_free(trino)
        assert "python" in port_owner(taken)
