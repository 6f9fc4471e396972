"""Pure DataFrame -> DataFrame transforms of the attribution pipeline (no I/O).

    Kafka records --parse_records--> parsed (Bronze columns + raw string fields)
                 --with_validation--> Bronze columns + reject reason (docs/design.md §4,
                                      validation) + what touches need: the frame a batch caches
                 --to_touches-------> valid events as Gold touches
                 --touches_by_impression--> one row per impression_id (the MERGE source)
"""

from __future__ import annotations

import functools

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType, VariantType

from conf.settings import ValidationLimits
from conf.events import AMOUNT_FIELDS, ATTRIBUTE_FIELDS, EVENT_TYPES, ID_FIELDS, READ_FIELDS
from conf.tables import TOUCH_FIELDS

# Ids and attributes are read as VARIANT so that their JSON type can be checked (a number
# would otherwise become its Java rendering). The other fields are read as strings: a wrong
# type must become BAD_VALUE, not a parse error.
STRING_FIELDS = (*ID_FIELDS, *ATTRIBUTE_FIELDS)
CORRUPT = "_corrupt_record"
PAYLOAD_SCHEMA = StructType([StructField(name, VariantType() if name in STRING_FIELDS else StringType())
                             for name in (*READ_FIELDS, CORRUPT)])
# Strict JSON: Spark's parser accepts single quotes and NaN/Infinity literals by default.
JSON_OPTIONS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT,
                "allowSingleQuotes": "false", "allowNonNumericNumbers": "false"}
# A number as JSON writes it, or a string holding one in the same form (ASCII digits, no
# padding): Spark's cast would also take "1d", "0x1p3" or " 1 ", Python's float "1_000".
NUMBER = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$"


def number(text: Column) -> Column:
    """The value as a double, null unless it is a number in JSON's form."""
    return F.when(text.rlike(NUMBER), text.try_cast("double"))


# Event times a timestamp can hold: years 1 to 9999 (as epoch seconds).
MIN_EVENT_SECONDS, MAX_EVENT_SECONDS = -62_135_596_800, 253_402_300_800


