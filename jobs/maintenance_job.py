"""Table maintenance, safe while the streaming job runs:

- Bronze: rewrite_data_files of closed hours (event hours that ended MAINTENANCE_CLOSED_AFTER_MINUTES
  ago) into ~128 MB ZSTD files. Bronze is append-only, so this never conflicts with ingest.
- Gold: rewrite_position_delete_files (merges small delete files, drops dangling ones), then
  rewrite_data_files of files carrying deletes (applies them). Gold is MERGEd by every batch,
  so a rewrite group can lose a commit race: it is then skipped (partial progress) and tried
  again next run, and a MERGE that loses the race is retried by the streaming job itself.
- expire_snapshots and remove_orphan_files on every table that commits often (the rollups
  too), with retention from settings.

    spark-submit jobs/maintenance_job.py [--every SECONDS]     (make maintenance)

Every statement is built by a pure function; a step that fails on a commit conflict is
reported and skipped, never retried blindly: the data stays as it was.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial

from conf.settings import CATALOG_NAME, Settings, get_settings
from conf.tables import Tables
from jobs.cli import job_parser, job_session
from engine.commits import is_commit_conflict, retry_on_conflict
from engine.compaction import (
    TARGET_FILE_BYTES,
    options_sql,
    procedure_target,
    rewrite_data_files_sql,
    timestamp_sql,
)

log = logging.getLogger(__name__)

def bronze_compaction_sql(bronze: str, closed_before: datetime) -> str:
    # Records whose time did not parse sit in the NULL hour, appended to by every batch:
    # append-only like the rest, so compacting it never conflicts with ingest.
    return rewrite_data_files_sql(
        bronze, TARGET_FILE_BYTES, f"event_timestamp < {timestamp_sql(closed_before)} OR event_timestamp IS NULL")


def gold_delete_rewrite_sql(gold: str) -> str:
    return (f"CALL {CATALOG_NAME}.system.rewrite_position_delete_files(table => '{procedure_target(gold)}', "
            "options => " + options_sql({"rewrite-all": "true", "partial-progress.enabled": "true"}) + ")")


def gold_compaction_sql(gold: str) -> str:
    """Rewrite the data files that carry deletes (delete-file-threshold 1), plus small files."""
    return rewrite_data_files_sql(gold, TARGET_FILE_BYTES,
                                   extra={"delete-file-threshold": "1", "remove-dangling-deletes": "true"})


def expirable_snapshots_sql(table: str, older_than: datetime, retain_last: int, keep: tuple[int, ...] = ()) -> str:
    """Snapshots to expire: older than the cutoff, not among the newest `retain_last`, and
    not in `keep` — the snapshot whose offset ranges describe the table (engine/bronze_sink.py:
    snapshot_lineage): a restarted job reads them to append no Kafka record twice, however
    long ago it stopped. The snapshots between it and the current one may go (their number
    would grow with every commit that carries no ranges); the line they cut is bridged by
    commit time."""
    kept = f"\n  AND snapshot_id NOT IN ({', '.join(str(int(i)) for i in keep)})" if keep else ""
    return f"""
WITH ranked AS (
  SELECT snapshot_id, committed_at, row_number() OVER (ORDER BY committed_at DESC) AS newest_rank
  FROM {table}.snapshots
)
SELECT snapshot_id FROM ranked
WHERE committed_at < {timestamp_sql(older_than)}
  AND newest_rank > {retain_last}{kept}
