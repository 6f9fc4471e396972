-- Rejected and flagged events per hour of arrival (Kafka record time), by reason:
-- source 'audit' = records that failed validation, were isolated from a failing batch or
-- overflowed a Gold row (gold.attribution_audit: PARSE_ERROR, MISSING_KEY, BAD_ID, UNKNOWN_TYPE,
-- BAD_VALUE, IMPLAUSIBLE_TIME, IMPLAUSIBLE_AMOUNT, PROCESSING_ERROR, TOO_MANY_TOUCHES); source
-- 'gold' = valid events the rules set aside (DUPLICATE, DUPLICATE_IMPRESSION, CLICK_BEFORE_IMPRESSION - a fraud signal -,
-- NO_CLICK, OUT_OF_WINDOW, EXTRA_CONVERSION, AWAITING_IMPRESSION; from the dispositions
-- rollup, jobs/rollup_job.py, which trails Gold by at most one refresh). hour: plain UTC timestamp.
SELECT
  CAST(date_trunc('hour', kafka_timestamp AT TIME ZONE 'UTC') AS timestamp(6)) AS hour,
  'audit' AS source,
  reason,
  count(*) AS events
FROM {audit}
GROUP BY 1, 2, 3
UNION ALL
SELECT
  CAST(hour AT TIME ZONE 'UTC' AS timestamp(6)) AS hour,
  'gold' AS source,
  reason,
  sum(events) AS events
FROM {disposition_rollup}
GROUP BY 1, 2, 3
