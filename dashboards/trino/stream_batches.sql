-- One row per micro-batch of each query, from ops.stream_progress: throughput,
-- duration, consumer lag after the batch, and end-to-end latency = batch end - the
-- latest event time in the batch.
SELECT
  query_name,
  query_id,
  batch_id,
  batch_timestamp,
  date_add('millisecond', batch_duration_ms, batch_timestamp) AS batch_end_time,
  num_input_rows,
  input_rows_per_second,
  processed_rows_per_second,
  batch_duration_ms / 1e3 AS batch_duration_seconds,
  offsets_behind AS kafka_lag,
  max_event_time,
  date_diff('millisecond', max_event_time, date_add('millisecond', batch_duration_ms, batch_timestamp)) / 1e3
    AS end_to_end_latency_seconds
FROM {stream_progress}
