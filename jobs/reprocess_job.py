"""Re-process quarantined records: the records the streaming job isolated from a batch that
kept failing (PROCESSING_ERROR in the audit, docs/design.md §5) go through the live path
again, once the cause is fixed.

    spark-submit jobs/reprocess_job.py [--topic T] [--partition P] [--offsets FROM:TO]
    make reprocess ARGS='--partition 3'

Their Kafka records come from Bronze (which keeps every record, the quarantined ones too),
are parsed and validated again and MERGEd into Gold by the streaming job's own batch
function; then their PROCESSING_ERROR rows in the audit are replaced by the verdict
they get now (deleted when the record is valid, its validation reason when it is not), so
that a replay from Bronze takes them in as well. Gold first, then the audit, each
commit safe to repeat: a run killed between the two is finished by the next.

It writes the tables the streaming job writes, so it takes their writer lease
(engine/writer_lease.py): stop the streaming job first. A record that still fails stays
quarantined; the run says why and exits 1.
"""

from __future__ import annotations

import logging
import sys
import time

from conf.settings import ValidationLimits, get_settings
from conf.tables import AttributionRules, Tables, load_rules
from engine.attribution_batch import AttributionBatch
from engine.transforms import bronze_as_kafka, to_audit
from engine.writer_lease import LeaseRefused, WriterLease
from jobs.cli import job_parser, job_session

log = logging.getLogger(__name__)

WRITER = "reprocess"
COORDINATES = ("kafka_topic", "kafka_partition", "kafka_offset")


class StillFailing(Exception):
    """The quarantined records fail again: they stay quarantined."""


def quarantined(spark, tables: Tables, topic: str | None = None, partition: int | None = None,
                offsets: tuple[int, int] | None = None):
    """The coordinates of the audit's PROCESSING_ERROR rows, narrowed by the filters."""
    from pyspark.sql import functions as F

    rows = spark.table(tables.audit).where(F.col("reason") == "PROCESSING_ERROR")
    if topic is not None:
        rows = rows.where(F.col("kafka_topic") == topic)
    if partition is not None:
        rows = rows.where(F.col("kafka_partition") == partition)
    if offsets is not None:
        rows = rows.where(F.col("kafka_offset").between(*offsets))
    return rows.select(*COORDINATES).distinct()


def reprocess(spark, tables: Tables, rules: AttributionRules, limits: ValidationLimits = ValidationLimits(),
              lease=None, prepare=None, **filters) -> dict:
    """Gold, then the audit, for the quarantined records `filters` select (see quarantined()).
    Returns what it did; StillFailing (nothing changed) when they fail again or when Gold's
    touch cap would drop copies of theirs (which only the streaming job audits)."""
    selected = quarantined(spark, tables, **filters).localCheckpoint()  # one fixed set for every step below
    wanted = selected.count()
    if not wanted:
        return {"records": 0, "into_gold": 0, "rejected": {}}
    bronze = spark.table(tables.bronze).join(selected, list(COORDINATES), "left_semi")
    records = bronze_as_kafka(bronze).dropDuplicates(["topic", "partition", "offset"]).persist()
    try:
        found = records.count()
        if found != wanted:
            raise StillFailing(f"{wanted - found:,} of the {wanted:,} quarantined records are "
                               f"not in {tables.bronze} (expired or deleted there?): nothing was re-processed")
        # Gold's touch cap: copies beyond it are audited by the streaming job alone (its audit
        # comes before Gold); a re-processed record must not be dropped silently.
        apply = AttributionBatch(rules, WRITER, tables, sinks=("gold",), limits=limits, prepare=prepare)
        apply.lease = lease
        parsed = apply.prepare(records, limits).persist()
        try:
            days = apply.read_totals(parsed)["days"]
            if days and apply.overflowed(spark, parsed, days)[1] is not None:
                raise StillFailing(f"their impressions would hold more than {limits.max_touches:,} copies "
                                   "(VALIDATION_MAX_TOUCHES): they stay quarantined")
            verdicts = to_audit(parsed).localCheckpoint()  # the audit's new rows, read before any commit
        except StillFailing:
            raise
        except Exception as error:  # noqa: BLE001 - the records' own failure, reported with them
            raise StillFailing(f"they still fail: {str(error).splitlines()[0][:300]}") from error
        finally:
            parsed.unpersist()
        try:
            apply(records, 0)  # the streaming job's MERGE into Gold (idempotent)
        except Exception as error:  # noqa: BLE001
            raise StillFailing(f"the Gold MERGE failed: {str(error).splitlines()[0][:300]}") from error
        rejected = {row.reason: row["count"] for row in verdicts.groupBy("reason").count().collect()}
        replace_quarantine(spark, tables, selected, verdicts, lease)
        return {"records": found, "into_gold": found - sum(rejected.values()), "rejected": rejected}
    finally:
        records.unpersist()


def replace_quarantine(spark, tables: Tables, selected, verdicts, lease=None) -> None:
    """One MERGE into the audit: each selected PROCESSING_ERROR row is deleted (the record is
    in Gold now) or becomes the record's validation verdict."""
    source = selected.join(verdicts, list(COORDINATES), "left")
    source.createOrReplaceTempView("reprocessed_verdicts")
    if lease is not None:
        lease.check()
    try:
        on = " AND ".join(f"t.{name} = s.{name}" for name in COORDINATES)
        spark.sql(f"""
MERGE INTO {tables.audit} t USING reprocessed_verdicts s
ON {on} AND t.reason = 'PROCESSING_ERROR'
WHEN MATCHED AND s.reason IS NULL THEN DELETE
WHEN MATCHED THEN UPDATE SET reason = s.reason, detail = s.detail, event_id = s.event_id,
  event_type = s.event_type, impression_id = s.impression_id, audited_at = s.audited_at""")
    finally:
        spark.catalog.dropTempView("reprocessed_verdicts")


def offset_range(text: str) -> tuple[int, int]:
    low, _, high = text.partition(":")
    try:
        first, last = int(low), int(high or low)
    except ValueError:
        raise ValueError(f"--offsets {text!r}: FROM:TO or one offset") from None
    return first, last


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = job_parser("reprocess_job.py", __doc__, settings)
    parser.add_argument("--topic", help="only records of this topic")
    parser.add_argument("--partition", type=int, help="only records of this Kafka partition")
    parser.add_argument("--offsets", type=offset_range, help="only offsets FROM:TO (inclusive), or one offset")
    args = parser.parse_args(argv)
    tables = Tables(args.table_prefix)
    spark = job_session("reprocess", settings, "s3", "catalog")
    lease = WriterLease(spark, tables.bronze, WRITER, WRITER)
    try:
        lease.acquire()
    except LeaseRefused as refused:
        print(f"{refused.code}\nmake reprocess writes Gold and the audit: stop that job first", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        done = reprocess(spark, tables, load_rules(spark, tables), settings.validation_limits, lease,
                         topic=args.topic, partition=args.partition, offsets=args.offsets)
    except StillFailing as failing:
        print(f"error: quarantined records not re-processed: {failing}", file=sys.stderr)
        return 1
    finally:
        lease.release()
    rejected = ", ".join(f"{count:,} {reason}" for reason, count in sorted(done["rejected"].items())) or "none"
    log.info(f"re-processed {done['records']:,} quarantined records in {time.monotonic() - started:.1f}s: "
             f"{done['into_gold']:,} into {tables.gold}, rejected by validation: {rejected}; "
             f"{tables.audit} lists them as PROCESSING_ERROR no more")
    return 0


if __name__ == "__main__":
    sys.exit(main())
