"""Every table of the lakehouse: names, DDL and the attribution rule defaults, in one place.

The DDL functions return SQL text (unit-tested without Spark); `ensure_tables` runs them.
Tables are Iceberg format v2; Gold is merge-on-read so a micro-batch MERGE writes delete
files instead of rewriting data files.
"""

from __future__ import annotations

from dataclasses import dataclass

from conf.events import REASONS
from conf.settings import CATALOG_NAME



@dataclass(frozen=True)
class Tables:
    """Table names. `prefix` prefixes every namespace (TABLE_NAMESPACE_PREFIX), so tests and
    side-by-side environments get tables of their own: `lakehouse.<prefix>gold....`."""

    prefix: str = ""

    def _name(self, namespace: str, table: str) -> str:
        return f"{CATALOG_NAME}.{self.prefix}{namespace}.{table}"

    @property
    def bronze(self) -> str:
        return self._name("bronze", "ad_events")

    @property
    def gold(self) -> str:
        return self._name("gold", "ad_performance_state")

    @property
    def audit(self) -> str:
        return self._name("gold", "attribution_audit")

    @property
    def performance_rollup(self) -> str:
        return self._name("gold", "rollup_performance_daily")

    @property
    def disposition_rollup(self) -> str:
        return self._name("gold", "rollup_dispositions_hourly")

    @property
    def attribution_models(self) -> str:
        return self._name("gold", "attribution_models")

    @property
    def attribution_model_fit(self) -> str:
        return self._name("gold", "attribution_model_fit")

    @property
    def rules(self) -> str:
        return self._name("conf", "attribution_rules")

    @property
    def stream_progress(self) -> str:
        return self._name("ops", "stream_progress")

    @property
    def offset_gaps(self) -> str:
        return self._name("ops", "kafka_offset_gaps")

    @property
    def dim_campaigns(self) -> str:
        return self._name("dims", "dim_campaigns")

    @property
    def dim_users(self) -> str:
        return self._name("dims", "dim_users")

    @property
    def namespaces(self) -> tuple[str, ...]:
        return tuple(f"{CATALOG_NAME}.{self.prefix}{name}" for name in ("bronze", "gold", "conf", "ops", "dims"))


DEFAULT_TABLES = Tables()
BRONZE, GOLD, AUDIT, RULES = DEFAULT_TABLES.bronze, DEFAULT_TABLES.gold, DEFAULT_TABLES.audit, DEFAULT_TABLES.rules

# Snapshot summary properties of the streaming job's appends (engine/bronze_sink.py): which
# writer (checkpoint) committed, every Kafka offset range the table holds so far, and the
# appended batch's own ranges — a restarted job reads them to append no record twice.
WRITER_PROPERTY = "lakehouse.writer-id"
RANGES_PROPERTY = "lakehouse.kafka-ranges"
BATCH_RANGES_PROPERTY = "lakehouse.kafka-batch-ranges"
# ... and the id of the topic those ranges were read from: a topic deleted and created again
# under its name gets another id and restarts its offsets (engine/offset_continuity.py).
TOPIC_IDS_PROPERTY = "lakehouse.kafka-topic-ids"
# Bronze's table property naming the one job that writes the table set (engine/writer_lease.py).
LEASE_PROPERTY = "lakehouse.writer-lease"
# Table property of a table jobs/replay_job.py wrote (its value: the Bronze replayed), so a
# later replay may drop it and nothing else.
REPLAY_PROPERTY = "lakehouse.replay-of"

FORMAT_V2 = "'format-version'='2'"
MERGE_ON_READ = (
    "'write.merge.mode'='merge-on-read', 'write.update.mode'='merge-on-read', "
    "'write.delete.mode'='merge-on-read'"
)


