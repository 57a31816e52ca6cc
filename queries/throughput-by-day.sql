-- name: throughput-by-day
-- description: Tasks finished per day and step, with their mean run time (dropped samples set apart, as in status)
-- params: step=
-- kinds: step=step
SELECT date(t.finished_at / 1000, 'unixepoch') AS day,
       t.collection AS step,
       count(*) AS done,
       round(avg(t.finished_at - t.started_at) / 60000.0, 2) AS mean_minutes
FROM done_tasks t
WHERE t.finished_at IS NOT NULL AND (:step = '' OR t.collection = :step)
GROUP BY day, step
ORDER BY day, (SELECT ordinal FROM steps s WHERE s.collection = t.collection) IS NULL,
         (SELECT ordinal FROM steps s WHERE s.collection = t.collection), step;
