-- Performance per UTC impression day and {dimensions}, from the Gold rollup
-- (jobs/rollup_job.py: Gold's impressions summed per day and dimension, refreshed
-- incrementally; it trails Gold by at most one refresh). Conversions and revenue count
-- eligible conversions only (Gold's rules); the value of conversions that were not
-- eligible (extra, out of window, no click) is in revenue_out_of_window. Every ratio is
-- recomputed from sums and is NULL, not an error, where the denominator is 0; a dashboard
-- over a date range does the same (ROAS = SUM(revenue)/SUM(cost)); the sums and ratios
-- are conf/measures.py's.
SELECT
  day,
  {dimensions},
  {sums},
  {ratios},
  sum(attribution_lag_seconds_sum) / nullif(sum(attribution_lags), 0) AS avg_attribution_lag_seconds,
  sum(revenue_out_of_window) AS revenue_out_of_window,
  sum(ineligible_impressions) AS ineligible_impressions
FROM {performance_rollup}
GROUP BY day, {dimensions}
