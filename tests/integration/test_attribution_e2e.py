"""End to end on the local stack, with table maintenance running beside the job: the
generator (fixed seed, every fault on, simulated time) -> Kafka -> `spark-submit
jobs/attribution_streaming_job.py --trigger available-now` -> Bronze, audit and Gold equal
the oracle computed from the generator's --output file, and Trino returns the same totals.
While the job commits, compaction, delete-file rewrite and snapshot expiry run again and
again against the same tables from a separate Spark driver (as in production); a final
pass leaves Gold without delete files and Bronze in fewer files."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest

from jobs.maintenance_job import file_counts, run_once
from tests.attribution_helpers import assert_gold_matches, gold_rows
from tests.oracle import attribute
from tests.streaming_helpers import BATCH_LINE, Scenario

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def pipeline_run(stack, spark, settings, tmp_path_factory):
    # Expire everything older than now (but never a writer's newest snapshot); orphan age 0 is
    # not used: a file being written right now would look like an orphan.
    maintenance = settings.model_copy(update={"maintenance_snapshot_retention_hours": 0,
                                              "maintenance_retain_last": 3, "maintenance_closed_after_minutes": 0})
    scenario = Scenario.generated("e2e", tmp_path_factory.mktemp("e2e"), 18_000, 21, settings,
                                  # progress written every 2 s by the job's thread, beside the batches;
                                  # the Gold days a batch wrote compacted after every batch
                                  job_args=["--max-offsets-per-trigger", "6500", "--progress-every", "2",
                                            "--compact-every", "1"])
    job = scenario.start("--trigger", "available-now")
    reports = []
    try:
        # Two batches first: with its compactions Gold then holds more snapshots than the three
        # that maintenance keeps, so a pass during ingest has snapshots of Gold to expire.
        assert job.wait_for_batches(2), job.tail()
        while job.process.poll() is None:
            reports.append(run_once(spark, scenario.tables, maintenance))
            time.sleep(1)
        assert job.process.wait(timeout=600) == 0, job.tail()
    finally:
        job.kill()
    tables = scenario.tables
    for table in (tables.bronze, tables.gold):
        spark.sql(f"REFRESH TABLE {table}")
    before = {t: file_counts(spark, t) for t in (tables.bronze, tables.gold)}
    gold_files = spark.sql(f"SELECT max(file_count) AS most, count(*) AS partitions FROM {tables.gold}.partitions").first()
    final_started = datetime.now(timezone.utc)
    final = run_once(spark, tables, maintenance)
    after = {t: file_counts(spark, t) for t in (tables.bronze, tables.gold)}
    records = scenario.records()
    yield {"scenario": scenario, "tables": tables, "records": records, "expected": attribute(records),
           "log": "".join(job.log), "reports": reports, "final": final, "before": before, "after": after,
           "final_started": final_started, "gold_files": gold_files}
    scenario.cleanup(spark)


def test_the_job_ran_in_several_micro_batches(pipeline_run):
    batch_lines = [line for line in pipeline_run["log"].splitlines() if BATCH_LINE.match(line)]
    assert len(batch_lines) >= 3, pipeline_run["log"]


def test_bronze_holds_every_kafka_record_exactly_once(spark, pipeline_run):
    bronze = spark.table(pipeline_run["tables"].bronze).select("kafka_partition", "kafka_offset", "raw_payload").collect()
    coordinates = [(row.kafka_partition, row.kafka_offset) for row in bronze]
    assert len(coordinates) == len(set(coordinates)) == len(pipeline_run["records"])
    assert {(r.kafka_partition, r.kafka_offset): r.raw_payload for r in bronze} == {
        (r["partition"], r["offset"]): r["value"] for r in pipeline_run["records"]}


def test_gold_equals_the_oracle(spark, pipeline_run):
    actual = gold_rows(spark, f"SELECT * FROM {pipeline_run['tables'].gold}")
    expected = pipeline_run["expected"]
    assert_gold_matches(actual, expected.gold)
    dispositions = {c: d for row in actual.values() for c, d in row["dispositions"].items()}
    assert dispositions == expected.dispositions
    kinds = set(dispositions.values())
    assert {"DUPLICATE", "CLICK_BEFORE_IMPRESSION", "ATTRIBUTED"} <= kinds
    assert any(row["is_late"] for row in actual.values())


def test_in_job_compaction_leaves_one_data_file_per_gold_partition(spark, pipeline_run):
    """Compaction ran after every batch (the oracle test above saw its result) and, with the
    maintenance passes beside it, left each Gold partition in one file when the job ended:
    a MERGE reads one file per partition, not one per batch. A compaction that lost its
    commit race to maintenance three times in a row says so and waits for the next batch."""
    lines = pipeline_run["log"].splitlines()
    compactions = [line for line in lines if "Gold compaction of" in line
                   or "Gold compaction skipped (lost a commit race" in line]
    batches = [line for line in lines if BATCH_LINE.match(line)]
    assert len(compactions) == len(batches) and all("compact " in line for line in batches), pipeline_run["log"]
    files = pipeline_run["gold_files"]  # when the job ended, before the final maintenance pass
    assert files.partitions >= 1 and files.most == 1, "\n".join(compactions)


def test_audit_equals_the_oracle(spark, pipeline_run):
    audit = spark.table(pipeline_run["tables"].audit).collect()
    assert {(row.kafka_partition, row.kafka_offset): row.reason for row in audit} == pipeline_run["expected"].audit
    assert {"PARSE_ERROR", "MISSING_KEY", "UNKNOWN_TYPE", "BAD_VALUE"} == {row.reason for row in audit}


def test_dispositions_view_in_trino_equals_the_oracle(trino_cursor, pipeline_run):
    from dashboards.trino_views import apply_views

    apply_views(trino_cursor, pipeline_run["tables"].prefix, ["attribution_dispositions"])
    trino_cursor.execute("SELECT kafka_partition, kafka_offset, disposition FROM "
                         f"lakehouse.{pipeline_run['tables'].prefix}gold.attribution_dispositions")
    assert {(p, o): d for p, o, d in trino_cursor.fetchall()} == pipeline_run["expected"].dispositions


def test_trino_returns_the_oracles_totals(trino_cursor, pipeline_run):
    gold = pipeline_run["expected"].gold.values()
    trino_cursor.execute(
        "SELECT count(*), count_if(is_clicked), count_if(is_converted), sum(cost), sum(revenue), "
        f"sum(revenue_out_of_window) FROM {pipeline_run['tables'].gold}")
    impressions, clicks, conversions, cost, revenue, out_of_window = trino_cursor.fetchone()
    assert (impressions, clicks, conversions) == (
        len(gold), sum(r["is_clicked"] for r in gold), sum(r["is_converted"] for r in gold))
    for got, want in [(cost, sum(r["cost"] for r in gold)), (revenue, sum(r["revenue"] for r in gold)),
                      (out_of_window, sum(r["revenue_out_of_window"] for r in gold))]:
        assert math.isclose(got, want, rel_tol=1e-9)


def test_stream_progress_gives_lag_and_latency_per_batch(trino_cursor, pipeline_run):
    """ops.stream_progress, read through Trino: rows per batch add up to what was produced,
    consumer lag counts down to zero, and each batch's max event time is the latest valid
    event time among the records of its offset ranges."""
    from tests.oracle import validate

    records = pipeline_run["records"]
    trino_cursor.execute(
        "SELECT batch_id, num_input_rows, offsets_behind, to_unixtime(max_event_time), "
        "date_diff('millisecond', max_event_time, batch_timestamp) AS latency_ms, "
        "transform(partitions, p -> ROW(p.kafka_partition, p.start_offset, p.end_offset)) "
        f"FROM {pipeline_run['tables'].stream_progress} WHERE num_input_rows > 0 ORDER BY batch_id")
    batches = trino_cursor.fetchall()
    assert len(batches) >= 3
    assert sum(b[1] for b in batches) == len(records)
    consumed = 0
    for batch_id, rows, behind, max_event_seconds, latency_ms, ranges in batches:
        consumed += rows
        assert behind == len(records) - consumed, batch_id
        in_batch = [r for r in records for p, start, end in ranges
                    if r["partition"] == p and (start or 0) <= r["offset"] < end]
        assert len(in_batch) == rows
        event_times = [event["event_us"] for reason, event in (validate(r["value"], r["arrival_ms"] * 1000) for r in in_batch) if not reason]
        assert round(max_event_seconds * 1_000_000) == max(event_times)
        assert latency_ms is not None  # simulated event times lie months back: the figure is large


def test_maintenance_ran_during_ingest(pipeline_run):
    """Full passes while batches committed (one at least: on a loaded machine a pass can take
    as long as the rest of the drain): Bronze compacted, Gold's deletes rewritten, snapshots
    expired beside the job's commits."""
    concurrent = [step for report in pipeline_run["reports"] for step in report]
    assert len(pipeline_run["reports"]) >= 1
    done = {(s["table"].rsplit(".", 1)[1], s["step"]) for s in concurrent if s["outcome"] == "done"}
    assert ("ad_events", "compact closed hours") in done
    assert ("ad_performance_state", "rewrite position deletes") in done
    assert ("ad_performance_state", "expire snapshots") in done


