-- name: sample-timeline
-- description: One sample's journey through the steps, in workflow order: each step's tasks with their progress (as status tells it), times, attempts, where they ran and why a QC gate holds one, and the sample's state in the step (step_state: the one rule); a step with no task of the sample shows 'not added' (or 'dropped')
-- params: sample
-- kinds: sample=sample
WITH names AS (
    SELECT collection, ordinal FROM steps
    UNION SELECT DISTINCT collection, NULL FROM tasks
          WHERE sample = :sample AND collection NOT IN (SELECT collection FROM steps))
SELECT n.collection AS step,
       t.task_id,
       coalesce(t.progress,
                CASE WHEN (SELECT status FROM samples WHERE sample_id = :sample) = 'dropped'
                     THEN 'dropped' ELSE 'not added' END) AS state,
       t.attempts,
       t.owner,
       strftime('%Y-%m-%dT%H:%M:%SZ', t.started_at / 1000.0, 'unixepoch') AS started,
       strftime('%Y-%m-%dT%H:%M:%SZ', t.finished_at / 1000.0, 'unixepoch') AS finished,
       round((t.finished_at - t.started_at) / 1000.0, 1) AS seconds,
       t.exit_code,
       CASE WHEN t.task_id IS NOT NULL THEN t.removed_at IS NOT NULL END AS removed_from_store,
       -- Why a QC gate holds it, or who released it.
       t.gate_note AS gate,
       coalesce((SELECT ss.state FROM sample_step_state ss
                 WHERE ss.sample_id = :sample AND ss.collection = n.collection),
                CASE WHEN (SELECT status FROM samples WHERE sample_id = :sample) = 'dropped'
                     THEN 'dropped' ELSE 'not added' END) AS step_state
FROM names n
LEFT JOIN task_progress t ON t.collection = n.collection AND t.sample = :sample
ORDER BY n.ordinal IS NULL, n.ordinal, n.collection, t.started_at;
