"""End to end on the local stack: the generator (fixed seed, every fault on, simulated
time) -> Kafka -> `spark-submit jobs/attribution_streaming_job.py --trigger available-now`
-> Bronze, audit and Gold equal the oracle computed from the generator's --output file,
and Trino returns the same totals."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import uuid
from collections import defaultdict

import pytest

from conf.settings import REPO_ROOT
from conf.tables import Tables
from producers.ad_traffic_generator import main as generate
from producers.partitioning import partition_for
from tests.attribution_helpers import assert_gold_matches, drop_namespaces, gold_rows, spark_submit_env
from tests.oracle import attribute

pytestmark = pytest.mark.stack


def records_from_output(path, partitions: int) -> list[dict]:
    """What Kafka holds, derived from the generator's file alone: the partition is the
    default partitioner's, offsets count up per partition in send order."""
    next_offset = defaultdict(int)
    records = []
    for line in path.read_text().splitlines():
        sent = json.loads(line)
        partition = partition_for(sent["key"].encode(), partitions)
        records.append({**sent, "partition": partition, "offset": next_offset[partition]})
        next_offset[partition] += 1
    return records


@pytest.fixture(scope="module")
def pipeline_run(stack, spark, settings, tmp_path_factory):
    run_id = uuid.uuid4().hex[:8]
    tables = Tables(f"e2e{run_id}_")
    topic = f"e2e_{run_id}"
    work = tmp_path_factory.mktemp("e2e")
    output = work / "sent.jsonl"
    assert generate(["--count", "30000", "--seed", "21", "--all-faults", "0.01", "--topic", topic,
                     "--output", str(output), "--quiet"]) == 0
    env = spark_submit_env(tables.prefix)
    job = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "spark-submit"), "jobs/attribution_streaming_job.py",
         "--trigger", "available-now", "--topic", topic, "--checkpoint", str(work / "checkpoint"),
         "--max-offsets-per-trigger", "10000"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert job.returncode == 0, job.stderr[-3000:]
    records = records_from_output(output, settings.kafka_partitions)
    yield {"tables": tables, "records": records, "expected": attribute(records), "log": job.stdout}
    drop_namespaces(spark, tables)


def test_the_job_ran_in_several_micro_batches(pipeline_run):
    batch_lines = [line for line in pipeline_run["log"].splitlines() if line.startswith("batch ")]
    assert len(batch_lines) >= 3, pipeline_run["log"]


def test_bronze_holds_every_kafka_record_exactly_once(spark, pipeline_run):
    bronze = spark.table(pipeline_run["tables"].bronze).select("kafka_partition", "kafka_offset", "raw_payload").collect()
    coordinates = [(row.kafka_partition, row.kafka_offset) for row in bronze]
    assert len(coordinates) == len(set(coordinates)) == len(pipeline_run["records"])
    assert {(r.kafka_partition, r.kafka_offset): r.raw_payload for r in bronze} == {
        (r["partition"], r["offset"]): r["value"] for r in pipeline_run["records"]}


def test_gold_equals_the_oracle(spark, pipeline_run):
    actual = gold_rows(spark, f"SELECT * FROM {pipeline_run['tables'].gold}")
    expected = pipeline_run["expected"]
    assert_gold_matches(actual, expected.gold)
    dispositions = {c: d for row in actual.values() for c, d in row["dispositions"].items()}
    assert dispositions == expected.dispositions
    kinds = set(dispositions.values())
    assert {"DUPLICATE", "CLICK_BEFORE_IMPRESSION", "ATTRIBUTED"} <= kinds
    assert any(row["is_late"] for row in actual.values())


def test_audit_equals_the_oracle(spark, pipeline_run):
    audit = spark.table(pipeline_run["tables"].audit).collect()
    assert {(row.kafka_partition, row.kafka_offset): row.reason for row in audit} == pipeline_run["expected"].audit
    assert {"PARSE_ERROR", "MISSING_KEY", "UNKNOWN_TYPE", "BAD_VALUE"} == {row.reason for row in audit}


def test_dispositions_view_in_trino_equals_the_oracle(trino_cursor, pipeline_run):
    from dashboards.trino_views import apply_views

    apply_views(trino_cursor, pipeline_run["tables"].prefix, ["attribution_dispositions"])
    trino_cursor.execute("SELECT kafka_partition, kafka_offset, disposition FROM "
                         f"lakehouse.{pipeline_run['tables'].prefix}gold.attribution_dispositions")
    assert {(p, o): d for p, o, d in trino_cursor.fetchall()} == pipeline_run["expected"].dispositions


def test_trino_returns_the_oracles_totals(trino_cursor, pipeline_run):
    gold = pipeline_run["expected"].gold.values()
    trino_cursor.execute(
        "SELECT count(*), count_if(is_clicked), count_if(is_converted), sum(cost), sum(revenue), "
        f"sum(revenue_out_of_window) FROM {pipeline_run['tables'].gold}")
    impressions, clicks, conversions, cost, revenue, out_of_window = trino_cursor.fetchone()
    assert (impressions, clicks, conversions) == (
        len(gold), sum(r["is_clicked"] for r in gold), sum(r["is_converted"] for r in gold))
    for got, want in [(cost, sum(r["cost"] for r in gold)), (revenue, sum(r["revenue"] for r in gold)),
                      (out_of_window, sum(r["revenue_out_of_window"] for r in gold))]:
        assert math.isclose(got, want, rel_tol=1e-9)


def test_stream_progress_gives_lag_and_latency_per_batch(trino_cursor, pipeline_run):
    """ops.stream_progress, read through Trino: rows per batch add up to what was produced,
    consumer lag counts down to zero, and each batch's max event time is the latest valid
    event time among the records of its offset ranges."""
    from tests.oracle import validate

    records = pipeline_run["records"]
    trino_cursor.execute(
        "SELECT batch_id, num_input_rows, offsets_behind, to_unixtime(max_event_time), "
        "date_diff('millisecond', max_event_time, batch_timestamp) AS latency_ms, "
        "transform(partitions, p -> ROW(p.kafka_partition, p.start_offset, p.end_offset)) "
        f"FROM {pipeline_run['tables'].stream_progress} WHERE num_input_rows > 0 ORDER BY batch_id")
    batches = trino_cursor.fetchall()
    assert len(batches) >= 3
    assert sum(b[1] for b in batches) == len(records)
    consumed = 0
    for batch_id, rows, behind, max_event_seconds, latency_ms, ranges in batches:
        consumed += rows
        assert behind == len(records) - consumed, batch_id
        in_batch = [r for r in records for p, start, end in ranges
                    if r["partition"] == p and (start or 0) <= r["offset"] < end]
        assert len(in_batch) == rows
        event_times = [event["event_us"] for reason, event in (validate(r["value"]) for r in in_batch) if not reason]
        assert round(max_event_seconds * 1_000_000) == max(event_times)
        assert latency_ms is not None  # simulated event times lie months back: the figure is large