def _lone_surrogate(value: Column) -> Column:
    """A \\uD800-\\uDFFF escape that is not half of a pair: Spark's parser turns it into '?',
    a strict parser rejects it. Escaped backslashes are removed first, so every remaining
    backslash starts an escape; only records with a \\u escape pay for the regexes."""
    unescaped = F.regexp_replace(value, r"\\\\", "")
    unpaired = F.regexp_replace(unescaped, r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}", "")
    return F.when(F.instr(value, "\\u") > 0, unpaired.rlike(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")).otherwise(False)


def parse_records(kafka_records: DataFrame) -> DataFrame:
    """Kafka source rows -> Bronze columns, plus `raw` (the payload's fields as strings),
    `nonstring_ids` and `nonstring_attributes` (fields present but not JSON strings),
    `event_seconds` (the event time as a number of seconds within years 1..9999, else null)
    and `amounts` (each amount field as a double, null unless a number in JSON's form)."""
    value = F.col("raw_payload")
    # A record is one JSON object and nothing else: Spark's parser stops after the first
    # value, so '[' || value || ',0]' must be an array of exactly two elements.
    parse_error = (
        F.when(value.isNull(), F.lit("empty value"))
        .when(~F.expr("is_valid_utf8(raw_payload)"), F.lit("not valid UTF-8"))
        .when(~value.rlike(r"^[ \t\r\n]*\{"), F.lit("not a JSON object"))
        .when(F.col("json")[CORRUPT].isNotNull(), F.lit("malformed JSON"))
        .when(F.coalesce(F.expr("json_array_length('[' || raw_payload || ',0]')"), F.lit(0)) != 2,
              F.lit("data after the JSON object"))
        .when(_lone_surrogate(value), F.lit("unpaired surrogate escape"))
    )
    seconds = number(F.col("raw.event_timestamp"))
    in_range = ~F.isnan(seconds) & (seconds >= MIN_EVENT_SECONDS) & (seconds < MAX_EVENT_SECONDS)
    # from_json runs once per record, in a projection of its own: referenced by both the
    # parse error and `raw`, it would otherwise be evaluated (interpreted) several times.
    payload = F.from_json(value, PAYLOAD_SCHEMA, JSON_OPTIONS)
    raw = F.struct(*[F.expr(f"variant_get(json.{name}, '$', 'string')").alias(name) if name in STRING_FIELDS
                     else F.col(f"json.{name}").alias(name) for name in READ_FIELDS])

    def nonstring(names):
        return F.concat_ws(", ", *[
            F.when(F.col(f"json.{name}").isNotNull() & ~F.expr(f"is_variant_null(json.{name})")
                   & (F.expr(f"schema_of_variant(json.{name})") != "STRING"), F.lit(name)) for name in names])
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
        .withColumn("raw", F.when(F.col("parse_error").isNull(), raw))
        .withColumn("nonstring_ids", F.when(F.col("parse_error").isNull(), nonstring(ID_FIELDS)))
        .withColumn("nonstring_attributes", F.when(F.col("parse_error").isNull(), nonstring(ATTRIBUTE_FIELDS[1:])))
        .withColumn("event_seconds", F.when(in_range, seconds))
        .withColumn("event_timestamp", F.timestamp_micros(F.round(F.col("event_seconds") * 1_000_000).cast("bigint")))
        .withColumn("amounts", F.struct(*[number(F.col(f"raw.{name}")).alias(name) for name in AMOUNT_FIELDS]))
        .withColumn("ingested_at", F.current_timestamp())
        .select(
            "raw.event_id", "raw.event_type", "raw.impression_id", "raw.campaign_id", "event_timestamp",
            "kafka_key", "kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp", "ingested_at",
            "raw_payload", "parse_error", "raw", "nonstring_ids", "nonstring_attributes", "event_seconds", "amounts",
        )
        .transform(_computed_once)
    )


def _computed_once(frame: DataFrame) -> DataFrame:
    """The same rows, each column computed once whatever filters a consumer adds. The
    optimizer pushes a filter down through projections, replacing each column by its
    expression: `reject_reason IS NULL` (to_touches) below the parse inlined the parse error
    and from_json some 150 times, and replaying 30k records took 80 s instead of 1 s. No
    filter is pushed below a Generate (here the explode of a one-element array)."""
    return frame.select(F.explode(F.array(F.struct(*frame.columns))).alias("_row")).select("_row.*")


# The payload's fields a touch takes besides the Bronze columns and the amounts.
TOUCH_ATTRIBUTES = ("creative_id", "user_id", "geo_country", "platform")
BRONZE_COLUMNS = ("event_id", "event_type", "impression_id", "campaign_id", "event_timestamp", "kafka_key",
                  "kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp", "ingested_at",
                  "raw_payload", "parse_error")


def to_bronze(parsed: DataFrame) -> DataFrame:
    return parsed.select(*BRONZE_COLUMNS)


def _blank(column: Column) -> Column:
    return column.isNull() | (F.trim(column) == "")


def _bad_amount(name: str) -> Column:
    """Present but not a finite, non-negative number."""
    text, amount = F.col(f"raw.{name}"), F.col(f"amounts.{name}")
    return text.isNotNull() & (amount.isNull() | F.isnan(amount) | (F.abs(amount) == float("inf")) | (amount < 0))


def with_validation(parsed: DataFrame, limits: ValidationLimits = ValidationLimits()) -> DataFrame:
    """Adds `reject_reason` (null for a valid event) and `reject_detail`; the first failing
    check of docs/design.md (validation) wins, in the order of conf.events.REASONS. Keeps
    only what Bronze, the audit and touches read: a batch caches this frame, and every
    column cached costs time (`raw` keeps the attributes that are not Bronze columns)."""
    # Each check is computed once, in a projection of its own, and the reason and detail
    # read the flags. Inlined into both CASE chains, the checks made one projection whose
    # generated code ran far slower than either chain alone: validating 500k records cost
    # 3.8 s on top of parsing them, now 0.4 s.
    event_us = F.round(F.col("event_seconds") * 1_000_000).cast("bigint")
    ahead_us = event_us - F.unix_micros("kafka_timestamp")
    amount = lambda name: F.col(f"amounts.{name}")  # noqa: E731
    long_ids = F.concat_ws(", ", *[F.when(F.length(F.col(f"raw.{name}")) > limits.max_id_length, F.lit(name))
                                   for name in ID_FIELDS])
    checks = {f"missing_{name}": _blank(F.col(f"raw.{name}"))
              for name in ("event_id", "event_type", "impression_id", "event_timestamp")}
    checks["missing_campaign_id"] = (F.col("raw.event_type") == "IMPRESSION") & _blank(F.col("raw.campaign_id"))
    checks["nonstring_ids"] = F.col("nonstring_ids") != ""
    checks["long_ids"] = long_ids
    checks["unknown_type"] = ~F.col("raw.event_type").isin(*EVENT_TYPES)
    checks["bad_timestamp"] = F.col("event_seconds").isNull()
    checks["bad_bid"], checks["bad_value"] = _bad_amount("bid_price"), _bad_amount("conversion_value")
    checks["nonstring_attributes"] = F.col("nonstring_attributes") != ""
    checks["ahead"] = F.coalesce(ahead_us > limits.max_ahead_seconds * 1_000_000, F.lit(False))
    checks["old"] = F.coalesce(-ahead_us > limits.max_age_days * 86_400_000_000, F.lit(False))
    checks["big_bid"] = F.coalesce(amount("bid_price") > limits.max_amount, F.lit(False))
    checks["big_value"] = F.coalesce(amount("conversion_value") > limits.max_amount, F.lit(False))
    flag = {name: F.col(f"_check.{name}") for name in checks}
    missing = [name for name in checks if name.startswith("missing_")]  # in the order the detail names them
    any_missing = functools.reduce(lambda a, b: a | b, (flag[name] for name in missing))
    missing_detail = F.concat_ws(", ", *[F.when(flag[name], F.lit(name.removeprefix("missing_"))) for name in missing])
    long_detail = F.concat(F.lit(f"longer than {limits.max_id_length} characters: "), flag["long_ids"])
    reason = (
        F.when(F.col("parse_error").isNotNull(), F.lit("PARSE_ERROR"))
        .when(any_missing, F.lit("MISSING_KEY"))
        .when(flag["nonstring_ids"] | (flag["long_ids"] != ""), F.lit("BAD_ID"))
        .when(flag["unknown_type"], F.lit("UNKNOWN_TYPE"))
        .when(flag["bad_timestamp"] | flag["bad_bid"] | flag["bad_value"] | flag["nonstring_attributes"],
              F.lit("BAD_VALUE"))
        .when(flag["ahead"] | flag["old"], F.lit("IMPLAUSIBLE_TIME"))
        .when(flag["big_bid"] | flag["big_value"], F.lit("IMPLAUSIBLE_AMOUNT"))
    )
    detail = (
        F.when(F.col("parse_error").isNotNull(), F.col("parse_error"))
        .when(any_missing, F.concat(F.lit("missing: "), missing_detail))
        .when(flag["nonstring_ids"], F.concat(F.lit("not a string: "), F.col("nonstring_ids")))
        .when(flag["long_ids"] != "", long_detail)
        .when(flag["unknown_type"], F.concat(F.lit("event_type "), F.col("raw.event_type")))
        .when(flag["bad_timestamp"], F.concat(F.lit("event_timestamp "), F.col("raw.event_timestamp")))
        .when(flag["bad_bid"], F.concat(F.lit("bid_price "), F.col("raw.bid_price")))
        .when(flag["bad_value"], F.concat(F.lit("conversion_value "), F.col("raw.conversion_value")))
        .when(flag["nonstring_attributes"], F.concat(F.lit("not a string: "), F.col("nonstring_attributes")))
        .when(flag["ahead"], F.format_string(f"event time %.0f s after the Kafka timestamp (limit "
                                             f"{limits.max_ahead_seconds} s)", ahead_us / 1e6))
        .when(flag["old"], F.format_string(f"event time %.1f days before the Kafka timestamp (limit "
                                           f"{limits.max_age_days} days)", -ahead_us / 86_400e6))
        .when(flag["big_bid"], F.concat(F.lit(f"bid_price above {limits.max_amount:g}: "), F.col("raw.bid_price")))
        .when(flag["big_value"], F.concat(F.lit(f"conversion_value above {limits.max_amount:g}: "),
                                          F.col("raw.conversion_value")))
    )
    kept = F.struct(*[F.col(f"raw.{name}").alias(name) for name in TOUCH_ATTRIBUTES])
    return (parsed.withColumn("_check", F.struct(*[check.alias(name) for name, check in checks.items()]))
            .withColumn("reject_reason", reason).withColumn("reject_detail", detail)
            .select(*BRONZE_COLUMNS, "reject_reason", "reject_detail", kept.alias("raw"), "amounts"))


def bronze_as_kafka(bronze):
    """Bronze rows in the shape of the Kafka source, so the same transforms apply."""
    return bronze.select(
        F.col("kafka_key").cast("binary").alias("key"),
        F.col("raw_payload").cast("binary").alias("value"),
        F.col("kafka_topic").alias("topic"),
        F.col("kafka_partition").alias("partition"),
        F.col("kafka_offset").alias("offset"),
        F.col("kafka_timestamp").alias("timestamp"),
    )


def to_audit(validated: DataFrame) -> DataFrame:
    return validated.where(F.col("reject_reason").isNotNull()).select(
        F.col("reject_reason").alias("reason"), F.col("reject_detail").alias("detail"),
        "event_id", "event_type", "impression_id", "kafka_topic", "kafka_partition", "kafka_offset",
        "kafka_timestamp", "raw_payload", F.current_timestamp().alias("audited_at"),
    )


def quarantined_bronze(kafka_records: DataFrame) -> DataFrame:
    """Bronze rows of isolated records (engine/poison.py) from the Kafka columns alone: their
    parsing may be what fails. The audit says why they are not in Gold."""
    return kafka_records.select(
        *[F.lit(None).cast("string").alias(name) for name in ("event_id", "event_type", "impression_id", "campaign_id")],
        F.lit(None).cast("timestamp").alias("event_timestamp"),
        F.col("key").cast("string").alias("kafka_key"), F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"), F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"), F.current_timestamp().alias("ingested_at"),
        F.col("value").cast("string").alias("raw_payload"), F.lit(None).cast("string").alias("parse_error"))


