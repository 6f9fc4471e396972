"""Replay ("time machine"): rebuild Gold from Bronze alone.

    spark-submit jobs/replay_job.py                                  # all of Bronze -> gold.ad_performance_state_replay
    spark-submit jobs/replay_job.py --target lakehouse.gold.my_shadow
    spark-submit jobs/replay_job.py --since 2026-01-05T00:00:00Z --until 2026-01-06T00:00:00Z

Bronze keeps every Kafka record with its coordinates and arrival time, so feeding its
rows through the streaming job's own transforms and Gold derivation gives the Gold those
records imply under the rules in conf.attribution_rules — change the rules, replay, and
compare. With --since/--until only records that arrived in that window are used: the
Gold those records alone imply.
"""

from __future__ import annotations

import logging
import sys
import time

from conf.settings import ValidationLimits, get_settings
from conf.tables import AttributionRules, Tables, gold_ddl, load_rules
from jobs.cli import job_parser, job_session
from jobs.gold_merge import derive_gold
from jobs.transforms import (
    parse_records,
    to_touches,
    touches_by_impression,
    with_validation,
)

log = logging.getLogger(__name__)


def bronze_as_kafka(bronze):
    """Bronze rows in the shape of the Kafka source, so the same transforms apply."""
    from pyspark.sql import functions as F

    return bronze.select(
        F.col("kafka_key").cast("binary").alias("key"),
        F.col("raw_payload").cast("binary").alias("value"),
        F.col("kafka_topic").alias("topic"),
        F.col("kafka_partition").alias("partition"),
        F.col("kafka_offset").alias("offset"),
        F.col("kafka_timestamp").alias("timestamp"),
    )


def replayed_gold(bronze, rules: AttributionRules, limits: ValidationLimits = ValidationLimits(), audit=None):
    """Bronze -> Gold rows: the live path's transforms and derivation, from scratch. Records
    the live job isolated from a failing batch (PROCESSING_ERROR in `audit`) stay out: they
    would fail the replay the same way."""
    # A record can sit in Bronze once per Kafka coordinate only; dropDuplicates guards
    # a Bronze that was appended to by hand.
    records = bronze_as_kafka(bronze).dropDuplicates(["topic", "partition", "offset"])
    if audit is not None:
        isolated = audit.where("reason = 'PROCESSING_ERROR'").selectExpr(
            "kafka_topic AS topic", "kafka_partition AS partition", "kafka_offset AS offset")
        records = records.join(isolated, ["topic", "partition", "offset"], "left_anti")
    return derive_gold(touches_by_impression(to_touches(with_validation(parse_records(records), limits))), rules,
                       limits.max_touches)


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = job_parser("replay_job.py", __doc__, settings)
    parser.add_argument("--target", help="table to (re)create; default: <gold>_replay")
    parser.add_argument("--since", help="only records that arrived at or after this time (ISO, UTC)")
    parser.add_argument("--until", help="only records that arrived before this time (ISO, UTC)")
    args = parser.parse_args(argv)

    spark = job_session("replay", settings, "s3", "catalog")
    tables = Tables(args.table_prefix)
    target = args.target or f"{tables.gold}_replay"
    if target == tables.gold:
        print("error: refusing to overwrite live Gold; name a shadow table with --target", file=sys.stderr)
        return 2
    rules = load_rules(spark, tables)
    started = time.monotonic()
    bronze = spark.table(tables.bronze)
    if args.since:
        bronze = bronze.where(f"kafka_timestamp >= timestamp'{args.since.replace('Z', '')}'")
    if args.until:
        bronze = bronze.where(f"kafka_timestamp < timestamp'{args.until.replace('Z', '')}'")
    spark.sql(f"DROP TABLE IF EXISTS {target}")
    spark.sql(gold_ddl(tables, name=target))
    replayed_gold(bronze, rules, settings.validation_limits, spark.table(tables.audit)).writeTo(target).append()
    rows = spark.table(target).count()
    log.info(f"replayed {tables.bronze} -> {target}: {rows:,} impressions under {rules} "
             f"in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
