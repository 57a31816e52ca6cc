-- name: launch-history
-- description: Every cluster launch, newest first: who asked, the template, asked/sent/started, how many still run, and any error
SELECT l.launch_id,
       strftime('%Y-%m-%dT%H:%M:%SZ', l.requested_at / 1000.0, 'unixepoch') AS requested_at,
       l.requested_by,
       l.step,
       l.template,
       l.asked,
       l.requested,
       l.started,
       (SELECT count(*) FROM instances i
        WHERE i.launch_id = l.launch_id AND i.state IN ('pending', 'running')) AS running_now,
       CASE WHEN l.spot THEN 'spot' ELSE 'on-demand' END AS market,
       CASE WHEN l.dry_run THEN 'yes' ELSE '' END AS dry_run,
       coalesce(l.error, '') AS error
FROM launches l
ORDER BY l.requested_at DESC, l.launch_id DESC;
