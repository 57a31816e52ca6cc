-- name: files-without-sample
-- description: S3 objects whose key names no known sample (no sample id found, or one not in samples)
SELECT o.bucket,
       o.key,
       coalesce(o.sample_id, '') AS sample_id,
       o.kind,
       o.size,
       strftime('%Y-%m-%dT%H:%M:%SZ', o.last_modified / 1000.0, 'unixepoch') AS last_modified
FROM objects o
WHERE o.removed_at IS NULL
  AND (o.sample_id IS NULL
       OR NOT EXISTS (SELECT 1 FROM samples s WHERE s.sample_id = o.sample_id))
ORDER BY o.bucket, o.key;
