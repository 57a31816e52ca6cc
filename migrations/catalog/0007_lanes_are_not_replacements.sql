-- A failed task is superseded only by a task of its sample and step added after it failed (a
-- replacement: delete + re-add under another id). A lane added beside it that is done does not
-- supersede it: the sample still misses that lane, and the flow between steps holds it.
DROP VIEW task_progress;
CREATE VIEW task_progress AS
SELECT t.*,
       CASE
           WHEN t.sample IS NOT NULL AND EXISTS (
                    SELECT 1 FROM samples s WHERE s.sample_id = t.sample AND s.status = 'dropped')
               THEN 'dropped'
           WHEN t.state = 'done' THEN 'done'
           WHEN t.state = 'failed' AND t.sample IS NOT NULL AND EXISTS (
                    SELECT 1 FROM tasks r
                    WHERE r.sample = t.sample AND r.collection = t.collection
                      AND r.state = 'done' AND r.task_id <> t.task_id
                      AND r.created_at >= coalesce(t.finished_at, t.updated_at))
               THEN 'superseded'
           WHEN t.removed_at IS NOT NULL THEN 'abandoned'
           ELSE t.state
       END AS progress
FROM tasks t;
