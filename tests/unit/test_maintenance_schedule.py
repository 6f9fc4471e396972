"""The streaming job's in-job compaction schedule and statement (no Spark: a fake clock)."""

from __future__ import annotations

from datetime import date

from jobs.maintenance_job import ActiveDayCompaction, active_gold_compaction_sql


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_compaction_is_due_once_the_interval_passed_and_a_batch_wrote_gold():
    clock = Clock()
    compaction = ActiveDayCompaction("lakehouse.gold.state", 5, clock)
    clock.now += 301
    assert not compaction.due()  # nothing written since the job started
    compaction.note([date(2026, 11, 23)])
    assert compaction.due()
    compaction.note([date(2026, 11, 22), None])
    assert compaction.days == {date(2026, 11, 23), date(2026, 11, 22), None}


def test_compaction_is_never_due_when_switched_off():
    clock = Clock()
    compaction = ActiveDayCompaction("lakehouse.gold.state", 0, clock)
    compaction.note([date(2026, 11, 23)])
    clock.now += 10_000
    assert not compaction.due()


def test_statement_compacts_only_the_active_days_quoted_for_the_procedure():
    sql = active_gold_compaction_sql("gold.state", [date(2026, 11, 23), None])
    assert sql.startswith("CALL lakehouse.system.rewrite_data_files(table => 'lakehouse.gold.state', ")
    assert "where => '(impression_id_day IN (DATE ''2026-11-23'') OR impression_id_day IS NULL)'" in sql
    assert "'min-input-files', '2'" in sql and "'remove-dangling-deletes', 'true'" in sql
