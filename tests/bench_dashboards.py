"""Dashboard query times at scale: synthetic Gold (N impressions, funnel rates like the
generator's), the Bronze and audit rows behind it, stream progress and campaign versions,
written with Spark in a few minutes instead of hours of generator + job; then every view,
every Metabase card (unfiltered and filtered) and every Grafana panel (macros expanded) is
timed on the real Trino.

    python -m tests.bench --dashboard-rows 1000000       (part of `make bench`)
"""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import datetime, timedelta, timezone

from conf.tables import TOUCH_FIELDS, Tables, ensure_tables
from dashboards import grafana_bootstrap, metabase_bootstrap
from dashboards.trino_views import apply_views, qualified_name, qualify, view_names
from conf.gold_days import impression_id_day

DAYS = 7
CHUNK = 2_000_000
CAMPAIGNS = 50
ROW_LEVEL_VIEWS = ("attribution_dispositions", "impressions_with_campaign_version")


def _touch(kind: str, time_column: str, value: str, disposition: str) -> str:
    fields = {"event_id": f"concat('{kind[:3].lower()}-', id)", "event_type": f"'{kind}'",
              "event_time": time_column, "arrival_time": time_column, "kafka_partition": "CAST(id % 4 AS INT)",
              "kafka_offset": "id", "campaign_id": "campaign_id", "creative_id": "creative_id",
              "user_id": "user_id", "geo_country": "geo_country", "platform": "platform",
              "bid_price": "IF(" + repr(kind) + " = 'IMPRESSION', cost, 0D)", "conversion_value": value,
              "disposition": f"'{disposition}'"}
    assert list(fields)[:-1] == [name for name, _ in TOUCH_FIELDS]
    return "named_struct(" + ", ".join(f"'{name}', {expr}" for name, expr in fields.items()) + ")"


def synthesize(spark, tables: Tables, rows: int, end: datetime, gold_only: bool = False, days: int = DAYS) -> None:
    """Gold with `rows` impressions over `days` days ending at `end` (time-ordered UUIDv7 ids,
    as the generator's), Bronze with one row per touch, 0.5% audit rows, one stream-progress
    row per 20k events (`gold_only`: Gold alone)."""
    ensure_tables(spark, tables)
    for first in range(0, rows, CHUNK):  # appends of at most CHUNK impressions keep memory bounded
        _synthesize_chunk(spark, tables, first, min(first + CHUNK, rows), rows, end, gold_only, days)
    if not gold_only:
        _synthesize_audit_and_progress(spark, tables, rows, end, days)


