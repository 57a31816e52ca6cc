-- name: gate-holds
-- description: Tasks a QC gate (--require) holds, with the value and the threshold that hold them (held: mean_coverage 12.4 < 15 (ReadProcessing/S17 run 2)), and those a person released or a re-run upstream passed (or waits for, status waiting), with who and why (all steps, or one)
-- params: step=
-- kinds: step=step
-- As the store held them at the last sync: `gate_note` is the hold's reason while the task is
-- held, then the release (`released by USER@HOST at TIME: WHY (was held: ...)`) or the pass
-- (`passed on a later upstream run; was held: ...`) that let it run; a held task whose
-- upstream is re-run waits again (status `waiting`) until the re-run reports.
SELECT t.sample,
       t.collection AS step,
       t.task_id,
       CASE WHEN t.progress = 'held' THEN 'held'
            WHEN t.gate_note LIKE 'released by %' THEN 'released'
            WHEN t.gate_note LIKE 'passed %' THEN 'passed'
            ELSE t.progress END AS status,
       (SELECT group_concat(g.value, '; ') FROM json_each(t.require) g) AS gates,
       t.gate_note AS why,
       -- the task's last write the catalog saw (a hold, a release, or a run since)
       strftime('%Y-%m-%dT%H:%M:%SZ', t.updated_at / 1000.0, 'unixepoch') AS updated
FROM task_progress t
WHERE t.gate_note IS NOT NULL
  AND t.progress NOT IN ('dropped', 'abandoned')
  AND (:step = '' OR t.collection = :step)
ORDER BY t.progress <> 'held', t.collection, t.sample, t.task_id;
