-- One definition of progress, used by every surface (status, the progress and sample_progress
-- views, samples-left, samples-done, step-progress, failed-tasks, status --sample):
--   dropped     the task's sample was dropped: shown apart, never outstanding;
--   done        done, whether or not it is still in the store (history counts);
--   superseded  failed, but another task of the same sample in the same step is done (a
--               replacement: delete + re-add under another id is how a task is fixed), whether
--               or not the failed one is still in the store;
--   abandoned   removed from the store while todo, running or failed (and not superseded):
--               not outstanding, not failed;
--   otherwise its state: todo, running, failed.
CREATE VIEW task_progress AS
SELECT t.*,
       CASE
           WHEN t.sample IS NOT NULL AND EXISTS (
                    SELECT 1 FROM samples s WHERE s.sample_id = t.sample AND s.status = 'dropped')
               THEN 'dropped'
           WHEN t.state = 'done' THEN 'done'
           -- Before "abandoned": the usual fix deletes the failed task and adds a new one.
           WHEN t.state = 'failed' AND t.sample IS NOT NULL AND EXISTS (
                    SELECT 1 FROM tasks r
                    WHERE r.sample = t.sample AND r.collection = t.collection
                      AND r.state = 'done' AND r.task_id <> t.task_id)
               THEN 'superseded'
           WHEN t.removed_at IS NOT NULL THEN 'abandoned'
           ELSE t.state
       END AS progress
FROM tasks t;

-- A sample's state in a step, from its tasks there: done if any is done, else running, todo,
-- failed, dropped, abandoned. A sample with no task in the step has no row ('not added').
CREATE VIEW sample_step_state AS
SELECT sample AS sample_id,
       collection,
       CASE
           WHEN sum(progress = 'done') > 0 THEN 'done'
           WHEN sum(progress = 'running') > 0 THEN 'running'
           WHEN sum(progress = 'todo') > 0 THEN 'todo'
           WHEN sum(progress = 'failed') > 0 THEN 'failed'
           WHEN sum(progress = 'dropped') > 0 THEN 'dropped'
           ELSE 'abandoned'
       END AS state
FROM task_progress
WHERE sample IS NOT NULL
GROUP BY sample, collection;

-- Per step: the outstanding and finished counts (todo + running + done + failed = total), and
-- what is set apart (abandoned, superseded, dropped), in workflow order.
DROP VIEW progress;
CREATE VIEW progress AS
SELECT p.collection,
       s.ordinal,
       sum(p.progress = 'todo')      AS todo,
       sum(p.progress = 'running')   AS running,
       sum(p.progress = 'done')      AS done,
       sum(p.progress = 'failed')    AS failed,
       sum(p.progress IN ('todo', 'running', 'done', 'failed')) AS total,
       round(100.0 * sum(p.progress = 'done')
             / max(1, sum(p.progress IN ('todo', 'running', 'done', 'failed'))), 1) AS pct_done,
       sum(p.progress = 'abandoned')  AS abandoned,
       sum(p.progress = 'superseded') AS superseded,
       sum(p.progress = 'dropped')    AS dropped
FROM task_progress p
LEFT JOIN steps s ON s.collection = p.collection
GROUP BY p.collection
ORDER BY s.ordinal IS NULL, s.ordinal, p.collection;

-- Sample x step -> state (sample_step_state's, 'dropped' for a dropped sample, 'not added'
-- when it has no task in the step).
DROP VIEW sample_progress;
CREATE VIEW sample_progress AS
SELECT sm.sample_id,
       sm.cohort,
       sm.status AS sample_status,
       st.collection,
       st.ordinal,
       CASE WHEN sm.status = 'dropped' THEN 'dropped'
            ELSE coalesce(ss.state, 'not added')
       END AS state
FROM samples sm
CROSS JOIN steps st
LEFT JOIN sample_step_state ss ON ss.sample_id = sm.sample_id AND ss.collection = st.collection;
