-- name: blocked-samples
-- description: Samples whose tasks wait (--after) on something only a person can fix: an upstream task that failed (and was not replaced) or that a QC gate holds, a step whose tasks of the sample were all removed undone (abandoned) or that has none (not added), or (state blocked) an upstream task that is itself blocked further up; and the held tasks themselves (upstream_task '(gate)', with the value and the threshold that hold them). One row per task and what holds it, with the failed task's error tail or the hold's reason (all steps, or one)
-- params: step=
-- kinds: step=step
-- The one rule (README "Progress, defined once"), on the last synced states: a waiting task is
-- held by a failed task of its sample in a step it waits for (a failed lane holds it even when
-- another lane is done; a replaced one does not), by that step being abandoned or not added
-- for the sample, by an upstream task a QC gate holds, or by an upstream task that is held
-- itself. A task a QC gate holds is listed too, with the reason.
WITH RECURSIVE
waits AS (
    SELECT t.collection, t.task_id, t.sample, s.value AS upstream
    FROM task_progress t, json_each(t.after_steps) s
    -- (progress is 'dropped', not 'waiting', for a dropped sample's task)
    WHERE t.progress = 'waiting' AND t.after_steps IS NOT NULL
),
roots AS (
    -- Upstream tasks are found through the sample index and their progress read by key: a
    -- join on the task_progress view itself let SQLite (without statistics) walk the whole
    -- upstream step once per waiting task, minutes at 100,000 samples.
    SELECT w.collection, w.task_id, w.sample, w.upstream,
           u.task_id AS upstream_task, 'failed' AS upstream_state, u.exit_code, u.error_tail
    FROM waits w
    JOIN tasks u INDEXED BY tasks_by_sample ON u.sample = w.sample AND u.collection = w.upstream
    WHERE (SELECT p.progress FROM task_progress p
           WHERE p.collection = u.collection AND p.task_id = u.task_id) = 'failed'
      -- A failure whose fix (a task added after it) is under way holds nothing for good.
      AND NOT EXISTS (SELECT 1 FROM tasks r INDEXED BY tasks_by_sample
                      WHERE r.sample = u.sample AND r.collection = u.collection
                        AND r.state IN ('todo', 'running', 'waiting') AND r.removed_at IS NULL
                        AND r.created_at >= coalesce(u.finished_at, u.updated_at))
    UNION ALL
    -- An upstream task a QC gate holds: a person releases it (or a re-run passes the gate).
    SELECT w.collection, w.task_id, w.sample, w.upstream,
           u.task_id, 'held', NULL, u.gate_note
    FROM waits w
    JOIN tasks u INDEXED BY tasks_by_sample ON u.sample = w.sample AND u.collection = w.upstream
    WHERE u.state = 'held' AND u.removed_at IS NULL
      AND (SELECT p.progress FROM task_progress p
           WHERE p.collection = u.collection AND p.task_id = u.task_id) = 'held'
    UNION ALL
    -- The sample's state upstream is 'not added' or 'abandoned' exactly when none of its
    -- tasks there stands otherwise.
    SELECT w.collection, w.task_id, w.sample, w.upstream, '(none)',
           CASE WHEN EXISTS (SELECT 1 FROM tasks u INDEXED BY tasks_by_sample
                             WHERE u.sample = w.sample AND u.collection = w.upstream)
                THEN 'abandoned' ELSE 'not added' END,
           NULL, NULL
    FROM waits w
    WHERE NOT EXISTS (SELECT 1 FROM tasks u INDEXED BY tasks_by_sample
                      WHERE u.sample = w.sample AND u.collection = w.upstream
                        AND (SELECT p.progress FROM task_progress p
                             WHERE p.collection = u.collection AND p.task_id = u.task_id)
                            <> 'abandoned')
),
held (collection, task_id, sample, upstream, upstream_task, upstream_state, exit_code,
      error_tail) AS (
    SELECT * FROM roots
    UNION
    -- The held tasks themselves, with why (`held: mean_coverage 12.4 < 15 (...)`).
    SELECT t.collection, t.task_id, t.sample,
           (SELECT group_concat(s.value, ',') FROM json_each(t.after_steps) s),
           '(gate)', 'held', NULL, t.gate_note
    FROM task_progress t
    -- (the state first: working out every task's progress to find the held ones cost a
    -- second at 500,000 tasks)
    WHERE t.state = 'held' AND t.progress = 'held'
    UNION
    SELECT w.collection, w.task_id, w.sample, w.upstream, h.task_id, 'blocked', NULL, NULL
    FROM waits w
    JOIN held h ON h.collection = w.upstream AND h.sample = w.sample
    -- (what waits on a held task has its own row from roots, with the hold's reason)
    WHERE h.upstream_task <> '(gate)'
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
