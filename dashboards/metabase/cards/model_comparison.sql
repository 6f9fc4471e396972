-- ROAS per campaign under each attribution model (the latest run of the models job's
-- default window and touches), for the runs whose window overlaps the selected days.
SELECT
  campaign_id,
  model,
  roas,
  revenue,
  conversions,
  cost
FROM lakehouse.gold.campaign_roas_by_model
WHERE window_days = 28 AND touches = 'impressions+clicks'
  [[AND CAST(as_of AS DATE) >= {{start_date}}]]
  [[AND CAST(as_of - window_days * INTERVAL '1' DAY AS DATE) <= {{end_date}}]]
  [[AND campaign_id = {{campaign}}]]
ORDER BY campaign_id, model
