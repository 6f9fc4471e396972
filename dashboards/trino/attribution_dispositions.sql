-- Every touch Gold holds, with the disposition the rules gave it: ATTRIBUTED, CLICK,
-- IMPRESSION, and the audit dispositions DUPLICATE, DUPLICATE_IMPRESSION,
-- CLICK_BEFORE_IMPRESSION (a fraud signal), NO_CLICK, OUT_OF_WINDOW, EXTRA_CONVERSION,
-- AWAITING_IMPRESSION (a click whose impression has not arrived yet).
SELECT
  g.impression_id,
  g.campaign_id,
  t.disposition,
  t.event_id,
  t.event_type,
  t.event_time,
  t.arrival_time,
  t.kafka_partition,
  t.kafka_offset,
  t.conversion_value
FROM {gold} g
CROSS JOIN UNNEST(g.touches) AS t
