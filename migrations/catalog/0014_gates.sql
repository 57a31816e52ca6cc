-- QC gates: a task's gates (`require`, a JSON array) and why it is held or who released it
-- (`gate_note`), as the store holds them; `held` (a gate failed on what its upstream
-- reported) is a state of its own in every count: after failed, before running, as the one
-- rule orders it (src/standing.rs).
ALTER TABLE tasks ADD COLUMN require TEXT;
ALTER TABLE tasks ADD COLUMN gate_note TEXT;
-- The page finds the steps' gates without reading every task.
CREATE INDEX tasks_gated ON tasks (collection) WHERE require IS NOT NULL;

DROP VIEW sample_progress;
DROP VIEW sample_step_state;
CREATE VIEW sample_step_state AS
SELECT sample AS sample_id,
       collection,
       CASE min(CASE progress
                    WHEN 'failed' THEN 1 WHEN 'held' THEN 2 WHEN 'running' THEN 3
                    WHEN 'todo' THEN 4 WHEN 'waiting' THEN 5 WHEN 'done' THEN 6
                    WHEN 'dropped' THEN 7 ELSE 8 END)
           WHEN 1 THEN 'failed' WHEN 2 THEN 'held' WHEN 3 THEN 'running' WHEN 4 THEN 'todo'
           WHEN 5 THEN 'waiting' WHEN 6 THEN 'done' WHEN 7 THEN 'dropped' ELSE 'abandoned'
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
       sum(c.n * (c.progress = 'held'))      AS held,
       sum(c.n * (c.progress = 'todo'))      AS todo,
       sum(c.n * (c.progress = 'running'))   AS running,
       sum(c.n * (c.progress = 'done'))      AS done,
       sum(c.n * (c.progress = 'failed'))    AS failed,
       sum(c.n * (c.progress IN ('waiting', 'held', 'todo', 'running', 'done', 'failed')))
           AS total,
       round(100.0 * sum(c.n * (c.progress = 'done'))
             / max(1, sum(c.n * (c.progress IN ('waiting', 'held', 'todo', 'running', 'done',
                                                 'failed')))), 1)
           AS pct_done,
       sum(c.n * (c.progress = 'abandoned'))  AS abandoned,
       sum(c.n * (c.progress = 'superseded')) AS superseded,
       sum(c.n * (c.progress = 'dropped'))    AS dropped
FROM counts c
LEFT JOIN steps s ON s.collection = c.collection
GROUP BY c.collection
ORDER BY s.ordinal IS NULL, s.ordinal, c.collection;
