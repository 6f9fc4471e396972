-- Headline figures for the chosen days and campaign.
SELECT
  sum(impressions) AS impressions,
  sum(clicks) AS clicks,
  sum(conversions) AS conversions,
  sum(cost) AS cost,
  sum(revenue) AS revenue,
  sum(revenue) / nullif(sum(cost), 0) AS roas,
  CAST(sum(clicks) AS double) / nullif(sum(impressions), 0) AS ctr,
  CAST(sum(conversions) AS double) / nullif(sum(clicks), 0) AS cvr
FROM lakehouse.gold.campaign_performance_daily
WHERE 1 = 1
  [[AND day >= {{start_date}}]]
  [[AND day <= {{end_date}}]]
  [[AND campaign_id = {{campaign}}]]
