-- name: step-progress
-- description: Tasks per step and state, and percent done, in workflow order
SELECT collection AS step, todo, running, done, failed, total, pct_done
FROM progress;
