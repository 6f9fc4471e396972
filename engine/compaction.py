"""Iceberg's compaction procedures as SQL text, and the streaming job's in-job compaction
of the Gold days it is writing. The maintenance job (jobs/maintenance_job.py) and the
streaming job both use them."""

from __future__ import annotations

from datetime import datetime, timezone

from conf.settings import CATALOG_NAME
from conf.gold_days import days_predicate
from engine.commits import first_line, is_commit_conflict, retry_on_conflict

TARGET_FILE_BYTES = 128 * 1024 * 1024
ACTIVE_TARGET_FILE_BYTES = 32 * 1024 * 1024  # in-job compaction of the days being written
ACTIVE_MIN_FILE_BYTES = 8 * 1024 * 1024  # ... which leaves files of this size and more alone


def procedure_target(table: str) -> str:
    """The table as procedures take it: fully qualified (a two-part name would first be
    looked up as catalog.table)."""
    return table if table.startswith(f"{CATALOG_NAME}.") else f"{CATALOG_NAME}.{table}"


def timestamp_sql(at: datetime) -> str:
    return f"TIMESTAMP '{at.astimezone(timezone.utc).strftime('%Y-%m-%d %H:%M:%S')} UTC'"


def options_sql(options: dict[str, str]) -> str:
    return "map(" + ", ".join(f"'{k}', '{v}'" for k, v in options.items()) + ")"


def rewrite_data_files_sql(table: str, target_bytes: int, where: str | None = None,
                            extra: dict[str, str] | None = None) -> str:
    """rewrite_data_files of `table` (only the rows matching the SQL filter `where`) into
    files of ~`target_bytes`; a group of one file is left alone, and every group that
    finishes commits even if a later one fails (partial progress, unless `extra` says otherwise)."""
    scope = "where => '" + where.replace("'", "''") + "', " if where else ""
    return (f"CALL {CATALOG_NAME}.system.rewrite_data_files(table => '{procedure_target(table)}', {scope}options => "
            + options_sql({"target-file-size-bytes": str(target_bytes), "min-input-files": "2",
                        "partial-progress.enabled": "true", **(extra or {})}) + ")")


def active_gold_compaction_sql(gold: str, days) -> str:
    """Small-file compaction of the Gold days the stream is writing (`days` as in
    conf.gold_days.days_predicate). Each batch adds data and delete files to the days it
    names, and each MERGE reads every file of those days: without this the per-batch MERGE
    slows down as the day goes on. Small files, with the deletes that point at them, become
    files of up to ~32 MB: files of 8 MB and more are left as they are (with their deletes)
    for the maintenance job, so that a run rewrites a bounded amount per day however large
    the day grows — an older day, which gets a few rows per batch from late conversions,
    does not have its last file rewritten every run (docs/benchmarks.md, the week).
    One commit for all groups: a lost race fails the whole call, which is then planned
    again (with partial progress, a group that lost would be dropped without a word)."""
    return rewrite_data_files_sql(gold, ACTIVE_TARGET_FILE_BYTES, days_predicate(days),
                                   extra={"remove-dangling-deletes": "true", "partial-progress.enabled": "false",
                                          "min-file-size-bytes": str(ACTIVE_MIN_FILE_BYTES)})


class ActiveDayCompaction:
    """The streaming job's in-job schedule: every `every` batches that wrote Gold, between
    two batches, compact the Gold days those batches wrote to (active_gold_compaction_sql).
    Counted in batches because files pile up per batch (a data file and a delete file per
    day each): every 6 is twice a minute at the 5 s trigger, and a drain of large batches
    is not held up by a compaction per minute. Inside the job it never races the job's own
    MERGE; a race lost to a separate maintenance job is planned again on the fresh table
    (retry_on_conflict); a race lost three times, or any other failure, is reported and the
    days wait for the next run: compaction only rearranges files, so skipping loses nothing."""

    def __init__(self, gold: str, every: int) -> None:
        self.gold, self.every = gold, every
        self.days: set = set()
        self.batches = 0  # batches that wrote Gold since the last run

    def note(self, days) -> None:
        if days:
            self.days.update(days)
            self.batches += 1

    def due(self) -> bool:
        return self.every > 0 and self.batches >= self.every

    def run(self, spark) -> str:
        """Compact now; returns a one-line summary."""
        self.batches = 0
        try:
            result = retry_on_conflict(spark, self.gold, lambda: spark.sql(
                active_gold_compaction_sql(self.gold, self.days)).first(), attempts=3)
        except Exception as error:  # noqa: BLE001 - the batch's data is committed; compaction can wait
            reason = "lost a commit race to another writer" if is_commit_conflict(error) else first_line(error)
            return f"Gold compaction skipped ({reason}); next try in {self.every} batches"
        days, self.days, counts = len(self.days), set(), result.asDict()
        return (f"Gold compaction of {days} active day(s): {counts.get('rewritten_data_files_count', 0)} data "
                f"files -> {counts.get('added_data_files_count', 0)}, "
                f"{counts.get('removed_delete_files_count', 0)} delete files removed")
