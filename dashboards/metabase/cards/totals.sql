-- Headline figures for the chosen days and campaign.
SELECT
  ${measures}
FROM lakehouse.gold.campaign_performance_daily
WHERE 1 = 1
  [[AND day >= {{start_date}}]]
  [[AND day <= {{end_date}}]]
  [[AND campaign_id = {{campaign}}]]
