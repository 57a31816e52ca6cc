-- name: failed-tasks
-- description: Tasks that failed on their last attempt and still count (not replaced by a done task, not abandoned, not of a dropped sample), with the tail of their error (all steps, or one)
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
FROM task_progress t
WHERE t.progress = 'failed' AND (:step = '' OR t.collection = :step)
ORDER BY t.collection, t.finished_at DESC;
