-- One row per micro-batch of each query, from ops.stream_progress: throughput,
-- duration, consumer lag after the batch, and end-to-end latency = batch end - the
-- latest event time in the batch. Times are plain UTC timestamps (no zone): Grafana's
-- $__timeFilter compares with zone-less literals.
SELECT
  query_name,
  query_id,
  batch_id,
  CAST(batch_timestamp AT TIME ZONE 'UTC' AS timestamp(6)) AS batch_timestamp,
  CAST(date_add('millisecond', batch_duration_ms, batch_timestamp) AT TIME ZONE 'UTC' AS timestamp(6)) AS batch_end_time,
  num_input_rows,
  input_rows_per_second,
  processed_rows_per_second,
  batch_duration_ms / 1e3 AS batch_duration_seconds,
  offsets_behind AS kafka_lag,
  CAST(max_event_time AT TIME ZONE 'UTC' AS timestamp(6)) AS max_event_time,
  date_diff('millisecond', max_event_time, date_add('millisecond', batch_duration_ms, batch_timestamp)) / 1e3
    AS end_to_end_latency_seconds
FROM {stream_progress}
