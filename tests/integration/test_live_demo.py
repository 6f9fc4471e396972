"""`make demo` live, for a bounded time: the backfill, then the generator on the real clock
beside the streaming job. Right after it stops, ops.pipeline_health (what Pipeline Ops shows)
reads latency and freshness in seconds, Gold holds the events produced live, and a second
run backfills only the gap and adds no DUPLICATE (each run's event ids are its own)."""

from __future__ import annotations

import contextlib
import io
import re
import uuid
from datetime import datetime

import pytest

from conf.settings import get_settings
from conf.tables import Tables
from dashboards.trino_views import apply_views, select_sql
from tests.attribution_helpers import drop_namespaces

pytestmark = [pytest.mark.stack, pytest.mark.xdist_group("live_demo")]

HISTORY = re.compile(r"^1/3 history (\S+) \.\. (\S+) \(([\d.]+) days")
RATE = 200  # records/s: small batches, so the job keeps its trigger beside the other worker's tests


def run_demo(tmp_path, prefix: str, topic: str, duration: int) -> tuple[str, datetime, float]:
    """The demo's output, the end of its history and the days the history covered. It runs in
    this process (what `python -m jobs.demo` runs, less its signal handlers): its backfill and
    rollups use the tests' JVM; the live job and the generator are its own child processes."""
    from jobs import demo

    args = demo.parse_args(
        ["--table-prefix", prefix, "--topic", topic, "--checkpoint", str(tmp_path / "checkpoint"),
         "--landing-dir", str(tmp_path / "landing"), "--history-days", "1", "--history-events", "3000",
         "--rate", str(RATE), "--fault-rate", "0", "--duration", str(duration), "--status-every", "15",
         "--rollup-every", "30", "--no-dashboards"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = demo.run(args, get_settings(), Tables(prefix), {"signal": None})
    output = out.getvalue()
    assert code == 0, output[-3000:]
    assert "3/3 live" in output and "at stop:" in output, output[-3000:]
    history = next(HISTORY.match(line) for line in output.splitlines() if HISTORY.match(line))
    return output, datetime.fromisoformat(history.group(2)), float(history.group(3))


@pytest.fixture(scope="module")
def live_runs(stack, spark, settings, tmp_path_factory):
    import trino

    connection = trino.dbapi.connect(host=settings.trino_host, port=settings.trino_port, user=settings.trino_user,
                                     catalog=settings.catalog_name)
    trino_cursor = connection.cursor()
    tmp = tmp_path_factory.mktemp("live_demo")
    tables = Tables(f"live{uuid.uuid4().hex[:8]}_")
    topic = f"live_{uuid.uuid4().hex[:8]}"
    try:
        first, first_end, first_days = run_demo(tmp, tables.prefix, topic, duration=75)
        apply_views(trino_cursor, tables.prefix)
        trino_cursor.execute(f"SELECT end_to_end_latency_seconds, gold_freshness_seconds "
                             f"FROM ({select_sql('pipeline_health', tables.prefix)})")
        health = trino_cursor.fetchone()
        trino_cursor.execute(f"SELECT count(*) FROM {tables.gold} WHERE impression_time > "
                             f"TIMESTAMP '{first_end:%Y-%m-%d %H:%M:%S.%f} UTC'")
        live_impressions = trino_cursor.fetchone()[0]
        second, _, second_days = run_demo(tmp, tables.prefix, topic, duration=10)
        trino_cursor.execute(f"SELECT count(*) FROM {tables.gold} CROSS JOIN UNNEST(touches) AS t "
                             f"WHERE t.disposition IN ('DUPLICATE', 'DUPLICATE_IMPRESSION')")
        duplicates = trino_cursor.fetchone()[0]
        trino_cursor.execute(f"SELECT count(*) FROM {tables.audit} WHERE reason = 'DUPLICATE'")
        duplicates += trino_cursor.fetchone()[0]
        yield {"first": first, "health": health, "live_impressions": live_impressions, "first_days": first_days,
               "second": second, "second_days": second_days, "duplicates": duplicates}
    finally:
        connection.close()
        drop_namespaces(spark, tables)


def test_pipeline_health_reads_seconds_right_after_a_live_run(live_runs):
    latency, freshness = live_runs["health"]
    assert latency is not None and freshness is not None, live_runs["first"][-2000:]
    # Seconds, not the backfill's days: the bound leaves room for the other worker's load (CI
    # measured 82.6 s beside it); the demo alone settles at ~30-50 s (README, "Two commands").
    assert latency < 180 and freshness < 180, (latency, freshness, live_runs["first"][-2000:])


def test_gold_holds_the_events_produced_live(live_runs):
    # ~0.94 of the live records are impressions: at least ten seconds' worth of the live run
    # reached Gold while it ran. How close Gold trails is a benchmark figure: beside the other
    # worker's jobs it trailed by up to ~2.5 min here (3,080 of ~14,000 live impressions in).
    assert live_runs["live_impressions"] > RATE * 10, (live_runs["live_impressions"], live_runs["first"][-2000:])


def test_a_second_run_backfills_only_the_gap_and_adds_no_duplicates(live_runs):
    assert live_runs["first_days"] == pytest.approx(1.0, abs=0.01)
    assert live_runs["second_days"] < 0.01, live_runs["second"][:1000]  # minutes, not another day
    assert live_runs["duplicates"] == 0, live_runs["second"][-2000:]
