-- The embedded task store: one row per task, keyed like the DynamoDB table
-- (collection = partition key, task_id = sort key).
CREATE TABLE tasks (
    collection   TEXT    NOT NULL,
    task_id      TEXT    NOT NULL,
    sample       TEXT,
    script       TEXT    NOT NULL,
    attrs        TEXT    NOT NULL DEFAULT '{}',  -- JSON object of strings
    state        TEXT    NOT NULL CHECK (state IN ('todo', 'running', 'done', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 3,
    timeout_secs INTEGER,
    owner        TEXT,
    lease_until  INTEGER,                       -- epoch ms
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    exit_code    INTEGER,
    log_uri      TEXT,
    error_tail   TEXT,
    version      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (collection, task_id)
);

-- Claims look up todo tasks (oldest first: rowid order within the key) and expired leases;
-- the cost of a claim does not grow with the number of finished tasks.
CREATE INDEX tasks_claimable ON tasks (collection, state, lease_until);
CREATE INDEX tasks_by_sample ON tasks (sample);
