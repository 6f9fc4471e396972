-- Performance per UTC day and {dimensions}, from Gold (one row per impression seen).
-- Conversions and revenue count eligible conversions only (Gold's rules); the value of
-- conversions that were not eligible (extra, out of window, no click) is in
-- revenue_out_of_window. Ratios are NULL, not errors, where the denominator is 0.
-- A dashboard over a date range recomputes ratios from the sums (ROAS = SUM(revenue)/SUM(cost)).
SELECT
  CAST(impression_time AT TIME ZONE 'UTC' AS date) AS day,
  {dimensions},
  count(*) AS impressions,
  count_if(is_clicked) AS clicks,
  count_if(is_converted) AS conversions,
  sum(cost) AS cost,
  sum(revenue) AS revenue,
  sum(revenue) / nullif(sum(cost), 0) AS roas,
  avg(IF(is_clicked, 1e0, 0e0)) AS ctr,
  CAST(count_if(is_converted) AS double) / nullif(count_if(is_clicked), 0) AS cvr,
  avg(IF(is_converted, date_diff('millisecond', impression_time, conversion_time) / 1e3)) AS avg_attribution_lag_seconds,
  sum(revenue_out_of_window) AS revenue_out_of_window,
  count_if(NOT eligible) AS ineligible_impressions
FROM {gold}
WHERE impression_time IS NOT NULL
GROUP BY CAST(impression_time AT TIME ZONE 'UTC' AS date), {dimensions}
