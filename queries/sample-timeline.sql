-- name: sample-timeline
-- description: One sample's tasks across the steps, with their progress (as status tells it), times, attempts and where they ran
-- params: sample
-- kinds: sample=sample
SELECT t.collection AS step,
       t.task_id,
       t.progress AS state,
       t.attempts,
       t.owner,
       strftime('%Y-%m-%dT%H:%M:%SZ', t.started_at / 1000.0, 'unixepoch') AS started,
       strftime('%Y-%m-%dT%H:%M:%SZ', t.finished_at / 1000.0, 'unixepoch') AS finished,
       round((t.finished_at - t.started_at) / 1000.0, 1) AS seconds,
       t.exit_code,
       t.removed_at IS NOT NULL AS removed_from_store
FROM task_progress t
LEFT JOIN steps s ON s.collection = t.collection
WHERE t.sample = :sample
ORDER BY s.ordinal IS NULL, s.ordinal, t.started_at;