ORDER BY snapshot_id""".strip()


# Without older_than, expire_snapshots also expires every snapshot older than the table's
# history.expire.max-snapshot-age-ms (5 days by default) besides the ids it is given: the
# epoch as the cutoff makes the ids the only snapshots it removes.
NOTHING_BY_AGE = "TIMESTAMP '1970-01-01 00:00:00 UTC'"


def expire_snapshots_sql(table: str, snapshot_ids: list[int]) -> str:
    ids = ", ".join(str(i) for i in snapshot_ids)
    return (f"CALL {CATALOG_NAME}.system.expire_snapshots(table => '{procedure_target(table)}', "
            f"older_than => {NOTHING_BY_AGE}, snapshot_ids => array({ids}))")


def remove_orphan_files_sql(table: str, older_than: datetime) -> str:
    # prefix_listing: list through the table's FileIO (S3FileIO), not a Hadoop s3 filesystem.
    return (f"CALL {CATALOG_NAME}.system.remove_orphan_files(table => '{procedure_target(table)}', "
            f"older_than => {timestamp_sql(older_than)}, prefix_listing => true)")


def maintained_tables(tables: Tables) -> tuple[str, ...]:
    """Every table that commits often: each gets snapshot expiry and orphan cleanup."""
    return (tables.bronze, tables.gold, tables.audit, tables.stream_progress, tables.performance_rollup,
            tables.disposition_rollup)


@dataclass
class Step:
    table: str
    name: str
    sql: str | Callable[..., str | None]  # the statement, or a function of the session that
                                          # chooses it from the table's state (None: nothing to do)

    def statement(self, spark) -> str | None:
        return self.sql(spark) if callable(self.sql) else self.sql


def expire_statement(table: str, older_than: datetime, retain_last: int, spark) -> str | None:
    """expire_snapshots for the snapshots chosen by expirable_snapshots_sql, or None."""
    from engine.bronze_sink import snapshot_lineage

    marked, _ = snapshot_lineage(spark, table)
    keep = (marked,) if marked is not None else ()
    ids = [row.snapshot_id for row in spark.sql(
        expirable_snapshots_sql(table, older_than, retain_last, keep)).collect()]
    return expire_snapshots_sql(table, ids) if ids else None


def plan(tables: Tables, settings: Settings, now: datetime) -> list[Step]:
    closed_before = now.replace(minute=0, second=0, microsecond=0) - timedelta(
        minutes=settings.maintenance_closed_after_minutes)
    snapshots_before = now - timedelta(hours=settings.maintenance_snapshot_retention_hours)
    orphans_before = now - timedelta(hours=settings.maintenance_orphan_age_hours)
    steps = [
        Step(tables.bronze, "compact closed hours", bronze_compaction_sql(tables.bronze, closed_before)),
        Step(tables.gold, "rewrite position deletes", gold_delete_rewrite_sql(tables.gold)),
        Step(tables.gold, "compact files with deletes", gold_compaction_sql(tables.gold)),
    ]
    for table in maintained_tables(tables):
        steps.append(Step(table, "expire snapshots",
                          partial(expire_statement, table, snapshots_before, settings.maintenance_retain_last)))
        steps.append(Step(table, "remove orphan files", remove_orphan_files_sql(table, orphans_before)))
    return steps


def file_counts(spark, table: str) -> dict[str, int]:
    row = spark.sql(f"SELECT count_if(content = 0) AS data, count_if(content = 1) AS position_deletes, "
                    f"count_if(content = 2) AS equality_deletes FROM {table}.files").first()
    return {"data files": row.data, "delete files": row.position_deletes + row.equality_deletes}


# A step that loses a commit race (the streaming job commits every batch) is planned again on
# the table as it is then, at most this many times in all.
STEP_ATTEMPTS = 3


def run_once(spark, tables: Tables, settings: Settings, now: datetime | None = None) -> list[dict]:
    """Run every step; returns one dict per step (table, step, outcome, seconds, result)."""
    now = now or datetime.now(timezone.utc)
    existing = {t for t in maintained_tables(tables) if spark.catalog.tableExists(t)}
    for table in existing:  # plan on the tables as they are now, not as this session cached them
        spark.sql(f"REFRESH TABLE {table}")
    # A table never committed to has nothing to expire or compact (orphans of a failed first
    # write wait for its first commit).
    existing = {t for t in existing if spark.sql(f"SELECT 1 FROM {t}.snapshots LIMIT 1").count()}
    report = []
    for step in plan(tables, settings, now):
        if step.table not in existing:
            continue
        started = time.monotonic()

        def execute(step=step):
            statement = step.statement(spark)  # planned again on the refreshed table after a lost race
            return None if statement is None else spark.sql(statement).collect()
        try:
            result = retry_on_conflict(spark, step.table, execute, STEP_ATTEMPTS)
            if result is None:
                continue
            outcome, detail = "done", ", ".join(f"{k} {v}" for k, v in result[0].asDict().items()) if result else ""
        except Exception as error:  # noqa: BLE001 - a race lost every time is skipped, anything else raised
            if not is_commit_conflict(error):
                raise
            outcome, detail = "skipped", f"lost a commit race to a concurrent writer {STEP_ATTEMPTS} times; nothing changed"
        report.append({"table": step.table, "step": step.name, "outcome": outcome,
                       "seconds": time.monotonic() - started, "detail": detail})
        log.info(f"  {step.table:<48} {step.name:<28} {outcome:<7} {report[-1]['seconds']:5.1f}s  {detail}"[:220])
    return report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    settings = get_settings()
    parser = job_parser("maintenance_job.py", __doc__, settings)
    parser.add_argument("--every", type=float, default=0,
                        help="seconds between runs (as in the rollup job); 0 runs once (an in-job schedule beside the streaming job, e.g. --every 3600)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = get_settings()
    spark = job_session("table-maintenance", settings, "s3", "catalog")
    tables = Tables(args.table_prefix)
    while True:
        before = {t: file_counts(spark, t) for t in (tables.bronze, tables.gold) if spark.catalog.tableExists(t)}
        log.info(f"maintenance at {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC")
        run_once(spark, tables, settings)
        for table, counts in before.items():
            after = file_counts(spark, table)
            log.info(f"  {table}: " + ", ".join(f"{k} {counts[k]} -> {after[k]}" for k in counts))
        if not args.every:
            return 0
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
