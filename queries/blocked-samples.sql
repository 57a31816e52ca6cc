-- name: blocked-samples
-- description: Samples whose tasks wait (--after) on something only a person can fix: an upstream task that failed (and was not replaced), a step whose tasks of the sample were all removed undone (abandoned) or that has none (not added), or (state blocked) an upstream task that is itself blocked further up. One row per waiting task and what holds it, with the failed task's error tail (all steps, or one)
-- params: step=
-- kinds: step=step
-- The one rule (README "Progress, defined once"), on the last synced states: a waiting task is
-- held by a failed task of its sample in a step it waits for (a failed lane holds it even when
-- another lane is done; a replaced one does not), by that step being abandoned or not added
-- for the sample, or by an upstream task that is held itself.
WITH RECURSIVE
waits AS (
    SELECT t.collection, t.task_id, t.sample, s.value AS upstream
    FROM task_progress t, json_each(t.after_steps) s
    -- (progress is 'dropped', not 'waiting', for a dropped sample's task)
    WHERE t.progress = 'waiting' AND t.after_steps IS NOT NULL
),
roots AS (
    SELECT w.collection, w.task_id, w.sample, w.upstream,
           u.task_id AS upstream_task, 'failed' AS upstream_state, u.exit_code, u.error_tail
    FROM waits w
    JOIN task_progress u ON u.collection = w.upstream AND u.sample = w.sample
                        AND u.progress = 'failed'
    UNION ALL
    SELECT w.collection, w.task_id, w.sample, w.upstream, '(none)',
           coalesce(ss.state, 'not added'), NULL, NULL
    FROM waits w
    LEFT JOIN sample_step_state ss ON ss.sample_id = w.sample AND ss.collection = w.upstream
    WHERE coalesce(ss.state, 'not added') IN ('not added', 'abandoned')
),
held (collection, task_id, sample, upstream, upstream_task, upstream_state, exit_code,
      error_tail) AS (
    SELECT * FROM roots
    UNION
    SELECT w.collection, w.task_id, w.sample, w.upstream, h.task_id, 'blocked', NULL, NULL
    FROM waits w
    JOIN held h ON h.collection = w.upstream AND h.sample = w.sample
)
SELECT sample,
       collection AS step,
       task_id,
       upstream AS waits_for,
       upstream_task,
       upstream_state,
       exit_code,
       substr(error_tail, -300) AS error_tail
FROM held
WHERE :step = '' OR collection = :step
ORDER BY sample, step, waits_for, upstream_task;
