-- name: stuck
-- description: Tasks running past their lease at the last sync: their worker has probably died
SELECT t.collection AS step,
       t.task_id,
       t.sample,
       t.owner,
       t.attempts,
       strftime('%Y-%m-%dT%H:%M:%SZ', t.lease_until / 1000.0, 'unixepoch') AS lease_until,
       round((CAST(strftime('%s', 'now') AS INTEGER) * 1000 - t.lease_until) / 60000.0, 1) AS minutes_overdue
FROM tasks t
WHERE t.state = 'running' AND t.removed_at IS NULL
  AND t.lease_until < CAST(strftime('%s', 'now') AS INTEGER) * 1000
ORDER BY t.lease_until;
