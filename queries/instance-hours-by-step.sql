-- name: instance-hours-by-step
-- description: Instance-hours per step and market (spot/on-demand) as of the last sync, with tasks done per instance-hour
WITH done_by_owner AS (
    SELECT owner, count(*) AS done FROM tasks
    WHERE state = 'done' AND owner IS NOT NULL GROUP BY owner
), per_instance AS (
    SELECT coalesce(i.step, '(untagged)') AS step,
           i.lifecycle,
           max(0, coalesce(i.terminated_at, i.last_seen_at) - i.launch_time) / 3600000.0 AS hours,
           coalesce(d.done, 0) AS done
    FROM instances i
    LEFT JOIN done_by_owner d ON d.owner = i.instance_id
    WHERE i.launch_time IS NOT NULL
)
SELECT step,
       lifecycle,
       count(*) AS instances,
       round(sum(hours), 2) AS instance_hours,
       sum(done) AS tasks_done,
       round(sum(done) / nullif(sum(hours), 0), 2) AS done_per_hour
FROM per_instance
GROUP BY step, lifecycle
ORDER BY step, lifecycle;
