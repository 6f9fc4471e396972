"""`make bench`: benchmarks on the local stack, printing figures and ratios measured in
one run. The machine is noisy, so every figure is the median of several repeats and
comparisons are ratios of figures taken side by side.

    python -m tests.bench [--repeats 3] [--events 300000]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import uuid

from conf.settings import get_settings


def generator_throughput(events: int, dry_run: bool, topic: str) -> float:
    from producers.ad_traffic_generator import build_parser, run

    args = build_parser().parse_args(["--count", str(events), "--quiet", "--topic", topic, "--seed", "1"]
                                     + (["--dry-run"] if dry_run else []))
    started = time.perf_counter()
    run(args)
    sent_per_s = events / (time.perf_counter() - started)
    return sent_per_s


def job_throughput(topic: str, sinks: str, batch_size: int, work_dir: str) -> tuple[float, list[dict], str]:
    """Drain the topic into fresh tables; (records/s, per-batch history, table prefix)."""
    from jobs.attribution_streaming_job import parse_args, run

    prefix = f"bench{uuid.uuid4().hex[:6]}_"
    args = parse_args(["--trigger", "available-now", "--topic", topic, "--table-prefix", prefix,
                       "--checkpoint", f"{work_dir}/{prefix}", "--sinks", sinks,
                       "--max-offsets-per-trigger", str(batch_size)])
    started = time.perf_counter()
    history = run(args).history
    elapsed = time.perf_counter() - started
    return sum(h["records"] for h in history) / elapsed, history, prefix


def merge_over_a_day(events: int, batch_size: int, work_dir: str) -> dict:
    """A simulated day of traffic (impression ids of one UTC day, so one Gold partition grows
    all day) drained in batches of `batch_size`, in-job compaction as configured: the Gold
    phase of each batch, and the medians of its first and last hour (at least two batches)."""
    from producers.ad_traffic_generator import main as generate

    topic = f"bench_day_{uuid.uuid4().hex[:8]}"
    print(f"producing a simulated day of {events:,} events ...", flush=True)
    # ~93% of the generator's records are impressions: spread them over 86,400 s of event time.
    generate(["--count", str(events), "--seed", "5", "--topic", topic, "--quiet", "--start", "2026-01-05T00:00:00Z",
              "--impressions-per-second", f"{events * 0.93 / 86_400:.3f}"])
    # A warm JVM first: the first hour's batches would otherwise pay the JIT (and flatter the ratio).
    warmup = f"bench_warmup_{uuid.uuid4().hex[:8]}"
    generate(["--count", "100000", "--seed", "3", "--topic", warmup, "--quiet"])
    drop_prefix(job_throughput(warmup, "bronze,audit,gold", batch_size, work_dir)[2])
    _, history, prefix = job_throughput(topic, "bronze,audit,gold", batch_size, work_dir)
    drop_prefix(prefix)
    gold = [h["gold"] for h in history if "gold" in h]
    hour = max(2, round(len(gold) / 24))
    first, last = statistics.median(gold[:hour]), statistics.median(gold[-hour:])
    return {"gold": gold, "history": history, "hour_batches": hour, "first": first, "last": last}


def dims_run_time(campaigns: int, snapshots_of_history: int) -> list[float]:
    """Apply `snapshots_of_history` daily snapshots, then time single dims runs on top."""
    import tempfile
    from datetime import datetime, timedelta, timezone
    from pathlib import Path

    from jobs.cli import start_spark
    from dims.campaign_scd2_job import run as run_dims
    from dims.dimensions import campaigns as campaign_dimension
    from producers.campaign_feed import snapshots, write_snapshots

    prefix = f"benchdims{uuid.uuid4().hex[:6]}_"
    spark = start_spark("bench-dims")
    series = snapshots(5, snapshots_of_history + 3, datetime(2026, 1, 5, tzinfo=timezone.utc), timedelta(days=1),
                       campaigns)
    with tempfile.TemporaryDirectory() as directory:
        paths = write_snapshots(Path(directory), series)
        print(f"building {snapshots_of_history} snapshots of history for {campaigns:,} campaigns ...", flush=True)
        run_dims(spark, campaign_dimension(prefix), paths[:snapshots_of_history])
        seconds = []
        for path in paths[snapshots_of_history:]:
            started = time.perf_counter()
            run_dims(spark, campaign_dimension(prefix), [path])
            seconds.append(time.perf_counter() - started)
    drop_prefix(prefix)
    return seconds


def drop_prefix(prefix: str) -> None:
    from jobs.cli import start_spark
    from conf.tables import Tables

    from tests.attribution_helpers import drop_namespaces

    drop_namespaces(start_spark("bench"), Tables(prefix))


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _stacked_phases(axis, batches: list[dict], phases: list[str], title: str) -> None:
    """One bar per batch, its phases stacked (seconds); `phases` fixes each one's colour."""
    bottom = [0.0] * len(batches)
    for colour, phase in enumerate(phases):
        heights = [batch.get(phase, 0.0) for batch in batches]
        if any(heights):
            axis.bar(range(1, len(batches) + 1), heights, bottom=bottom, label=phase, color=f"C{colour}")
            bottom = [b + h for b, h in zip(bottom, heights)]
    axis.set_xticks(range(1, len(batches) + 1, max(1, len(batches) // 12)))
    axis.set_xlabel("batch")
    axis.set_ylabel("seconds")
    axis.set_title(title)
    axis.legend(fontsize="small")


def write_plots(directory: str, dashboard_times: list, merge_times: dict, job: dict | None = None,
                freshness: dict | None = None, day: dict | None = None) -> None:
    """PNG charts of what was measured, under `directory`."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    # The job's phases in the order it reports them (a batch's seconds per phase keep its
    # order), one list for every plot so that a phase has one colour.
    phases = list(dict.fromkeys(name for batch in [*(job or {}).get("history", []), *(freshness or {}).get("phases", []),
                                                   *(day or {}).get("history", [])]
                                for name in batch if name not in ("batch_id", "records", "seconds")))

    def save(figure, name: str) -> None:
        figure.tight_layout()
        figure.savefig(out / name, dpi=80)
        plt.close(figure)
        written.append(str(out / name))

    if job:
        figure, (rates, per_batch) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1, 2]})
        rates.bar(["Bronze + audit + Gold", "Bronze only"], [job["full_rate"], job["bronze_rate"]])
        rates.axhline(25_000, color="red", linestyle="--", label="target 25,000")
        rates.set_ylabel("events/s")
        rates.set_title(f"drain of a {job['events']:,}-event backlog")
        rates.legend(fontsize="small")
        _stacked_phases(per_batch, job["history"], phases, f"per batch (at most {job['batch_size']:,} records)")
        save(figure, "job_throughput.png")
    if freshness and freshness.get("timeline"):
        figure, (ages, per_batch) = plt.subplots(1, 2, figsize=(11, 4))
        ages.plot([t for t, _ in freshness["timeline"]], [age for _, age in freshness["timeline"]])
        ages.axhline(15, color="red", linestyle="--", label="target p95 15 s")
        ages.axvline(freshness["warmup_s"], color="grey", linestyle=":", label="end of warm-up")
        ages.axvline(freshness["traffic_s"], color="black", linestyle=":", label="end of traffic")
        ages.set_xlabel("seconds since traffic began")
        ages.set_ylabel("Gold's newest impression in Trino, behind the traffic (s)")
        ages.set_title(f"freshness at {freshness['rate']:,.0f} events/s")
        ages.legend(fontsize="small")
        _stacked_phases(per_batch, freshness["phases"], phases, f"the job's batches (trigger every {freshness['trigger']})")
        save(figure, "freshness.png")
    if day:
        figure, (merges, per_batch) = plt.subplots(1, 2, figsize=(11, 4))
        hours = [24 * (n + 0.5) / len(day["gold"]) for n in range(len(day["gold"]))]
        merges.plot(hours, day["gold"], marker=".")
        merges.axhline(day["first"], color="grey", linestyle=":", label=f"first hour, median {day['first']:.1f} s")
        merges.axhline(day["first"] * 1.2, color="red", linestyle="--", label="target: last hour <= 1.2 x first")
        merges.axhline(day["last"], color="black", linestyle=":", label=f"last hour, median {day['last']:.1f} s")
        merges.set_xlabel("hour of the simulated day (by position in the topic)")
        merges.set_ylabel("Gold phase of the batch (s)")
        merges.set_title("the Gold MERGE as one day's partition grows")
        merges.legend(fontsize="small")
        _stacked_phases(per_batch, day["history"], phases, "the day's batches")
        save(figure, "merge_over_a_day.png")
    if dashboard_times:
        ordered = sorted(dashboard_times, key=lambda t: t[1])
        figure, axis = plt.subplots(figsize=(9, max(4, len(ordered) * 0.25)))
        axis.barh([label for label, _, _ in ordered], [seconds for _, seconds, _ in ordered])
        axis.axvline(2.0, color="red", linestyle="--", label="target 2 s")
        axis.set_xlabel("seconds (median of warm runs)")
        axis.legend()
        save(figure, "dashboard_queries.png")
    if merge_times:
        figure, axis = plt.subplots(figsize=(7, 4))
        for scale, seconds in merge_times.items():
            axis.plot(range(1, len(seconds) + 1), seconds, marker="o", label=f"{scale:,} Gold rows")
        axis.set_xlabel("batch")
        axis.set_ylabel("MERGE seconds")
        axis.legend()
        save(figure, "merge_by_gold_size.png")
    print(f"plots written: {', '.join(written)}" if written else "no plots: nothing plottable was measured", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--job-events", type=int, default=2_000_000,
                        help="backlog drained by the attribution job (0 skips the job benchmark)")
    parser.add_argument("--batch-size", type=int, default=500_000,
                        help="max offsets per micro-batch of the drain (the job's own default)")
    parser.add_argument("--dims-campaigns", type=int, default=0,
                        help="SCD2 benchmark: campaigns per snapshot (e.g. 10000; 0 skips it)")
    parser.add_argument("--dims-snapshots", type=int, default=50, help="SCD2 benchmark: snapshots of history")
    parser.add_argument("--dashboard-rows", type=int, default=10_000_000,
                        help="Gold rows for the dashboard query times (0 skips them)")
    parser.add_argument("--merge-scales", default="1000000,10000000",
                        help="Gold sizes at which to time the per-batch MERGE ('' skips it)")
    parser.add_argument("--merge-events", type=int, default=300_000,
                        help="events drained into each pre-filled Gold, in batches of --merge-batch-size")
    parser.add_argument("--merge-batch-size", type=int, default=200_000, help="max offsets per batch there")
    parser.add_argument("--day-events", type=int, default=1_200_000,
                        help="events of one simulated day drained to time the MERGE as the day grows (0 skips it)")
    parser.add_argument("--day-batch-size", type=int, default=25_000, help="max offsets per batch there")
    parser.add_argument("--freshness-rate", type=float, default=5000,
                        help="events/s for the end-to-end freshness run (0 skips it)")
    parser.add_argument("--freshness-seconds", type=float, default=180, help="measured seconds of that run")
    parser.add_argument("--freshness-trigger", default=None,
                        help="the job's TRIGGER_INTERVAL in that run (default: the settings', "
                             f"{get_settings().trigger_interval})")
    parser.add_argument("--output-dir", default="bench-out", help="where the plots (PNG) go")
    args = parser.parse_args(argv)

    from stack.launcher import LocalStack

    stack = LocalStack(get_settings())
    if not all(stack.process(s) and s.healthy() for s in stack.required()):
        sys.exit("the local stack is not up — run `make stack-up` first")

    topic = f"bench_{uuid.uuid4().hex[:8]}"
    rows, job = [], None
    to_kafka = [generator_throughput(args.events, False, topic) for _ in range(args.repeats)]
    generation_only = [generator_throughput(args.events, True, topic) for _ in range(args.repeats)]
    kafka_rate, dry_rate = statistics.median(to_kafka), statistics.median(generation_only)
    rows.append(("generator -> local Kafka (events/s)", f"{kafka_rate:,.0f}", "target >= 50,000",
                 f"{kafka_rate / 50_000:.2f} of target"))
    rows.append(("generator, --dry-run (events/s)", f"{dry_rate:,.0f}", "", ""))
    rows.append(("share of time spent producing", f"{1 - kafka_rate / dry_rate:.0%}", "",
                 "librdkafka's producer (confluent-kafka)"))

    if args.job_events:
        import tempfile

        from producers.ad_traffic_generator import main as generate

        backlog = f"bench_backlog_{uuid.uuid4().hex[:8]}"
        print(f"producing a backlog of {args.job_events:,} events ...", flush=True)
        generate(["--count", str(args.job_events), "--seed", "2", "--all-faults", "0.002", "--topic", backlog,
                  "--quiet"])
        warmup = f"bench_warmup_{uuid.uuid4().hex[:8]}"
        generate(["--count", "100000", "--seed", "3", "--topic", warmup, "--quiet"])
        with tempfile.TemporaryDirectory() as work_dir:
            # The first drain in a fresh JVM ran its first two batches ~1.7x slower (JIT, class
            # loading): without a warm-up the full run, measured first, paid for both.
            print("warming up the JVM: draining 100,000 events through every sink ...", flush=True)
            drop_prefix(job_throughput(warmup, "bronze,audit,gold", args.batch_size, work_dir)[2])
            full_rate, history, full_prefix = job_throughput(backlog, "bronze,audit,gold", args.batch_size, work_dir)
            bronze_rate, _, bronze_prefix = job_throughput(backlog, "bronze", args.batch_size, work_dir)
        job = {"full_rate": full_rate, "bronze_rate": bronze_rate, "history": history, "events": args.job_events,
               "batch_size": args.batch_size}
        merges = sorted(h["gold"] for h in history if "gold" in h)
        rows.append(("job: Bronze + audit + Gold (events/s)", f"{full_rate:,.0f}", "target >= 25,000",
                     f"{full_rate / 25_000:.2f} of target"))
        rows.append(("job: Bronze only (events/s)", f"{bronze_rate:,.0f}", "", ""))
        rows.append(("job: full / Bronze-only", f"{full_rate / bronze_rate:.2f}", "target >= 0.6", ""))
        rows.append(("MERGE per batch, median (s)", f"{statistics.median(merges):.1f}",
                     f"{len(merges)} batches", f"p95 {p95(merges):.1f}s"))
        for prefix in (full_prefix, bronze_prefix):
            drop_prefix(prefix)

    if args.dims_campaigns:
        seconds = dims_run_time(args.dims_campaigns, args.dims_snapshots)
        rows.append((f"dims run at {args.dims_campaigns:,} campaigns x {args.dims_snapshots} snapshots (s)",
                     f"{statistics.median(seconds):.1f}", "", f"runs: {', '.join(f'{x:.1f}' for x in seconds)}"))

    fresh = None
    if args.freshness_rate:
        from tests import bench_freshness

        trigger = args.freshness_trigger or get_settings().trigger_interval
        fresh = {**bench_freshness.run(args.freshness_rate, args.freshness_seconds, get_settings(), trigger),
                 "rate": args.freshness_rate, "trigger": trigger}
        shown = lambda x: "not reached" if x is None else f"{x:.1f}"  # noqa: E731
        batch_note = (f"{fresh['batches']} batches, median {shown(fresh['median_batch_s'])}s; "
                      f"newest visible impression {fresh['behind_at_end_s']:.0f}s behind the traffic at the end")
        rows.append((f"freshness at {args.freshness_rate:,.0f} events/s, p50 (s)", shown(fresh["p50"]), "",
                     f"{fresh['impressions']:,} impressions measured; trigger every {trigger}"))
        rows.append((f"freshness at {args.freshness_rate:,.0f} events/s, p95 (s)", shown(fresh["p95"]),
                     "target <= 15 s", batch_note))
        print("  freshness run, the job's batches:\n" + "".join(f"    {line}" for line in fresh["batch_lines"]))

    dashboard_times = []
    if args.dashboard_rows:
        from tests import bench_dashboards

        measured = bench_dashboards.run(args.dashboard_rows, args.repeats, get_settings())
        dashboard_times, rollups = measured["queries"], measured["rollups"]
        read_by_dashboards = [t for t in dashboard_times if "(count)" not in t[0]]  # row-level views: no dashboard
        slowest = sorted(read_by_dashboards, key=lambda t: -t[1])
        within = sum(seconds <= 2.0 for _, seconds, _ in read_by_dashboards)
        rows.append((f"dashboard queries at {args.dashboard_rows:,} Gold rows: slowest (s)", f"{slowest[0][1]:.2f}",
                     "target <= 2 s", f"{within}/{len(read_by_dashboards)} within 2 s ({slowest[0][0]})"))
        rows.append((f"rollup refresh at {args.dashboard_rows:,} Gold rows: all / one changed day (s)",
                     f"{rollups['full_s']:.1f} / {rollups['one_day_s']:.1f}", "",
                     f"days recomputed: {', '.join(rollups['days'])}"))
        for title, (cold, first, again) in (measured["renders"] or {}).items():
            rows.append((f"Superset '{title}' fully rendered at {args.dashboard_rows:,} Gold rows: first / again (s)",
                         f"{first:.1f} / {again:.1f}", "target <= 5 / <= 3 s",
                         f"headless chromium, every chart finished; first open after the cache warm-up "
                         f"(as `make demo` keeps it), {cold:.1f} s with the cache empty"))

    merge_times: dict[int, list[float]] = {}
    scales = [int(x) for x in args.merge_scales.split(",") if x.strip()]
    if scales:
        import tempfile

        from producers.ad_traffic_generator import main as generate
        from tests import bench_dashboards

        topic = f"bench_merge_{uuid.uuid4().hex[:8]}"
        generate(["--count", str(args.merge_events), "--seed", "4", "--topic", topic, "--quiet"])
        with tempfile.TemporaryDirectory() as work_dir:
            for scale in scales:
                measured = bench_dashboards.merge_at_scale(scale, topic, args.merge_batch_size, work_dir)
                merge_times[scale] = measured["merges"]
                before, after = measured["before"], measured["after"]
                rows.append((f"Gold files at {scale:,} rows: data / delete, before -> after maintenance",
                             f"{before['data files']}/{before['delete files']} -> "
                             f"{after['data files']}/{after['delete files']}", "",
                             f"pass {measured['maintenance_s']:.0f}s; partitions left with deletes: "
                             f"{measured['partitions_with_deletes']}"))
        for scale, seconds in merge_times.items():
            ordered = sorted(seconds)
            rows.append((f"MERGE per batch at {scale:,} Gold rows, median (s)", f"{statistics.median(ordered):.1f}",
                         f"{len(ordered)} batches", f"p95 {p95(ordered):.1f}s"))
        if len(scales) >= 2:
            ratio = statistics.median(merge_times[scales[-1]]) / statistics.median(merge_times[scales[0]])
            rows.append((f"MERGE median {scales[-1]:,} / {scales[0]:,} rows", f"{ratio:.2f}", "target <= 1.5", ""))
    day = None
    if args.day_events:
        import tempfile

        with tempfile.TemporaryDirectory() as work_dir:
            day = merge_over_a_day(args.day_events, args.day_batch_size, work_dir)
        rows.append(("Gold phase over a simulated day: last / first hour", f"{day['last'] / day['first']:.2f}",
                     "target <= 1.2", f"medians {day['last']:.1f} / {day['first']:.1f} s, {day['hour_batches']} "
                     f"batches of {args.day_batch_size:,} each; {len(day['gold'])} batches in all"))
    write_plots(args.output_dir, dashboard_times, merge_times, job, fresh, day)

    print(f"\nbenchmarks ({args.repeats} repeats, median; {args.events:,} events per run)\n")
    width = max(len(r[0]) for r in rows)
    for name, value, target, note in rows:
        print(f"  {name:<{width}}  {value:>12}  {target:<18} {note}")
    print("\n  generator runs:", ", ".join(f"{r:,.0f}" for r in to_kafka), "(to Kafka);",
          ", ".join(f"{r:,.0f}" for r in generation_only), "(dry run)")
    if args.job_events:
        print(f"  job: {args.job_events:,} events backlog, batches of {args.batch_size:,}; per batch (s): "
              + ", ".join(f"{h['seconds']:.1f}" for h in history))
    if dashboard_times:
        print(f"  dashboard queries at {args.dashboard_rows:,} Gold rows, median of {args.repeats} warm runs:")
        for label, seconds, count in sorted(dashboard_times, key=lambda t: -t[1]):
            print(f"    {seconds:6.2f}s  {count:>7,} rows  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
