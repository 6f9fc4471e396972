"""Replay ("time machine"): rebuild Gold from Bronze alone.

    spark-submit jobs/replay_job.py                                  # all of Bronze -> gold.ad_performance_state_replay
    spark-submit jobs/replay_job.py --target lakehouse.gold.my_shadow
    spark-submit jobs/replay_job.py --since 2026-01-05T00:00:00Z --until 2026-01-06T00:00:00Z
    spark-submit jobs/replay_job.py --replace-gold                   # live Gold itself (stop the streaming job first)

Bronze keeps every Kafka record with its coordinates and arrival time, so feeding its
rows through the streaming job's own transforms and Gold derivation gives the Gold those
records imply under the rules in conf.attribution_rules — change the rules, replay, and
compare. With --since/--until only records that arrived in that window are used: the
Gold those records alone imply.

A replay drops and recreates its target, so the target is checked first: a plain
`catalog.namespace.table` name in this lakehouse's catalog, none of the project's own
tables (Bronze, the audit, the rollups, ...), live Gold only with --replace-gold (which
overwrites Gold's rows in one commit and keeps the table), and, if the table exists, one
an earlier replay wrote (it carries REPLAY_PROPERTY).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from datetime import datetime, timezone

from conf.settings import CATALOG_NAME, ValidationLimits, get_settings
from conf.tables import REPLAY_PROPERTY, AttributionRules, Tables, gold_ddl, load_rules
from jobs.cli import job_parser, job_session
from engine.gold_merge import derive_gold
from engine.transforms import (
    bronze_as_kafka,
    parse_records,
    to_touches,
    touches_by_impression,
    with_validation,
)

log = logging.getLogger(__name__)


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


def instant(text: str) -> datetime:
    """An ISO-8601 time (`Z` or an offset; none means UTC) as an aware datetime: the
    argparse type of --since/--until, so nothing but a time reaches the query."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r} (e.g. 2026-01-05T00:00:00Z)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


class TargetRefused(ValueError):
    """The replay target is not a table a replay may drop and recreate."""


def check_target_name(target: str, tables: Tables, replace_gold: bool) -> str:
    """The target's canonical name (lower case, as the catalog stores it), or TargetRefused.
    Catalog-free, so it runs before Spark starts."""
    parts = target.lower().split(".")
    if len(parts) != 3 or not all(_IDENTIFIER.fullmatch(part) for part in parts):
        raise TargetRefused(f"--target {target!r} is not a plain catalog.namespace.table name "
                            "(letters, digits and underscores, no quotes or spaces)")
    if parts[0] != CATALOG_NAME:
        raise TargetRefused(f"--target {target!r} is outside this lakehouse's catalog {CATALOG_NAME!r}")
    name = ".".join(parts)
    if name == tables.gold:
        if not replace_gold:
            raise TargetRefused(f"--target {target!r} is live Gold; replay into a shadow table, "
                                "or pass --replace-gold (with the streaming job stopped) to replace it")
        return name
    if name in project_tables(tables):
        raise TargetRefused(f"--target {target!r} is one of the lakehouse's own tables; a replay would drop it")
    return name


def project_tables(tables: Tables) -> set[str]:
    """Every table name Tables defines."""
    return {getattr(tables, name) for name, value in vars(Tables).items()
            if isinstance(value, property) and isinstance(getattr(tables, name), str)}


def check_existing_target(spark, target: str, tables: Tables) -> None:
    """An existing target other than Gold and the default shadow must be one an earlier
    replay wrote."""
    if target in (tables.gold, f"{tables.gold}_replay") or not spark.catalog.tableExists(target):
        return
    written_by = {row.key: row.value for row in spark.sql(f"SHOW TBLPROPERTIES {target}").collect()}
    if REPLAY_PROPERTY not in written_by:
        raise TargetRefused(f"--target {target!r} exists and no replay wrote it (it has no {REPLAY_PROPERTY} "
                            "property); drop it yourself or name another table")


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = job_parser("replay_job.py", __doc__, settings)
    parser.add_argument("--target", help="table to (re)create; default: <gold>_replay")
    parser.add_argument("--replace-gold", action="store_true",
                        help="replace live Gold's rows with the replay (stop the streaming job first)")
    parser.add_argument("--since", type=instant, help="only records that arrived at or after this time (ISO, UTC)")
    parser.add_argument("--until", type=instant, help="only records that arrived before this time (ISO, UTC)")
    args = parser.parse_args(argv)

    tables = Tables(args.table_prefix)
    if args.replace_gold and args.target:
        parser.error("--replace-gold replaces live Gold; it takes no --target")
    try:
        target = check_target_name(args.target or (tables.gold if args.replace_gold else f"{tables.gold}_replay"),
                                   tables, args.replace_gold)
    except TargetRefused as refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2
    spark = job_session("replay", settings, "s3", "catalog")
    try:
        check_existing_target(spark, target, tables)
    except TargetRefused as refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2
    from pyspark.sql import functions as F

    rules = load_rules(spark, tables)
    started = time.monotonic()
    bronze = spark.table(tables.bronze)
    if args.since:
        bronze = bronze.where(F.col("kafka_timestamp") >= F.lit(args.since))
    if args.until:
        bronze = bronze.where(F.col("kafka_timestamp") < F.lit(args.until))
    replayed = replayed_gold(bronze, rules, settings.validation_limits, spark.table(tables.audit))
    if target == tables.gold:
        replayed.writeTo(target).overwrite(F.lit(True))
    else:
        spark.sql(f"DROP TABLE IF EXISTS {target}")
        spark.sql(gold_ddl(tables, name=target))
        spark.sql(f"ALTER TABLE {target} SET TBLPROPERTIES ('{REPLAY_PROPERTY}'='{tables.bronze}')")
        replayed.writeTo(target).append()
    rows = spark.table(target).count()
    log.info(f"replayed {tables.bronze} -> {target}: {rows:,} impressions under {rules} "
             f"in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
