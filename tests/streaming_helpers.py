"""Streaming-job scenarios on the local stack: generate a topic with a fixed seed, run
`spark-submit jobs/attribution_streaming_job.py` against its own tables and checkpoint
(in the foreground or as a process to kill, signal or watch), and derive the oracle's
expectation from the generator's --output file."""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from conf.settings import REPO_ROOT
from conf.tables import Tables
from producers.ad_traffic_generator import main as generate
from producers.partitioning import partition_for
from tests.attribution_helpers import assert_gold_matches, drop_namespaces, gold_rows, spark_submit_env
from tests.oracle import attribute

BATCH_LINE = re.compile(r"^batch \d+: ([\d,]+) records")  # the job's line per committed batch
ERROR_LINE = re.compile(r"\bERROR\b|^Traceback")  # Spark's log4j errors, Python's tracebacks
SPARK_SUBMIT = os.path.join(os.path.dirname(sys.executable), "spark-submit")
JOB = "jobs/attribution_streaming_job.py"


def records_from_output(path, partitions: int) -> list[dict]:
    """What Kafka holds, derived from the generator's file alone: the partition is the
    default partitioner's, offsets count up per partition in send order."""
    next_offset = defaultdict(int)
    records = []
    for line in Path(path).read_text().splitlines():
        sent = json.loads(line)
        partition = partition_for(sent["key"].encode(), partitions)
        records.append({**sent, "partition": partition, "offset": next_offset[partition]})
        next_offset[partition] += 1
    return records