def quarantined_audit(kafka_records: DataFrame, error: str) -> DataFrame:
    """Audit rows of isolated records: PROCESSING_ERROR with the error that made their batch fail."""
    return kafka_records.select(
        F.lit("PROCESSING_ERROR").alias("reason"), F.lit(error[:1000]).alias("detail"),
        *[F.lit(None).cast("string").alias(name) for name in ("event_id", "event_type", "impression_id")],
        F.col("topic").alias("kafka_topic"), F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"), F.col("timestamp").alias("kafka_timestamp"),
        F.col("value").cast("string").alias("raw_payload"), F.current_timestamp().alias("audited_at"))


def overflow_audit(derived: DataFrame, parsed: DataFrame, topic: str | None, max_touches: int) -> DataFrame:
    """Audit rows (TOO_MANY_TOUCHES) of the copies beyond a Gold row's cap, from derived
    rows with their `overflow`: the batch's own records carry their payload; a copy
    displaced from Gold by one on an earlier partition has none here (Bronze holds it)."""
    copies = derived.where("overflow IS NOT NULL").select("impression_id", F.explode("overflow").alias("t")).alias("o")
    payloads = parsed.select("kafka_topic", "kafka_partition", "kafka_offset", "raw_payload").alias("p")
    on = (F.col("o.t.kafka_partition") == F.col("p.kafka_partition")) & (F.col("o.t.kafka_offset") == F.col("p.kafka_offset"))
    return copies.join(payloads, on, "left").select(
        F.lit("TOO_MANY_TOUCHES").alias("reason"),
        F.lit(f"its impression holds {max_touches:,} copies (VALIDATION_MAX_TOUCHES)").alias("detail"),
        F.col("o.t.event_id").alias("event_id"), F.col("o.t.event_type").alias("event_type"),
        F.col("o.impression_id").alias("impression_id"),
        F.coalesce(F.col("p.kafka_topic"), F.lit(topic)).alias("kafka_topic"),
        F.col("o.t.kafka_partition").alias("kafka_partition"), F.col("o.t.kafka_offset").alias("kafka_offset"),
        F.col("o.t.arrival_time").alias("kafka_timestamp"), F.col("p.raw_payload").alias("raw_payload"),
        F.current_timestamp().alias("audited_at"))


