-- Every run of a task has a number that never repeats (its log is RUN.log): `attempts` is reset
-- by a retry or a replace, `runs` never is. Events record the run they saw.
ALTER TABLE tasks ADD COLUMN runs INTEGER;
UPDATE tasks SET runs = attempts;
ALTER TABLE task_events ADD COLUMN run INTEGER;
