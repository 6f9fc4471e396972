"""Slowly changing dimensions, Type 2, with one atomic Iceberg MERGE per snapshot.

`apply_snapshot` is the one reusable function: give it a dimension spec (natural key,
tracked columns, type-1 columns) and a snapshot with its as-of time. Conventions
(docs/design.md §7): a new version starts at the snapshot's as-of time and the version it
replaces ends at exactly that instant; the open end is 9999-12-31; change detection is
null-safe; a -> b -> a opens three versions; a key absent from a full snapshot is
closed and, if it returns, gets a new version; re-running a snapshot is a no-op.
Surrogate keys are max(key) + 1, 2, ... in natural-key order: unique, never reused.
A snapshot older than the dimension's latest version is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

OPEN_END = "TIMESTAMP '9999-12-31 00:00:00'"


class SnapshotError(ValueError):
    """A snapshot that cannot be applied; the message says why and what to do."""


@dataclass(frozen=True)
class Dimension:
    table: str
    natural_key: str
    surrogate_key: str
    tracked: tuple[str, ...]  # a change opens a new version
    type1: tuple[str, ...] = ()  # a change overwrites every version in place
    close_missing: bool = True  # snapshots are full: an absent key is closed

    @property
    def attributes(self) -> tuple[str, ...]:
        return (*self.tracked, *self.type1)


def ddl(dimension: Dimension, column_types: dict[str, str]) -> str:
    columns = ",\n  ".join(
        [f"{dimension.surrogate_key} BIGINT NOT NULL", f"{dimension.natural_key} STRING NOT NULL"]
        + [f"{name} {column_types[name]}" for name in dimension.attributes]
        + ["start_ts TIMESTAMP NOT NULL", "end_ts TIMESTAMP NOT NULL", "is_current BOOLEAN NOT NULL"]
    )
    return (f"CREATE TABLE IF NOT EXISTS {dimension.table} (\n  {columns}\n) USING iceberg "
            "TBLPROPERTIES ('format-version'='2')")


def _differs(columns: tuple[str, ...], left: str = "t", right: str = "s") -> str:
    """Null-safe: NULL -> value and value -> NULL are changes."""
    if not columns:
        return "false"
    return "(" + " OR ".join(f"NOT ({left}.{c} <=> {right}.{c})" for c in columns) + ")"


def merge_sql(dimension: Dimension, source_view: str, as_of: str) -> str:
    """The MERGE that applies one snapshot. The source holds every snapshot row twice over:
    once with merge_key = natural key (to close or type-1 update the current version) and,
    for new or changed keys, once with merge_key = NULL (never matches: a new version)."""
    d = dimension
    type1_set = ", ".join(f"t.{c} = s.{c}" for c in d.type1)
    close = f"t.end_ts = {as_of}, t.is_current = false" + (f", {type1_set}" if type1_set else "")
    inserted = [d.surrogate_key, d.natural_key, *d.attributes]
    clauses = [
        f"WHEN MATCHED AND t.is_current AND {_differs(d.tracked)} THEN UPDATE SET {close}",
    ]
    if d.type1:
        clauses.append(f"WHEN MATCHED AND {_differs(d.type1)} THEN UPDATE SET {type1_set}")
    clauses.append(
        f"WHEN NOT MATCHED AND s.merge_key IS NULL THEN INSERT ({', '.join(inserted)}, start_ts, end_ts, is_current) "
        f"VALUES ({', '.join(f's.{c}' for c in inserted)}, {as_of}, {OPEN_END}, true)"
    )
    if d.close_missing:
        clauses.append(f"WHEN NOT MATCHED BY SOURCE AND t.is_current THEN UPDATE SET t.end_ts = {as_of}, "
                       "t.is_current = false")
    return (f"MERGE INTO {d.table} t USING {source_view} s ON t.{d.natural_key} = s.merge_key\n"
            + "\n".join(clauses))


def merge_source(spark, dimension: Dimension, snapshot, current):
    """snapshot rows (natural key + attributes) -> the MERGE source (see merge_sql)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    d = dimension
    key = d.natural_key
    changed = F.lit(False)
    for column in d.tracked:
        changed = changed | ~F.col(f"s.{column}").eqNullSafe(F.col(f"c.{column}"))
    joined = snapshot.alias("s").join(current.alias("c"), F.col(f"s.{key}") == F.col(f"c.{key}"), "left")
    new_versions = joined.where(F.col(f"c.{key}").isNull() | changed).select("s.*")
    max_key = spark.table(d.table).agg(F.coalesce(F.max(d.surrogate_key), F.lit(0))).first()[0]
    numbered = new_versions.withColumn(
        d.surrogate_key, F.lit(max_key) + F.row_number().over(Window.orderBy(key))
    ).withColumn("merge_key", F.lit(None).cast("string"))
    matches = snapshot.withColumn(d.surrogate_key, F.lit(None).cast("bigint")).withColumn("merge_key", F.col(key))
    columns = [d.surrogate_key, key, *d.attributes, "merge_key"]
    return matches.select(*columns).unionByName(numbered.select(*columns))


