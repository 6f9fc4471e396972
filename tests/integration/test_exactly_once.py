"""Exactly-once effect under hard kills: the streaming job is SIGKILLed at least five
times while it drains 100k events (faults on) — twice at chosen points between commits,
the rest at random moments — and restarted from its checkpoint each time. Afterwards
Bronze holds every Kafka record exactly once, Gold and the audit equal the oracle, and
a replay from Bronze equals live Gold."""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from conf.settings import REPO_ROOT
from conf.tables import AttributionRules, Tables
from producers.ad_traffic_generator import main as generate
from tests.attribution_helpers import assert_gold_matches, drop_namespaces, gold_rows, spark_submit_env
from tests.integration.test_attribution_e2e import records_from_output
from tests.oracle import attribute

pytestmark = pytest.mark.stack


class JobProcess:
    """`spark-submit jobs/attribution_streaming_job.py` in its own process group, its
    output read line by line."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        venv_bin = os.path.dirname(sys.executable)
        self.process = subprocess.Popen(
            [os.path.join(venv_bin, "spark-submit"), "jobs/attribution_streaming_job.py", *args],
            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
            self.log.append(line)

    def wait_for_batches(self, count: int, timeout: float = 240) -> bool:
        """True once `count` batch lines appeared, False if the process ended first."""
        seen, deadline = 0, time.monotonic() + timeout
        while seen < count and time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                if self.process.poll() is not None:
                    return False
                continue
            seen += line.startswith("batch ")
        return seen >= count

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=60)


@pytest.fixture(scope="module")
def killed_run(stack, spark, settings, tmp_path_factory):
    run_id = uuid.uuid4().hex[:8]
    tables = Tables(f"kill{run_id}_")
    topic = f"kill_{run_id}"
    work = tmp_path_factory.mktemp("kill")
    output = work / "sent.jsonl"
    assert generate(["--count", "100000", "--seed", "77", "--all-faults", "0.01", "--topic", topic,
                     "--output", str(output), "--quiet"]) == 0
    base_env = spark_submit_env(tables.prefix, TRIGGER_INTERVAL="1 second")
    args = ["--topic", topic, "--checkpoint", str(work / "checkpoint"), "--max-offsets-per-trigger", "15000"]
    rng = random.Random(5)
    kills = []
    # Two crashes at chosen points: right after the Bronze commit, and right after the
    # Gold MERGE commit (before the checkpoint records the batch as done).
    for crash_point in ("bronze", "gold"):
        job = JobProcess(args, {**base_env, "LAKEHOUSE_CRASH_AFTER": crash_point})
        job.process.wait(timeout=300)
        assert any(f"LAKEHOUSE_CRASH_AFTER={crash_point}" in line for line in job.log), "".join(job.log[-30:])
        kills.append(crash_point)
    # Random SIGKILLs of the whole process group while batches run.
    while len(kills) < 6:
        job = JobProcess(args, base_env)
        if not job.wait_for_batches(rng.randint(0, 1)):
            break  # drained before we could kill it
        time.sleep(rng.uniform(0.0, 6.0))
        job.kill()
        kills.append("random")
    final = JobProcess(["--trigger", "available-now", *args], base_env)
    assert final.process.wait(timeout=600) == 0, "".join(final.log[-40:])
    records = records_from_output(output, settings.kafka_partitions)
    yield {"tables": tables, "records": records, "expected": attribute(records), "kills": kills}
    drop_namespaces(spark, tables)


def test_the_job_was_killed_at_least_five_times(killed_run):
    assert len(killed_run["kills"]) >= 5, killed_run["kills"]


def test_bronze_has_every_record_exactly_once(spark, killed_run):
    rows = spark.table(killed_run["tables"].bronze).select("kafka_partition", "kafka_offset").collect()
    coordinates = [(r.kafka_partition, r.kafka_offset) for r in rows]
    assert len(coordinates) == len(set(coordinates)), "a Kafka record is in Bronze twice"
    assert set(coordinates) == {(r["partition"], r["offset"]) for r in killed_run["records"]}


def test_gold_and_audit_equal_the_oracle(spark, killed_run):
    expected = killed_run["expected"]
    assert_gold_matches(gold_rows(spark, f"SELECT * FROM {killed_run['tables'].gold}"), expected.gold)
    audit = spark.table(killed_run["tables"].audit).select("kafka_partition", "kafka_offset", "reason").collect()
    assert len(audit) == len(expected.audit)
    assert {(r.kafka_partition, r.kafka_offset): r.reason for r in audit} == expected.audit


def test_replay_from_bronze_equals_live_gold(spark, killed_run):
    from jobs.replay_job import replayed_gold
    from jobs.verify_job import differences

    tables = killed_run["tables"]
    replayed = replayed_gold(spark.table(tables.bronze), AttributionRules())
    assert differences(spark.table(tables.gold), replayed).count() == 0


def test_replay_and_verify_commands(spark, killed_run, capsys):
    """`make replay` rebuilds a shadow table, `make verify` is clean; a tampered shadow
    makes verify fail, naming the impression."""
    from jobs import replay_job, verify_job

    prefix = killed_run["tables"].prefix
    assert replay_job.main(["--table-prefix", prefix]) == 0
    assert verify_job.main(["--table-prefix", prefix]) == 0
    assert "no differences" in capsys.readouterr().out
    shadow = f"{killed_run['tables'].gold}_replay"
    victim = spark.sql(f"SELECT impression_id FROM {shadow} WHERE is_converted LIMIT 1").first().impression_id
    spark.sql(f"UPDATE {shadow} SET revenue = revenue + 1 WHERE impression_id = '{victim}'")
    assert verify_job.main(["--table-prefix", prefix]) == 1
    output = capsys.readouterr().out
    assert "1 impressions differ" in output and victim in output
    assert replay_job.main(["--table-prefix", prefix, "--target", killed_run["tables"].gold]) == 2


def test_sigterm_stops_after_the_current_batch_and_a_restart_completes(stack, spark, settings, tmp_path):
    """SIGTERM to the driver lets the running batch commit, exits 0, and loses nothing."""
    import psutil

    run_id = uuid.uuid4().hex[:8]
    tables, topic = Tables(f"term{run_id}_"), f"term_{run_id}"
    output = tmp_path / "sent.jsonl"
    assert generate(["--count", "12000", "--seed", "78", "--all-faults", "0.01", "--topic", topic,
                     "--output", str(output), "--quiet"]) == 0
    env = spark_submit_env(tables.prefix, TRIGGER_INTERVAL="1 second")
    args = ["--topic", topic, "--checkpoint", str(tmp_path / "checkpoint"), "--max-offsets-per-trigger", "4000"]
    try:
        job = JobProcess(args, env)
        assert job.wait_for_batches(1)
        def command_line(process) -> str:
            try:
                return " ".join(process.cmdline())
            except psutil.Error:  # short-lived helpers of spark-submit come and go (zombies)
                return ""

        driver = next(p for p in psutil.Process(job.process.pid).children(recursive=True)
                      if "attribution_streaming_job.py" in command_line(p))
        driver.send_signal(signal.SIGTERM)
        assert job.process.wait(timeout=180) == 0, "".join(job.log[-30:])
        assert any("SIGTERM: stopping after the current batch" in line for line in job.log)
        printed = sum(int(line.split()[2].replace(",", "")) for line in job.log if line.startswith("batch "))
        assert spark.table(tables.bronze).count() == printed  # every batch it reported is whole in Bronze
        final = JobProcess(["--trigger", "available-now", *args], env)
        assert final.process.wait(timeout=300) == 0
        records = records_from_output(output, settings.kafka_partitions)
        assert_gold_matches(gold_rows(spark, f"SELECT * FROM {tables.gold}"), attribute(records).gold)
        assert spark.table(tables.bronze).count() == len(records)
    finally:
        drop_namespaces(spark, tables)
