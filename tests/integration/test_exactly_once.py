"""Exactly-once effect under hard kills and operator slips: the streaming job is stopped once
with SIGTERM and SIGKILLed five times while it drains 15k events (faults on) — three times
at chosen points between commits (after the audit, Gold and Bronze commits), twice at random
moments — restarting from its checkpoint each time; a second job on its checkpoint and a
third over its tables are refused; then the checkpoint is moved away and 3k more events
arrive. Afterwards Bronze holds every Kafka record exactly once, Gold and the audit equal the
oracle, and a replay from Bronze equals live Gold. Kafka and catalog outages: test_outages.py."""

from __future__ import annotations

import random
import signal
import time

import pytest

from producers.ad_traffic_generator import main as generate
from tests.crashing_job import CRASH_LINE
from tests.streaming_helpers import JobRefused, Scenario

pytestmark = [pytest.mark.stack, pytest.mark.xdist_group("restarts")]  # with test_outages.py: tests/conftest.py


@pytest.fixture(scope="module")
def killed_run(stack, spark, settings, tmp_path_factory):
    scenario = Scenario.generated("kill", tmp_path_factory.mktemp("kill"), 15_000, 77, settings,
                                  job_args=["--max-offsets-per-trigger", "3000"],
                                  env={"TRIGGER_INTERVAL": "1 second"})
    rng = random.Random(5)
    kills, logs = [], []
    # The first run, on fresh tables: once a batch has committed, two more jobs are tried from
    # this process — one on its checkpoint (the checkpoint lock refuses it), one on a checkpoint
    # of its own over the same tables (the writer lease does); then SIGTERM to the driver lets
    # the running batch commit and the job exits 0, Bronze holding exactly the batches it reported.
    job = scenario.start()
    assert job.wait_for_batches(1), job.tail()
    tries = {}
    for name, extra in (("second", []), ("other", ["--checkpoint", str(scenario.work / "other-checkpoint")])):
        try:
            tries[name] = scenario.run_here(*extra)
        except JobRefused as refused:
            tries[name] = refused
    job.driver().send_signal(signal.SIGTERM)
    exit_code = job.process.wait(timeout=180)
    scenario.refresh(spark)
    sigterm = {"exit": exit_code, "log": job.tail(30), "reported": job.records_done(),
               "said": any("SIGTERM: stopping after the current batch" in line for line in job.log),
               "bronze": spark.table(scenario.tables.bronze).count()}
    # Three crashes at chosen points, in a batch's commit order: right after the audit commit
    # (before Gold's MERGE), right after the Gold MERGE commit (before Bronze's append), and right
    # after the Bronze commit (before the checkpoint records the batch as done).
    for crash_point in ("audit", "gold", "bronze"):
        job = scenario.start("--crash-after", crash_point, script="tests/crashing_job.py")
        job.process.wait(timeout=300)
        logs.append(job.log)
        assert any(CRASH_LINE.format(crash_point) in line for line in job.log), job.tail(30)
        kills.append(crash_point)
    # Two SIGKILLs of the whole process group at a random moment of a run's first batch,
    # between any two of its commits (each restart costs a JVM start: five kills, no more).
    positions = []  # where each random kill landed, printed with the summary
    while len(kills) < 5:
        job = scenario.start()
        if not job.wait_for_output("attribution job:", timeout=180):
            job.kill()
            logs.append(job.log)
            break
        time.sleep(rng.uniform(0.0, 20.0))  # a first batch takes 15-25 s here
        landed = f"after {job.records_done():,} records committed; last line: {(list(job.log) or [''])[-1].strip()[:120]}"
        job.kill()
        logs.append(job.log)
        kills.append("random")
        positions.append(landed)
    # The checkpoint moved away while the tables stay, and more traffic arrives: a new
    # checkpoint resumes where Bronze's last batch began (re-reading that batch, appending
    # none of it twice) and drains the rest, in this process.
    scenario.checkpoint.rename(scenario.work / "checkpoint.moved")
    more = scenario.work / "more.jsonl"
    assert generate(["--count", "3000", "--seed", "78", "--all-faults", "0.01", "--topic", scenario.topic,
                     "--output", str(more), "--quiet"]) == 0
    with open(scenario.output, "a") as sent:
        sent.write(more.read_text())
    resumed = scenario.run_here("--max-offsets-per-trigger", "100000")  # the rest in one batch: no kill is coming
    print(f"\nkill test: {len(kills)} kills ({', '.join(kills)})"
          + "".join(f"\n  random kill {number}: {where}" for number, where in enumerate(positions, 1)))
    yield {"scenario": scenario, "tables": scenario.tables, "expected": scenario.expected(), "kills": kills,
           "sigterm": sigterm, "second": tries["second"], "other": tries["other"], "resumed": resumed, "logs": logs}
    scenario.cleanup(spark)


def test_the_job_was_killed_at_least_five_times(killed_run):
    assert len(killed_run["kills"]) >= 5, killed_run["kills"]


