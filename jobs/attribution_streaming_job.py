"""The attribution streaming job: Kafka `ad_events` -> Bronze (append) + audit (append)
+ Gold (MERGE), one foreachBatch per micro-batch.

    spark-submit jobs/attribution_streaming_job.py [--trigger available-now]
    make attribution ARGS='--trigger available-now'

The wiring: the batch function (engine/attribution_batch.py), the Kafka source, where a
new checkpoint starts, one job per checkpoint (engine/checkpoint_lock.py) and per table set
(engine/writer_lease.py), and the supervisor
that restarts a failed query and stops on a signal (engine/stream_supervisor.py).
Exactly-once effect: Bronze and audit appends record the Kafka offset ranges they hold in
the Iceberg snapshot summary and append no record twice, whatever the checkpoint says
(engine/bronze_sink.py); the Gold MERGE is idempotent by construction (engine/gold_merge.py).
docs/design.md §5 states the guarantees.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from conf.settings import Settings, get_settings
from conf.tables import Tables, ensure_tables
from engine.attribution_batch import AttributionBatch, writer_id_for
from engine.bronze_sink import committed_ranges, committed_state, resume_offsets
from engine.checkpoint_lock import CheckpointLock, normalised
from jobs.cli import job_parser, start_spark
from engine.compaction import ActiveDayCompaction
from engine.offset_continuity import gaps_at_start, record_gaps
from engine.stream_progress import ProgressRecorder
from engine.stream_supervisor import JOB_SERVICES, supervise
from engine.writer_lease import WriterLease
from stack.kafka_admin import topic_partitions, topic_state
from stack.preflight import problems, require

log = logging.getLogger(__name__)


def checkpoint_is_new(spark, checkpoint: str) -> bool:
    """Whether a checkpoint (a path or a URI such as s3a://...) has no offset log yet."""
    jvm = spark.sparkContext._jvm
    offsets = jvm.org.apache.hadoop.fs.Path(checkpoint.rstrip("/") + "/offsets")
    fs = offsets.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return not (fs.exists(offsets) and len(fs.listStatus(offsets)) > 0)


def starting_offsets(spark, settings: Settings, args: argparse.Namespace, tables: Tables,
                     recreated: bool = False) -> str:
    """--starting-offsets, or with 'auto': for a new checkpoint over a Bronze that already holds
    records of the topic (a checkpoint deleted or moved), resume where Bronze's last append
    began; else (and for a topic recreated since) earliest. An old checkpoint ignores it
    (Spark resumes from its offset log)."""
    if args.starting_offsets != "auto":
        return args.starting_offsets
    if "bronze" not in args.sinks or recreated or not checkpoint_is_new(spark, args.checkpoint):
        return "earliest"
    committed, last_batch = committed_ranges(spark, tables.bronze)
    partitions = topic_partitions(settings.kafka_bootstrap_servers, args.topic) or 0
    offsets = resume_offsets(committed, last_batch, args.topic, range(partitions))
    if offsets is None:
        return "earliest"
    log.info(f"new checkpoint over tables that hold {args.topic}: resuming from {tables.bronze}'s committed offsets "
             f"{offsets[args.topic]}")
    return json.dumps(offsets)


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
        # Offsets retention deleted before they were read are recorded in ops.kafka_offset_gaps
        # and the job goes on from the earliest offset there is (engine/offset_continuity.py).
        .option("failOnDataLoss", "false")
        .option("kafkaConsumer.pollTimeoutMs", timeout_ms)
        .option("kafka.default.api.timeout.ms", timeout_ms)
        .option("kafka.request.timeout.ms", str(min(int(timeout_ms), 30_000)))
    )
    if max_offsets:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets))
    return reader.load()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    settings = get_settings()
    parser = job_parser("attribution_streaming_job.py", __doc__, settings)
    parser.add_argument("--trigger", choices=["processing-time", "available-now"], default="processing-time",
                        help=f"available-now drains what is in Kafka and stops; processing-time runs every "
                             f"TRIGGER_INTERVAL ({settings.trigger_interval})")
    parser.add_argument("--starting-offsets", default="auto",
                        help="auto, earliest, latest or Spark's JSON offsets; only used by a new checkpoint. "
                             "auto resumes where Bronze's committed offsets end (a checkpoint deleted or moved "
                             "loses nothing), else starts at the earliest")
    parser.add_argument("--checkpoint", default=f"{settings.checkpoints}/attribution",
                        help="the streaming checkpoint (CHECKPOINT_DIR/attribution): a path or a URI such as s3a://...")
    parser.add_argument("--topic", default=settings.kafka_topic)
    parser.add_argument("--max-offsets-per-trigger", type=int, default=500_000,
                        help="bounds a micro-batch (0 = no bound)")
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


def run(args: argparse.Namespace, after_phase: Callable[[str], None] = lambda phase: None) -> AttributionBatch:
    """The job: preflight, the checkpoint's lock, then `attribute`. `after_phase` is called
    after each phase of every batch (tests crash the driver there)."""
    settings = get_settings()
    if not 1 <= settings.poison_batch_attempts <= args.max_restarts:
        raise SystemExit(f"error: POISON_BATCH_ATTEMPTS={settings.poison_batch_attempts} with --max-restarts "
                         f"{args.max_restarts}: a failing batch is isolated after POISON_BATCH_ATTEMPTS attempts, "
                         "each a restart, so the job would give up first; use 1..--max-restarts")
    require(settings, *JOB_SERVICES)
    lock = CheckpointLock(args.checkpoint, Path(settings.runtime_dir) / "locks")
    if note := lock.acquire():
        log.info(note)
    try:
        return attribute(args, settings, after_phase)
    finally:
        lock.release()


