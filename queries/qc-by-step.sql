-- name: qc-by-step
-- description: Each metric the steps' runs reported, per step: samples, lowest, mean and highest value (numbers), and how many reported a word instead
-- params: step=
-- kinds: step=step
-- From each sample's newest value of a metric (qc_latest), counted under the step whose run
-- reported it; imported metrics (no step) are left out: see qc-outliers.
SELECT q.step,
       q.metric,
       count(*)                      AS samples,
       min(q.value)                  AS lowest,
       round(avg(q.value), 4)        AS mean,
       max(q.value)                  AS highest,
       sum(q.value IS NULL)          AS words
FROM qc_latest q
LEFT JOIN steps st ON st.collection = q.step
WHERE q.step IS NOT NULL
  AND (:step = '' OR q.step = :step)
GROUP BY q.step, q.metric
ORDER BY st.ordinal IS NULL, st.ordinal, q.step, q.metric;
