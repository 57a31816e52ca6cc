-- name: samples-left
-- description: Active samples not yet done in a step, with their state there (failed, held by a QC gate, running, todo, waiting, abandoned, or not added)
-- params: step
-- kinds: step=step
-- A sample's state in the step by the one rule (sample_step_state; README "Progress, defined
-- once"): a sample with one lane done and another failed is left, failed.
SELECT s.sample_id,
       s.cohort,
       coalesce(ss.state, 'not added') AS state
FROM samples s
LEFT JOIN (SELECT sample_id, state FROM sample_step_state WHERE collection = :step) ss
       ON ss.sample_id = s.sample_id
WHERE s.status <> 'dropped' AND coalesce(ss.state, 'not added') <> 'done'
ORDER BY s.sample_id;
