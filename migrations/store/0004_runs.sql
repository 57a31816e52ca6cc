-- Every run of a task has a number that never repeats (its log is RUN.log): `attempts` is
-- reset by a retry or a replace, `runs` never is, and a tombstone keeps it for a re-add.
ALTER TABLE tasks ADD COLUMN runs INTEGER NOT NULL DEFAULT 0;
UPDATE tasks SET runs = attempts;
ALTER TABLE tombstones ADD COLUMN runs INTEGER NOT NULL DEFAULT 0;
