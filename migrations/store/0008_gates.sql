-- QC gates: a task may carry gates on its upstream's reported metrics (`require`, a JSON array
-- of `metric op value`), and a waiting task whose gate failed is `held` (not claimable) with
-- the reason in `gate_note`, which a release replaces with who let it run and why.
-- SQLite cannot change a CHECK in place: the table is rebuilt, rows and rowids kept.
CREATE TABLE tasks_new (
    collection   TEXT    NOT NULL,
    task_id      TEXT    NOT NULL,
    sample       TEXT,
    script       TEXT    NOT NULL,
    attrs        TEXT    NOT NULL DEFAULT '{}',  -- JSON object of strings
    state        TEXT    NOT NULL
                 CHECK (state IN ('waiting', 'held', 'todo', 'running', 'done', 'failed')),
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
    after_steps  TEXT,                          -- JSON array of upstream steps; NULL: none
    runs         INTEGER NOT NULL DEFAULT 0,
    reported     TEXT,
    require      TEXT,                          -- JSON array of gates; NULL: none
    gate_note    TEXT,
    PRIMARY KEY (collection, task_id)
);
INSERT INTO tasks_new (rowid, collection, task_id, sample, script, attrs, state, attempts,
                       max_attempts, timeout_secs, owner, lease_until, created_at, updated_at,
                       started_at, finished_at, exit_code, log_uri, error_tail, version,
                       after_steps, runs, reported)
SELECT rowid, collection, task_id, sample, script, attrs, state, attempts, max_attempts,
       timeout_secs, owner, lease_until, created_at, updated_at, started_at, finished_at,
       exit_code, log_uri, error_tail, version, after_steps, runs, reported
FROM tasks;
DROP TABLE tasks;
ALTER TABLE tasks_new RENAME TO tasks;
CREATE INDEX tasks_claimable ON tasks (collection, state, lease_until);
CREATE INDEX tasks_by_sample ON tasks (sample);
