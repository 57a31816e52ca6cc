-- name: storage-by-sample
-- description: Bytes in S3 per sample and kind (files now present), largest first; sample= narrows to one
-- params: sample=
-- kinds: sample=sample
SELECT coalesce(o.sample_id, '(none)') AS sample_id,
       o.kind,
       count(*) AS files,
       sum(o.size) AS bytes,
       round(sum(o.size) / 1073741824.0, 2) AS gib,
       group_concat(DISTINCT o.storage_class) AS storage_classes
FROM objects o
WHERE o.removed_at IS NULL
  AND (:sample = '' OR o.sample_id = :sample)
GROUP BY o.sample_id, o.kind
ORDER BY bytes DESC, sample_id, o.kind;
