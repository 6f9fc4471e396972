"""`make demo`: the pipeline live on the local stack, over two weeks of history.

1. history: the traffic generator backfills the --history-days simulated days before now
   (a later run: only the time since Bronze's latest event), with a sprinkle of every fault;
   the attribution job drains it (`--trigger available-now`); the campaign feed writes one
   snapshot per day of it and the SCD2 job applies the new ones (dims.dim_campaigns: budgets
   and statuses change over the days); the dashboard rollups are refreshed, and the
   attribution models (Markov, Shapley, rule-based) score the journeys into
   gold.attribution_models;
2. the Trino views and, when Superset runs (`make demo` starts it), its "ROAS & Performance"
   and "Pipeline Ops" dashboards; their URLs are printed;
3. live, on the real clock: the generator at --rate events/s, the streaming job at its
   trigger (TRIGGER_INTERVAL), the rollups every --rollup-every seconds, the feed's snapshot
   and the SCD2 job (then the attribution models) when a UTC day begins; a status line from ops.pipeline_health
   (end-to-end latency, Gold freshness, Kafka lag) every --status-every seconds;
4. Ctrl-C (or --duration) stops the generator, then the job after its running batch; the
   tables stay, and the next run starts with the time it missed.

Event ids and times come from each run's start and the clock, so a second run adds new
events, never copies of the first run's.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from conf.measures import ratios_sql, sums_sql
from conf.settings import REPO_ROOT, Settings, get_settings
from conf.tables import Tables

RECORDS_PER_IMPRESSION = 1.06  # the generator's default funnel: clicks, repeats, conversions

# The dashboards' numbers: the performance rollup (what the views read) with the shared
# measures of conf/measures.py; conversions and revenue are eligible ones (Gold's rules).
ROAS_SQL = """
SELECT campaign_id,
  {sums},
  {ratios}
FROM {performance_rollup}
GROUP BY campaign_id
ORDER BY revenue DESC
LIMIT 10
"""

AUDIT_SQL = """
SELECT reason, count(*) AS records FROM {audit} GROUP BY reason
UNION ALL
SELECT t.disposition, count(*) FROM {gold} CROSS JOIN UNNEST(touches) AS t
WHERE t.disposition IN ('DUPLICATE', 'DUPLICATE_IMPRESSION', 'CLICK_BEFORE_IMPRESSION', 'OUT_OF_WINDOW',
                        'NO_CLICK', 'EXTRA_CONVERSION')
