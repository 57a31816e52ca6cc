-- name: step-outputs
-- description: Tasks done whose expected output is not in S3 (task attr output, else the step's pattern from `anamo steps output`); status says when the bucket was never synced
-- params: step=
-- kinds: step=step
WITH expected AS (
    SELECT t.collection,
           t.task_id,
           t.sample,
           t.owner,
           t.finished_at,
           coalesce(json_extract(t.attrs, '$.output'),
                    replace(replace(replace(p.pattern, '{sample}', coalesce(t.sample, '')),
                                    '{task_id}', t.task_id),
                            '{collection}', t.collection)) AS uri
    FROM tasks t
    LEFT JOIN step_outputs p ON p.collection = t.collection
    WHERE t.state = 'done'
      -- A pattern with {sample} says nothing about a task that has no sample.
      AND NOT (json_extract(t.attrs, '$.output') IS NULL AND t.sample IS NULL
               AND p.pattern LIKE '%{sample}%')
      AND (:step = '' OR t.collection = :step)
), located AS (
    -- s3://BUCKET/KEY split so the lookup uses the objects key.
    SELECT e.*,
           substr(e.uri, 6, instr(substr(e.uri, 6), '/') - 1) AS bucket,
           substr(e.uri, 6 + instr(substr(e.uri, 6), '/')) AS key
    FROM expected e
    WHERE e.uri LIKE 's3://%/%'
)
SELECT l.collection AS step,
       l.task_id,
       l.sample,
       l.uri AS expected,
       -- A bucket no objects sync has listed proves nothing missing: say so instead.
       CASE WHEN EXISTS (SELECT 1 FROM objects b WHERE b.bucket = l.bucket)
            THEN 'missing'
            ELSE 'bucket ' || l.bucket || ' never synced: anamo sync --objects s3://' || l.bucket || '/...'
       END AS status,
       l.owner,
       strftime('%Y-%m-%dT%H:%M:%SZ', l.finished_at / 1000.0, 'unixepoch') AS finished
FROM located l
WHERE NOT EXISTS (SELECT 1 FROM objects o
                  WHERE o.bucket = l.bucket AND o.key = l.key AND o.removed_at IS NULL)
ORDER BY l.collection, l.task_id;
