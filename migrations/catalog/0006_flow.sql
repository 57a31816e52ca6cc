-- Chained steps: a task may wait (state 'waiting') for its sample's tasks in the steps named in
-- after_steps (a JSON array). Waiting is outstanding work like todo: it counts in the total
-- and in a sample's state in a step (after todo: a sample with a task waiting is not started).
ALTER TABLE tasks ADD COLUMN after_steps TEXT;

DROP VIEW sample_progress;
DROP VIEW sample_step_state;
CREATE VIEW sample_step_state AS
SELECT sample AS sample_id,
       collection,
       CASE
           WHEN sum(progress = 'done') > 0 THEN 'done'
           WHEN sum(progress = 'running') > 0 THEN 'running'
           WHEN sum(progress = 'todo') > 0 THEN 'todo'
           WHEN sum(progress = 'waiting') > 0 THEN 'waiting'
           WHEN sum(progress = 'failed') > 0 THEN 'failed'
           WHEN sum(progress = 'dropped') > 0 THEN 'dropped'
           ELSE 'abandoned'
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

-- Per step: waiting + todo + running + done + failed = total.
DROP VIEW progress;
CREATE VIEW progress AS
SELECT p.collection,
       s.ordinal,
       sum(p.progress = 'waiting')   AS waiting,
       sum(p.progress = 'todo')      AS todo,
       sum(p.progress = 'running')   AS running,
       sum(p.progress = 'done')      AS done,
       sum(p.progress = 'failed')    AS failed,
       sum(p.progress IN ('waiting', 'todo', 'running', 'done', 'failed')) AS total,
       round(100.0 * sum(p.progress = 'done')
             / max(1, sum(p.progress IN ('waiting', 'todo', 'running', 'done', 'failed'))), 1)
           AS pct_done,
       sum(p.progress = 'abandoned')  AS abandoned,
       sum(p.progress = 'superseded') AS superseded,
       sum(p.progress = 'dropped')    AS dropped
FROM task_progress p
LEFT JOIN steps s ON s.collection = p.collection
GROUP BY p.collection
ORDER BY s.ordinal IS NULL, s.ordinal, p.collection;
