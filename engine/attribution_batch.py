"""One micro-batch of the attribution job (the foreachBatch function): parse and validate
the Kafka records once (cached), append the rejects to the audit, MERGE the valid records
into Gold (engine/gold_merge.py) and append every record to Bronze — the appends keyed on
their Kafka offset ranges (engine/bronze_sink.py). A batch that keeps failing has its
failing records isolated (engine/poison.py). docs/design.md §5 states the guarantees.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from conf.gold_days import batch_days_sql, day_of, days_predicate
from conf.settings import ValidationLimits
from conf.tables import AttributionRules, Tables, iceberg_table
from engine.bronze_sink import AppendOnce, merge_ranges
from engine.commits import first_line, retry_on_conflict
from engine.compaction import ActiveDayCompaction
from engine.gold_merge import merge_source, merge_sql
from engine.offset_continuity import gaps_in_batch, jumps, record_gaps
from engine.poison import canary_value, find_culprits, selection_sql, systemic
from engine.stream_progress import ProgressRecorder, progress_row, write_progress
from engine.transforms import (
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

log = logging.getLogger(__name__)

# A Gold MERGE that keeps losing commit races (to maintenance) gives up after this many tries.
MERGE_ATTEMPTS = 6


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


def gold_operations_since(spark, table: str, snapshot_id: int | None) -> list[str] | None:
    """The operations of `table`'s snapshots after `snapshot_id`, newest first; None when
    `snapshot_id` is not an ancestor of the current snapshot (or is None)."""
    if snapshot_id is None:
        return None
    iceberg = iceberg_table(spark, table)
    operations, snapshot = [], iceberg.currentSnapshot()
    while snapshot is not None and snapshot.snapshotId() != snapshot_id:
        operations.append(snapshot.operation())
        parent = snapshot.parentId()
        snapshot = iceberg.snapshot(parent) if parent is not None else None
    return operations if snapshot is not None else None


def current_snapshot_id(spark, table: str) -> int | None:
    snapshot = iceberg_table(spark, table).currentSnapshot()
    return snapshot.snapshotId() if snapshot is not None else None


class TouchBound:
    """Per Gold day, an upper bound on the copies any Gold row of that day holds. A batch
    whose impressions cannot reach the cap (the bound plus the most copies the batch brings
    one impression) skips the cap's exact check, a Spark job over the batch's Gold days.
    A day's bound is read once (one aggregate over its partition), then raised by this
    writer's own MERGEs; all bounds are dropped when anything but a rewrite (table
    maintenance, in-job compaction) committed to Gold after this writer's last MERGE."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.bounds: dict = {}  # day (None: the NULL day) -> most copies a row of it may hold
        self.snapshot: int | None = None  # Gold's snapshot after this writer's last MERGE

    def most_held(self, spark, days: list) -> int:
        operations = gold_operations_since(spark, self.table, self.snapshot)
        if operations is None or any(operation != "replace" for operation in operations):
            self.bounds.clear()
        unknown = [day for day in days if day not in self.bounds]
        if unknown:
            rows = (spark.table(self.table).where(days_predicate(unknown))
                    .groupBy(F.expr("unix_date(impression_id_day)").alias("day"))
                    .agg(F.max(F.size("touches.kafka_offset")).alias("held")).collect())
            found = {day_of(row.day): row.held for row in rows}
            self.bounds.update({day: found.get(day) or 0 for day in unknown})
        return max(self.bounds[day] for day in days)

    def raise_by(self, days: list, copies: int) -> None:
        """Before a MERGE that brings at most `copies` copies to any impression: whether it
        commits or not, the bounds stay bounds."""
        for day in days:
            if day in self.bounds:
                self.bounds[day] += copies

    def merged(self, spark) -> None:
        self.snapshot = current_snapshot_id(spark, self.table)


