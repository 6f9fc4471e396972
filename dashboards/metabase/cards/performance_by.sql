-- Performance by ${dimension} over the chosen days.
SELECT
  ${dimension},
  ${measures}
FROM lakehouse.gold.${view}
WHERE 1 = 1
  [[AND day >= {{start_date}}]]
  [[AND day <= {{end_date}}]]
  [[AND campaign_id = {{campaign}}]]
GROUP BY ${dimension}
ORDER BY revenue DESC, ${dimension}
${limit}
