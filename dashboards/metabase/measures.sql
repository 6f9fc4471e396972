-- The dashboard's measures over rows of the performance views, shared by every card that
-- shows them (${measures} in a card's SQL): sums, and ratios recomputed from the sums
-- (ROAS = SUM(revenue)/SUM(cost)), never averaged over days or rows.
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
