-- name: step-progress
-- description: Tasks per step: outstanding and finished (total = waiting + todo + running + done + failed), percent done, and what is set apart (abandoned, superseded, dropped), in workflow order
SELECT collection AS step, waiting, todo, running, done, failed, total, pct_done,
       abandoned, superseded, dropped
FROM progress;