def _synthesize_chunk(spark, tables: Tables, first: int, last: int, rows: int, end: datetime, gold_only: bool,
                      days: int) -> None:
    """Gold (and Bronze) rows of impressions first..last-1 of `rows`."""
    start_s = int((end - timedelta(days=days)).timestamp())
    spark.sql(f"""
        SELECT *, concat('imp-', substr(ms, 1, 8), '-', substr(ms, 9, 4), '-7', substr(tail, 1, 3), '-8',
                         substr(tail, 4, 3), '-', substr(tail, 7, 12)) AS impression_id
        FROM (SELECT *, lower(lpad(hex(unix_millis(impression_time)), 12, '0')) AS ms,
                     lower(lpad(hex(id), 18, '0')) AS tail
              FROM (SELECT id, timestamp_seconds({start_s} + pmod(hash(id, 4), {days * 86400})) AS impression_time
                    FROM range({first}, {last})))
    """).createOrReplaceTempView("bench_ids")
    spark.sql(f"""
        SELECT id,
               impression_id,
               format_string('camp-%05d', CAST(id % {CAMPAIGNS} AS INT)) AS campaign_id,
               format_string('cr-%05d-%d', CAST(id % {CAMPAIGNS} AS INT), CAST(id % 7 % 5 AS INT)) AS creative_id,
               concat('u-', CAST(pmod(hash(id, 1), {max(rows // 20, 1)}) AS STRING)) AS user_id,
               element_at(array('US','DE','GB','FR','NL','BR','IN','JP','CA','ES'), CAST(pmod(hash(id, 2), 10) AS INT) + 1) AS geo_country,
               element_at(array('IOS','ANDROID','WEB'), CAST(pmod(hash(id, 3), 3) AS INT) + 1) AS platform,
               impression_time,
               pmod(hash(id, 5), 1000) < 50 AS is_clicked,
               pmod(hash(id, 5), 1000) < 5 AS is_converted,
               0.03 + pmod(hash(id, 6), 1200) / 10000.0 AS cost
        FROM bench_ids
    """).createOrReplaceTempView("bench_impressions")
    gold = spark.sql(f"""
        SELECT impression_id, {impression_id_day()} AS impression_id_day, campaign_id, creative_id, user_id, geo_country, platform, is_clicked, is_converted,
               impression_time,
               IF(is_clicked, impression_time + make_interval(0, 0, 0, 0, 0, 0, 30), NULL) AS click_time,
               IF(is_converted, impression_time + make_interval(0, 0, 0, 0, 2, 0, 0), NULL) AS conversion_time,
               cost,
               IF(is_converted, 20.0 + pmod(hash(id, 7), 8000) / 100.0, 0D) AS revenue,
               true AS eligible, false AS is_late, 0L AS late_by_ms, 0D AS revenue_out_of_window,
               current_timestamp() AS last_updated_ts,
               IF(is_converted, concat('con-', id), NULL) AS converted_event_id,
               filter(array(
                 {_touch('IMPRESSION', 'impression_time', '0D', 'IMPRESSION')},
                 IF(is_clicked, {_touch('CLICK', 'impression_time + make_interval(0, 0, 0, 0, 0, 0, 30)', '0D', 'CLICK')}, NULL),
                 IF(is_converted, {_touch('CONVERSION', 'impression_time + make_interval(0, 0, 0, 0, 2, 0, 0)',
                                          '20.0 + pmod(hash(id, 7), 8000) / 100.0', 'ATTRIBUTED')}, NULL)
               ), t -> t IS NOT NULL) AS touches
        FROM bench_impressions
    """)
    gold.select(*spark.table(tables.gold).columns).writeTo(tables.gold).append()
    if gold_only:
        return
    gold.createOrReplaceTempView("bench_gold")
    bronze = spark.sql("""
        SELECT t.event_id, t.event_type, g.impression_id, g.campaign_id, t.event_time AS event_timestamp,
               g.impression_id AS kafka_key, 'bench' AS kafka_topic, t.kafka_partition, t.kafka_offset,
               t.arrival_time AS kafka_timestamp, current_timestamp() AS ingested_at,
               to_json(named_struct('event_id', t.event_id, 'event_type', t.event_type,
                                    'impression_id', g.impression_id, 'campaign_id', t.campaign_id,
                                    'user_id', t.user_id, 'event_timestamp', unix_seconds(t.event_time))) AS raw_payload,
               CAST(NULL AS STRING) AS parse_error
        FROM bench_gold g LATERAL VIEW explode(touches) AS t
    """)
    bronze.select(*spark.table(tables.bronze).columns).writeTo(tables.bronze).append()


