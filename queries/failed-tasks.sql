-- name: failed-tasks
-- description: Tasks that failed on their last attempt, with the tail of their error (all steps, or one)
-- params: step=
-- kinds: step=step
SELECT t.collection AS step,
       t.task_id,
       t.sample,
       t.attempts,
       t.exit_code,
       t.owner,
       strftime('%Y-%m-%dT%H:%M:%SZ', t.finished_at / 1000.0, 'unixepoch') AS finished,
       substr(t.error_tail, -300) AS error_tail,
       t.log_uri
FROM live_tasks t
WHERE t.state = 'failed' AND (:step = '' OR t.collection = :step)
ORDER BY t.collection, t.finished_at DESC;