def test_a_quiet_pass_leaves_gold_without_delete_files_and_bronze_compacted(spark, pipeline_run):
    bronze, gold = pipeline_run["scenario"].tables.bronze, pipeline_run["scenario"].tables.gold
    assert pipeline_run["after"][gold]["delete files"] == 0, pipeline_run["final"]
    # Every closed event hour of Bronze is down to one file (Bronze partitions by event hour).
    assert spark.sql(f"SELECT max(file_count) AS files FROM {bronze}.partitions").first().files == 1
    assert all(step["outcome"] == "done" for step in pipeline_run["final"])


def test_the_newest_offset_ranges_survive_expiry(spark, pipeline_run):
    """A restarted job finds every offset Bronze holds in the newest snapshot with ranges."""
    from engine.bronze_sink import committed_ranges, merge_ranges

    scenario = pipeline_run["scenario"]
    sent = merge_ranges(*({(scenario.topic, r["partition"]): [[r["offset"], r["offset"]]]} for r in scenario.records()))
    spark.sql(f"REFRESH TABLE {scenario.tables.bronze}")
    assert spark.sql(f"SELECT count(*) AS n FROM {scenario.tables.bronze}.snapshots "
                     "WHERE summary['lakehouse.kafka-ranges'] IS NOT NULL").first().n >= 1
    assert committed_ranges(spark, scenario.tables.bronze)[0] == sent
    # Gold has no writer id: only the newest `maintenance_retain_last` (3) snapshots from
    # before the final pass survive it (its own rewrite commits come after).
    started = pipeline_run["final_started"].strftime("%Y-%m-%d %H:%M:%S")
    assert spark.sql(f"SELECT count(*) AS n FROM {scenario.tables.gold}.snapshots "
                     f"WHERE committed_at < TIMESTAMP '{started} UTC'").first().n <= 3


