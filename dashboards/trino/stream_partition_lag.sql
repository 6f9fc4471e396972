-- Kafka consumer lag per partition after each micro-batch: latest offset - end offset.
-- batch_timestamp is a plain UTC timestamp (Grafana's $__timeFilter uses zone-less literals).
SELECT
  s.query_name,
  s.batch_id,
  CAST(s.batch_timestamp AT TIME ZONE 'UTC' AS timestamp(6)) AS batch_timestamp,
  p.topic,
  p.kafka_partition,
  p.start_offset,
  p.end_offset,
  p.latest_offset,
  p.offsets_behind AS kafka_lag
FROM {stream_progress} s
CROSS JOIN UNNEST(s.partitions) AS p (topic, kafka_partition, start_offset, end_offset, latest_offset, offsets_behind)