@dataclass(frozen=True)
class AttributionRules:
    """The v1 rules (docs/design.md §4). Stored in conf.attribution_rules; read at job start."""

    lookback_seconds: int = 7 * 86_400
    late_threshold_seconds: int = 3_600
    # The engine keeps no in-memory dedup state (dedup happens against Gold's touches),
    # so nothing is bounded by this; it is kept so the rules table is complete.
    dedup_watermark_seconds: int = 6 * 3_600
    model: str = "LAST_CLICK"


# A canonical touch: one valid event copy as the Gold row keeps it.
TOUCH_FIELDS = (
    ("event_id", "STRING"),
    ("event_type", "STRING"),
    ("event_time", "TIMESTAMP"),
    ("arrival_time", "TIMESTAMP"),
    ("kafka_partition", "INT"),
    ("kafka_offset", "BIGINT"),
    ("campaign_id", "STRING"),
    ("creative_id", "STRING"),
    ("user_id", "STRING"),
    ("geo_country", "STRING"),
    ("platform", "STRING"),
    ("bid_price", "DOUBLE"),
    ("conversion_value", "DOUBLE"),
)
TOUCH_TYPE = "STRUCT<" + ", ".join(f"{name}: {kind}" for name, kind in TOUCH_FIELDS) + ">"
STORED_TOUCH_TYPE = TOUCH_TYPE[:-1] + ", disposition: STRING>"


def bronze_ddl(tables: Tables = DEFAULT_TABLES) -> str:
    return f"""
CREATE TABLE IF NOT EXISTS {tables.bronze} (
  event_id STRING,
  event_type STRING,
  impression_id STRING,
  campaign_id STRING,
  event_timestamp TIMESTAMP COMMENT 'event time; null when the record has none that parses',
  kafka_key STRING,
  kafka_topic STRING,
  kafka_partition INT,
  kafka_offset BIGINT,
  kafka_timestamp TIMESTAMP COMMENT 'arrival time',
  ingested_at TIMESTAMP,
  raw_payload STRING COMMENT 'the Kafka value, unchanged',
  parse_error STRING COMMENT 'null when the value parsed as a JSON object'
) USING iceberg
PARTITIONED BY (hours(event_timestamp))
TBLPROPERTIES ({FORMAT_V2}, 'write.parquet.compression-codec'='zstd')
""".strip()


def gold_ddl(tables: Tables = DEFAULT_TABLES, name: str | None = None) -> str:
    """Gold's DDL; `name` creates a table of the same shape elsewhere (a replay shadow)."""
    return f"""
CREATE TABLE IF NOT EXISTS {name or tables.gold} (
  impression_id STRING NOT NULL,
  impression_id_day DATE COMMENT 'UTC day in a time-ordered (UUIDv7) impression_id, else null: the partition',
  campaign_id STRING,
  creative_id STRING,
  user_id STRING,
  geo_country STRING,
  platform STRING,
  is_clicked BOOLEAN,
  is_converted BOOLEAN,
  impression_time TIMESTAMP,
  click_time TIMESTAMP,
  conversion_time TIMESTAMP,
  cost DOUBLE,
  revenue DOUBLE,
  eligible BOOLEAN,
  is_late BOOLEAN,
  late_by_ms BIGINT,
  revenue_out_of_window DOUBLE,
  last_updated_ts TIMESTAMP,
  converted_event_id STRING COMMENT 'the conversion that set is_converted',
  touches ARRAY<{STORED_TOUCH_TYPE}> COMMENT 'every valid copy seen; derived columns use the canonical ones'
) USING iceberg
PARTITIONED BY (impression_id_day)
TBLPROPERTIES ({FORMAT_V2}, {MERGE_ON_READ}, 'write.parquet.compression-codec'='zstd')
""".strip()