def _timestamp_literal(as_of: datetime) -> str:
    """as_of (timezone-aware, or naive UTC) as a Spark TIMESTAMP literal in UTC."""
    from datetime import timezone

    utc = as_of.astimezone(timezone.utc) if as_of.tzinfo else as_of
    return f"TIMESTAMP '{utc.strftime('%Y-%m-%d %H:%M:%S.%f')}'"


def check_snapshot(spark, dimension: Dimension, snapshot, as_of: datetime) -> bool:
    """Refuse what would corrupt history: duplicate or missing keys, and snapshots older
    than the dimension's latest change (history is built forward, one snapshot at a time).
    Returns whether as_of equals the latest change (then only a no-op re-run is allowed)."""
    from pyspark.sql import functions as F

    d = dimension
    duplicates = [row[d.natural_key] for row in
                  snapshot.groupBy(d.natural_key).count().where("count > 1").orderBy(d.natural_key).limit(5).collect()]
    if duplicates:
        raise SnapshotError(f"snapshot as of {as_of.isoformat()} lists {d.natural_key} more than once: "
                            f"{', '.join(duplicates)}")
    nulls = snapshot.where(F.col(d.natural_key).isNull()).count()
    if nulls:
        raise SnapshotError(f"snapshot as of {as_of.isoformat()} has {nulls} rows without {d.natural_key}")
    literal = _timestamp_literal(as_of)
    latest = spark.sql(
        f"SELECT max(greatest(start_ts, IF(is_current, start_ts, end_ts))) > {literal} AS older, "
        f"max(greatest(start_ts, IF(is_current, start_ts, end_ts))) = {literal} AS same, "
        f"CAST(max(greatest(start_ts, IF(is_current, start_ts, end_ts))) AS STRING) AS latest FROM {d.table}"
    ).first()
    if latest.older:
        raise SnapshotError(f"snapshot as of {as_of.isoformat()} is older than {d.table}'s latest change "
                            f"({latest.latest} UTC); apply snapshots in time order, or rebuild the dimension")
    return bool(latest.same)


def apply_snapshot(spark, dimension: Dimension, snapshot, as_of: datetime) -> dict[str, int]:
    """Apply one full snapshot atomically (one MERGE). Returns counts of what changed."""
    from pyspark.sql import functions as F

    d = dimension
    same_instant = check_snapshot(spark, d, snapshot, as_of)
    snapshot = snapshot.persist()
    current = spark.table(d.table).where("is_current").persist()
    source = merge_source(spark, d, snapshot, current).persist()
    new_versions = source.where("merge_key IS NULL").count()
    closed_missing = (current.join(snapshot, d.natural_key, "left_anti").count() if d.close_missing else 0)
    type1_changes = 0
    if d.type1:
        type1_changes = (source.where("merge_key IS NOT NULL").alias("s")
                         .join(spark.table(d.table).alias("t"), F.col("s.merge_key") == F.col(f"t.{d.natural_key}"))
                         .where(_differs(d.type1)).count())
    try:
        if same_instant and (new_versions or closed_missing or type1_changes):
            raise SnapshotError(f"a different snapshot with the same as-of time ({as_of.isoformat()}) was already "
                                f"applied to {d.table}; an as-of time can be applied once")
        if new_versions or closed_missing or type1_changes:
            view = f"scd2_source_{d.natural_key}"
            source.createOrReplaceTempView(view)
            spark.sql(merge_sql(d, view, _timestamp_literal(as_of)))
            spark.catalog.dropTempView(view)
    finally:
        for frame in (source, current, snapshot):
            frame.unpersist()
    return {"new_versions": new_versions, "closed_missing": closed_missing, "type1_updates": type1_changes}
