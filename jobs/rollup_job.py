"""Dashboard rollups: Gold summed per UTC impression day and dimension
(gold.rollup_performance_daily) and its touch dispositions per arrival hour
(gold.rollup_dispositions_hourly), refreshed incrementally.

    spark-submit jobs/rollup_job.py [--every SECONDS]          (make rollups)

Gold is partitioned by the day in the impression id; both rollups are partitioned by
that day too. A refresh lists the Gold commits since the snapshot the rollup last
reflected, asks Iceberg which partitions those commits were the last to write (the
`partitions` metadata table), recomputes those days from one Gold snapshot and replaces
them in one commit (an overwrite by filter) whose summary records that snapshot. So a
refresh costs what changed, not the size of Gold; one that dies midway leaves the rollup
as it was and the next redoes the work; and what dashboards show trails Gold by at most
one refresh interval. When the commits since cannot be listed (expired, or Gold rebuilt
by a replay) the refresh starts over from all of Gold.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from conf.gold_days import days_predicate
from conf.settings import get_settings
from conf.tables import Tables
from jobs.cli import job_parser, job_session

log = logging.getLogger(__name__)

GOLD_SNAPSHOT_PROPERTY = "lakehouse.rollup.gold-snapshot-id"
ROUTINE_DISPOSITIONS = ("ATTRIBUTED", "CLICK", "IMPRESSION")  # what the dispositions rollup leaves out


def performance_select(source: str, predicate: str) -> str:
    """Additive sums per (Gold partition, impression day, campaign, creative, country,
    platform); the views derive every ratio from these sums."""
    return f"""
SELECT impression_id_day,
       to_date(impression_time) AS day,
       campaign_id, creative_id, geo_country, platform,
       count(*) AS impressions,
       count_if(is_clicked) AS clicks,
       count_if(is_converted) AS conversions,
       sum(cost) AS cost,
       sum(revenue) AS revenue,
       sum(IF(is_converted, (unix_millis(conversion_time) - unix_millis(impression_time)) / 1e3, NULL))
         AS attribution_lag_seconds_sum,
       count_if(is_converted AND conversion_time IS NOT NULL) AS attribution_lags,
       sum(revenue_out_of_window) AS revenue_out_of_window,
       count_if(NOT eligible) AS ineligible_impressions,
       max(impression_time) AS last_impression_time
FROM {source}
WHERE impression_time IS NOT NULL AND {predicate}
GROUP BY impression_id_day, to_date(impression_time), campaign_id, creative_id, geo_country, platform""".strip()


def disposition_select(source: str, predicate: str) -> str:
    """Touches per (Gold partition, arrival hour, disposition), routine dispositions left out."""
    routine = ", ".join(f"'{d}'" for d in ROUTINE_DISPOSITIONS)
    return f"""
SELECT impression_id_day, date_trunc('HOUR', touch.arrival_time) AS hour, touch.disposition AS reason,
       count(*) AS events