class JobProcess:
    """The streaming job in its own process group, its output read line by line."""

    def __init__(self, args: list[str], env: dict[str, str], script: str = JOB) -> None:
        self.process = subprocess.Popen(
            [SPARK_SUBMIT, script, *args], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
            self.log.append(line)

    def wait_for_batches(self, count: int, timeout: float = 240) -> bool:
        """True once `count` more batch lines appeared, False if the process ended first."""
        seen, deadline = 0, time.monotonic() + timeout
        while seen < count and time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                if self.process.poll() is not None:
                    return False
                continue
            seen += bool(BATCH_LINE.match(line))
        return seen >= count

    def wait_for_output(self, text: str, timeout: float) -> bool:
        """True once a line containing `text` appeared, False on timeout or exit."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if text in self.lines.get(timeout=1):
                    return True
            except queue.Empty:
                if self.process.poll() is not None:
                    return False
        return False

    def batch_lines(self) -> list[str]:
        return [line for line in list(self.log) if BATCH_LINE.match(line)]

    def records_done(self) -> int:
        """Records of every batch the job reported as committed."""
        return sum(int(m.group(1).replace(",", "")) for line in list(self.log) if (m := BATCH_LINE.match(line)))

    def wait_for_records(self, total: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.records_done() < total and time.monotonic() < deadline and self.process.poll() is None:
            time.sleep(0.5)
        return self.records_done() >= total

    def tail(self, lines: int = 40) -> str:
        """The last lines, then the first error logged before them: a secondary failure's stack
        trace (a stopped SparkContext) can fill the tail and hide its cause."""
        log = list(self.log)
        text = "".join(log[-lines:])
        first = next((i for i, line in enumerate(log[:-lines]) if ERROR_LINE.search(line)), None)
        if first is not None:
            text += "\nthe first error the job logged:\n" + "".join(log[first:first + 25])
        return text

    def driver(self):
        """The Python driver (spark-submit's child), as a psutil process."""
        import psutil

        def command_line(process) -> str:
            try:
                return " ".join(process.cmdline())
            except psutil.Error:  # short-lived helpers of spark-submit come and go (zombies)
                return ""

        return next(p for p in psutil.Process(self.process.pid).children(recursive=True)
                    if os.path.basename(JOB) in command_line(p))

    def stop(self, timeout: float = 120) -> None:
        """SIGTERM to the driver (it finishes the running batch and exits), SIGKILL if it does not."""
        if self.process.poll() is None:
            try:
                self.driver().send_signal(signal.SIGTERM)
                self.process.wait(timeout=timeout)
            except (StopIteration, subprocess.TimeoutExpired):
                self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=60)


class JobRefused(Exception):
    """The job stopped with an error before or instead of its batches (Scenario.run_here)."""


@dataclass
class Scenario:
    """One generated topic with its own tables and checkpoint."""

    name: str
    work: Path
    count: int
    seed: int
    partitions: int
    job_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        run_id = uuid.uuid4().hex[:8]
        self.tables = Tables(f"{self.name}{run_id}_")
        self.topic = f"{self.name}_{run_id}"
        self.output = self.work / "sent.jsonl"
        self.checkpoint = self.work / "checkpoint"
        self.env = spark_submit_env(self.tables.prefix, **self.env)

    @classmethod
    def generated(cls, name: str, work: Path, count: int, seed: int, settings, **options) -> "Scenario":
        scenario = cls(name, Path(work), count, seed, settings.kafka_partitions, **options)
        assert generate(["--count", str(count), "--seed", str(seed), "--all-faults", "0.01",
                         "--topic", scenario.topic, "--output", str(scenario.output), "--quiet"]) == 0
        return scenario

    def args(self, *extra: str) -> list[str]:
        return [*extra, "--topic", self.topic, "--checkpoint", str(self.checkpoint), *self.job_args]

    def start(self, *extra: str, script: str = JOB, **env: str) -> JobProcess:
        return JobProcess(self.args(*extra), {**self.env, **env}, script)

    def drain(self, *extra: str, timeout: float = 900) -> subprocess.CompletedProcess:
        """Run the job with --trigger available-now in the foreground; asserts exit 0. `extra`
        comes after the scenario's own job arguments, so it overrides them."""
        job = subprocess.run([SPARK_SUBMIT, JOB, *self.args("--trigger", "available-now"), *extra], cwd=REPO_ROOT,
                             env=self.env, capture_output=True, text=True, timeout=timeout)
        assert job.returncode == 0, job.stdout[-2000:] + job.stderr[-3000:]
        return job

    def run_here(self, *extra: str) -> str:
        """The job drained (--trigger available-now) in this process, on the tests' own JVM: the
        same code as spark-submit runs, without a JVM start. Its output; a refusal (the job's
        SystemExit) adds its `error:` line and raises JobRefused with the output."""
        from jobs.attribution_streaming_job import parse_args, run

        out = io.StringIO()
        with contextlib.redirect_stdout(out):  # the job logs to whatever stdout is (conf/logs.py)
            try:
                run(parse_args([*self.args("--trigger", "available-now"), "--table-prefix", self.tables.prefix,
                                *extra]))
            except SystemExit as refused:
                raise JobRefused(f"{out.getvalue()}{refused.code}") from None
        return out.getvalue()

    def records(self) -> list[dict]:
        return records_from_output(self.output, self.partitions)

    def expected(self):
        return attribute(self.records())

    def cleanup(self, spark) -> None:
        drop_namespaces(spark, self.tables)

    # --- the checks every failure scenario ends with

    def refresh(self, spark) -> None:
        """This session may hold table metadata from before the job's last commits (Iceberg's
        catalog cache): read the tables afresh."""
        for table in (self.tables.bronze, self.tables.gold, self.tables.audit):
            spark.sql(f"REFRESH TABLE {table}")

    def assert_bronze_exactly_once(self, spark) -> None:
        self.refresh(spark)
        rows = spark.table(self.tables.bronze).select("kafka_partition", "kafka_offset").collect()
        coordinates = [(r.kafka_partition, r.kafka_offset) for r in rows]
        assert len(coordinates) == len(set(coordinates)), "a Kafka record is in Bronze twice"
        assert set(coordinates) == {(r["partition"], r["offset"]) for r in self.records()}, "Bronze misses records"

    def assert_gold_and_audit_match(self, spark, expected=None) -> None:
        expected = expected or self.expected()
        self.refresh(spark)
        assert_gold_matches(gold_rows(spark, f"SELECT * FROM {self.tables.gold}"), expected.gold)
        audit = spark.table(self.tables.audit).select("kafka_partition", "kafka_offset", "reason").collect()
        got = Counter((r.kafka_partition, r.kafka_offset) for r in audit)
        twice = [c for c, n in got.items() if n > 1]
        missing, extra = set(expected.audit) - set(got), set(got) - set(expected.audit)
        assert not (twice or missing or extra), (
            f"audit: {len(twice)} twice (e.g. {twice[:3]}), {len(missing)} missing (e.g. {sorted(missing)[:3]}), "
            f"{len(extra)} unexpected (e.g. {sorted(extra)[:3]})")
        assert {(r.kafka_partition, r.kafka_offset): r.reason for r in audit} == expected.audit
