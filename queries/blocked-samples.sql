-- name: blocked-samples
-- description: Samples whose tasks wait (--after) on an upstream task that failed, or on a step with no task for them: nothing runs them until a person retries, fixes or adds it. One row per waiting task and upstream step, with the failed task's error tail (all steps, or one)
-- params: step=
-- kinds: step=step
WITH waiting AS (
    SELECT t.collection, t.task_id, t.sample, s.value AS upstream
    FROM task_progress t, json_each(t.after_steps) s
    WHERE t.progress = 'waiting' AND t.after_steps IS NOT NULL
      AND (:step = '' OR t.collection = :step)
),
upstream AS (
    SELECT w.*,
           u.task_id AS upstream_task,
           u.progress AS upstream_state,
           u.exit_code,
           u.error_tail
    FROM waiting w
    LEFT JOIN task_progress u
           ON u.collection = w.upstream AND u.sample = w.sample
          AND u.progress NOT IN ('abandoned', 'superseded')
)
SELECT sample,
       collection AS step,
       task_id,
       upstream AS waits_for,
       coalesce(upstream_task, '(none)') AS upstream_task,
       coalesce(upstream_state, 'missing') AS upstream_state,
       exit_code,
       substr(error_tail, -300) AS error_tail
FROM upstream
WHERE upstream_state IS NULL OR upstream_state = 'failed'
ORDER BY sample, step, waits_for;
