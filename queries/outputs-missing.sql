-- name: outputs-missing
-- description: Files a done run reported writing (s3:// in ANAMO_OUTPUTS) that the last objects sync covering them, made after the run, did not find (all steps, or one)
-- params: step=
-- kinds: step=step
-- Judged only where a complete `sync --objects` listing of a prefix holding the file began after
-- the run reported it: a file no listing has looked for yet is not called missing.
SELECT o.sample_id,
       o.step,
       o.task_id,
       o.run,
       o.kind,
       o.uri
FROM outputs o
WHERE o.bucket IS NOT NULL
  AND (:step = '' OR o.step = :step)
  AND EXISTS (SELECT 1 FROM sync_runs r
              WHERE r.status = 'ok' AND r.source LIKE 'objects:%'
                AND r.started_at >= o.reported_at
                AND substr('objects:' || o.uri, 1, length(r.source)) = r.source)
  AND NOT EXISTS (SELECT 1 FROM objects b
                  WHERE b.bucket = o.bucket AND b.key = o.key AND b.removed_at IS NULL)
ORDER BY o.step, o.sample_id, o.uri;
