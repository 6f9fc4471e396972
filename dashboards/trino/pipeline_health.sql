-- One row, always (aggregates over empty tables give NULL): how far behind the
-- pipeline is right now, and what it could not read. end_to_end_latency = now - latest event time in Bronze;
-- gold_freshness = now - latest Gold update; kafka_lag = offsets behind latest after the
-- last recorded batch (Spark commits no consumer-group offsets: the lag comes from
-- ops.stream_progress). The maxima come from Iceberg's per-file column statistics (the
-- $partitions metadata table), not a scan: constant time however large the tables grow.
-- Gold's statistics also cover row versions a MERGE has since replaced; those are older,
-- so the maximum is still the latest update.
SELECT
  b.max_event_time AS bronze_max_event_time,
  date_diff('millisecond', b.max_event_time, current_timestamp) / 1e3 AS end_to_end_latency_seconds,
  b.last_ingested_at AS bronze_last_ingested_at,
  g.last_updated AS gold_last_updated,
  date_diff('millisecond', g.last_updated, current_timestamp) / 1e3 AS gold_freshness_seconds,
  p.last_batch_time,
  p.kafka_lag,
  p.processed_rows_per_second,
  k.kafka_offset_gaps,
  k.kafka_records_lost
FROM (SELECT max(data.event_timestamp.max) AS max_event_time, max(data.ingested_at.max) AS last_ingested_at
      FROM {bronze_partitions}) b
CROSS JOIN (SELECT max(data.last_updated_ts.max) AS last_updated FROM {gold_partitions}) g
CROSS JOIN (
  SELECT
    max(batch_timestamp) AS last_batch_time,
    max_by(offsets_behind, batch_timestamp) AS kafka_lag,
    max_by(processed_rows_per_second, batch_timestamp) AS processed_rows_per_second
  FROM {stream_progress}
  WHERE num_input_rows > 0
) p
-- Offsets the job could not read as they were (engine/offset_continuity.py); a gap found
-- again after a restart or a retried batch is one gap.
CROSS JOIN (
  SELECT count(*) AS kafka_offset_gaps, coalesce(sum(records_lost), 0) AS kafka_records_lost
  FROM (SELECT DISTINCT kafka_topic, topic_id, kafka_partition, first_offset, last_offset, cause, records_lost
        FROM {offset_gaps})
) k