def to_touches(validated: DataFrame) -> DataFrame:
    """Valid events as touches (conf.tables.TOUCH_FIELDS), keyed by impression_id."""
    amount = lambda name: F.coalesce(F.col(f"amounts.{name}"), F.lit(0.0))  # noqa: E731
    columns = {
        "event_id": F.col("event_id"),
        "event_type": F.col("event_type"),
        "event_time": F.col("event_timestamp"),
        "arrival_time": F.col("kafka_timestamp"),
        "kafka_partition": F.col("kafka_partition"),
        "kafka_offset": F.col("kafka_offset"),
        "campaign_id": F.col("campaign_id"),
        "creative_id": F.col("raw.creative_id"),
        "user_id": F.col("raw.user_id"),
        "geo_country": F.col("raw.geo_country"),
        "platform": F.col("raw.platform"),
        "bid_price": amount("bid_price"),
        "conversion_value": amount("conversion_value"),
    }
    assert tuple(columns) == tuple(name for name, _ in TOUCH_FIELDS)
    return validated.where(F.col("reject_reason").isNull()).select(
        F.col("impression_id"),
        F.struct(*[column.alias(name) for name, column in columns.items()]).alias("touch"),
    )


def touches_by_impression(touches: DataFrame) -> DataFrame:
    """One row per impression_id: the MERGE source must not match a target row twice."""
    return touches.groupBy("impression_id").agg(F.collect_list("touch").alias("touches"))
