"""End-to-end freshness at a steady rate: the generator on the real clock sends `rate`
events/s while the streaming job (spark-submit, processing-time trigger) runs, and Trino
is polled about once a second. An impression produced at p that Trino first returns at
poll time t has freshness t - p (a poll lands within a second of the commit, so figures
are upper bounds by at most the poll interval plus the query time).

    python -m tests.bench --freshness-rate 5000 --freshness-seconds 180    (part of `make bench`)
"""

from __future__ import annotations

import math
import re
import statistics
import tempfile
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone


def weighted_percentile(samples: list[tuple[float, int]], fraction: float) -> float:
    """Nearest-rank percentile of (value, count) samples."""
    ordered = sorted(samples)
    total = sum(count for _, count in ordered)
    rank, seen = max(1, math.ceil(fraction * total)), 0
    for value, count in ordered:
        seen += count
        if seen >= rank:
            return value
    raise ValueError("no samples")


def batch_phases(line: str) -> dict[str, float]:
    """The seconds per phase that the job's batch line reports: '(read 1.2s, gold 3.4s)'."""
    detail = re.search(r"\(([^()]*)\)\s*$", line)
    return {name: float(seconds) for name, seconds in re.findall(r"(\w+) ([\d.]+)s", detail.group(1) if detail else "")}


def _poll(cursor, gold: str, day: str, since: float) -> list[tuple[float, int, float]]:
    """Impressions with impression_time > since, per event second: (second, count, newest
    impression_time in it). One query, and Iceberg's column bounds let Trino skip every
    file written before `since`, so the observer costs little CPU beside the job. Event
    times carry milliseconds: half of one keeps a double's rounding from counting the
    newest impression twice."""
    cursor.execute(f"""
        SELECT CAST(floor(to_unixtime(impression_time)) AS BIGINT), count(*), max(to_unixtime(impression_time))
        FROM {gold}
        WHERE impression_id_day >= DATE '{day}' AND impression_time > from_unixtime({since + 0.0005})
        GROUP BY 1""")
    return [(float(second), count, newest) for second, count, newest in cursor.fetchall()]


def run(rate: float, seconds: float, settings, trigger: str, warmup: float = 60.0) -> dict:
    """Run the job (processing-time trigger every `trigger`, e.g. "10 seconds") against a fresh
    topic and tables for `warmup` + `seconds` of traffic; freshness samples come from
    impressions produced after the warm-up."""
    import trino

    from conf.settings import REPO_ROOT
    from conf.tables import Tables
    from stack.kafka_admin import ensure_topic
    from tests.attribution_helpers import spark_submit_env
    from tests.bench import drop_prefix
    from tests.streaming_helpers import JobProcess

    run_id = uuid.uuid4().hex[:8]
    tables, topic = Tables(f"benchfresh{run_id}_"), f"bench_fresh_{run_id}"
    gold = tables.gold.split(".", 1)[1]
    ensure_topic(settings.kafka_bootstrap_servers, topic, settings.kafka_partitions)
    connection = trino.dbapi.connect(host=settings.trino_host, port=settings.trino_port, user=settings.trino_user,
                                     catalog=settings.catalog_name)
    cursor = connection.cursor()
    with tempfile.TemporaryDirectory() as work:
        job = JobProcess(["--topic", topic, "--checkpoint", f"{work}/checkpoint", "--trigger", "processing-time"],
                         spark_submit_env(tables.prefix, short_lived=False, TRIGGER_INTERVAL=trigger))
        generator = None
        try:
            print(f"freshness: job starting; then {rate:,.0f} events/s for {warmup + seconds:.0f}s "
                  f"(the first {warmup:.0f}s are warm-up) ...", flush=True)
            generator_command = [sys.executable, "-m", "producers.ad_traffic_generator", "--clock", "real",
                                 "--rate", str(rate), "--duration", str(warmup + seconds), "--topic", topic,
                                 "--seed", "5", "--quiet"]
            # The job's session takes ~20 s to start; traffic begins once it reads the topic.
            if not job.wait_for_output("attribution job:", timeout=180):
                raise RuntimeError("the streaming job did not start:\n" + job.tail())
            started = time.time()
            generator = subprocess.Popen(generator_command, cwd=REPO_ROOT)
            window = (started + warmup, started + warmup + seconds)
            day = (datetime.fromtimestamp(started, timezone.utc) - timedelta(days=1)).date().isoformat()
            samples: list[tuple[float, int]] = []
            # (seconds since traffic began, how far Gold's newest impression lags the traffic): once
            # the generator has stopped, the lag is measured against its end, not the clock.
            timeline: list[tuple[float, float]] = []
            newest, last_report, traffic_end = started - 1, started, None
            while time.time() < window[1] + 120:
                poll_started = time.time()
                arrived = _poll(cursor, gold, day, newest)
                seen_at = time.time()
                for second, count, _ in arrived:
                    if window[0] <= second < window[1]:
                        samples.append((seen_at - (second + 0.5), count))
                newest = max([newest, *(latest for _, _, latest in arrived)])
                if traffic_end is None and generator.poll() is not None:
                    traffic_end = seen_at
                lag = min(seen_at, traffic_end or seen_at) - newest
                if newest >= started:
                    timeline.append((seen_at - started, lag))
                # caught up: impressions are counted by whole seconds, and the generator exits
                # a second or two after its last send (3 s behind its exit, measured)
                if newest >= window[1] - 1 or (traffic_end is not None and newest >= traffic_end - 5):
                    break
                if seen_at - last_report >= 30:
                    behind = seen_at - newest
                    print(f"  {seen_at - started:5.0f}s: newest impression in Gold is {behind:.1f}s old", flush=True)
                    last_report = seen_at
                time.sleep(max(0.0, 1.0 - (time.time() - poll_started)))
            generator.wait(timeout=60)
            batches = job.batch_lines()
        finally:
            if generator is not None and generator.poll() is None:
                generator.kill()
            job.stop()
            connection.close()
    drop_prefix(tables.prefix)
    seconds_per_batch = [float(m.group(1)) for line in batches if (m := re.search(r" in ([\d.]+)s", line))]
    result = {"impressions": sum(count for _, count in samples), "batches": len(batches),
              "median_batch_s": statistics.median(seconds_per_batch) if seconds_per_batch else None,
              "behind_at_end_s": lag, "batch_lines": batches, "timeline": timeline,
              "warmup_s": warmup, "traffic_s": (traffic_end or seen_at) - started,
              "phases": [batch_phases(line) for line in batches]}
    if not samples:  # the job fell behind: no impression of the window became visible in time
        return {**result, "p50": None, "p95": None}
    return {**result, "p50": weighted_percentile(samples, 0.50), "p95": weighted_percentile(samples, 0.95)}
