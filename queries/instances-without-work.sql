-- name: instances-without-work
-- description: Instances that ended, or have run longer than :hours, without finishing a task and holding none (check the AMI, the instance role and the store)
-- params: hours=6
-- kinds: hours=integer
WITH worked AS (
    SELECT owner FROM tasks WHERE state IN ('done', 'failed') AND owner IS NOT NULL
    UNION
    SELECT owner FROM task_events WHERE to_state IN ('done', 'failed') AND owner IS NOT NULL
),
-- Busy with a first task (a multi-hour alignment) is not broken; one that died holding a
-- task is in died-holding-tasks.
holding AS (
    SELECT owner FROM tasks WHERE state = 'running' AND removed_at IS NULL AND owner IS NOT NULL
)
SELECT i.instance_id,
       i.step,
       i.launch_id,
       i.state,
       i.lifecycle,
       strftime('%Y-%m-%dT%H:%M:%SZ', i.launch_time / 1000.0, 'unixepoch') AS launched,
       round(max(0, coalesce(i.terminated_at, i.last_seen_at) - i.launch_time) / 3600000.0, 2) AS hours,
       coalesce(i.state_reason, '') AS state_reason
FROM instances i
WHERE i.launch_time IS NOT NULL
  AND i.state <> 'pending'
  AND i.instance_id NOT IN (SELECT owner FROM worked)
  AND i.instance_id NOT IN (SELECT owner FROM holding)
  AND (i.state IN ('shutting-down', 'terminated', 'stopping', 'stopped')
       OR coalesce(i.terminated_at, i.last_seen_at) - i.launch_time >= :hours * 3600000.0)
ORDER BY i.launch_time, i.instance_id;
