"""Pure DataFrame -> DataFrame transforms of the attribution pipeline (no I/O).

    Kafka records --parse_records--> parsed (Bronze columns + raw string fields)
                 --with_validation--> + reject reason (DESIGN.md §4)
                 --to_touches-------> valid events as Gold touches
                 --touches_by_impression--> one row per impression_id (the MERGE source)
"""

from __future__ import annotations

import functools

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from conf.tables import TOUCH_FIELDS

EVENT_TYPES = ("IMPRESSION", "CLICK", "CONVERSION")
# Every field is read as a string: a wrong type must become BAD_VALUE, not a parse error.
RAW_FIELDS = ("event_id", "event_type", "impression_id", "campaign_id", "creative_id", "user_id",
              "geo_country", "platform", "event_timestamp", "bid_price", "conversion_value")
CORRUPT = "_corrupt_record"
PAYLOAD_SCHEMA = StructType([StructField(name, StringType()) for name in (*RAW_FIELDS, CORRUPT)])


def parse_records(kafka_records: DataFrame) -> DataFrame:
    """Kafka source rows -> Bronze columns, plus `raw` (the payload's fields as strings)
    and `event_seconds` (the event time as a finite double, else null)."""
    value = F.col("raw_payload")
    parse_error = (
        F.when(value.isNull(), F.lit("empty value"))
        .when(~value.rlike(r"^\s*\{"), F.lit("not a JSON object"))
        .when(F.col("json")[CORRUPT].isNotNull(), F.lit("malformed JSON"))
    )
    seconds = F.expr("try_cast(raw.event_timestamp AS DOUBLE)")
    finite_seconds = F.when(~F.isnan(seconds) & (F.abs(seconds) < F.lit(1e11)), seconds)
    # from_json runs once per record, in a projection of its own: referenced by both the
    # parse error and `raw`, it would otherwise be evaluated (interpreted) several times.
    payload = F.from_json(value, PAYLOAD_SCHEMA, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT})
    return (
        kafka_records.select(
            F.col("key").cast("string").alias("kafka_key"),
            F.col("topic").alias("kafka_topic"),
            F.col("partition").alias("kafka_partition"),
            F.col("offset").alias("kafka_offset"),
            F.col("timestamp").alias("kafka_timestamp"),
            F.col("value").cast("string").alias("raw_payload"),
        )
        .withColumn("json", payload)
        .withColumn("parse_error", parse_error)
        .withColumn("raw", F.when(F.col("parse_error").isNull(), F.col("json")))
        .withColumn("event_seconds", finite_seconds)
        .withColumn("event_timestamp", F.timestamp_micros(F.round(F.col("event_seconds") * 1_000_000).cast("bigint")))
        .withColumn("ingested_at", F.current_timestamp())
        .select(
            "raw.event_id", "raw.event_type", "raw.impression_id", "raw.campaign_id", "event_timestamp",
            "kafka_key", "kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp", "ingested_at",
            "raw_payload", "parse_error", "raw", "event_seconds",
        )
    )


BRONZE_COLUMNS = ("event_id", "event_type", "impression_id", "campaign_id", "event_timestamp", "kafka_key",
                  "kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp", "ingested_at",
                  "raw_payload", "parse_error")


def to_bronze(parsed: DataFrame) -> DataFrame:
    return parsed.select(*BRONZE_COLUMNS)


def _blank(column: Column) -> Column:
    return column.isNull() | (F.trim(column) == "")


def _bad_amount(name: str) -> Column:
    """Present but not a finite, non-negative number."""
    text = F.col(f"raw.{name}")
    amount = F.expr(f"try_cast(raw.{name} AS DOUBLE)")
    return text.isNotNull() & (amount.isNull() | F.isnan(amount) | (F.abs(amount) == float("inf")) | (amount < 0))


