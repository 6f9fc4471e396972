-- Spend against the budget in force at the time of each impression (point-in-time
-- join with dims.dim_campaigns, via impressions_with_campaign_version), per UTC day and
-- campaign. budget_amount is the budget of the version in force at the day's last
-- impression. pacing: DAILY budgets compare the day's spend, LIFETIME budgets the
-- cumulative spend up to that day; NULL without a budget.
WITH daily AS (
  SELECT
    CAST(impression_time AT TIME ZONE 'UTC' AS date) AS day,
    campaign_id,
    max_by(campaign_name, impression_time) AS campaign_name,
    max_by(budget_type, impression_time) AS budget_type,
    max_by(budget_amount, impression_time) AS budget_amount,
    count(*) AS impressions,
    sum(cost) AS spend
  FROM {gold_namespace}.impressions_with_campaign_version
  GROUP BY 1, 2
)
SELECT
  day,
  campaign_id,
  campaign_name,
  budget_type,
  budget_amount,
  impressions,
  spend,
  sum(spend) OVER (PARTITION BY campaign_id ORDER BY day ROWS UNBOUNDED PRECEDING) AS cumulative_spend,
  CASE budget_type
    WHEN 'DAILY' THEN spend / nullif(budget_amount, 0)
    WHEN 'LIFETIME' THEN sum(spend) OVER (PARTITION BY campaign_id ORDER BY day ROWS UNBOUNDED PRECEDING)
                         / nullif(budget_amount, 0)
  END AS pacing
FROM daily
