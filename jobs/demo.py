"""`make demo`: the whole pipeline once, on the local stack.

1. the traffic generator sends a seeded, simulated-time funnel (with a sprinkle of every
   fault) to Kafka topic `ad_events`, keyed by impression_id;
2. the attribution job drains the topic (`--trigger available-now`) into Bronze, the
   audit table and Gold;
3. the campaign feed writes daily snapshots and the SCD2 job applies them (dims.dim_campaigns,
   whose budgets the pacing view reads), and the dashboard rollups are refreshed from Gold;
4. the Trino views are applied and, when Superset runs (`make demo` starts it), its
   "ROAS & Performance" and "Pipeline Ops" dashboards imported;
5. Trino prints campaign ROAS from Gold and the audit's reasons, then the dashboard URLs.

Running it again resends the same events: Gold does not change (event_id dedup), Bronze
keeps every copy, and the copies show up as DUPLICATE dispositions.
"""

from __future__ import annotations

import argparse
import sys
import time

from conf.measures import ratios_sql, sums_sql
from conf.settings import Settings, get_settings
from conf.tables import Tables

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


def print_table(columns: list[str], rows: list[list]) -> None:
    def cell(value) -> str:
        return f"{value:,.3f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(str(v)) for v in [c, *(r[i] for r in cells)]) for i, c in enumerate(columns)]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fault-rate", type=float, default=0.005, help="rate of every fault class")
    args = parser.parse_args(argv)
    settings = get_settings()
    tables = Tables(settings.table_namespace_prefix)
    from stack.preflight import require

    require(settings, "kafka", "s3", "catalog", "trino")

    from dims import campaign_scd2_job
    from jobs import attribution_streaming_job, rollup_job
    from producers import ad_traffic_generator, campaign_feed

    started = time.monotonic()
    print(f"1/5 generating {args.events:,} events (simulated time, faults at {args.fault_rate}) ...", flush=True)
    ad_traffic_generator.main(["--count", str(args.events), "--seed", str(args.seed),
                               "--all-faults", str(args.fault_rate)])
    print(f"2/5 attribution job, draining Kafka ({time.monotonic() - started:.0f}s) ...", flush=True)
    attribution_streaming_job.main(["--trigger", "available-now"])
    print(f"3/5 campaign dimensions (SCD2) and dashboard rollups ({time.monotonic() - started:.0f}s) ...", flush=True)
    campaign_feed.main([])
    campaign_scd2_job.main(["--all"])
    rollup_job.main([])
    print(f"4/5 Trino views and Superset dashboards ({time.monotonic() - started:.0f}s) ...", flush=True)
    urls = apply_dashboards(settings, tables.prefix)
    print(f"5/5 querying Trino ({time.monotonic() - started:.0f}s)\n", flush=True)

    print(f"campaign ROAS, top 10 by revenue ({tables.performance_rollup}, the numbers the dashboards show):")
    print_table(*query_trino(settings, ROAS_SQL.format(sums=sums_sql(), ratios=ratios_sql(),
                                                       performance_rollup=tables.performance_rollup)))
    print(f"\nwhat the audit caught ({tables.audit} and Gold dispositions):")
    print_table(*query_trino(settings, AUDIT_SQL.format(gold=tables.gold, audit=tables.audit)))
    if urls:
        print(f"\ndashboards (Superset; log in as {settings.superset_admin_user} / {settings.superset_admin_password}):")
        for title, url in urls.items():
            print(f"  {title:<20} {url}")
    else:
        print(f"\nno dashboards: Superset is not running at {settings.superset_url} (start it with `make bi`)")
    print(f"\ndone in {time.monotonic() - started:.0f}s; the stack stays up (make stack-status, make stack-down)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
