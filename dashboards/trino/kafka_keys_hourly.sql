-- Records whose Kafka key is missing or is not their impression_id, per hour of arrival
-- (UTC). They are accepted: Gold keys on the impression_id in the value, never on the
-- Kafka key. But a producer that keys wrongly scatters one impression's events over
-- partitions, so their relative order is lost: worth seeing. Reads Bronze's key and
-- impression_id columns (no pruning on arrival time: Bronze is partitioned by event hour).
SELECT
  CAST(date_trunc('hour', kafka_timestamp AT TIME ZONE 'UTC') AS timestamp(6)) AS hour,
  count_if(kafka_key IS NULL) AS null_keys,
  count_if(kafka_key <> impression_id) AS mismatched_keys,
  count(*) AS records
FROM {bronze}
GROUP BY 1
