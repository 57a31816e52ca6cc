-- name: cost-by-step
-- description: Instance cost in US dollars per step and market (spot/on-demand) as of the last instance sync, and per done task; instances without a known price are counted apart (unpriced), never as free
WITH done_by_owner AS (
    SELECT owner, count(*) AS done FROM tasks
    WHERE state = 'done' AND owner IS NOT NULL GROUP BY owner
)
SELECT coalesce(c.step, '(untagged)') AS step,
       c.market,
       count(*) AS instances,
       round(sum(c.hours), 2) AS instance_hours,
       round(sum(c.usd), 4) AS usd,
       sum(c.usd IS NULL) AS unpriced_instances,
       round(sum(CASE WHEN c.usd IS NULL THEN c.hours ELSE 0 END), 2) AS unpriced_hours,
       coalesce(group_concat(DISTINCT CASE WHEN c.usd IS NULL THEN c.instance_type END), '')
           AS unpriced_types,
       sum(coalesce(d.done, 0)) AS tasks_done,
       round(sum(c.usd)
             / nullif(sum(CASE WHEN c.usd IS NOT NULL THEN coalesce(d.done, 0) END), 0), 4)
           AS usd_per_done_task
FROM instance_costs c
LEFT JOIN done_by_owner d ON d.owner = c.instance_id
GROUP BY 1, c.market
ORDER BY 1, c.market;
