"""Outages: Kafka, the Iceberg catalog and S3 stop while the streaming job runs; it waits
for them, restarts its query from the checkpoint and loses nothing, and no record is
taken for poison. The module stops services,
so it has the stack to itself (tests/stack_locks.py)."""

from __future__ import annotations

import time

import pytest

from tests.streaming_helpers import Scenario, generate

pytestmark = [pytest.mark.stack, pytest.mark.xdist_group("restarts")]  # after the kill scenario: tests/conftest.py
STOPS_SERVICES = True


def test_outages_the_job_waits_restarts_and_loses_nothing(stack, spark, settings, tmp_path):
    """Kafka stops for 12 s in the middle of a run, later the Iceberg catalog, then S3. With a
    10 s Kafka timeout the query fails; the job waits for Kafka, S3 and the catalog, restarts
    the query from its checkpoint and drains the topic by itself. Two restarts at most
    (--max-restarts 2, so POISON_BATCH_ATTEMPTS 2): restarting blindly during a 12 s outage
    would use them up in 6 s. The audit equals the oracle's: no PROCESSING_ERROR."""
    scenario = Scenario.generated("outage", tmp_path, 4_500, 79, settings,
                                  job_args=["--max-offsets-per-trigger", "1500", "--kafka-timeout", "10",
                                            "--max-restarts", "2"],
                                  env={"TRIGGER_INTERVAL": "1 second", "POISON_BATCH_ATTEMPTS": "2"})
    job = scenario.start()
    try:
        for service, waiting in (("kafka", "waiting: Kafka not reachable"),
                                 ("iceberg-rest", "waiting: Iceberg REST catalog not reachable")):
            assert job.wait_for_batches(len(job.batch_lines()) + 1), job.tail()
            assert stack.stop(service)
            assert job.wait_for_output(waiting, timeout=120), job.tail()
            time.sleep(12)
            stack.up()
        # S3 (SeaweedFS) stops as new traffic arrives: a write that fails fails the batch, which
        # is never taken for poison (the canary's dry run fails too) and commits once S3 is back.
        assert job.wait_for_records(len(scenario.records()), timeout=600), job.tail()
        more = tmp_path / "more.jsonl"
        assert generate(["--count", "800", "--seed", "80", "--all-faults", "0.01", "--topic", scenario.topic,
                         "--output", str(more), "--quiet"]) == 0
        with open(scenario.output, "a") as sent:
            sent.write(more.read_text())
        assert stack.stop("seaweedfs")
        time.sleep(12)
        stack.up()
        back = time.monotonic()
        assert job.wait_for_records(len(scenario.records()), timeout=600), job.tail()
        print(f"\nS3 back -> topic drained in {time.monotonic() - back:.1f}s")
        assert job.process.poll() is None, "the job ended instead of resuming"
        assert sum(line.startswith("query failed") for line in job.log) >= 2, "an outage never failed the query"
    finally:
        job.kill()
        stack.up()  # whatever happened, leave every service running for the next test
    try:
        scenario.assert_bronze_exactly_once(spark)
        scenario.assert_gold_and_audit_match(spark)
    finally:
        scenario.cleanup(spark)
