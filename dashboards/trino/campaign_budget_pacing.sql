-- Spend per UTC day and campaign (from the Gold rollup) against the budget in force at
-- the day's last impression: a point-in-time join with dims.dim_campaigns, whose
-- versions are valid on [start_ts, end_ts). pacing: DAILY budgets compare the day's
-- spend, LIFETIME budgets the cumulative spend up to that day; NULL without a budget
-- (a campaign the feed did not list at that time keeps NULL campaign columns).
WITH daily AS (
  SELECT
    day,
    campaign_id,
    sum(impressions) AS impressions,
    sum(cost) AS spend,
    max(last_impression_time) AS last_impression_time
  FROM {performance_rollup}
  GROUP BY day, campaign_id
)
SELECT
  daily.day,
  daily.campaign_id,
  d.name AS campaign_name,
  d.budget_type,
  d.budget_amount,
  daily.impressions,
  daily.spend,
  sum(daily.spend) OVER (PARTITION BY daily.campaign_id ORDER BY daily.day ROWS UNBOUNDED PRECEDING) AS cumulative_spend,
  CASE d.budget_type
    WHEN 'DAILY' THEN daily.spend / nullif(d.budget_amount, 0)
    WHEN 'LIFETIME' THEN sum(daily.spend) OVER (PARTITION BY daily.campaign_id ORDER BY daily.day ROWS UNBOUNDED PRECEDING)
                         / nullif(d.budget_amount, 0)
  END AS pacing
FROM daily
LEFT JOIN {dim_campaigns} d
  ON d.campaign_id = daily.campaign_id
 AND daily.last_impression_time >= d.start_ts
 AND daily.last_impression_time < d.end_ts
