-- EC2 and S3 in depth: what a launch asked for before capping, where instances run, and the
-- outputs each step is expected to leave in S3.

ALTER TABLE launches ADD COLUMN asked INTEGER;           -- --count before capping
ALTER TABLE launches ADD COLUMN instance_type TEXT;      -- override, NULL = the template's
ALTER TABLE launches ADD COLUMN region TEXT;
ALTER TABLE launches ADD COLUMN user_data TEXT;          -- the script the instances boot with
ALTER TABLE instances ADD COLUMN region TEXT;
CREATE INDEX launches_by_time ON launches (requested_at);
CREATE INDEX instances_by_launch ON instances (launch_id);

-- Where a step's finished task leaves its output: an s3:// URI pattern with {sample},
-- {task_id} and {collection} (`anamo steps output`). A task attr `output` overrides it.
CREATE TABLE step_outputs (
    collection TEXT PRIMARY KEY,
    pattern    TEXT NOT NULL
);
CREATE INDEX objects_by_kind ON objects (kind, sample_id);
