-- The superseded check looks up a failed task's sample in its step. Without statistics SQLite
-- picks the primary key (collection = ?) for it and scans the whole step once per failed task:
-- 50 s for one pass over 500,000 tasks with 6,000 failed, 0.4 s through tasks_by_sample.
DROP VIEW task_progress;
CREATE VIEW task_progress AS
SELECT t.*,
       CASE
           WHEN t.sample IS NOT NULL AND EXISTS (
                    SELECT 1 FROM samples s WHERE s.sample_id = t.sample AND s.status = 'dropped')
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

-- A view's column is its expression, pasted wherever it is named: each sum(progress = ...)
-- below worked the CASE above out again (a dozen times per task). Both views now name it once
-- per task, by rank or in a GROUP BY, and give the same answers.
DROP VIEW sample_progress;
DROP VIEW sample_step_state;
CREATE VIEW sample_step_state AS
SELECT sample AS sample_id,
       collection,
       CASE min(CASE progress
                    WHEN 'done' THEN 1 WHEN 'running' THEN 2 WHEN 'todo' THEN 3
                    WHEN 'waiting' THEN 4 WHEN 'failed' THEN 5 WHEN 'dropped' THEN 6
                    ELSE 7 END)
           WHEN 1 THEN 'done' WHEN 2 THEN 'running' WHEN 3 THEN 'todo' WHEN 4 THEN 'waiting'
           WHEN 5 THEN 'failed' WHEN 6 THEN 'dropped' ELSE 'abandoned'
       END AS state
FROM task_progress
WHERE sample IS NOT NULL
GROUP BY sample, collection;

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

DROP VIEW progress;
CREATE VIEW progress AS
WITH counts AS (
    SELECT collection, progress, count(*) AS n FROM task_progress GROUP BY collection, progress
)
SELECT c.collection,
       s.ordinal,
       sum(c.n * (c.progress = 'waiting'))   AS waiting,
       sum(c.n * (c.progress = 'todo'))      AS todo,
       sum(c.n * (c.progress = 'running'))   AS running,
       sum(c.n * (c.progress = 'done'))      AS done,
       sum(c.n * (c.progress = 'failed'))    AS failed,
       sum(c.n * (c.progress IN ('waiting', 'todo', 'running', 'done', 'failed'))) AS total,
       round(100.0 * sum(c.n * (c.progress = 'done'))
             / max(1, sum(c.n * (c.progress IN ('waiting', 'todo', 'running', 'done', 'failed')))), 1)
           AS pct_done,
       sum(c.n * (c.progress = 'abandoned'))  AS abandoned,
       sum(c.n * (c.progress = 'superseded')) AS superseded,
       sum(c.n * (c.progress = 'dropped'))    AS dropped
FROM counts c
LEFT JOIN steps s ON s.collection = c.collection
GROUP BY c.collection
ORDER BY s.ordinal IS NULL, s.ordinal, c.collection;

-- The tasks whose progress is 'done' (state done, sample not dropped: task_progress's first two
-- cases), written on the table so a filter on step or finish time reaches tasks_by_step rather
-- than working out every task's progress. The progress matrix test holds it to task_progress.
CREATE VIEW done_tasks AS
SELECT t.*
FROM tasks t
WHERE t.state = 'done'
  AND NOT (t.sample IS NOT NULL AND EXISTS (
               SELECT 1 FROM samples s WHERE s.sample_id = t.sample AND s.status = 'dropped'));