def audit_ddl(tables: Tables = DEFAULT_TABLES) -> str:
    return f"""
CREATE TABLE IF NOT EXISTS {tables.audit} (
  reason STRING COMMENT '{", ".join(REASONS[:-1])} or {REASONS[-1]}',
  detail STRING,
  event_id STRING,
  event_type STRING,
  impression_id STRING,
  kafka_topic STRING,
  kafka_partition INT,
  kafka_offset BIGINT,
  kafka_timestamp TIMESTAMP,
  raw_payload STRING,
  audited_at TIMESTAMP
) USING iceberg
PARTITIONED BY (days(kafka_timestamp))
TBLPROPERTIES ({FORMAT_V2})
""".strip()


# The rollups (jobs/rollup_job.py): Gold summed per impression day and per arrival hour, so
# dashboards read thousands of rows instead of every impression. Both are partitioned by
# Gold's partition day: a refresh replaces exactly the days whose Gold partitions changed.
def performance_rollup_ddl(tables: Tables = DEFAULT_TABLES) -> str:
    return f"""
CREATE TABLE IF NOT EXISTS {tables.performance_rollup} (
  impression_id_day DATE COMMENT 'the Gold partition the row sums (null: ids without a day)',
  day DATE COMMENT 'UTC day of impression_time',
  campaign_id STRING,
  creative_id STRING,
  geo_country STRING,
  platform STRING,
  impressions BIGINT,
  clicks BIGINT,
  conversions BIGINT,
  cost DOUBLE,
  revenue DOUBLE,
  attribution_lag_seconds_sum DOUBLE COMMENT 'sum over conversions of conversion_time - impression_time',
  attribution_lags BIGINT COMMENT 'conversions with a conversion_time: the divisor of the lag sum',
  revenue_out_of_window DOUBLE,
  ineligible_impressions BIGINT,
  last_impression_time TIMESTAMP COMMENT 'latest impression: the point-in-time key of budget pacing'
) USING iceberg
PARTITIONED BY (impression_id_day)
TBLPROPERTIES ({FORMAT_V2}, 'write.parquet.compression-codec'='zstd')
""".strip()


def disposition_rollup_ddl(tables: Tables = DEFAULT_TABLES) -> str:
    return f"""
CREATE TABLE IF NOT EXISTS {tables.disposition_rollup} (
  impression_id_day DATE COMMENT 'the Gold partition the row sums (null: ids without a day)',
  hour TIMESTAMP COMMENT 'arrival hour (UTC) of the touches',
  reason STRING COMMENT 'the touch disposition (every one but ATTRIBUTED, CLICK and IMPRESSION)',
  events BIGINT
) USING iceberg
PARTITIONED BY (impression_id_day)
TBLPROPERTIES ({FORMAT_V2})
""".strip()


def rules_ddl(tables: Tables = DEFAULT_TABLES) -> str:
    return f"""
CREATE TABLE IF NOT EXISTS {tables.rules} (
  lookback_seconds BIGINT,
  late_threshold_seconds BIGINT,
  dedup_watermark_seconds BIGINT,
  model STRING,
  updated_at TIMESTAMP
) USING iceberg
TBLPROPERTIES ({FORMAT_V2})
""".strip()


def rules_insert(rules: AttributionRules, tables: Tables = DEFAULT_TABLES) -> str:
    return (
        f"INSERT INTO {tables.rules} VALUES ({rules.lookback_seconds}, {rules.late_threshold_seconds}, "
        f"{rules.dedup_watermark_seconds}, '{rules.model}', current_timestamp())"
    )


# ops.stream_progress, one row per micro-batch (engine/stream_progress.py writes it):
# (column, type, comment).
STREAM_PROGRESS_COLUMNS = (
    ("query_id", "STRING", ""),
    ("run_id", "STRING", ""),
    ("query_name", "STRING", ""),
    ("batch_id", "BIGINT", ""),
    ("batch_timestamp", "TIMESTAMP", "when the batch started"),
    ("num_input_rows", "BIGINT", ""),
    ("input_rows_per_second", "DOUBLE", ""),
    ("processed_rows_per_second", "DOUBLE", ""),
    ("batch_duration_ms", "BIGINT", ""),
    ("trigger_execution_ms", "BIGINT", ""),
    ("max_event_time", "TIMESTAMP", "latest valid event time in the batch"),
    ("watermark", "TIMESTAMP", "none: the job uses no event-time watermark, late data is never dropped"),
    ("offsets_behind", "BIGINT", "sum over partitions of latest offset - end offset: the consumer lag"),
    ("partitions", "ARRAY<STRUCT<topic: STRING, kafka_partition: INT, start_offset: BIGINT, end_offset: BIGINT, "
                   "latest_offset: BIGINT, offsets_behind: BIGINT>>", ""),
    ("recorded_at", "TIMESTAMP", ""),
)