def attribute(args: argparse.Namespace, settings: Settings, after_phase: Callable[[str], None]) -> AttributionBatch:
    # Each micro-batch is cached once (parsed and validated) and read by every sink; an
    # uncompressed columnar cache builds ~30% faster and lives only for the batch. Hash joins
    # where a side is small: the Gold MERGE's right outer join of the day's rows with the
    # batch's hashes the day's ids while the day is small instead of sorting both sides
    # (sort-merge again at ~1 M rows a day; docs/benchmarks.md, the day benchmark).
    spark = start_spark("attribution-streaming", settings,
                        **{"spark.sql.inMemoryColumnarStorage.compressed": "false",
                           "spark.sql.join.preferSortMergeJoin": "false"})
    tables = Tables(args.table_prefix)
    rules = ensure_tables(spark, tables)
    batch_function = AttributionBatch(rules, writer_id_for(args.checkpoint), tables,
                                      tuple(s.strip() for s in args.sinks.split(",")), settings.validation_limits,
                                      settings.poison_batch_attempts, lambda: not problems(settings, JOB_SERVICES),
                                      after_phase=after_phase)
    batch_function.keep_failures_in(Path(settings.runtime_dir) / "locks" / f"failures-{batch_function.writer_id}.json")
    batch_function.lease = WriterLease(spark, tables.bronze, batch_function.writer_id, normalised(args.checkpoint))
    if note := batch_function.lease.acquire():
        log.info(note)
    try:
        run_query(spark, settings, args, tables, rules, batch_function)
    finally:
        batch_function.lease.release()
    return batch_function


def check_continuity(spark, settings: Settings, args: argparse.Namespace, tables: Tables,
                     batch_function: AttributionBatch) -> bool:
    """Bronze's offsets against the topic as it is (engine/offset_continuity.py): records and
    logs every gap, stops on a recreated topic under an old checkpoint, and tells Bronze's
    dedup the topic's id. True when the topic was recreated (read it from its start)."""
    state = topic_state(settings.kafka_bootstrap_servers, args.topic)
    if state is None or "bronze" not in batch_function.sinks:
        return False
    topic_id, bounds = state
    held, _, held_ids = committed_state(spark, tables.bronze)
    gaps = gaps_at_start(args.topic, held, held_ids.get(args.topic), topic_id, bounds)
    recreated = any(gap.cause in ("TOPIC_RECREATED", "OFFSETS_BACKWARDS") for gap in gaps)
    if recreated and not checkpoint_is_new(spark, args.checkpoint):
        record_gaps(spark, tables.offset_gaps, gaps, topic_id, "STOPPED", batch_function.writer_id)
        raise SystemExit(
            f"error: topic {args.topic} was deleted and created again (or its offsets went back): checkpoint "
            f"{args.checkpoint} holds the old topic's offsets and would skip the new topic's first records. Move the "
            f"checkpoint away and start again: the job then reads the new topic from its start, and {tables.bronze} "
            f"keeps the old topic's records (recorded in {tables.offset_gaps})")
    record_gaps(spark, tables.offset_gaps, gaps, topic_id, "CONTINUED", batch_function.writer_id)
    batch_function.append_once.topic_ids = {args.topic: topic_id}
    if recreated:
        batch_function.append_once.forgotten.add(args.topic)
    batch_function.earliest_offsets = lambda: (topic_state(settings.kafka_bootstrap_servers, args.topic)
                                               or (None, {}))[1]
    return recreated


def run_query(spark, settings: Settings, args: argparse.Namespace, tables: Tables, rules,
              batch_function: AttributionBatch) -> None:
    recreated = check_continuity(spark, settings, args, tables, batch_function)
    offsets = starting_offsets(spark, settings, args, tables, recreated)
    batch_function.recorder = ProgressRecorder()
    if "gold" in batch_function.sinks and args.compact_every > 0:
        batch_function.compaction = ActiveDayCompaction(tables.gold, args.compact_every)
    spark.streams.addListener(batch_function.recorder)
    log.info(f"attribution job: {args.topic} -> {tables.bronze}, {tables.gold}, {tables.audit}; rules {rules}; "
             f"checkpoint {args.checkpoint}")

    def start_query():
        writer = (
            kafka_source(spark, settings, args.topic, offsets, args.max_offsets_per_trigger, args.kafka_timeout)
            .writeStream.foreachBatch(batch_function)
            .option("checkpointLocation", args.checkpoint)
            .queryName("attribution")
        )
        if args.trigger == "available-now":
            return writer.trigger(availableNow=True).start()
        return writer.trigger(processingTime=settings.trigger_interval).start()

    try:
        supervise(spark, settings, batch_function, start_query, progress_every=args.progress_every,
                  max_restarts=args.max_restarts, restart_wait=args.restart_wait)
    finally:  # a session that runs the job again (a test, the demo's backfill) gets one listener per run
        spark.streams.removeListener(batch_function.recorder)


if __name__ == "__main__":
    sys.exit(main())
