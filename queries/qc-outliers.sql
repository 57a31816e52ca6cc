-- name: qc-outliers
-- description: Samples whose QC metric (newest value, imported or reported by a run) is below min or above max
-- params: metric, min=, max=
-- kinds: metric=metric, min=number, max=number
SELECT q.sample_id,
       s.cohort,
       q.metric,
       q.value,
       q.source
FROM qc_latest q
LEFT JOIN samples s ON s.sample_id = q.sample_id
WHERE q.metric = :metric
  AND q.value IS NOT NULL
  AND ((:min <> '' AND q.value < CAST(:min AS REAL))
       OR (:max <> '' AND q.value > CAST(:max AS REAL)))
ORDER BY q.value;
