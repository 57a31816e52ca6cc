-- name: samples-left
-- description: Active samples not yet done in a step, with their state there (todo, running, failed, abandoned, or not added)
-- params: step
-- kinds: step=step
SELECT s.sample_id,
       s.cohort,
       coalesce(ss.state, 'not added') AS state
FROM samples s
LEFT JOIN sample_step_state ss ON ss.sample_id = s.sample_id AND ss.collection = :step
WHERE s.status <> 'dropped'
  AND coalesce(ss.state, 'not added') <> 'done'
ORDER BY s.sample_id;