FROM (SELECT impression_id_day, explode(touches) AS touch FROM {source} WHERE {predicate})
WHERE touch.disposition NOT IN ({routine})
GROUP BY impression_id_day, date_trunc('HOUR', touch.arrival_time), touch.disposition""".strip()


@dataclass(frozen=True)
class Rollup:
    table: str
    select: Callable[[str, str], str]  # (source, predicate) -> SQL


def rollups(tables: Tables) -> tuple[Rollup, ...]:
    return (Rollup(tables.performance_rollup, performance_select),
            Rollup(tables.disposition_rollup, disposition_select))


def current_snapshot_sql(table: str) -> str:
    """The snapshot `main` points at (not merely the newest one: a rollback moves main back)."""
    return (f"SELECT s.snapshot_id, s.summary FROM {table}.refs r "
            f"JOIN {table}.snapshots s ON s.snapshot_id = r.snapshot_id WHERE r.name = 'main'")


def changed_days_sql(gold: str, at_snapshot_id: int, since_snapshot_ids: list[int]) -> str:
    """Gold partition days, as of one snapshot, last written by one of the given snapshots.
    A partition's last_updated_snapshot_id is the newest commit among its live files, and
    Gold rows are never deleted, so every MERGE or rewrite of a partition moves it on."""
    ids = ", ".join(str(i) for i in since_snapshot_ids) or "NULL"
    return (f"SELECT DISTINCT partition.impression_id_day AS day FROM {gold}.partitions "
            f"VERSION AS OF {at_snapshot_id} WHERE last_updated_snapshot_id IN ({ids})")


def commits_since(parents: dict[int, int | None], current: int, since: int) -> list[int] | None:
    """The snapshots from `since` (exclusive) to `current` (inclusive), walking parent links;
    None when `since` is not an ancestor of `current` (expired, or Gold was replaced)."""
    chain, snapshot = [], current
    while snapshot is not None and snapshot != since:
        chain.append(snapshot)
        snapshot = parents.get(snapshot)
    return chain if snapshot == since else None


def _current(spark, table: str):
    rows = spark.sql(current_snapshot_sql(table)).collect()
    return rows[0] if rows else None


def refresh(spark, gold: str, rollup: Rollup, gold_now, parents: dict[int, int | None]) -> dict:
    """Bring one rollup up to Gold's snapshot `gold_now` (None: Gold never written), given
    Gold's parent links; returns gold_snapshot, days (None = all of Gold), rows, seconds."""
    started = time.monotonic()
    report = {"table": rollup.table, "gold_snapshot": gold_now and gold_now.snapshot_id, "days": [], "rows": 0}
    if gold_now is None:  # Gold was never written: nothing to sum
        return {**report, "seconds": time.monotonic() - started}
    previous = _current(spark, rollup.table)
    recorded = previous and (previous.summary or {}).get(GOLD_SNAPSHOT_PROPERTY)
    if recorded is not None and int(recorded) == gold_now.snapshot_id:
        return {**report, "seconds": time.monotonic() - started}
    since = None if recorded is None else commits_since(parents, gold_now.snapshot_id, int(recorded))
    if since is not None:
        days = [row.day for row in spark.sql(changed_days_sql(gold, gold_now.snapshot_id, since)).collect()]
        predicate = days_predicate(days)
    else:
        days, predicate = None, "true"
    from pyspark.sql import functions as F

    frame = spark.sql(rollup.select(f"{gold} VERSION AS OF {gold_now.snapshot_id}", predicate))
    (frame.writeTo(rollup.table)
     .option(f"snapshot-property.{GOLD_SNAPSHOT_PROPERTY}", str(gold_now.snapshot_id))
     .overwrite(F.expr(predicate)))
    written = _current(spark, rollup.table)
    rows = int((written.summary or {}).get("added-records", 0)) if written else 0
    return {**report, "days": days, "rows": rows, "seconds": time.monotonic() - started}


def refresh_all(spark, tables: Tables) -> list[dict]:
    """Refresh every rollup, printing one line each."""
    for table in (tables.gold, tables.performance_rollup, tables.disposition_rollup):
        spark.sql(f"REFRESH TABLE {table}")  # a long-running job must not plan on a cached snapshot
    # One Gold snapshot and one read of its parent links serve every rollup.
    gold_now = _current(spark, tables.gold)
    parents = {row.snapshot_id: row.parent_id
               for row in spark.sql(f"SELECT snapshot_id, parent_id FROM {tables.gold}.snapshots").collect()}
    reports = []
    for rollup in rollups(tables):
        report = refresh(spark, tables.gold, rollup, gold_now, parents)
        if report["gold_snapshot"] is None:
            scope = "Gold is empty"
        elif report["days"] is None:
            scope = "all of Gold"
        elif report["days"]:
            scope = f"{len(report['days'])} changed day(s): " + ", ".join(
                "null" if d is None else d.isoformat() for d in sorted(report["days"], key=str)[:5]) + (
                ", ..." if len(report["days"]) > 5 else "")
        else:
            scope = "up to date"
        log.info(f"rollup {rollup.table}: {scope} -> {report['rows']:,} rows in {report['seconds']:.1f}s "
                 f"(Gold snapshot {report['gold_snapshot']})")
        reports.append(report)
    return reports


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = job_parser("rollup_job.py", __doc__, settings)
    parser.add_argument("--every", type=float, default=0,
                        help="seconds between refreshes; 0 refreshes once (run it beside the streaming job "
                             "with e.g. --every 60: dashboards then trail Gold by about a minute)")
    args = parser.parse_args(argv)
    from conf.tables import ensure_tables

    spark = job_session("rollups", settings, "s3", "catalog")
    tables = Tables(args.table_prefix)
    ensure_tables(spark, tables)
    while True:
        refresh_all(spark, tables)
        if not args.every:
            return 0
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
