"""The attribution streaming job: Kafka `ad_events` -> Bronze (append) + audit (append)
+ Gold (MERGE), one foreachBatch per micro-batch.

    spark-submit jobs/attribution_streaming_job.py [--trigger available-now]
    make attribution ARGS='--trigger available-now'

Exactly-once effect: Bronze and audit appends record the Kafka offset ranges they hold in
the Iceberg snapshot summary and append no record twice, whatever the checkpoint says
(jobs/bronze_sink.py); the Gold MERGE is idempotent by construction (jobs/gold_merge.py).
A batch that keeps failing has its failing records isolated (jobs/poison.py); one job per
checkpoint (jobs/checkpoint_lock.py). docs/design.md §5 states the guarantees.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


from conf.settings import Settings, ValidationLimits, get_settings
from conf.tables import AttributionRules, Tables, ensure_tables
from jobs.bronze_sink import AppendOnce, merge_ranges
from jobs.gold_merge import (
    batch_days_sql,
    day_of,
    days_predicate,
    first_line,
    is_commit_conflict,
    merge_source,
    merge_sql,
)
from jobs.poison import find_culprits, selection_sql
from jobs.compaction import ActiveDayCompaction
from jobs.stream_progress import ProgressRecorder, progress_row, write_progress
from jobs.transforms import (
    overflow_audit,
    parse_records,
    quarantined_audit,
    quarantined_bronze,
    to_audit,
    to_bronze,
    to_touches,
    touches_by_impression,
    with_validation,
)


def event_time_of(micros: int | None) -> datetime | None:
    """Epoch microseconds as a UTC datetime; None for a time Python cannot hold."""
    try:
        return datetime.fromtimestamp(micros / 1e6, tz=timezone.utc) if micros is not None else None
    except (OverflowError, ValueError, OSError):
        return None


def failure_signature(error: BaseException) -> str:
    """An error's first line without its numbers (stage, task and object ids change from
    one attempt to the next): two attempts failing 'the same way' share it."""
    return re.sub(r"\d+", "#", first_line(error))


class AttributionBatch:
    """The foreachBatch function: Bronze, audit, then Gold, each safe to run twice. A batch
    that fails the same way `poison_attempts` times has the records that make it fail
    isolated (jobs/poison.py): they go to Bronze and to the audit as PROCESSING_ERROR, the
    rest is processed as usual."""

    def __init__(self, rules: AttributionRules, writer_id: str, tables: Tables,
                 sinks: tuple[str, ...] = ("bronze", "audit", "gold"),
                 limits: ValidationLimits = ValidationLimits(), poison_attempts: int = 3,
                 services_up=lambda: True,
                 prepare: Callable[[DataFrame, ValidationLimits], DataFrame] | None = None) -> None:
        self.rules, self.writer_id, self.tables, self.sinks = rules, writer_id, tables, sinks
        self.limits, self.poison_attempts, self.services_up = limits, poison_attempts, services_up
        # Kafka records -> parsed and validated records; a test may wrap it to inject a failure.
        self.prepare = prepare or (lambda batch, limits: with_validation(parse_records(batch), limits))
        self.append_once = AppendOnce(writer_id)
        self.history: list[dict] = []  # one entry per batch: records and seconds per phase
        self.max_event_times: dict[int, datetime] = {}
        self.failures: dict[int, tuple[str, int, str]] = {}  # batch id -> (signature, count, error line)
        self.isolated: dict[int, tuple[list[tuple[str, int, int]], str]] = {}  # batch id -> (coordinates, error)
        self.recorder: ProgressRecorder | None = None
        self.compaction: ActiveDayCompaction | None = None  # in-job compaction of the Gold days being written
        self.busy = threading.Lock()  # held while a batch runs: a graceful stop waits for it
        self.progress_lock = threading.Lock()  # one ops.stream_progress write at a time
        self.stopping = False

    def record_progress(self, spark) -> int:
        """Write the progress events received so far to ops.stream_progress. Events whose
        write fails go back in the queue for the next write: none is dropped."""
        if self.recorder is None:
            return 0
        with self.progress_lock:
            documents = self.recorder.drain()
            rows = [progress_row(d, self.max_event_times.get(d["batchId"])) for d in documents]
            try:
                return write_progress(spark, self.tables.stream_progress, rows)
            except Exception:
                self.recorder.requeue(documents)
                raise

    def __call__(self, batch, batch_id: int) -> None:
        with self.busy:
            if self.stopping:  # raising leaves the batch uncommitted: it runs again on restart
                raise RuntimeError(f"batch {batch_id} not started: the job is stopping")
            failed = self.failures.get(batch_id)
            if failed and failed[1] >= self.poison_attempts and batch_id not in self.isolated:
                self._isolate(batch, batch_id, failed[2])
            try:
                self._process(batch, batch_id)
            except Exception as error:
                signature = failure_signature(error)
                count = failed[1] + 1 if failed and failed[0] == signature else 1
                self.failures = {batch_id: (signature, count, first_line(error))}
                raise
            self.failures.pop(batch_id, None)
            self.isolated.pop(batch_id, None)

    def _isolate(self, batch, batch_id: int, error: str) -> None:
        """Find the records that make this batch fail by bisection over dry runs."""
        if not self.services_up():
            print(f"batch {batch_id}: failed {self.poison_attempts} times ({error}); a service is down, "
                  "so the batch is retried whole", flush=True)
            return
        print(f"batch {batch_id}: failed {self.poison_attempts} times the same way ({error}); "
              "isolating the records that cause it ...", flush=True)
        started = time.monotonic()
        coordinates = sorted((r.topic, r.partition, r.offset) for r in batch.select("topic", "partition", "offset")
                             .collect())
        culprits, trials = find_culprits(coordinates, lambda subset: self._fails(batch, subset))
        if culprits is None:
            print(f"batch {batch_id}: isolation gave up after {trials} dry runs (no small set of records "
                  "reproduces the failure); the batch is retried whole", flush=True)
            return
        self.isolated[batch_id] = (culprits, error)
        print(f"batch {batch_id}: {len(culprits)} record(s) isolated in {trials} dry runs, "
              f"{time.monotonic() - started:.1f}s: {culprits[:5]}", flush=True)

    def _fails(self, batch, subset: list[tuple[str, int, int]]) -> bool:
        """Does a dry run (everything but the commits) of these records raise?"""
        records = batch.where(selection_sql(subset, "topic", "partition", "offset"))
        parsed = self.prepare(records, self.limits)
        try:
            totals = self._read(parsed)
            for frame in (to_bronze(parsed), to_audit(parsed)):
                frame.write.format("noop").mode("overwrite").save()
            if "gold" in self.sinks and totals["days"]:
                gold = parsed.sparkSession.table(self.tables.gold).where(days_predicate(totals["days"]))
                merge_source(touches_by_impression(to_touches(parsed)), gold, self.rules, self.limits.max_touches) \
                    .write.format("noop").mode("overwrite").save()
        except Exception:  # noqa: BLE001 - the failure is what is being looked for
            return True
        return False

    def _read(self, parsed) -> dict:
        """The read phase: one aggregate over the batch per Kafka partition (offset ranges,
        counts, latest valid event time, Gold days), combined here from integers only."""
        rows = parsed.groupBy("kafka_topic", "kafka_partition").agg(
            F.min("kafka_offset").alias("first"), F.max("kafka_offset").alias("last"),
            F.count(F.lit(1)).alias("records"), F.count_if(F.col("reject_reason").isNotNull()).alias("rejected"),
            F.expr("unix_micros(max(IF(reject_reason IS NULL, event_timestamp, NULL)))").alias("max_event_us"),
            F.expr(batch_days_sql()).alias("days")).collect()
        event_us = [row.max_event_us for row in rows if row.max_event_us is not None]
        return {
            "records": sum(row.records for row in rows),
            "rejected": sum(row.rejected for row in rows),
            "max_event_time": event_time_of(max(event_us)) if event_us else None,
            "days": sorted({day_of(entry.day) for row in rows for entry in row.days}, key=str),
            "ranges": merge_ranges({(row.kafka_topic, row.kafka_partition): [[row.first, row.last]] for row in rows}),
        }

    def _process(self, batch, batch_id: int) -> None:
        started = time.monotonic()
        spark = batch.sparkSession
        culprits, error = self.isolated.get(batch_id, ([], ""))
        quarantine = batch.where(selection_sql(culprits, "topic", "partition", "offset")) if culprits else None
        if culprits:
            batch = batch.where(f"NOT {selection_sql(culprits, 'topic', 'partition', 'offset')}")
        parsed = self.prepare(batch, self.limits).persist()
        phases: dict[str, float] = {}
        overflowed = None

        def timed(name: str, action):
            begin = time.monotonic()
            result = action()
            phases[name] = time.monotonic() - begin
            crash_if_requested(name)
            return result

        try:
            totals = timed("read", lambda: self._read(parsed))  # fetch from Kafka, parse, validate, cache
            records, rejected, days = totals["records"] + len(culprits), totals["rejected"] + len(culprits), totals["days"]
            ranges = merge_ranges(totals["ranges"], {(t, p): [[o, o]] for t, p, o in culprits})
            if records == 0:
                return
            if totals["max_event_time"] is not None:
                self.max_event_times[batch_id] = totals["max_event_time"]
            bronze, audit = to_bronze(parsed), to_audit(parsed)
            if quarantine is not None:
                bronze = bronze.unionByName(quarantined_bronze(quarantine))
                audit = audit.unionByName(quarantined_audit(quarantine, error))
            # Copies beyond a Gold row's cap, from Gold as it was before this batch, go into
            # this batch's one audit append (ahead of the MERGE, so a retry finds the same).
            overflowed = timed("cap", lambda: self.overflowed(spark, parsed, days)) if "gold" in self.sinks else None
            overflow = overflowed.selectExpr("sum(size(overflow))").first()[0] or 0 if overflowed is not None else 0
            if overflow:
                topics = {topic for topic, _ in ranges}
                audit = audit.unionByName(overflow_audit(overflowed, parsed, topics.pop() if len(topics) == 1 else None,
                                                         self.limits.max_touches))
            if "bronze" in self.sinks:
                timed("bronze", lambda: self.append_once(bronze, self.tables.bronze, ranges))
            if (rejected or overflow) and "audit" in self.sinks:
                timed("audit", lambda: self.append_once(audit, self.tables.audit, ranges))
            if "gold" in self.sinks:
                # The Gold partitions this batch can touch: the MERGE reads only these.
                timed("gold", lambda: self.merge_gold(spark, parsed, batch_id, days))
                if self.compaction is not None:
                    self.compaction.note(days)
                    if self.compaction.due():
                        print(f"batch {batch_id}: " + timed("compact", lambda: self.compaction.run(spark)), flush=True)
            self.history.append({"batch_id": batch_id, "records": records,
                                 "seconds": time.monotonic() - started, **phases})
            detail = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in phases.items())
            isolated = f", {len(culprits):,} isolated" if culprits else ""
            isolated += f", {overflow:,} over the touch cap" if overflow else ""
            print(f"batch {batch_id}: {records:,} records ({records - rejected:,} valid, {rejected:,} rejected"
                  f"{isolated}) in {time.monotonic() - started:.1f}s ({detail})", flush=True)
        finally:
            # Derived rows first: uncaching `parsed` while they are cached has Spark compare
            # every node of their plan (large expressions) with it, seconds per batch.
            if overflowed is not None:
                overflowed.unpersist()
            parsed.unpersist()

    def overflowed(self, spark, parsed, days: list) -> DataFrame | None:
        """Derived rows whose impression holds more copies than the cap allows, or None when
        no impression of the batch can (Gold's copies plus the batch's fit under the cap).
        The check counts copies only: `touches.kafka_offset` lets the scan read one leaf of
        Gold's touches instead of every field of every copy."""
        if not days:
            return None
        gold = spark.table(self.tables.gold).where(days_predicate(days))
        counts = to_touches(parsed).groupBy("impression_id").agg(F.count(F.lit(1)).alias("new"))
        held = gold.join(F.broadcast(counts.select("impression_id")), "impression_id", "left_semi") \
            .selectExpr("impression_id", "size(touches.kafka_offset) AS held")
        most = counts.join(held, "impression_id", "left").selectExpr("max(new + coalesce(held, 0))").first()[0]
        if most is None or most <= self.limits.max_touches:
            return None
        return merge_source(touches_by_impression(to_touches(parsed)), gold, self.rules, self.limits.max_touches,
                            overflow=True).where("overflow IS NOT NULL").persist()

    def merge_gold(self, spark, parsed, batch_id: int, days: list, attempts: int = 6) -> None:
        """The Gold MERGE; when it loses a commit race (to table maintenance rewriting the
        same files), Gold is re-read and the MERGE planned again: idempotent, so safe."""
        view = f"attribution_batch_{batch_id}"
        if not days:
            return
        batch_rows = touches_by_impression(to_touches(parsed))
        for attempt in range(1, attempts + 1):
            try:
                gold = spark.table(self.tables.gold).where(days_predicate(days))
                merge_source(batch_rows, gold, self.rules, self.limits.max_touches).createOrReplaceTempView(view)
                spark.sql(merge_sql(view, self.tables.gold, days))
                return
            except Exception as error:  # noqa: BLE001 - only commit conflicts are retried
                if attempt == attempts or not is_commit_conflict(error):
                    raise
                print(f"batch {batch_id}: Gold MERGE lost a commit race to another writer; "
                      f"re-planning (attempt {attempt + 1}/{attempts})", flush=True)
                spark.sql(f"REFRESH TABLE {self.tables.gold}")
                time.sleep(attempt)
            finally:
                spark.catalog.dropTempView(view)


