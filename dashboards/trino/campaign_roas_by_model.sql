-- ROAS per campaign under each attribution model (gold.attribution_models, docs/design.md §8)
-- at the latest as-of of each window and touch set: the revenue a model credits a campaign
-- over the cost of the campaign's impressions on the window's days (the performance rollup).
WITH latest AS (
  SELECT window_days, touches, max(as_of) AS as_of
  FROM {attribution_models}
  WHERE dimension = 'campaign_id'
  GROUP BY window_days, touches
), credits AS (
  SELECT m.as_of, m.window_days, m.touches, m.model, m.channel AS campaign_id, m.conversions, m.revenue,
         m.removal_effect
  FROM {attribution_models} m
  JOIN latest l ON m.as_of = l.as_of AND m.window_days = l.window_days AND m.touches = l.touches
  WHERE m.dimension = 'campaign_id' AND m.touch_position IS NULL
), cost AS (
  SELECT l.as_of, l.window_days, l.touches, r.campaign_id, sum(r.cost) AS cost
  FROM latest l
  JOIN {performance_rollup} r
    ON r.day > CAST(l.as_of - l.window_days * INTERVAL '1' DAY AS DATE) AND r.day <= CAST(l.as_of AS DATE)
  GROUP BY l.as_of, l.window_days, l.touches, r.campaign_id
)
SELECT
  c.as_of,
  c.window_days,
  c.touches,
  c.model,
  c.campaign_id,
  c.conversions,
  c.revenue,
  c.removal_effect,
  k.cost,
  c.revenue / nullif(k.cost, 0) AS roas
FROM credits c
LEFT JOIN cost k
  ON k.as_of = c.as_of AND k.window_days = c.window_days AND k.touches = c.touches AND k.campaign_id = c.campaign_id
