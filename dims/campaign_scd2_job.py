"""SCD Type 2 dimension job: campaign (or user) snapshots -> dims.dim_campaigns (dim_users).

    spark-submit dims/campaign_scd2_job.py                      # the newest snapshot in the landing dir
    spark-submit dims/campaign_scd2_job.py --all                # every landing snapshot not yet applied, in order
    spark-submit dims/campaign_scd2_job.py --snapshot a.jsonl --snapshot b.jsonl
    spark-submit dims/campaign_scd2_job.py --dimension users --all

Snapshots are the campaign feed's JSON-lines files (producers/campaign_feed.py); each is
applied with one atomic Iceberg MERGE (dims/scd2.py).
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from conf.settings import get_settings
from dims.dimensions import COLUMN_TYPES, DIMENSIONS
from dims.scd2 import Dimension, SnapshotError, apply_snapshot, ddl
from jobs.cli import job_parser, job_session

log = logging.getLogger(__name__)


def snapshot_files(directory: Path, kind: str) -> list[Path]:
    """Landing files in as-of order (the file name carries the as-of time)."""
    return sorted(directory.glob(f"{kind}_*.jsonl"))


def as_of_of(path: Path) -> datetime:
    stamp = path.stem.split("_", 1)[1]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


def read_snapshot(spark, dimension: Dimension, path: Path):
    schema = ", ".join([f"{dimension.natural_key} STRING",
                        *(f"{c} {COLUMN_TYPES[c]}" for c in dimension.attributes), "as_of STRING"])
    frame = spark.read.schema(schema).json(str(path))
    return frame.select(dimension.natural_key, *dimension.attributes)


def applied_through(spark, dimension: Dimension) -> datetime | None:
    """The latest change already in the dimension (start of a version, end of a closed one)."""
    row = spark.sql(f"SELECT CAST(max(greatest(start_ts, IF(is_current, start_ts, end_ts))) AS STRING) AS latest "
                    f"FROM {dimension.table}").first()
    if row.latest is None:
        return None
    return datetime.fromisoformat(row.latest).replace(tzinfo=timezone.utc)


def run(spark, dimension: Dimension, paths: list[Path]) -> list[dict]:
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {dimension.table.rsplit('.', 1)[0]}")
    spark.sql(ddl(dimension, COLUMN_TYPES))
    results = []
    for path in paths:
        started = time.monotonic()
        counts = apply_snapshot(spark, dimension, read_snapshot(spark, dimension, path), as_of_of(path))
        log.info(f"{path.name}: {counts['new_versions']} new versions, {counts['closed_missing']} closed as missing, "
                 f"{counts['type1_updates']} in-place updates ({time.monotonic() - started:.1f}s)")
        results.append(counts)
    return results


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = job_parser("campaign_scd2_job.py", __doc__, settings)
    parser.add_argument("--dimension", choices=sorted(DIMENSIONS), default="campaigns")
    parser.add_argument("--snapshot", action="append", type=Path, help="a snapshot file (repeatable, applied in order)")
    parser.add_argument("--landing-dir", type=Path, help="default: RUNTIME_DIR/landing/<dimension>")
    parser.add_argument("--all", action="store_true", help="apply every landing snapshot newer than the dimension")
    args = parser.parse_args(argv)
    dimension = DIMENSIONS[args.dimension](args.table_prefix)
    landing = args.landing_dir or Path(settings.runtime_dir) / "landing" / args.dimension
    spark = job_session(f"scd2-{args.dimension}", settings, "s3", "catalog")
    if args.snapshot:
        paths = args.snapshot
    else:
        available = snapshot_files(landing, args.dimension)
        if not available:
            print(f"error: no {args.dimension}_*.jsonl snapshot in {landing} — write some with "
                  f"`python -m producers.campaign_feed`", file=sys.stderr)
            return 1
        if args.all:
            spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {dimension.table.rsplit('.', 1)[0]}")
            spark.sql(ddl(dimension, COLUMN_TYPES))
            done = applied_through(spark, dimension)
            paths = [p for p in available if done is None or as_of_of(p) > done]
        else:
            paths = available[-1:]
    try:
        run(spark, dimension, paths)
    except SnapshotError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