def crash_if_requested(phase: str) -> None:
    """Test hook: LAKEHOUSE_CRASH_AFTER=bronze|audit|gold kills this driver with SIGKILL right
    after that commit of the first batch it processes — a crash between two commits."""
    if os.environ.get("LAKEHOUSE_CRASH_AFTER") == phase:
        print(f"LAKEHOUSE_CRASH_AFTER={phase}: killing the driver", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


JOB_SERVICES = ("kafka", "s3", "catalog")


def wait_for_services(settings: Settings, timeout_s: float, stopping=lambda: False) -> None:
    """Block until Kafka, the S3 store and the catalog all answer (or the job is stopping);
    SystemExit after timeout_s."""
    from conf.preflight import problems

    deadline, announced = time.monotonic() + timeout_s, set()
    while not stopping() and (missing := problems(settings, JOB_SERVICES)):
        if time.monotonic() > deadline:
            raise SystemExit(f"error: {missing[0]}; gave up after {timeout_s:.0f}s")
        for line in set(missing) - announced:
            print(f"waiting: {line}", flush=True)
        announced |= set(missing)
        time.sleep(2)


def checkpoint_is_new(checkpoint: str) -> bool | None:
    """Whether a local checkpoint has no offset log yet; None for a remote one (unknown)."""
    if "://" in checkpoint and not checkpoint.startswith("file:"):
        return None
    offsets = Path(checkpoint.removeprefix("file:")) / "offsets"
    return not (offsets.is_dir() and any(offsets.iterdir()))


def starting_offsets(spark, settings: Settings, args: argparse.Namespace, tables: Tables) -> str:
    """--starting-offsets, or with 'auto': for a new checkpoint over a Bronze that already holds
    records of the topic (a checkpoint deleted or moved), resume where Bronze's last append
    began; else earliest. An old checkpoint ignores it (Spark resumes from its offset log)."""
    if args.starting_offsets != "auto":
        return args.starting_offsets
    if "bronze" not in args.sinks or not checkpoint_is_new(args.checkpoint):
        return "earliest"
    import json

    from conf.kafka import topic_partitions
    from jobs.bronze_sink import committed_ranges, resume_offsets

    committed, last_batch = committed_ranges(spark, tables.bronze)
    partitions = topic_partitions(settings.kafka_bootstrap_servers, args.topic) or 0
    offsets = resume_offsets(committed, last_batch, args.topic, range(partitions))
    if offsets is None:
        return "earliest"
    print(f"new checkpoint over tables that hold {args.topic}: resuming from {tables.bronze}'s committed offsets "
          f"{offsets[args.topic]}", flush=True)
    return json.dumps(offsets)


def record_pending_progress(batch_function: "AttributionBatch", spark, query) -> None:
    """The listener bus delivers the last batch's progress asynchronously: wait for it,
    then write what arrived to ops.stream_progress."""
    last, deadline = query.lastProgress, time.monotonic() + 10
    while last and time.monotonic() < deadline and not any(
            d["batchId"] == last["batchId"] for d in list(batch_function.recorder.pending.queue)):
        time.sleep(0.2)
    batch_function.record_progress(spark)


class ProgressWriter(threading.Thread):
    """Writes ops.stream_progress every `every` seconds beside the batches, not inside them:
    a progress commit (2–3 s here) no longer delays the data it reports on."""

    def __init__(self, batch_function: AttributionBatch, spark, every: float) -> None:
        super().__init__(name="stream-progress-writer", daemon=True)
        self.batch_function, self.spark, self.every = batch_function, spark, max(every, 1.0)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                self.batch_function.record_progress(self.spark)
            except Exception as error:  # noqa: BLE001 - the events stay queued; the next write retries
                print(f"ops.stream_progress not written ({first_line(error)}); retrying in {self.every:.0f}s",
                      flush=True)

    def stop(self) -> None:
        self.stopped.set()
        self.join()


def writer_id_for(checkpoint: str) -> str:
    return "attribution-" + hashlib.sha1(checkpoint.encode()).hexdigest()[:12]


def kafka_source(spark, settings: Settings, topic: str, starting_offsets: str, max_offsets: int | None,
                 timeout_s: float = 120):
    """The Kafka stream; `timeout_s` bounds how long a fetch or an offset lookup waits for an
    unreachable broker before the query fails (and the job restarts it, see run())."""
    timeout_ms = str(int(timeout_s * 1000))
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap_servers)
        .option("subscribe", topic)
        .option("startingOffsets", starting_offsets)
        .option("includeHeaders", "false")
        .option("kafkaConsumer.pollTimeoutMs", timeout_ms)
        .option("kafka.default.api.timeout.ms", timeout_ms)
        .option("kafka.request.timeout.ms", str(min(int(timeout_ms), 30_000)))
    )
    if max_offsets:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets))
    return reader.load()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="attribution_streaming_job.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trigger", choices=["processing-time", "available-now"], default="processing-time",
                        help=f"available-now drains what is in Kafka and stops; processing-time runs every "
                             f"TRIGGER_INTERVAL ({settings.trigger_interval})")
    parser.add_argument("--starting-offsets", default="auto",
                        help="auto, earliest, latest or Spark's JSON offsets; only used by a new checkpoint. "
                             "auto resumes where Bronze's committed offsets end (a checkpoint deleted or moved "
                             "loses nothing), else starts at the earliest")
    parser.add_argument("--checkpoint", default=str(Path(settings.checkpoint_dir) / "attribution"))
    parser.add_argument("--topic", default=settings.kafka_topic)
    parser.add_argument("--max-offsets-per-trigger", type=int, default=500_000,
                        help="bounds a micro-batch (0 = no bound)")
    parser.add_argument("--table-prefix", default=settings.table_namespace_prefix,
                        help="namespace prefix of every table (TABLE_NAMESPACE_PREFIX)")
    parser.add_argument("--sinks", default="bronze,audit,gold",
                        help="which tables to write; 'bronze' alone is an ingest-only run")
    parser.add_argument("--progress-every", type=float, default=30,
                        help="seconds between writes of ops.stream_progress (a thread beside the batches); "
                             "the job writes what is pending when it stops")
    parser.add_argument("--compact-every", type=int, default=settings.gold_compaction_batches,
                        help="batches between compactions of the Gold days the job is writing, run between "
                             "batches (GOLD_COMPACTION_BATCHES; 0: never)")
    parser.add_argument("--max-restarts", type=int, default=5,
                        help="restarts from the checkpoint after a failed query (e.g. Kafka down) "
                             "before giving up; the count resets once a batch commits")
    parser.add_argument("--kafka-timeout", type=float, default=120,
                        help="seconds a Kafka fetch or offset lookup may wait for the broker; a shorter "
                             "outage only stalls the batch, a longer one fails the query and the job restarts it")
    parser.add_argument("--restart-wait", type=float, default=600,
                        help="seconds to wait for Kafka, S3 and the catalog to come back before giving up")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


