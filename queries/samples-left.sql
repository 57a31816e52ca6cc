-- name: samples-left
-- description: Active samples not yet done in a step, with their state there (running, todo, waiting, failed, abandoned, or not added)
-- params: step
-- kinds: step=step
-- The state is task_progress's definition, written out for an active sample with no done task
-- in the step (then nothing is superseded, and a removed task is abandoned), so it reads only
-- the covering index and the few tasks of the samples left; tests/common's progress matrix
-- holds it to the views' answer. INDEXED BY: without statistics SQLite would rather walk the
-- whole step by its primary key for each sample than look up removed_at after the index.
SELECT s.sample_id,
       s.cohort,
       CASE
           WHEN EXISTS (SELECT 1 FROM tasks t INDEXED BY tasks_by_sample WHERE t.sample = s.sample_id
                        AND t.collection = :step AND t.state = 'running' AND t.removed_at IS NULL)
               THEN 'running'
           WHEN EXISTS (SELECT 1 FROM tasks t INDEXED BY tasks_by_sample WHERE t.sample = s.sample_id
                        AND t.collection = :step AND t.state = 'todo' AND t.removed_at IS NULL)
               THEN 'todo'
           WHEN EXISTS (SELECT 1 FROM tasks t INDEXED BY tasks_by_sample WHERE t.sample = s.sample_id
                        AND t.collection = :step AND t.state = 'waiting' AND t.removed_at IS NULL)
               THEN 'waiting'
           WHEN EXISTS (SELECT 1 FROM tasks t INDEXED BY tasks_by_sample WHERE t.sample = s.sample_id
                        AND t.collection = :step AND t.state = 'failed' AND t.removed_at IS NULL)
               THEN 'failed'
           WHEN EXISTS (SELECT 1 FROM tasks t INDEXED BY tasks_by_sample WHERE t.sample = s.sample_id
                        AND t.collection = :step)
               THEN 'abandoned'
           ELSE 'not added'
       END AS state
FROM samples s
WHERE s.status <> 'dropped'
  AND NOT EXISTS (SELECT 1 FROM tasks t
                  WHERE t.sample = s.sample_id AND t.collection = :step AND t.state = 'done')
ORDER BY s.sample_id;
