-- name: tasks-per-instance
-- description: Per instance (of one step, or all): tasks done, failed and running under it, its hours and its pace
-- params: step=
-- kinds: step=step
WITH by_owner AS (
    SELECT owner,
           sum(state = 'done') AS done,
           sum(state = 'failed') AS failed,
           sum(state = 'running') AS running
    FROM tasks WHERE owner IS NOT NULL GROUP BY owner
), per_instance AS (
    SELECT i.*,
           max(0, coalesce(i.terminated_at, i.last_seen_at) - i.launch_time) / 3600000.0 AS hours
    FROM instances i
    WHERE :step = '' OR i.step = :step
)
SELECT i.instance_id,
       i.step,
       i.state,
       i.lifecycle,
       i.instance_type,
       coalesce(o.done, 0) AS done,
       coalesce(o.failed, 0) AS failed,
       coalesce(o.running, 0) AS running,
       round(i.hours, 2) AS hours,
       round(coalesce(o.done, 0) / nullif(i.hours, 0), 2) AS done_per_hour
FROM per_instance i
LEFT JOIN by_owner o ON o.owner = i.instance_id
ORDER BY i.step, i.launch_time, i.instance_id;
