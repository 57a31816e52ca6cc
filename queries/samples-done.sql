-- name: samples-done
-- description: Active samples done in a step and in every step before it (workflow order from `anamo steps set`)
-- params: step
-- kinds: step=step
WITH needed AS (
    SELECT collection FROM steps
    WHERE ordinal <= (SELECT ordinal FROM steps WHERE collection = :step)
    UNION
    SELECT :step
)
SELECT s.sample_id, s.cohort
FROM samples s
WHERE s.status <> 'dropped'
  AND NOT EXISTS (SELECT 1 FROM needed n
                  WHERE NOT EXISTS (SELECT 1 FROM sample_step_state ss
                                    WHERE ss.sample_id = s.sample_id
                                      AND ss.collection = n.collection
                                      AND ss.state = 'done'))
ORDER BY s.sample_id;
