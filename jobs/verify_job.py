"""Verify: compare a replayed Gold (jobs/replay_job.py) with live Gold.

    spark-submit jobs/verify_job.py [--replayed lakehouse.gold.ad_performance_state_replay]

Prints how many impressions differ (missing on either side, or any Gold column other
than last_updated_ts different) with examples, and exits non-zero if any do.
"""

from __future__ import annotations

import sys

from conf.settings import get_settings
from conf.tables import Tables
from jobs.cli import job_parser, job_session
from engine.gold_merge import GOLD_COLUMNS

COMPARED = tuple(c for c in GOLD_COLUMNS if c != "last_updated_ts")


def differences(live, replayed):
    """Rows of either side that the other side lacks (compared on COMPARED columns),
    tagged with the side they come from."""
    from pyspark.sql import functions as F

    left, right = live.select(*COMPARED), replayed.select(*COMPARED)
    return (left.exceptAll(right).withColumn("side", F.lit("live"))
            .unionByName(right.exceptAll(left).withColumn("side", F.lit("replayed"))))


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = job_parser("verify_job.py", __doc__, settings)
    parser.add_argument("--replayed", help="default: <gold>_replay")
    parser.add_argument("--examples", type=int, default=5)
    args = parser.parse_args(argv)

    spark = job_session("verify", settings, "s3", "catalog")
    tables = Tables(args.table_prefix)
    replayed = args.replayed or f"{tables.gold}_replay"
    diff = differences(spark.table(tables.gold), spark.table(replayed)).persist()
    impressions = diff.select("impression_id").distinct().count()
    live_rows, replayed_rows = spark.table(tables.gold).count(), spark.table(replayed).count()
    print(f"live {tables.gold}: {live_rows:,} rows; replayed {replayed}: {replayed_rows:,} rows")
    if impressions == 0:
        print("verify: no differences")
        return 0
    print(f"verify: {impressions:,} impressions differ; examples:")
    sample = [r.impression_id for r in diff.select("impression_id").distinct().limit(args.examples).collect()]
    for row in diff.where(diff.impression_id.isin(sample)).orderBy("impression_id", "side").collect():
        values = row.asDict()
        print(f"  {values.pop('side'):>8} {values.pop('impression_id')}: "
              + ", ".join(f"{k}={v}" for k, v in values.items() if k != "touches"))
    return 1


if __name__ == "__main__":
    sys.exit(main())
