-- name: samples-not-imported
-- description: Samples that have tasks but are not among the imported samples (samples-left, samples-done and the report's grid list imported samples only): each with its steps and task count
-- params:
SELECT t.sample,
       group_concat(DISTINCT t.collection) AS steps,
       count(*) AS tasks
FROM tasks t
WHERE t.sample IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM samples s WHERE s.sample_id = t.sample)
GROUP BY t.sample
ORDER BY t.sample;
