-- Spend against the budget in force at impression time (point-in-time with dim_campaigns).
SELECT
  day,
  campaign_id,
  campaign_name,
  budget_type,
  budget_amount,
  spend,
  cumulative_spend,
  pacing
FROM lakehouse.gold.campaign_budget_pacing
WHERE 1 = 1
  [[AND day >= {{start_date}}]]
  [[AND day <= {{end_date}}]]
  [[AND campaign_id = {{campaign}}]]
ORDER BY day, campaign_id