def _synthesize_audit_and_progress(spark, tables: Tables, rows: int, end: datetime, days: int) -> None:
    start_s, end_s = int((end - timedelta(days=days)).timestamp()), int(end.timestamp())
    audit = spark.sql(f"""
        SELECT element_at(array('PARSE_ERROR','MISSING_KEY','UNKNOWN_TYPE','BAD_VALUE'), CAST(id % 4 AS INT) + 1) AS reason,
               'synthetic' AS detail, CAST(NULL AS STRING) AS event_id, CAST(NULL AS STRING) AS event_type,
               CAST(NULL AS STRING) AS impression_id, 'bench' AS kafka_topic, CAST(id % 4 AS INT) AS kafka_partition,
               id + {rows * 3} AS kafka_offset, timestamp_seconds({start_s} + id * {days * 86400 // max(rows // 200, 1)}) AS kafka_timestamp,
               '{{' AS raw_payload, current_timestamp() AS audited_at
        FROM range({max(rows // 200, 1)})
    """)
    audit.select(*spark.table(tables.audit).columns).writeTo(tables.audit).append()
    batches = max(rows // 20_000, 1)
    progress = spark.sql(f"""
        SELECT 'bench-query' AS query_id, 'bench-run' AS run_id, 'attribution' AS query_name, id AS batch_id,
               timestamp_seconds({end_s} - 86400 + id * {86400 // batches}) AS batch_timestamp,
               20000L AS num_input_rows, 25000D AS input_rows_per_second, 20000D AS processed_rows_per_second,
               1000L AS batch_duration_ms, 1000L AS trigger_execution_ms,
               timestamp_seconds({end_s} - 86400 + id * {86400 // batches} - 5) AS max_event_time,
               CAST(NULL AS TIMESTAMP) AS watermark, ({batches} - id - 1) * 20000L AS offsets_behind,
               transform(sequence(0, 3), p -> named_struct('topic', 'bench', 'kafka_partition', p,
                         'start_offset', id * 5000L, 'end_offset', (id + 1) * 5000L,
                         'latest_offset', {batches} * 5000L, 'offsets_behind', ({batches} - id - 1) * 5000L)) AS partitions,
               current_timestamp() AS recorded_at
        FROM range({batches})
    """)
    progress.select(*spark.table(tables.stream_progress).columns).writeTo(tables.stream_progress).append()


def campaign_versions(spark, prefix: str, end: datetime) -> None:
    import tempfile
    from pathlib import Path

    from dims.campaign_scd2_job import run as run_dims
    from dims.dimensions import campaigns
    from producers.campaign_feed import snapshots, write_snapshots

    series = snapshots(3, DAYS + 1, end - timedelta(days=DAYS + 1), timedelta(days=1), CAMPAIGNS)
    with tempfile.TemporaryDirectory() as directory:
        run_dims(spark, campaigns(prefix), write_snapshots(Path(directory), series))


def dashboard_queries(prefix: str, end: datetime) -> list[tuple[str, str]]:
    """(label, SQL) for every view, every card (unfiltered and filtered) and every panel. The
    row-level views (one row per impression or touch) are counted, not fetched: no dashboard
    reads them whole, and fetching a million rows times the client, not Trino."""
    queries = [(f"view {name}" + (" (count)" if name in ROW_LEVEL_VIEWS else ""),
                f"SELECT count(*) FROM {qualified_name(name, prefix)}" if name in ROW_LEVEL_VIEWS
                else f"SELECT * FROM {qualified_name(name, prefix)}") for name in view_names()]
    spec = metabase_bootstrap.load_spec()
    parameters = spec["dashboard"]["parameters"]
    day = (end - timedelta(days=2)).date().isoformat()
    for card in spec["dashboard"]["cards"]:
        queries.append((f"card {card.key}", qualify(metabase_bootstrap.expand(card.sql, {}, parameters), prefix)))
        filtered = {"start_date": day, "end_date": day, "campaign": "camp-00007"}
        queries.append((f"card {card.key} (filtered)",
                        qualify(metabase_bootstrap.expand(card.sql, filtered, parameters), prefix)))
    for title, sql in grafana_bootstrap.panel_queries(grafana_bootstrap.load_dashboard()):
        expanded = grafana_bootstrap.expand_macros(sql, end - timedelta(hours=24), end)
        queries.append((f"panel {title}", qualify(expanded, prefix)))
    return queries


def time_queries(cursor, queries: list[tuple[str, str]], repeats: int) -> list[tuple[str, float, int]]:
    """(label, median seconds, rows) per query; the first run of each warms Trino's caches."""
    results = []
    for label, sql in queries:
        seconds = []
        for _ in range(repeats + 1):
            started = time.perf_counter()
            cursor.execute(sql)
            fetched = cursor.fetchall()
            seconds.append(time.perf_counter() - started)
        results.append((label, statistics.median(seconds[1:]), len(fetched)))
    return results


def time_rollups(spark, tables: Tables, end: datetime) -> dict:
    """Seconds for a first (full) rollup refresh over all of Gold, then for one after a
    MERGE-like change (an in-place UPDATE of 1% of the newest day): the steady state,
    where only the days a batch touched are recomputed."""
    from jobs.rollup_job import refresh_all

    started = time.perf_counter()
    refresh_all(spark, tables)
    full = time.perf_counter() - started
    newest = (end - timedelta(days=1)).date()
    spark.sql(f"UPDATE {tables.gold} SET last_updated_ts = current_timestamp() "
              f"WHERE impression_id_day = DATE '{newest}' AND pmod(hash(impression_id), 100) = 0")
    started = time.perf_counter()
    reports = refresh_all(spark, tables)
    return {"full_s": full, "one_day_s": time.perf_counter() - started,
            "days": sorted({str(d) for r in reports for d in (r["days"] or [])})}


def run(rows: int, repeats: int, settings) -> dict:
    """Synthesize, refresh the rollups (timed), then time every dashboard query:
    {"queries": [(label, median seconds, rows)], "rollups": time_rollups(...)}."""
    import trino

    from jobs.cli import start_spark
    from tests.attribution_helpers import drop_namespaces

    tables = Tables(f"benchdash{uuid.uuid4().hex[:6]}_")
    end = datetime.now(timezone.utc).replace(microsecond=0)
    spark = start_spark("bench-dashboards")
    started = time.perf_counter()
    print(f"synthesizing {rows:,} Gold rows with their Bronze, audit, progress and campaign versions ...", flush=True)
    synthesize(spark, tables, rows, end)
    campaign_versions(spark, tables.prefix, end)
    print(f"  done in {time.perf_counter() - started:.0f}s; refreshing the rollups ...", flush=True)
    rollups = time_rollups(spark, tables, end)
    print("  timing every dashboard query on Trino ...", flush=True)
    connection = trino.dbapi.connect(host=settings.trino_host, port=settings.trino_port, user=settings.trino_user,
                                     catalog=settings.catalog_name)
    try:
        cursor = connection.cursor()
        apply_views(cursor, tables.prefix)
        return {"queries": time_queries(cursor, dashboard_queries(tables.prefix, end), repeats), "rollups": rollups,
                "renders": time_superset(settings, tables.prefix, cursor, repeats)}
    finally:
        connection.close()
        drop_namespaces(spark, tables)


def time_superset(settings, prefix: str, cursor, repeats: int) -> dict[str, tuple[float, float, float]] | None:
    """Each Superset dashboard over the prefix's tables, opened in headless chromium until
    every chart has finished: {title: (cold, first, again)} in seconds. Cold: the cache
    empty, every chart's query runs on Trino; first: the first open after the warm-up that
    `make demo` does after each rollup refresh; again: the median of the next `repeats`.
    None, with a line saying why, when Superset or chromium is missing (`make bi` starts Superset)."""
    import shutil

    from dashboards import superset_bootstrap
    from dashboards.superset_page import log_in, wait_finished
    from stack.preflight import http_status

    chromium = shutil.which("chromium")
    if http_status(f"{settings.superset_url}/health") != 200 or chromium is None:
        print(f"  Superset render times skipped: {'no chromium on PATH' if chromium is None else 'Superset is not running (make bi)'}")
        return None
    from playwright.sync_api import sync_playwright

    urls = superset_bootstrap.apply(settings, prefix, cursor, warm_cache=False)

    def open_once(page, dashboard) -> float:
        started = time.perf_counter()
        page.goto(urls[dashboard.title])
        states = wait_finished(page, len(dashboard.charts))
        # "no data" finishes a chart too: the synthesized history has no attribution-models run
        if failed := {name: state for name, state in states.items() if state.startswith("error")}:
            raise RuntimeError(f"{dashboard.title}: {failed}")
        return time.perf_counter() - started

    times = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])

        def logged_in_page():  # a new browser context each: nothing cached in it
            page = browser.new_page(viewport={"width": 1600, "height": 2200})
            log_in(page, settings)
            return page

        cold = {}
        for dashboard in superset_bootstrap.DASHBOARDS:
            page = logged_in_page()
            cold[dashboard.title] = open_once(page, dashboard)
            page.close()
        superset_bootstrap.warm(settings, prefix)
        for dashboard in superset_bootstrap.DASHBOARDS:
            page = logged_in_page()
            seconds = [open_once(page, dashboard) for _ in range(repeats + 1)]
            times[dashboard.title] = (cold[dashboard.title], seconds[0], statistics.median(seconds[1:]))
            page.close()
        browser.close()
    superset_bootstrap.remove(settings, prefix)
    return times


