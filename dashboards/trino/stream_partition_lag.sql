-- Kafka consumer lag per partition after each micro-batch: latest offset - end offset.
SELECT
  s.query_name,
  s.batch_id,
  s.batch_timestamp,
  p.topic,
  p.kafka_partition,
  p.start_offset,
  p.end_offset,
  p.latest_offset,
  p.offsets_behind AS kafka_lag
FROM {stream_progress} s
CROSS JOIN UNNEST(s.partitions) AS p (topic, kafka_partition, start_offset, end_offset, latest_offset, offsets_behind)