class AttributionBatch:
    """The foreachBatch function: audit, Gold, then Bronze, each safe to run twice. A batch
    that fails the same way `poison_attempts` times has the records that make it fail
    isolated (engine/poison.py): they go to Bronze and to the audit as PROCESSING_ERROR, the
    rest is processed as usual."""

    def __init__(self, rules: AttributionRules, writer_id: str, tables: Tables,
                 sinks: tuple[str, ...] = ("bronze", "audit", "gold"),
                 limits: ValidationLimits = ValidationLimits(), poison_attempts: int = 3,
                 services_up=lambda: True,
                 prepare: Callable[[DataFrame, ValidationLimits], DataFrame] | None = None,
                 after_phase: Callable[[str], None] = lambda phase: None) -> None:
        self.rules, self.writer_id, self.tables, self.sinks = rules, writer_id, tables, sinks
        self.limits, self.poison_attempts, self.services_up = limits, poison_attempts, services_up
        # Kafka records -> parsed and validated records; a test may wrap it to inject a failure.
        self.prepare = prepare or (lambda batch, limits: with_validation(parse_records(batch), limits))
        self.after_phase = after_phase  # called after each phase (its commit); tests crash the driver there
        self.append_once = AppendOnce(writer_id)
        self.history: list[dict] = []  # one entry per batch: records and seconds per phase
        self.max_event_times: dict[int, datetime] = {}
        self.failures: dict[int, tuple[str, int, str]] = {}  # batch id -> (signature, count, error line)
        self.failure_file: Path | None = None  # where the counts outlive the process (keep_failures_in)
        self.isolated: dict[int, tuple[list[tuple[str, int, int]], str]] = {}  # batch id -> (coordinates, error)
        self.recorder: ProgressRecorder | None = None
        self.compaction: ActiveDayCompaction | None = None  # in-job compaction of the Gold days being written
        self.touch_bound = TouchBound(tables.gold)
        self.busy = threading.Lock()  # held while a batch runs: a graceful stop waits for it
        self.progress_lock = threading.Lock()  # one ops.stream_progress write at a time
        self.stopping = False
        self.lease = None  # the job's WriterLease (engine/writer_lease.py): checked before each commit
        # {partition: earliest offset} of the topic now, asked when a batch starts past what
        # Bronze holds (engine/offset_continuity.py); None: not checked.
        self.earliest_offsets: Callable[[], dict[int, tuple[int, int]]] | None = None

    def keep_failures_in(self, path: Path) -> None:
        """Count a failing batch's attempts in `path` too: a job restarted by systemd or
        compose after giving up (or after a kill) goes on counting where it stopped, so the
        batch is isolated after POISON_BATCH_ATTEMPTS attempts in all, not per process."""
        self.failure_file = path
        try:
            saved = json.loads(path.read_text())
            self.failures = {int(batch): (signature, int(count), line) for batch, (signature, count, line) in saved.items()}
        except FileNotFoundError:
            pass
        except (ValueError, TypeError) as error:
            log.warning(f"poison counts in {path} unreadable ({error}); counting from 0")

    def _save_failures(self) -> None:
        if self.failure_file is None:
            return
        self.failure_file.parent.mkdir(parents=True, exist_ok=True)
        partial = self.failure_file.with_name(self.failure_file.name + ".partial")
        partial.write_text(json.dumps({str(batch): list(value) for batch, value in self.failures.items()}))
        partial.replace(self.failure_file)

    def before_commit(self) -> None:
        if self.lease is not None:
            self.lease.check()

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
                self._save_failures()
                raise
            if self.failures.pop(batch_id, None) is not None:
                self._save_failures()
            self.isolated.pop(batch_id, None)

    def _isolate(self, batch, batch_id: int, error: str) -> None:
        """Find the records that make this batch fail by bisection over dry runs."""
        if not self.services_up():
            log.warning(f"batch {batch_id}: failed {self.poison_attempts} times ({error}); a service is down, "
                        "so the batch is retried whole")
            return
        log.warning(f"batch {batch_id}: failed {self.poison_attempts} times the same way ({error}); "
                    "isolating the records that cause it ...")
        started = time.monotonic()
        if self._canary_fails(batch):
            log.warning(f"batch {batch_id}: a dry run of a known-good record fails too: an outage, not poison; "
                        "the batch is retried whole")
            return
        coordinates = sorted((r.topic, r.partition, r.offset) for r in batch.select("topic", "partition", "offset")
                             .collect())
        culprits, trials = find_culprits(coordinates, lambda subset: self._fails(batch, subset))
        if culprits is None:
            log.warning(f"batch {batch_id}: isolation gave up after {trials} dry runs (no small set of records "
                        "reproduces the failure); the batch is retried whole")
            return
        if systemic(coordinates, culprits):
            log.warning(f"batch {batch_id}: each of its {len(coordinates)} records fails alone: an outage, not "
                        "poison; the batch is retried whole")
            return
        self.isolated[batch_id] = (culprits, error)
        log.warning(f"batch {batch_id}: {len(culprits)} record(s) isolated in {trials} dry runs, "
                    f"{time.monotonic() - started:.1f}s: {culprits[:5]}")

    def _canary_fails(self, batch) -> bool:
        """Does a dry run of a made-up valid impression (engine/poison.py: canary_value), in the
        batch's own shape, raise?"""
        now = datetime.now(timezone.utc)
        values = {"key": b"lakehouse-canary", "value": canary_value(now.timestamp()),
                  "topic": "lakehouse-canary", "partition": 0, "offset": 0, "timestamp": now, "timestampType": 0}
        canary = batch.sparkSession.createDataFrame([tuple(values.get(f.name) for f in batch.schema.fields)],
                                                    batch.schema)
        return self._dry_run_fails(canary)

    def _fails(self, batch, subset: list[tuple[str, int, int]]) -> bool:
        """Does a dry run (everything but the commits) of these records raise?"""
        return self._dry_run_fails(batch.where(selection_sql(subset, "topic", "partition", "offset")))

    def _dry_run_fails(self, records) -> bool:
        parsed = self.prepare(records, self.limits)
        try:
            totals = self.read_totals(parsed)
            for frame in (to_bronze(parsed), to_audit(parsed)):
                frame.write.format("noop").mode("overwrite").save()
            if "gold" in self.sinks and totals["days"]:
                gold = parsed.sparkSession.table(self.tables.gold).where(days_predicate(totals["days"]))
                merge_source(touches_by_impression(to_touches(parsed)), gold, self.rules, self.limits.max_touches) \
                    .write.format("noop").mode("overwrite").save()
        except Exception:  # noqa: BLE001 - the failure is what is being looked for
            return True
        return False

    def read_totals(self, parsed) -> dict:
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
            self.after_phase(name)
            return result

        try:
            totals = timed("read", lambda: self.read_totals(parsed))  # fetch from Kafka, parse, validate, cache
            records, rejected, days = totals["records"] + len(culprits), totals["rejected"] + len(culprits), totals["days"]
            ranges = merge_ranges(totals["ranges"], {(t, p): [[o, o]] for t, p, o in culprits})
            if records == 0:
                return
            if totals["max_event_time"] is not None:
                self.max_event_times[batch_id] = totals["max_event_time"]
            self.check_jumps(spark, ranges)
            bronze, audit = to_bronze(parsed), to_audit(parsed)
            if quarantine is not None:
                bronze = bronze.unionByName(quarantined_bronze(quarantine))
                audit = audit.unionByName(quarantined_audit(quarantine, error))
            # Copies beyond a Gold row's cap, from Gold as it was before this batch, go into
            # this batch's one audit append (ahead of the MERGE, so a retry finds the same).
            most_copies, overflowed = timed("cap", lambda: self.overflowed(spark, parsed, days)) \
                if "gold" in self.sinks and days else (0, None)
            overflow = overflowed.selectExpr("sum(size(overflow))").first()[0] or 0 if overflowed is not None else 0
            if overflow:
                topics = {topic for topic, _ in ranges}
                audit = audit.unionByName(overflow_audit(overflowed, parsed, topics.pop() if len(topics) == 1 else None,
                                                         self.limits.max_touches))
            self.before_commit()
            if (rejected or overflow) and "audit" in self.sinks:
                timed("audit", lambda: self.append_once(audit, self.tables.audit, ranges))
            # Gold before Bronze: what users see lands first (docs/design.md §5). Each commit is
            # safe to repeat, so a crash between them only makes the batch run again.
            if "gold" in self.sinks:
                timed("gold", lambda: self.merge_gold(spark, parsed, batch_id, days, most_copies))
            if "bronze" in self.sinks:
                self.before_commit()
                timed("bronze", lambda: self.append_once(bronze, self.tables.bronze, ranges))
            if "gold" in self.sinks and self.compaction is not None:
                self.compaction.note(days)
                if self.compaction.due():
                    log.info(f"batch {batch_id}: " + timed("compact", lambda: self.compaction.run(spark)))
            self.history.append({"batch_id": batch_id, "records": records,
                                 "seconds": time.monotonic() - started, **phases})
            detail = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in phases.items())
            isolated = f", {len(culprits):,} isolated" if culprits else ""
            isolated += f", {overflow:,} over the touch cap" if overflow else ""
            log.info(f"batch {batch_id}: {records:,} records ({records - rejected:,} valid, {rejected:,} rejected"
                     f"{isolated}) in {time.monotonic() - started:.1f}s ({detail})")
        finally:
            # Derived rows first: uncaching `parsed` while they are cached has Spark compare
            # every node of their plan (large expressions) with it, seconds per batch.
            if overflowed is not None:
                overflowed.unpersist()
            parsed.unpersist()

    def check_jumps(self, spark, ranges) -> None:
        """A batch that starts past what Bronze holds, over offsets Kafka no longer has:
        retention deleted them before they were read. Recorded, and the batch goes on."""
        if self.earliest_offsets is None or "bronze" not in self.sinks:
            return
        missing = jumps(self.append_once.held(spark, self.tables.bronze), ranges)
        if not missing:
            return
        bounds = self.earliest_offsets()
        gaps = gaps_in_batch(missing, {partition: low for partition, (low, _) in bounds.items()})
        topic_ids = self.append_once.topic_ids
        record_gaps(spark, self.tables.offset_gaps, gaps, next(iter(topic_ids.values()), None), "CONTINUED",
                    self.writer_id)

    def overflowed(self, spark, parsed, days: list) -> tuple[int, DataFrame | None]:
        """The most copies the batch brings one impression, and the derived rows whose
        impression holds more copies than the cap allows, or None when no impression of the
        batch can (Gold's copies plus the batch's fit under the cap): by the touch bound alone
        when it suffices, else by counting. The count reads one leaf of Gold's touches
        (`touches.kafka_offset`), not every field of every copy."""
        counts = to_touches(parsed).groupBy("impression_id").agg(F.count(F.lit(1)).alias("new"))
        most_copies = counts.agg(F.max("new")).first()[0] or 0
        if self.touch_bound.most_held(spark, days) + most_copies <= self.limits.max_touches:
            return most_copies, None
        gold = spark.table(self.tables.gold).where(days_predicate(days))
        held = gold.join(F.broadcast(counts.select("impression_id")), "impression_id", "left_semi") \
            .selectExpr("impression_id", "size(touches.kafka_offset) AS held")
        most = counts.join(held, "impression_id", "left").selectExpr("max(new + coalesce(held, 0))").first()[0]
        if most is None or most <= self.limits.max_touches:
            return most_copies, None
        return most_copies, merge_source(touches_by_impression(to_touches(parsed)), gold, self.rules,
                                         self.limits.max_touches, overflow=True).where("overflow IS NOT NULL").persist()

    def merge_gold(self, spark, parsed, batch_id: int, days: list, most_copies: int) -> None:
        """The Gold MERGE. When it loses a commit race (to table maintenance rewriting the
        same files), Gold is read afresh and the MERGE planned again: idempotent, so safe."""
        if not days:
            return
        self.touch_bound.raise_by(days, most_copies)
        view = f"attribution_batch_{batch_id}"
        batch_rows = touches_by_impression(to_touches(parsed))

        def merge() -> None:
            gold = spark.table(self.tables.gold).where(days_predicate(days))
            merge_source(batch_rows, gold, self.rules, self.limits.max_touches).createOrReplaceTempView(view)
            try:
                spark.sql(merge_sql(view, self.tables.gold, days))
            finally:
                spark.catalog.dropTempView(view)

        retry_on_conflict(spark, self.tables.gold, merge, MERGE_ATTEMPTS, on_retry=lambda attempt: log.warning(
            f"batch {batch_id}: Gold MERGE lost a commit race to another writer; "
            f"re-planning (attempt {attempt}/{MERGE_ATTEMPTS})"))
        self.touch_bound.merged(spark)


def writer_id_for(checkpoint: str) -> str:
    """The writer's id: one per checkpoint, however it is spelled (engine/checkpoint_lock.py)."""
    from engine.checkpoint_lock import normalised

    return "attribution-" + hashlib.sha1(normalised(checkpoint).encode()).hexdigest()[:12]
