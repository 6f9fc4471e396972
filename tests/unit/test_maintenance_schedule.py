"""The streaming job's in-job compaction schedule and statement, and the maintenance job's expire statement (no Spark)."""

from __future__ import annotations

from datetime import date

from engine.compaction import ActiveDayCompaction, active_gold_compaction_sql
from jobs.maintenance_job import expire_snapshots_sql


def test_compaction_is_due_after_every_n_batches_that_wrote_gold():
    compaction = ActiveDayCompaction("lakehouse.gold.state", 3)
    compaction.note([date(2026, 11, 23)])
    compaction.note([])  # a batch with no valid record names no day: it adds no files
    compaction.note([date(2026, 11, 22), None])
    assert not compaction.due()
    compaction.note([date(2026, 11, 23)])
    assert compaction.due()
    assert compaction.days == {date(2026, 11, 23), date(2026, 11, 22), None}


def test_compaction_is_never_due_when_switched_off():
    compaction = ActiveDayCompaction("lakehouse.gold.state", 0)
    for _ in range(100):
        compaction.note([date(2026, 11, 23)])
    assert not compaction.due()


def test_statement_compacts_only_the_active_days_quoted_for_the_procedure():
    sql = active_gold_compaction_sql("gold.state", [date(2026, 11, 23), None])
    assert sql.startswith("CALL lakehouse.system.rewrite_data_files(table => 'lakehouse.gold.state', ")
    assert "where => '(impression_id_day IN (DATE ''2026-11-23'') OR impression_id_day IS NULL)'" in sql
    assert "'min-input-files', '2'" in sql and "'remove-dangling-deletes', 'true'" in sql
    assert f"'target-file-size-bytes', '{32 * 1024 * 1024}'" in sql
    assert f"'min-file-size-bytes', '{8 * 1024 * 1024}'" in sql  # a larger file is not rewritten again


def test_expire_statement_names_the_snapshots():
    assert expire_snapshots_sql("lakehouse.gold.t", [3, 5]) == (
        "CALL lakehouse.system.expire_snapshots(table => 'lakehouse.gold.t', "
        "older_than => TIMESTAMP '1970-01-01 00:00:00 UTC', snapshot_ids => array(3, 5))")
