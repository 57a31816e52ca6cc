-- name: died-holding-tasks
-- description: Instances gone (terminated or stopped) while tasks still run under them: those tasks wait for their lease to expire
SELECT i.instance_id,
       i.step,
       i.state,
       i.lifecycle,
       coalesce(i.state_reason, '') AS state_reason,
       strftime('%Y-%m-%dT%H:%M:%SZ', i.terminated_at / 1000.0, 'unixepoch') AS terminated_at,
       t.collection,
       t.task_id,
       t.sample,
       t.attempts,
       strftime('%Y-%m-%dT%H:%M:%SZ', t.lease_until / 1000.0, 'unixepoch') AS lease_until
FROM tasks t
JOIN instances i ON i.instance_id = t.owner
WHERE t.state = 'running'
  AND t.removed_at IS NULL
  AND i.state IN ('shutting-down', 'terminated', 'stopping', 'stopped')
ORDER BY i.terminated_at, i.instance_id, t.collection, t.task_id;