def with_validation(parsed: DataFrame) -> DataFrame:
    """Adds `reject_reason` (null for a valid event) and `reject_detail`; the first
    failing check of DESIGN.md §4 wins: PARSE_ERROR, MISSING_KEY, UNKNOWN_TYPE, BAD_VALUE."""
    # Each check is computed once, in a projection of its own, and the reason and detail
    # read the flags. Inlined into both CASE chains, the checks made one projection whose
    # generated code ran far slower than either chain alone: validating 500k records cost
    # 3.8 s on top of parsing them, now 0.4 s.
    checks = {f"missing_{name}": _blank(F.col(f"raw.{name}"))
              for name in ("event_id", "event_type", "impression_id", "event_timestamp")}
    checks["missing_campaign_id"] = (F.col("raw.event_type") == "IMPRESSION") & _blank(F.col("raw.campaign_id"))
    checks["unknown_type"] = ~F.col("raw.event_type").isin(*EVENT_TYPES)
    checks["bad_timestamp"] = F.col("event_seconds").isNull()
    checks["bad_bid"], checks["bad_value"] = _bad_amount("bid_price"), _bad_amount("conversion_value")
    flag = {name: F.col(f"_check.{name}") for name in checks}
    missing = [name for name in checks if name.startswith("missing_")]  # in the order the detail names them
    any_missing = functools.reduce(lambda a, b: a | b, (flag[name] for name in missing))
    missing_detail = F.concat_ws(", ", *[F.when(flag[name], F.lit(name.removeprefix("missing_"))) for name in missing])
    reason = (
        F.when(F.col("parse_error").isNotNull(), F.lit("PARSE_ERROR"))
        .when(any_missing, F.lit("MISSING_KEY"))
        .when(flag["unknown_type"], F.lit("UNKNOWN_TYPE"))
        .when(flag["bad_timestamp"] | flag["bad_bid"] | flag["bad_value"], F.lit("BAD_VALUE"))
    )
    detail = (
        F.when(F.col("parse_error").isNotNull(), F.col("parse_error"))
        .when(any_missing, F.concat(F.lit("missing: "), missing_detail))
        .when(flag["unknown_type"], F.concat(F.lit("event_type "), F.col("raw.event_type")))
        .when(flag["bad_timestamp"], F.concat(F.lit("event_timestamp "), F.col("raw.event_timestamp")))
        .when(flag["bad_bid"], F.concat(F.lit("bid_price "), F.col("raw.bid_price")))
        .when(flag["bad_value"], F.concat(F.lit("conversion_value "), F.col("raw.conversion_value")))
    )
    return (parsed.withColumn("_check", F.struct(*[check.alias(name) for name, check in checks.items()]))
            .withColumn("reject_reason", reason).withColumn("reject_detail", detail).drop("_check"))


def to_audit(validated: DataFrame) -> DataFrame:
    return validated.where(F.col("reject_reason").isNotNull()).select(
        F.col("reject_reason").alias("reason"), F.col("reject_detail").alias("detail"),
        "event_id", "event_type", "impression_id", "kafka_topic", "kafka_partition", "kafka_offset",
        "kafka_timestamp", "raw_payload", F.current_timestamp().alias("audited_at"),
    )


def to_touches(validated: DataFrame) -> DataFrame:
    """Valid events as touches (conf.tables.TOUCH_FIELDS), keyed by impression_id."""
    amount = lambda name: F.coalesce(F.expr(f"try_cast(raw.{name} AS DOUBLE)"), F.lit(0.0))  # noqa: E731
    columns = {
        "event_id": F.col("raw.event_id"),
        "event_type": F.col("raw.event_type"),
        "event_time": F.col("event_timestamp"),
        "arrival_time": F.col("kafka_timestamp"),
        "kafka_partition": F.col("kafka_partition"),
        "kafka_offset": F.col("kafka_offset"),
        "campaign_id": F.col("raw.campaign_id"),
        "creative_id": F.col("raw.creative_id"),
        "user_id": F.col("raw.user_id"),
        "geo_country": F.col("raw.geo_country"),
        "platform": F.col("raw.platform"),
        "bid_price": amount("bid_price"),
        "conversion_value": amount("conversion_value"),
    }
    assert tuple(columns) == tuple(name for name, _ in TOUCH_FIELDS)
    return validated.where(F.col("reject_reason").isNull()).select(
        F.col("raw.impression_id").alias("impression_id"),
        F.struct(*[column.alias(name) for name, column in columns.items()]).alias("touch"),
    )


def touches_by_impression(touches: DataFrame) -> DataFrame:
    """One row per impression_id: the MERGE source must not match a target row twice."""
    return touches.groupBy("impression_id").agg(F.collect_list("touch").alias("touches"))
