-- What a run's script reported (QC metrics, output files), as JSON: on the task (its last
-- finished run's) and on its tombstone, so a gate downstream still reads it once the task is
-- deleted. NULL when nothing was reported.
ALTER TABLE tasks ADD COLUMN reported TEXT;
ALTER TABLE tombstones ADD COLUMN reported TEXT;
