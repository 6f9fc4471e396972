-- Cost, revenue and ROAS (with the other measures) per UTC day.
SELECT
  day,
  ${measures}
FROM lakehouse.gold.campaign_performance_daily
WHERE 1 = 1
  [[AND day >= {{start_date}}]]
  [[AND day <= {{end_date}}]]
  [[AND campaign_id = {{campaign}}]]
GROUP BY day
ORDER BY day