def test_a_restart_rerunning_a_killed_batch_runs_without_a_failure(killed_run):
    """Each start after a kill first re-runs the batch the kill interrupted. With every
    service up nothing may fail; Spark 4.1.1's Kafka source failed there, reporting the
    re-run batch's progress (docs/versions.md), and the job had to restart once more."""
    failures = [line for log in killed_run["logs"] for line in log if line.startswith("query failed")]
    assert failures == []


def test_bronze_has_every_record_exactly_once(spark, killed_run):
    killed_run["scenario"].assert_bronze_exactly_once(spark)


def test_gold_and_audit_equal_the_oracle(spark, killed_run):
    killed_run["scenario"].assert_gold_and_audit_match(spark, killed_run["expected"])


def test_a_second_job_on_a_running_jobs_checkpoint_is_refused(killed_run):
    second = killed_run["second"]
    assert isinstance(second, JobRefused), second[-3000:]
    assert "is in use by another attribution job" in str(second), str(second)[-3000:]


def test_a_moved_checkpoint_resumes_from_bronze_and_loses_nothing(killed_run):
    """Bronze and Gold hold the traffic sent after the move (the checks above include it)."""
    assert "new checkpoint over tables that hold" in killed_run["resumed"], killed_run["resumed"][-2000:]


def test_a_second_job_on_the_same_tables_with_its_own_checkpoint_is_refused(killed_run):
    """Before the writer lease it ran beside the first and appended every record to Bronze
    twice (5,210 records, Bronze 5,211 duplicates); Bronze exactly once is checked above."""
    other = killed_run["other"]
    assert isinstance(other, JobRefused), other[-3000:]
    assert "are written by another attribution job (checkpoint" in str(other), str(other)[-3000:]


def test_sigterm_stops_after_the_running_batch_with_exit_0(killed_run):
    sigterm = killed_run["sigterm"]
    assert sigterm["exit"] == 0 and sigterm["said"], sigterm["log"]
    assert sigterm["bronze"] == sigterm["reported"] > 0  # every reported batch is whole, nothing more


def test_replay_and_verify_commands(spark, killed_run, capsys):
    """`make replay` rebuilds Gold from Bronze into a shadow table and `make verify` finds it
    equal to live Gold; a tampered shadow makes verify fail, naming the impression."""
    from jobs import replay_job, verify_job

    prefix = killed_run["tables"].prefix
    assert replay_job.main(["--table-prefix", prefix]) == 0
    assert verify_job.main(["--table-prefix", prefix]) == 0
    assert "no differences" in capsys.readouterr().out
    shadow = f"{killed_run['tables'].gold}_replay"
    victim = spark.sql(f"SELECT impression_id FROM {shadow} WHERE is_converted LIMIT 1").first().impression_id
    spark.sql(f"UPDATE {shadow} SET revenue = revenue + 1 WHERE impression_id = '{victim}'")
    assert verify_job.main(["--table-prefix", prefix]) == 1
    output = capsys.readouterr().out
    assert "1 impressions differ" in output and victim in output
    assert replay_job.main(["--table-prefix", prefix, "--target", killed_run["tables"].gold]) == 2


def test_replay_drops_no_table_it_did_not_write_and_replaces_gold_only_when_told(spark, killed_run, capsys):
    """Bronze and a table no replay wrote survive a replay aimed at them; --replace-gold
    (through a window holding every arrival) rewrites Gold from Bronze, equal to the oracle."""
    from jobs import replay_job

    tables = killed_run["tables"]
    prefix = tables.prefix
    bronze_rows = spark.table(tables.bronze).count()
    assert replay_job.main(["--table-prefix", prefix, "--target", tables.bronze]) == 2
    foreign = f"lakehouse.{prefix}gold.someone_elses"
    spark.sql(f"CREATE TABLE IF NOT EXISTS {foreign} (x INT) USING iceberg")
    spark.sql(f"INSERT INTO {foreign} VALUES (1)")
    assert replay_job.main(["--table-prefix", prefix, "--target", foreign]) == 2
    assert "no replay wrote it" in capsys.readouterr().err
    assert spark.table(foreign).count() == 1 and spark.table(tables.bronze).count() == bronze_rows

    gold_snapshots = spark.sql(f"SELECT count(*) FROM {tables.gold}.snapshots").first()[0]
    # The window's bounds hold every arrival: the time filters run, and nothing is left out.
    assert replay_job.main(["--table-prefix", prefix, "--replace-gold", "--since", "2000-01-01T00:00:00Z",
                            "--until", "2999-01-01T00:00:00+02:00"]) == 0
    assert spark.sql(f"SELECT count(*) FROM {tables.gold}.snapshots").first()[0] == gold_snapshots + 1
    killed_run["scenario"].assert_gold_and_audit_match(spark, killed_run["expected"])  # Gold from Bronze = the oracle
