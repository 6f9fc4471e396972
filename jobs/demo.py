"""`make demo`: the whole pipeline once, on the local stack.

1. the traffic generator sends a seeded, simulated-time funnel (with a sprinkle of every
   fault) to Kafka topic `ad_events`, keyed by impression_id;
2. the attribution job drains the topic (`--trigger available-now`) into Bronze, the
   audit table and Gold;
3. the dashboard rollups are refreshed from Gold (jobs/rollup_job.py), so `make dashboards`
   shows this run;
4. Trino prints campaign ROAS from Gold and the audit's reasons.

Running it again resends the same events: Gold does not change (event_id dedup), Bronze
keeps every copy, and the copies show up as DUPLICATE dispositions.
"""

from __future__ import annotations

import argparse
import sys
import time

from conf.settings import Settings, get_settings
from conf.tables import Tables

ROAS_SQL = """
SELECT campaign_id,
       count(*) AS impressions,
       count_if(is_clicked) AS clicks,
       count_if(is_converted) AS conversions,
       round(sum(cost), 2) AS cost,
       round(sum(revenue), 2) AS revenue,
       round(sum(revenue) / nullif(sum(cost), 0), 3) AS roas,
       round(avg(CAST(is_clicked AS double)) * 100, 2) AS ctr_pct,
       round(count_if(is_converted) * 100.0 / nullif(count_if(is_clicked), 0), 1) AS cvr_pct
FROM {gold}
WHERE eligible
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


def print_table(columns: list[str], rows: list[list]) -> None:
    widths = [max(len(str(v)) for v in [c, *(r[i] for r in rows)]) for i, c in enumerate(columns)]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    for row in rows:
        print("  ".join(str(v).rjust(w) for v, w in zip(row, widths)))


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

    from jobs import attribution_streaming_job, rollup_job
    from producers import ad_traffic_generator

    started = time.monotonic()
    print(f"1/4 generating {args.events:,} events (simulated time, faults at {args.fault_rate}) ...", flush=True)
    ad_traffic_generator.main(["--count", str(args.events), "--seed", str(args.seed),
                               "--all-faults", str(args.fault_rate)])
    print(f"2/4 attribution job, draining Kafka ({time.monotonic() - started:.0f}s) ...", flush=True)
    attribution_streaming_job.main(["--trigger", "available-now"])
    print(f"3/4 dashboard rollups ({time.monotonic() - started:.0f}s) ...", flush=True)
    rollup_job.main([])
    print(f"4/4 querying Trino ({time.monotonic() - started:.0f}s)\n", flush=True)

    print(f"campaign ROAS, top 10 by revenue ({tables.gold}, eligible rows):")
    print_table(*query_trino(settings, ROAS_SQL.format(gold=tables.gold)))
    print(f"\nwhat the audit caught ({tables.audit} and Gold dispositions):")
    print_table(*query_trino(settings, AUDIT_SQL.format(gold=tables.gold, audit=tables.audit)))
    print(f"\ndone in {time.monotonic() - started:.0f}s; the stack stays up (make stack-status, make stack-down)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
