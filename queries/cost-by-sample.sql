-- name: cost-by-sample
-- description: Each sample's share of instance cost in US dollars: an instance's cost split over the tasks it ran (each task's last run) by run time; tasks on unpriced instances counted apart; instances that ran no task are only in cost-by-step
-- params: step=
-- kinds: step=step
WITH runs AS (
    SELECT t.sample, t.collection, t.owner,
           max(0, coalesce(t.finished_at, c.ended) - t.started_at) AS ms
    FROM tasks t
    JOIN instance_costs c ON c.instance_id = t.owner
    WHERE t.started_at IS NOT NULL AND t.state IN ('done', 'failed', 'running')
),
per_instance AS (
    SELECT owner, sum(ms) AS ms, count(*) AS n FROM runs GROUP BY owner
),
shares AS (
    SELECT r.sample,
           r.collection,
           c.usd * CASE WHEN p.ms > 0 THEN r.ms * 1.0 / p.ms ELSE 1.0 / p.n END AS usd,
           c.usd IS NULL AS unpriced
    FROM runs r
    JOIN per_instance p ON p.owner = r.owner
    JOIN instance_costs c ON c.instance_id = r.owner
    WHERE :step = '' OR r.collection = :step
)
SELECT coalesce(sample, '(no sample)') AS sample,
       count(*) AS tasks,
       round(sum(usd), 4) AS usd,
       sum(unpriced) AS unpriced_tasks,
       group_concat(DISTINCT collection) AS steps
FROM shares
GROUP BY 1
ORDER BY sum(usd) DESC, 1;