def run(args: argparse.Namespace) -> AttributionBatch:
    settings = get_settings()
    from conf.preflight import require

    require(settings, *JOB_SERVICES)
    from conf.preflight import problems
    from jobs.checkpoint_lock import CheckpointLock

    lock = CheckpointLock(args.checkpoint, Path(settings.runtime_dir) / "locks")
    if note := lock.acquire():
        print(note, flush=True)
    try:
        return _run(args, settings, lambda: not problems(settings, JOB_SERVICES))
    finally:
        lock.release()


def _run(args: argparse.Namespace, settings: Settings, services_up) -> AttributionBatch:
    from conf.spark_session import build_spark

    # Each micro-batch is cached once (parsed and validated) and read by every sink; an
    # uncompressed columnar cache builds ~30% faster and lives only for the batch.
    spark = build_spark("attribution-streaming", settings,
                        **{"spark.sql.inMemoryColumnarStorage.compressed": "false"})
    tables = Tables(args.table_prefix)
    rules = ensure_tables(spark, tables)
    batch_function = AttributionBatch(rules, writer_id_for(args.checkpoint), tables,
                                      tuple(s.strip() for s in args.sinks.split(",")), settings.validation_limits,
                                      settings.poison_batch_attempts, services_up)
    offsets = starting_offsets(spark, settings, args, tables)
    batch_function.recorder = ProgressRecorder()
    if "gold" in batch_function.sinks and args.compact_every > 0:
        batch_function.compaction = ActiveDayCompaction(tables.gold, args.compact_every)
    spark.streams.addListener(batch_function.recorder)
    print(f"attribution job: {args.topic} -> {tables.bronze}, {tables.gold}, {tables.audit}; rules {rules}; "
          f"checkpoint {args.checkpoint}", flush=True)
    def start_query():
        writer = (
            kafka_source(spark, settings, args.topic, offsets, args.max_offsets_per_trigger,
                         args.kafka_timeout)
            .writeStream.foreachBatch(batch_function)
            .option("checkpointLocation", args.checkpoint)
            .queryName("attribution")
        )
        if args.trigger == "available-now":
            return writer.trigger(availableNow=True).start()
        return writer.trigger(processingTime=settings.trigger_interval).start()

    running = {"query": start_query()}
    progress_writer = ProgressWriter(batch_function, spark, args.progress_every)
    progress_writer.start()

    def stop_gracefully(signum, _frame) -> None:
        def stop() -> None:
            print(f"{signal.Signals(signum).name}: stopping after the current batch ...", flush=True)
            with batch_function.busy:  # a running batch finishes and commits first
                batch_function.stopping = True
            running["query"].stop()
        threading.Thread(target=stop, daemon=True).start()

    previous = {sig: signal.signal(sig, stop_gracefully) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        failures = 0
        while True:
            batches_before = len(batch_function.history)
            try:
                running["query"].awaitTermination()
                break
            except Exception as error:  # noqa: BLE001 - decided below: stop, restart or re-raise
                if batch_function.stopping:  # a batch refused while stopping ends the query with an error
                    break
                failures = 1 if len(batch_function.history) > batches_before else failures + 1
                if failures > args.max_restarts:
                    raise
                print(f"query failed ({first_line(error)}); restart {failures}/{args.max_restarts} from the checkpoint "
                      f"once Kafka, S3 and the catalog answer", flush=True)
                wait_for_services(settings, args.restart_wait, lambda: batch_function.stopping)
                time.sleep(min(60, 2 ** failures))
                if batch_function.stopping:
                    break
                record_pending_progress(batch_function, spark, running["query"])
                running["query"] = start_query()
    finally:
        progress_writer.stop()
        record_pending_progress(batch_function, spark, running["query"])
        spark.streams.removeListener(batch_function.recorder)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return batch_function


if __name__ == "__main__":
    sys.exit(main())