def columns_sql(columns: tuple[tuple[str, str, str], ...], not_null: frozenset[str] = frozenset()) -> str:
    """(column, type, comment) triples as the column list of a CREATE TABLE."""
    return ",\n".join(f"  {name} {kind}" + (" NOT NULL" if name in not_null else "")
                       + (f" COMMENT '{comment}'" if comment else "") for name, kind, comment in columns)


def stream_progress_ddl(table: str) -> str:
    columns = columns_sql(STREAM_PROGRESS_COLUMNS, frozenset({"query_id", "batch_id"}))  # the MERGE key
    return (f"CREATE TABLE IF NOT EXISTS {table} (\n{columns}\n) USING iceberg\n"
            "PARTITIONED BY (days(batch_timestamp))\nTBLPROPERTIES ('format-version'='2')")


# ops.kafka_offset_gaps: Kafka offsets the job could not read as they were (engine/offset_continuity.py).
OFFSET_GAP_CAUSES = ("RETENTION", "TOPIC_RECREATED", "OFFSETS_BACKWARDS")
OFFSET_GAP_COLUMNS = (
    ("detected_at", "TIMESTAMP", ""),
    ("kafka_topic", "STRING", ""),
    ("topic_id", "STRING", "id of the topic when detected"),
    ("kafka_partition", "INT", ""),
    ("first_offset", "BIGINT", "first offset of the range concerned"),
    ("last_offset", "BIGINT", "last offset of the range concerned"),
    ("records_lost", "BIGINT", "records deleted before the job read them; null when unknown"),
    ("cause", "STRING", "one of " + ", ".join(OFFSET_GAP_CAUSES)),
    ("action", "STRING", "CONTINUED or STOPPED"),
    ("writer_id", "STRING", ""),
    ("detail", "STRING", ""),
)


def offset_gaps_ddl(table: str) -> str:
    return (f"CREATE TABLE IF NOT EXISTS {table} (\n{columns_sql(OFFSET_GAP_COLUMNS)}\n) USING iceberg\n"
            "TBLPROPERTIES ('format-version'='2')")


def ensure_tables(spark, tables: Tables = DEFAULT_TABLES) -> AttributionRules:
    """Create what is missing (idempotent) and return the rules in force."""
    for namespace in tables.namespaces:
        spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {namespace}")
    for ddl in (bronze_ddl(tables), gold_ddl(tables), audit_ddl(tables), rules_ddl(tables),
                stream_progress_ddl(tables.stream_progress), performance_rollup_ddl(tables),
                disposition_rollup_ddl(tables), attribution_models_ddl(tables), attribution_model_fit_ddl(tables),
                offset_gaps_ddl(tables.offset_gaps)):
        spark.sql(ddl)
    if "impression_id_day" not in spark.table(tables.gold).columns:
        raise RuntimeError(
            f"{tables.gold} was created by an older version (partitioned by bucket only, no impression_id_day). "
            f"Rebuild it from Bronze: `spark-submit jobs/replay_job.py --target {tables.gold}_v2`, then swap the "
            "tables (DROP + ALTER TABLE ... RENAME TO) and restart the job with its checkpoint.")
    drop_gold_buckets(spark, tables.gold)
    return load_rules(spark, tables)


