-- Point-in-time join: every Gold impression with the campaign version (budget, budget
-- type, status) in force at the moment of the impression. A version is valid on
-- [start_ts, end_ts); the current one ends at 9999-12-31. An impression of a campaign
-- the feed did not list at that time keeps NULL campaign columns (LEFT JOIN).
SELECT
  g.impression_id,
  g.campaign_id,
  g.impression_time,
  g.cost,
  g.revenue,
  g.is_clicked,
  g.is_converted,
  g.eligible,
  d.campaign_key,
  d.name AS campaign_name,
  d.advertiser,
  d.budget_type,
  d.budget_amount,
  d.status AS campaign_status
FROM {gold} g
LEFT JOIN {dim_campaigns} d
  ON d.campaign_id = g.campaign_id
 AND g.impression_time >= d.start_ts
 AND g.impression_time < d.end_ts
WHERE g.impression_time IS NOT NULL