GENERATOR_START = datetime(2026, 1, 5, tzinfo=timezone.utc)  # the generator's default --start


def merge_at_scale(gold_rows: int, topic: str, batch_size: int, work_dir: str,
                   rows_per_day: int = 100_000) -> dict:
    """Seconds of each Gold MERGE while the job drains `topic` into a Gold that already
    holds `gold_rows` impressions of history: `rows_per_day` per day, in the days before the
    topic's traffic — a Gold grown by more days of the same traffic, as in production.
    Then one maintenance pass, with Gold's file counts before and after."""
    from conf.settings import get_settings
    from jobs.cli import start_spark
    from jobs.attribution_streaming_job import parse_args, run as run_job
    from jobs.maintenance_job import file_counts, run_once
    from tests.attribution_helpers import drop_namespaces

    tables = Tables(f"benchmerge{uuid.uuid4().hex[:6]}_")
    spark = start_spark("bench-merge")
    started = time.perf_counter()
    print(f"synthesizing {gold_rows:,} Gold rows ...", flush=True)
    days = max(gold_rows // rows_per_day, 1)
    for first in range(0, days, 10):  # ten days per append keeps the writers' memory bounded
        chunk = min(10, days - first)
        synthesize(spark, tables, gold_rows * chunk // days, GENERATOR_START - timedelta(days=first),
                   gold_only=True, days=chunk)
    print(f"  done in {time.perf_counter() - started:.0f}s; draining {topic} into it ...", flush=True)
    try:
        history = run_job(parse_args(["--trigger", "available-now", "--topic", topic, "--table-prefix",
                                      tables.prefix, "--checkpoint", f"{work_dir}/{tables.prefix}",
                                      "--max-offsets-per-trigger", str(batch_size)])).history
        result = {"merges": [h["gold"] for h in history if "gold" in h], "before": file_counts(spark, tables.gold)}
        began = time.perf_counter()
        run_once(spark, tables, get_settings())
        result["maintenance_s"] = time.perf_counter() - began
        spark.sql(f"REFRESH TABLE {tables.gold}")
        result["after"] = file_counts(spark, tables.gold)
        result["partitions_with_deletes"] = spark.sql(
            f"SELECT count(*) AS n FROM {tables.gold}.partitions "
            "WHERE position_delete_file_count + equality_delete_file_count > 0").first().n
        return result
    finally:
        drop_namespaces(spark, tables)
