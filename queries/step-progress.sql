-- name: step-progress
-- description: Tasks per step: outstanding and finished (total = waiting + held + todo + running + done + failed; held: a QC gate holds them), percent done, and what is set apart (abandoned, superseded, dropped), in workflow order
SELECT collection AS step, waiting, held, todo, running, done, failed, total, pct_done,
       abandoned, superseded, dropped
FROM progress;
