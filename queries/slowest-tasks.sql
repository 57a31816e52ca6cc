-- name: slowest-tasks
-- description: The longest-running finished tasks (all steps, or one)
-- params: step=, limit=20
-- kinds: step=step, limit=integer
SELECT t.collection AS step,
       t.task_id,
       t.sample,
       round((t.finished_at - t.started_at) / 60000.0, 2) AS minutes,
       t.owner,
       strftime('%Y-%m-%dT%H:%M:%SZ', t.started_at / 1000.0, 'unixepoch') AS started
FROM tasks t
WHERE t.state = 'done' AND t.started_at IS NOT NULL AND t.finished_at IS NOT NULL
  AND (:step = '' OR t.collection = :step)
ORDER BY t.finished_at - t.started_at DESC
LIMIT CAST(:limit AS INTEGER);
