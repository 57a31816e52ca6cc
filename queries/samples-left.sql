-- name: samples-left
-- description: Active samples not yet done in a step, with the state of their tasks there
-- params: step
-- kinds: step=step
SELECT s.sample_id,
       s.cohort,
       coalesce((SELECT group_concat(DISTINCT t.state)
                 FROM tasks t
                 WHERE t.sample = s.sample_id AND t.collection = :step),
                'not added') AS state
FROM samples s
WHERE s.status <> 'dropped'
  AND NOT EXISTS (SELECT 1 FROM tasks t
                  WHERE t.sample = s.sample_id AND t.collection = :step AND t.state = 'done')
ORDER BY s.sample_id;