def iceberg_table(spark, table: str):
    """`table` through Iceberg's Java API, refreshed (a catalog round trip, no Spark job)."""
    iceberg = spark._jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(spark._jsparkSession, table)
    iceberg.refresh()
    return iceberg


def drop_gold_buckets(spark, gold: str) -> list[str]:
    """Earlier versions also partitioned Gold by bucket(8, impression_id): every batch then
    wrote eight data and eight delete files per day, each read by every later MERGE of that
    day (docs/benchmarks.md, the day benchmark). Drop the bucket field: partition evolution,
    metadata only; older files keep their layout until compaction rewrites them. Returns
    the names of the fields dropped."""
    fields = [field.name() for field in iceberg_table(spark, gold).spec().fields()
              if field.transform().toString().startswith("bucket")]
    for name in fields:
        spark.sql(f"ALTER TABLE {gold} DROP PARTITION FIELD {name}")
        print(f"{gold}: partition field {name} dropped (files written before keep it until compacted)", flush=True)
    return fields


def load_rules(spark, tables: Tables = DEFAULT_TABLES) -> AttributionRules:
    rows = spark.sql(f"SELECT * FROM {tables.rules} ORDER BY updated_at DESC LIMIT 1").collect()
    if not rows:
        spark.sql(rules_insert(AttributionRules(), tables))
        return AttributionRules()
    row = rows[0]
    if row.model != "LAST_CLICK":
        raise ValueError(f"{tables.rules}: model {row.model!r} is not supported (only LAST_CLICK)")
    return AttributionRules(row.lookback_seconds, row.late_threshold_seconds, row.dedup_watermark_seconds, row.model)


# The attribution models' results (jobs/attribution_models/job.py, docs/design.md §8): one
# row per (as-of, model, channel[, touch position]); a run replaces the rows of its as-of,
# window, channel dimension and touches in one commit, so a re-run changes nothing. Those
# four are the partition: Iceberg replaces by a filter only whole files.
RUN_PARTITION = "PARTITIONED BY (as_of, window_days, dimension, touches)"
def attribution_models_ddl(tables: Tables = DEFAULT_TABLES) -> str:
    return f"""
CREATE TABLE IF NOT EXISTS {tables.attribution_models} (
  as_of TIMESTAMP COMMENT 'conversions and journeys before this instant',
  window_days INT COMMENT 'conversions of the window_days before as_of',
  dimension STRING COMMENT 'what a channel is: campaign_id, platform, geo_country or creative_id',
  touches STRING COMMENT 'the touches journeys hold: impressions+clicks or clicks',
  model STRING COMMENT 'last_touch, first_touch, linear, position_based, time_decay, markov_K, shapley, shapley_ordered',
  channel STRING,
  touch_position INT COMMENT 'shapley_ordered only: the 1-based position in the journey; null: the whole credit',
  conversions DOUBLE COMMENT 'conversions credited',
  revenue DOUBLE COMMENT 'revenue credited',
  removal_effect DOUBLE COMMENT 'markov_K only',
  computed_at TIMESTAMP
) USING iceberg
{RUN_PARTITION}
TBLPROPERTIES ({FORMAT_V2})
""".strip()


def attribution_model_fit_ddl(tables: Tables = DEFAULT_TABLES) -> str:
    return f"""
CREATE TABLE IF NOT EXISTS {tables.attribution_model_fit} (
  as_of TIMESTAMP,
  window_days INT,
  dimension STRING,
  touches STRING,
  model STRING COMMENT 'markov_K',
  log_loss DOUBLE COMMENT 'held-out negative log-likelihood per journey (lower is better)',
  auc DOUBLE COMMENT 'held-out area under the ROC curve (higher is better)',
  states INT COMMENT 'channel states of the chain',
  journeys BIGINT COMMENT 'journeys (users) the models read',
  distinct_paths BIGINT,
  computed_at TIMESTAMP
) USING iceberg
{RUN_PARTITION}
TBLPROPERTIES ({FORMAT_V2})
""".strip()
