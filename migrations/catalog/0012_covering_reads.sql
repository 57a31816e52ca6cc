-- Catalog reads at cohort scale (anamo report at 100,000 samples x 5 steps was 7.8 s, target 3 s).
-- Every done-only read (per day, over time, run times, slowest) and every per-sample state read
-- looked up each task's row in the table for one or two columns and then looked its sample up
-- to see whether it is dropped: 300,000 to 500,000 random reads each time.
-- 1. The two task indexes carry what those reads name, so they never leave the index.
-- 2. Whether a sample is dropped is asked once per statement (IN over a small partial index of
--    the dropped samples), not once per task. Same answers: `x IN (...)` is NULL, so false, for
--    a task without a sample, as the EXISTS it replaces was.
DROP INDEX tasks_by_step;
CREATE INDEX tasks_by_step ON tasks (collection, state, finished_at, started_at, sample);
DROP INDEX tasks_by_sample;
CREATE INDEX tasks_by_sample
    ON tasks (sample, collection, state, removed_at, finished_at, updated_at, created_at);
CREATE INDEX samples_dropped ON samples (sample_id) WHERE status = 'dropped';

DROP VIEW task_progress;
CREATE VIEW task_progress AS
SELECT t.*,
       CASE
           WHEN t.sample IN (SELECT sample_id FROM samples WHERE status = 'dropped')
               THEN 'dropped'
           WHEN t.state = 'done' THEN 'done'
           WHEN t.state = 'failed' AND t.sample IS NOT NULL AND EXISTS (
                    SELECT 1 FROM tasks r INDEXED BY tasks_by_sample
                    WHERE r.sample = t.sample AND r.collection = t.collection
                      AND r.state = 'done' AND r.task_id <> t.task_id
                      AND r.created_at >= coalesce(t.finished_at, t.updated_at))
               THEN 'superseded'
           WHEN t.removed_at IS NOT NULL THEN 'abandoned'
           ELSE t.state
       END AS progress
FROM tasks t;

DROP VIEW done_tasks;
CREATE VIEW done_tasks AS
SELECT t.*
FROM tasks t
WHERE t.state = 'done'
  AND NOT coalesce(t.sample IN (SELECT sample_id FROM samples WHERE status = 'dropped'), 0);