GROUP BY t.disposition
ORDER BY records DESC
"""


def query_trino(settings: Settings, sql: str) -> tuple[list[str], list[list]]:
    import trino

    connection = trino.dbapi.connect(host=settings.trino_host, port=settings.trino_port,
                                     user=settings.trino_user, catalog=settings.catalog_name)
    try:
        cursor = connection.cursor()
        cursor.execute(sql)
        rows = cursor.fetchall()
        return [column[0] for column in cursor.description], rows
    except Exception as error:  # noqa: BLE001 - turn a dead endpoint into advice
        if "Connection refused" in str(error):
            sys.exit(f"error: Trino not reachable at {settings.trino_url} — run `make stack-up`")
        raise
    finally:
        connection.close()


def latest_event_time(settings: Settings, tables: Tables) -> datetime | None:
    """The latest event time in Bronze (Iceberg's file statistics), None while it has none."""
    from dashboards.trino_views import partitions_table

    try:
        _, rows = query_trino(settings, f"SELECT max(data.event_timestamp.max) FROM {partitions_table(tables.bronze)}")
    except Exception as error:  # noqa: BLE001 - a first run: no Bronze table yet
        if "does not exist" in str(error):
            return None
        raise
    latest = rows[0][0]
    return latest.replace(tzinfo=timezone.utc) if latest is not None else None


def history_window(now: datetime, days: float, latest: datetime | None) -> tuple[datetime, datetime]:
    """What the backfill covers: the `days` before now, less what Bronze already holds."""
    since = now - timedelta(days=days)
    if latest is not None and since < latest <= now:
        since = latest
    return since, now


def impressions_per_second(history_events: int, days: float) -> float:
    """The history's density: `history_events` over `days` (the same for a later run's gap)."""
    return history_events / RECORDS_PER_IMPRESSION / (days * 86_400)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def write_feed(landing: Path, seed: int, since: datetime, through: datetime) -> list[Path]:
    """The campaign feed's daily snapshots of [since, through] not yet in the landing dir."""
    from producers.campaign_feed import daily_snapshots, snapshot_path, write_snapshots

    missing = [(as_of, rows) for as_of, rows in daily_snapshots(seed, 50, since, through)
               if not snapshot_path(landing, as_of).exists()]
    return write_snapshots(landing, missing)


def apply_dashboards(settings: Settings, prefix: str) -> dict[str, str]:
    """The Trino views, then Superset's dashboards when it answers: {title: URL}."""
    import trino

    from dashboards import superset_bootstrap
    from dashboards.trino_views import apply_views
    from stack.preflight import http_status

    connection = trino.dbapi.connect(host=settings.trino_host, port=settings.trino_port,
                                     user=settings.trino_user, catalog=settings.catalog_name)
    try:
        apply_views(connection.cursor(), prefix)
        if http_status(f"{settings.superset_url}/health") != 200:
            return {}
        return superset_bootstrap.apply(settings, prefix, connection.cursor())
    finally:
        connection.close()


def warm_dashboards(settings: Settings, prefix: str) -> None:
    """Superset's cache filled for both dashboards; a Superset gone away is a warning line,
    never the end of the demo."""
    from dashboards import superset_bootstrap

    try:
        superset_bootstrap.warm(settings, prefix)
    except Exception as error:  # noqa: BLE001 - the pipeline goes on without its dashboards
        print(f"  warning: Superset's cache was not warmed ({type(error).__name__}: {error}); "
              f"is Superset still up? (.stack/logs/superset.log)", flush=True)


def print_table(columns: list[str], rows: list[list]) -> None:
    def cell(value) -> str:
        return f"{value:,.3f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(str(v)) for v in [c, *(r[i] for r in cells)]) for i, c in enumerate(columns)]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)))


def health_line(settings: Settings, prefix: str) -> str:
    """ops.pipeline_health's numbers, as the Pipeline Ops dashboard shows them."""
    from dashboards.trino_views import select_sql

    _, rows = query_trino(settings, f"SELECT end_to_end_latency_seconds, gold_freshness_seconds, kafka_lag, "
                                    f"processed_rows_per_second FROM ({select_sql('pipeline_health', prefix)})")
    latency, freshness, lag, rate = rows[0]

    def seconds(value) -> str:
        return "-" if value is None else f"{value:,.1f} s"

    return (f"latency {seconds(latency)}, Gold freshness {seconds(freshness)}, Kafka lag "
            f"{'-' if lag is None else f'{lag:,}'}, {'-' if rate is None else f'{rate:,.0f}'} records/s processed")


def child_log(settings: Settings, tables: Tables, name: str) -> Path:
    """Where a process the demo starts writes its output (one file per table set)."""
    return Path(settings.runtime_dir) / "logs" / f"demo-{tables.prefix}{name}.log"


class Child:
    """A process the demo started, in its own session (the terminal's Ctrl-C reaches the demo
    only, which stops the children in order); its output goes to a log file."""

    def __init__(self, name: str, argv: list[str], log: Path) -> None:
        self.name, self.log = name, log
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            self.process = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float) -> int:
        """SIGTERM (the generator flushes, the job finishes its batch), SIGKILL to the whole
        group after `timeout_s`; nothing it started is left running."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                print(f"  {self.name} did not stop in {timeout_s:.0f}s: killed (see {self.log})", flush=True)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # its JVM and any other child
        except ProcessLookupError:
            pass
        return self.process.wait()


def parse_args(argv: list[str] | None):
    from jobs.cli import job_parser

    settings = get_settings()
    parser = job_parser("jobs/demo.py", __doc__, settings)
    parser.add_argument("--history-days", type=float, default=14.0, help="simulated days backfilled before now")
    parser.add_argument("--history-events", type=int, default=600_000,
                        help="records over the --history-days (the history's density)")
    parser.add_argument("--rate", type=float, default=1_000.0, help="live records per second")
    parser.add_argument("--duration", type=float, help="seconds of live run, then stop (default: until Ctrl-C)")
    parser.add_argument("--rollup-every", type=float, default=60.0, help="seconds between rollup refreshes")
    parser.add_argument("--status-every", type=float, default=30.0, help="seconds between status lines")
    parser.add_argument("--seed", type=int, default=7, help="the world's seed: campaigns, creatives, users")
    parser.add_argument("--fault-rate", type=float, default=0.001, help="rate of every fault class")
    parser.add_argument("--topic", default=settings.kafka_topic)
    parser.add_argument("--checkpoint", default=f"{settings.checkpoints}/attribution",
                        help="the streaming job's checkpoint")
    parser.add_argument("--landing-dir", type=Path, default=Path(settings.runtime_dir) / "landing" / "campaigns",
                        help="where the campaign feed writes and the SCD2 job reads")
    parser.add_argument("--no-dashboards", action="store_true", help="skip the Trino views and Superset")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = get_settings()
    tables = Tables(args.table_prefix)
    from stack.preflight import require

    require(settings, "kafka", "s3", "catalog", "trino")
    stop = {"signal": None}

    def stop_on(signum, _frame):
        if stop["signal"] is not None:  # a second Ctrl-C: no more waiting
            raise KeyboardInterrupt
        stop["signal"] = signal.Signals(signum).name
        print(f"\n{stop['signal']}: stopping ...", flush=True)

    previous = {sig: signal.signal(sig, stop_on) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return run(args, settings, tables, stop)
    except KeyboardInterrupt:  # Spark's context takes SIGINT over while a history step runs
        print("\ninterrupted: what the demo started is stopped, the tables are kept", flush=True)
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(args, settings: Settings, tables: Tables, stop: dict) -> int:
    from dims import campaign_scd2_job
    from jobs import attribution_streaming_job, rollup_job
    from jobs.attribution_models import job as models_job
    from producers import ad_traffic_generator

    started = time.monotonic()
    common = ["--table-prefix", tables.prefix]
    job_args = [*common, "--topic", args.topic, "--checkpoint", args.checkpoint]
    scd2_args = [*common, "--all", "--landing-dir", str(args.landing_dir)]

    since, now = history_window(datetime.now(timezone.utc), args.history_days, latest_event_time(settings, tables))
    density = impressions_per_second(args.history_events, args.history_days)
    print(f"1/3 history {iso(since)} .. {iso(now)} ({(now - since).total_seconds() / 86_400:.2f} days, "
          f"~{density * RECORDS_PER_IMPRESSION * (now - since).total_seconds():,.0f} records) ...", flush=True)
    ad_traffic_generator.main(["--clock", "simulated", "--start", iso(since), "--until", iso(now),
                               "--impressions-per-second", f"{density:.6f}", "--seed", str(args.seed),
                               "--all-faults", str(args.fault_rate), "--topic", args.topic, "--quiet"])
    attribution_streaming_job.main([*job_args, "--trigger", "available-now"])
    # The live job starts now: its JVM and first batch overlap the SCD2, rollup and
    # dashboard steps below, so that live events meet a job already at its trigger.
    job = Child("attribution job", [sys.executable, "-m", "jobs.attribution_streaming_job", *job_args],
                child_log(settings, tables, "attribution"))
    try:
        write_feed(args.landing_dir, args.seed, since, now)
        campaign_scd2_job.main(scd2_args)
        rollup_job.main(common)
        models_job.main(common)
        urls = {} if args.no_dashboards else apply_dashboards(settings, tables.prefix)
        print(f"2/3 history in place ({time.monotonic() - started:.0f}s)\n", flush=True)
        print(f"campaign ROAS, top 10 by revenue ({tables.performance_rollup}, the numbers the dashboards show):")
        print_table(*query_trino(settings, ROAS_SQL.format(sums=sums_sql(), ratios=ratios_sql(),
                                                           performance_rollup=tables.performance_rollup)))
        print(f"\nwhat the audit caught ({tables.audit} and Gold dispositions):")
        print_table(*query_trino(settings, AUDIT_SQL.format(gold=tables.gold, audit=tables.audit)))
        if urls:
            print(f"\ndashboards (Superset; log in as {settings.superset_admin_user} / "
                  f"{settings.superset_admin_password}):")
            for title, url in urls.items():
                print(f"  {title:<20} {url}")
        elif not args.no_dashboards:
            print(f"\nno dashboards: Superset is not running at {settings.superset_url} (start it with `make bi`)")
        return 0 if stop["signal"] else live(args, settings, tables, stop, job, scd2_args, bool(urls))
    finally:
        if job.alive():
            print("stopping the job after its running batch ...", flush=True)
        job.stop(180)
        print(f"done in {time.monotonic() - started:.0f}s; the tables stay, the stack stays up "
              f"(make stack-status, make stack-down)", flush=True)


def live(args, settings: Settings, tables: Tables, stop: dict, job: Child, scd2_args: list[str],
         dashboards: bool) -> int:
    """The generator on the real clock beside the running job, until --duration or a signal;
    after each rollup refresh, Superset's cache is warmed (`dashboards`) so that a dashboard's
    first open reads the refreshed numbers from it."""
    from dims import campaign_scd2_job
    from jobs.cli import start_spark
    from jobs.attribution_models import job as models_job
    from jobs.rollup_job import refresh_all

    generator = Child("generator", [sys.executable, "-m", "producers.ad_traffic_generator", "--clock", "real",
                                    "--rate", str(args.rate), "--seed", str(args.seed), "--all-faults",
                                    str(args.fault_rate), "--topic", args.topic, "--quiet"],
                      child_log(settings, tables, "generator"))
    print(f"\n3/3 live: {args.rate:,.0f} records/s on the real clock, the job at its trigger "
          f"({settings.trigger_interval}), rollups every {args.rollup_every:.0f}s "
          f"({'for %.0fs' % args.duration if args.duration else 'Ctrl-C stops'}); logs: {job.log}, {generator.log}",
          flush=True)
    rollup_log = logging.getLogger("jobs.rollup_job")
    rollup_level = rollup_log.level
    if settings.log_level != "DEBUG":  # a refresh every few seconds: its lines would bury the status lines
        rollup_log.setLevel(logging.WARNING)
    spark = start_spark("demo-rollups", settings)
    live_started = time.monotonic()
    day = datetime.now(timezone.utc).date()
    next_rollup = next_status = live_started
    code = 0
    try:
        while not stop["signal"]:
            moment = time.monotonic()
            if args.duration is not None and moment - live_started >= args.duration:
                break
            if not (job.alive() and generator.alive()):
                dead = job if not job.alive() else generator
                print(f"error: the {dead.name} stopped (exit {dead.process.returncode}); see {dead.log}", flush=True)
                code = 1
                break
            if (today := datetime.now(timezone.utc).date()) != day:  # a UTC day began: its snapshot, then SCD2
                day = today
                midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
                write_feed(args.landing_dir, args.seed, midnight, midnight)
                campaign_scd2_job.main(scd2_args)
                models_job.main(["--table-prefix", tables.prefix])
            if moment >= next_rollup:
                refresh_all(spark, tables)
                if dashboards:
                    warm_dashboards(settings, tables.prefix)
                next_rollup = moment + args.rollup_every
            if moment >= next_status:
                print(f"  live {moment - live_started:4.0f}s: {health_line(settings, tables.prefix)}", flush=True)
                next_status = moment + args.status_every
            time.sleep(0.5)
    finally:
        print("stopping the generator, then the job after its running batch ...", flush=True)
        generator.stop(60)
        job.stop(180)
        rollup_log.setLevel(rollup_level)  # the process may go on (a test, a caller's loop)
    print(f"  at stop: {health_line(settings, tables.prefix)}")
    return code


if __name__ == "__main__":
    sys.exit(main())
