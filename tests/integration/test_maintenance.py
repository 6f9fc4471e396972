"""Table maintenance while the streaming job runs: compaction, delete-file rewrite and
snapshot expiry run again and again against the tables the job is writing (a separate
Spark driver, as in production). Afterwards Bronze holds every record exactly once, Gold
and the audit equal the oracle, and a final pass leaves Gold without delete files and
Bronze in fewer files."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from jobs.maintenance_job import expire_snapshots_sql, file_counts, run_once
from tests.streaming_helpers import Scenario

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def maintained(stack, spark, settings, tmp_path_factory):
    # Expire everything older than now (but never a writer's newest snapshot), orphan age 0 is
    # not used: a file being written right now would look like an orphan.
    maintenance = settings.model_copy(update={"maintenance_snapshot_retention_hours": 0,
                                              "maintenance_retain_last": 3, "maintenance_closed_after_minutes": 0})
    scenario = Scenario.generated("maint", tmp_path_factory.mktemp("maint"), 10_000, 83, settings,
                                  job_args=["--max-offsets-per-trigger", "2000"],
                                  env={"TRIGGER_INTERVAL": "1 second"})
    job = scenario.start()
    reports = []
    try:
        assert job.wait_for_batches(2), job.tail()
        total = len(scenario.records())
        while job.records_done() < total and job.process.poll() is None:
            reports.append(run_once(spark, scenario.tables, maintenance))
            time.sleep(1)
        assert job.wait_for_records(total, timeout=300), job.tail()
    finally:
        job.kill()
    before = {t: file_counts(spark, t) for t in (scenario.tables.bronze, scenario.tables.gold)}
    print("".join(line for line in job.log if line.startswith(("query failed", "batch ")) and "records" not in line))
    final_started = datetime.now(timezone.utc)
    final = run_once(spark, scenario.tables, maintenance)
    after = {t: file_counts(spark, t) for t in (scenario.tables.bronze, scenario.tables.gold)}
    yield {"scenario": scenario, "reports": reports, "final": final, "before": before, "after": after,
           "log": job.log, "final_started": final_started}
    scenario.cleanup(spark)


def test_maintenance_ran_several_times_during_ingest(maintained):
    """Several full passes while batches committed; a MERGE that lost a race was re-planned."""
    concurrent = [step for report in maintained["reports"] for step in report]
    assert len(maintained["reports"]) >= 2
    done = {(s["table"].rsplit(".", 1)[1], s["step"]) for s in concurrent if s["outcome"] == "done"}
    assert ("ad_events", "compact closed hours") in done
    assert ("ad_performance_state", "rewrite position deletes") in done
    assert ("ad_performance_state", "expire snapshots") in done


def test_bronze_is_complete_and_exactly_once(spark, maintained):
    maintained["scenario"].assert_bronze_exactly_once(spark)


def test_gold_and_audit_equal_the_oracle(spark, maintained):
    maintained["scenario"].assert_gold_and_audit_match(spark)


def test_a_quiet_pass_leaves_gold_without_delete_files_and_bronze_compacted(spark, maintained):
    bronze, gold = maintained["scenario"].tables.bronze, maintained["scenario"].tables.gold
    assert maintained["after"][gold]["delete files"] == 0, maintained["final"]
    # Every closed event hour of Bronze is down to one file (Bronze partitions by event hour).
    assert spark.sql(f"SELECT max(file_count) AS files FROM {bronze}.partitions").first().files == 1
    assert all(step["outcome"] == "done" for step in maintained["final"])


def test_the_newest_offset_ranges_survive_expiry(spark, maintained):
    """A restarted job finds every offset Bronze holds in the newest snapshot with ranges."""
    from jobs.bronze_sink import committed_ranges, merge_ranges

    scenario = maintained["scenario"]
    sent = merge_ranges(*({(scenario.topic, r["partition"]): [[r["offset"], r["offset"]]]} for r in scenario.records()))
    spark.sql(f"REFRESH TABLE {scenario.tables.bronze}")
    assert spark.sql(f"SELECT count(*) AS n FROM {scenario.tables.bronze}.snapshots "
                     "WHERE summary['lakehouse.kafka-ranges'] IS NOT NULL").first().n >= 1
    assert committed_ranges(spark, scenario.tables.bronze)[0] == sent
    # Gold has no writer id: only the newest `maintenance_retain_last` (3) snapshots from
    # before the final pass survive it (its own rewrite commits come after).
    started = maintained["final_started"].strftime("%Y-%m-%d %H:%M:%S")
    assert spark.sql(f"SELECT count(*) AS n FROM {scenario.tables.gold}.snapshots "
                     f"WHERE committed_at < TIMESTAMP '{started} UTC'").first().n <= 3


def test_expire_statement_names_the_snapshots():
    assert expire_snapshots_sql("lakehouse.gold.t", [3, 5]) == (
        "CALL lakehouse.system.expire_snapshots(table => 'lakehouse.gold.t', "
        "older_than => TIMESTAMP '1970-01-01 00:00:00 UTC', snapshot_ids => array(3, 5))")