def journey_oracle(gold_rows, touches: str, lookback: timedelta) -> list:
    """Journeys built from Gold's rows by plain loops (docs/design.md §8): per conversion, its
    user's touches within the lookback before it; after a user's last conversion, the touches
    within the lookback before their last touch, as one journey that did not convert."""
    from jobs.attribution_models.models import Journey

    user_touches, conversions = defaultdict(list), defaultdict(list)
    for row in gold_rows:
        if touches != "clicks":
            user_touches[row.user_id].append((row.impression_time, 0, row.campaign_id))
        if row.is_clicked:
            user_touches[row.user_id].append((row.click_time, 1, row.campaign_id))
        if row.is_converted:
            conversions[row.user_id].append((row.conversion_time, Decimal(str(row.revenue))))
    journeys, nulls = [], defaultdict(int)
    for user, events in user_touches.items():
        events.sort()
        for moment, revenue in conversions[user]:
            kept = [(t, c) for t, _, c in events if moment - lookback <= t <= moment]
            if kept:
                journeys.append(Journey(tuple(c for _, c in kept), 1, 0, Fraction(revenue),
                                        tuple(Fraction((moment - t).total_seconds()) / 3600 for t, _ in kept)))
        last_conversion = max((moment for moment, _ in conversions[user]), default=None)
        after = [(t, c) for t, _, c in events if last_conversion is None or t > last_conversion]
        if after:
            nulls[tuple(c for t, c in after if t >= after[-1][0] - lookback)] += 1
    return journeys + [Journey(path, 0, n) for path, n in nulls.items()]


