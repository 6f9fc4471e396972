-- Cost, revenue and ROAS per UTC day.
SELECT
  day,
  sum(cost) AS cost,
  sum(revenue) AS revenue,
  sum(revenue) / nullif(sum(cost), 0) AS roas,
  sum(revenue_out_of_window) AS revenue_out_of_window
FROM lakehouse.gold.campaign_performance_daily
WHERE 1 = 1
  [[AND day >= {{start_date}}]]
  [[AND day <= {{end_date}}]]
  [[AND campaign_id = {{campaign}}]]
GROUP BY day
ORDER BY day
