-- Performance by ${dimension} over the chosen days. Ratios are recomputed from the sums
-- (ROAS = SUM(revenue)/SUM(cost)), never averaged over days.
SELECT
  ${dimension},
  sum(impressions) AS impressions,
  sum(clicks) AS clicks,
  sum(conversions) AS conversions,
  sum(cost) AS cost,
  sum(revenue) AS revenue,
  sum(revenue) / nullif(sum(cost), 0) AS roas,
  CAST(sum(clicks) AS double) / nullif(sum(impressions), 0) AS ctr,
  CAST(sum(conversions) AS double) / nullif(sum(clicks), 0) AS cvr,
  sum(avg_attribution_lag_seconds * conversions) / nullif(sum(conversions), 0) AS avg_attribution_lag_seconds,
  sum(revenue_out_of_window) AS revenue_out_of_window
FROM lakehouse.gold.${view}
WHERE 1 = 1
  [[AND day >= {{start_date}}]]
  [[AND day <= {{end_date}}]]
  [[AND campaign_id = {{campaign}}]]
GROUP BY ${dimension}
ORDER BY revenue DESC, ${dimension}
${limit}