def test_the_attribution_models_job_builds_the_journeys_the_oracle_builds(spark, pipeline_run):
    """The models job over this Gold: every rule-based, Markov and Shapley credit equals the
    models run on journeys an independent loop builds, and sums to Gold's converted conversions
    and revenue; a re-run of the same as-of replaces its rows."""
    from jobs.attribution_models.job import run
    from jobs.attribution_models.models import attribute as attribute_models

    tables = pipeline_run["tables"]
    gold = spark.sql(f"SELECT user_id, campaign_id, impression_time, is_clicked, click_time, is_converted, "
                     f"conversion_time, revenue FROM {tables.gold} WHERE user_id IS NOT NULL AND campaign_id IS NOT NULL "
                     f"AND impression_time IS NOT NULL").collect()
    latest = max(t for row in gold for t in (row.impression_time, row.click_time, row.conversion_time) if t)
    as_of = latest.replace(tzinfo=timezone.utc) + timedelta(seconds=1)
    for touches in ("clicks", "impressions+clicks"):
        for _ in range(2):  # the second run replaces the first's rows
            done = run(spark, tables, as_of, window_days=3650, touches=touches, max_order=2)
        stored = spark.sql(f"SELECT model, channel, conversions, revenue FROM {tables.attribution_models} "
                           f"WHERE touches = '{touches}' AND touch_position IS NULL").collect()
        assert len(stored) == done["rows"] - sum(1 for _ in spark.sql(
            f"SELECT 1 FROM {tables.attribution_models} WHERE touches = '{touches}' AND touch_position IS NOT NULL").collect())
        expected = attribute_models(journey_oracle(gold, touches, timedelta(days=7)), max_order=2)
        actual = {(row.model, row.channel): (row.conversions, row.revenue) for row in stored}
        assert set(actual) == {(m, c) for m, credits in expected.credits.items() for c in credits}
        for (model, channel), (conversions, revenue) in actual.items():
            credit = expected.credits[model][channel]
            close = {"rel": 1e-5, "abs": 1e-4} if model == "time_decay" else {"abs": 1e-6}  # the job's ages: 4 decimals of an hour
            assert conversions == pytest.approx(float(credit.conversions), **close), (touches, model, channel)
            assert revenue == pytest.approx(float(credit.value), rel=1e-5, abs=1e-4), (touches, model, channel)
        # Every model credits the conversions and revenue Gold's last click does (a user's last
        # click may be another campaign's than the conversion's own, so per campaign they differ).
        converted = [row for row in gold if row.is_converted]
        for model in expected.credits:
            credited = [(c, v) for (m, _), (c, v) in actual.items() if m == model]
            assert sum(c for c, _ in credited) == pytest.approx(len(converted)), (touches, model)
            assert sum(v for _, v in credited) == pytest.approx(sum(row.revenue for row in converted)), (touches, model)
