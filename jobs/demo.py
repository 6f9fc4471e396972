"""`make demo`: events into Kafka, a Spark pipeline into Iceberg, a result out of Trino.

Until the attribution engine lands (issue #4) this runs a placeholder pipeline: a small
seeded funnel is produced to Kafka keyed by impression_id, a Spark batch reads the topic
back and writes it to `lakehouse.demo.ad_events`, and Trino prints per-campaign totals.
Every hop is the real one (Kafka, Spark's Kafka source, Iceberg REST + S3, Trino).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid

from conf.settings import Settings, get_settings

DEMO_TOPIC = "demo_events"
DEMO_TABLE = "lakehouse.demo.ad_events"


def funnel_events(count: int, seed: int, start_ts: int) -> list[dict]:
    """A small deterministic funnel: every impression, 5 % clicked, 10 % of those converted."""
    rng = random.Random(seed)
    campaigns = [f"camp-{i:03d}" for i in range(8)]
    events = []
    for n in range(count):
        impression_id = f"imp-{uuid.UUID(int=rng.getrandbits(128))}"
        campaign_id = rng.choice(campaigns)
        shown_at = start_ts + n
        base = {"impression_id": impression_id, "campaign_id": campaign_id, "schema_version": 1}
        events.append({**base, "event_id": str(uuid.UUID(int=rng.getrandbits(128))), "event_type": "IMPRESSION",
                       "event_timestamp": shown_at, "bid_price": round(rng.uniform(0.5, 3.0), 2), "conversion_value": 0.0})
        if rng.random() < 0.05:
            clicked_at = shown_at + rng.randint(1, 120)
            events.append({**base, "event_id": str(uuid.UUID(int=rng.getrandbits(128))), "event_type": "CLICK",
                           "event_timestamp": clicked_at, "bid_price": 0.0, "conversion_value": 0.0})
            if rng.random() < 0.10:
                events.append({**base, "event_id": str(uuid.UUID(int=rng.getrandbits(128))), "event_type": "CONVERSION",
                               "event_timestamp": clicked_at + rng.randint(60, 86_400), "bid_price": 0.0,
                               "conversion_value": round(rng.uniform(20, 200), 2)})
    return events


def produce(settings: Settings, events: list[dict]) -> None:
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    try:
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=20, acks="all")
    except KafkaError:  # kafka-python 3 raises KafkaTimeoutError('Unable to bootstrap ...')
        sys.exit(f"Kafka not reachable at {settings.kafka_bootstrap_servers} — run `make stack-up`")
    for event in events:
        producer.send(DEMO_TOPIC, key=event["impression_id"].encode(), value=json.dumps(event).encode())
    producer.flush()
    producer.close()


def load_to_iceberg(settings: Settings) -> int:
    from pyspark.sql import functions as F

    from conf.spark_session import build_spark

    spark = build_spark("demo", settings)
    schema = ("event_id string, event_type string, impression_id string, campaign_id string, "
              "event_timestamp double, bid_price double, conversion_value double")
    events = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap_servers)
        .option("subscribe", DEMO_TOPIC)
        .option("startingOffsets", "earliest")
        .load()
        .select(F.from_json(F.col("value").cast("string"), schema).alias("e"), "partition", "offset")
        .select("e.*", "partition", "offset")
        .withColumn("event_timestamp", F.col("event_timestamp").cast("timestamp"))
    )
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lakehouse.demo")
    events.writeTo(DEMO_TABLE).using("iceberg").tableProperty("format-version", "2").createOrReplace()
    written = spark.table(DEMO_TABLE).count()
    spark.stop()
    return written


ROAS_SQL = f"""
SELECT campaign_id,
       count_if(event_type = 'IMPRESSION') AS impressions,
       count_if(event_type = 'CLICK') AS clicks,
       count_if(event_type = 'CONVERSION') AS conversions,
       round(sum(bid_price), 2) AS cost,
       round(sum(conversion_value), 2) AS revenue,
       round(sum(conversion_value) / nullif(sum(bid_price), 0), 3) AS roas
FROM {DEMO_TABLE}
GROUP BY campaign_id
ORDER BY campaign_id
"""


def query_trino(settings: Settings, sql: str) -> tuple[list[str], list[list]]:
    import trino

    connection = trino.dbapi.connect(host=settings.trino_host, port=settings.trino_port,
                                     user=settings.trino_user, catalog=settings.catalog_name)
    cursor = connection.cursor()
    cursor.execute(sql)
    rows = cursor.fetchall()
    return [column[0] for column in cursor.description], rows


def print_table(columns: list[str], rows: list[list]) -> None:
    widths = [max(len(str(v)) for v in [c, *(r[i] for r in rows)]) for i, c in enumerate(columns)]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    for row in rows:
        print("  ".join(str(v).rjust(w) for v, w in zip(row, widths)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--impressions", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    settings = get_settings()

    started = time.monotonic()
    events = funnel_events(args.impressions, args.seed, start_ts=int(time.time()) - 3600)
    produce(settings, events)
    print(f"produced {len(events):,} events to Kafka topic {DEMO_TOPIC} ({time.monotonic() - started:.1f}s)")
    written = load_to_iceberg(settings)
    print(f"Spark wrote {written:,} rows to {DEMO_TABLE} ({time.monotonic() - started:.1f}s)")
    columns, rows = query_trino(settings, ROAS_SQL)
    print(f"\ncampaign ROAS from Trino ({DEMO_TABLE}):")
    print_table(columns, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
