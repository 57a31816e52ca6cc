-- A sample's state in a step, by the one rule (README: "Progress, defined once"; the Rust
-- twin is src/standing.rs, and tests/model.rs holds both to a reference model): failed if any
-- task failed and was not replaced, then running, todo, waiting; done when one is done and
-- every other is done, superseded or abandoned; abandoned when all were removed undone. Before,
-- one done lane made the sample done while its other lane had failed.
DROP VIEW sample_progress;
DROP VIEW sample_step_state;
CREATE VIEW sample_step_state AS
SELECT sample AS sample_id,
       collection,
       CASE min(CASE progress
                    WHEN 'failed' THEN 1 WHEN 'running' THEN 2 WHEN 'todo' THEN 3
                    WHEN 'waiting' THEN 4 WHEN 'done' THEN 5 WHEN 'dropped' THEN 6
                    ELSE 7 END)
           WHEN 1 THEN 'failed' WHEN 2 THEN 'running' WHEN 3 THEN 'todo' WHEN 4 THEN 'waiting'
           WHEN 5 THEN 'done' WHEN 6 THEN 'dropped' ELSE 'abandoned'
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
