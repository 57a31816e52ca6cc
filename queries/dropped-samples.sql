-- name: dropped-samples
-- description: Samples that left the study, why, and how much work they had done
SELECT s.sample_id,
       s.cohort,
       strftime('%Y-%m-%dT%H:%M:%SZ', s.dropped_at / 1000.0, 'unixepoch') AS dropped,
       s.drop_reason,
       (SELECT count(*) FROM tasks t WHERE t.sample = s.sample_id AND t.state = 'done') AS tasks_done
FROM samples s
WHERE s.status = 'dropped'
ORDER BY s.dropped_at;
