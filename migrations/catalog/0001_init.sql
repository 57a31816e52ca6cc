-- The catalog: the history of every task ever seen, beside sample metadata, QC metrics,
-- S3 objects and EC2 instances. Table and view names are a public interface: users write SQL
-- against them. Times are epoch milliseconds.

-- Latest known state of every task ever seen by sync; never deleted.
CREATE TABLE tasks (
    collection    TEXT    NOT NULL,
    task_id       TEXT    NOT NULL,
    sample        TEXT,
    script        TEXT,
    attrs         TEXT    NOT NULL DEFAULT '{}',
    state         TEXT    NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER,
    timeout_secs  INTEGER,
    owner         TEXT,
    lease_until   INTEGER,
    created_at    INTEGER,
    updated_at    INTEGER,
    started_at    INTEGER,
    finished_at   INTEGER,
    exit_code     INTEGER,
    log_uri       TEXT,
    error_tail    TEXT,
    version       INTEGER,
    first_seen_at INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    removed_at    INTEGER,            -- gone from the store (deleted after completion)
    PRIMARY KEY (collection, task_id)
) WITHOUT ROWID;  -- one B-tree in key order: sync writes and scans touch half the pages
-- Two indexes only: every index is paid for on each synced row. These serve per-step counts
-- and recent throughput, and the per-sample questions (samples-left, timelines).
CREATE INDEX tasks_by_step ON tasks (collection, state, finished_at);
CREATE INDEX tasks_by_sample ON tasks (sample, collection, state);

-- State changes as sync (or anything else) observed them; a task's first sighting is its
-- tasks.first_seen_at, not an event.
CREATE TABLE task_events (
    id          INTEGER PRIMARY KEY,
    collection  TEXT    NOT NULL,
    task_id     TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    from_state  TEXT    NOT NULL,
    to_state    TEXT    NOT NULL,
    attempts    INTEGER,
    owner       TEXT,
    exit_code   INTEGER,
    source      TEXT    NOT NULL,
    sync_run    INTEGER
);
CREATE INDEX task_events_by_task ON task_events (collection, task_id, at);
CREATE INDEX task_events_by_state ON task_events (to_state, at);
CREATE INDEX task_events_by_run ON task_events (sync_run);

-- The study's samples; a dropped sample keeps its history.
CREATE TABLE samples (
    sample_id   TEXT PRIMARY KEY,
    cohort      TEXT,
    status      TEXT NOT NULL DEFAULT 'active',
    metadata    TEXT NOT NULL DEFAULT '{}',   -- JSON object of every other column
    imported_at INTEGER NOT NULL,
    dropped_at  INTEGER,
    drop_reason TEXT
) WITHOUT ROWID;  -- per-sample reports walk samples in id order with every column at hand
CREATE INDEX samples_by_cohort ON samples (cohort);

CREATE TABLE qc_metrics (
    sample_id   TEXT NOT NULL,
    metric      TEXT NOT NULL,
    value       REAL NOT NULL,
    source      TEXT NOT NULL DEFAULT '',
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (sample_id, metric, source)
);
CREATE INDEX qc_by_metric ON qc_metrics (metric, value);

-- S3 object listings (filled by `anamo sync --objects`).
CREATE TABLE objects (
    bucket        TEXT NOT NULL,
    key           TEXT NOT NULL,
    size          INTEGER,
    etag          TEXT,
    last_modified INTEGER,
    storage_class TEXT,
    sample_id     TEXT,
    kind          TEXT,
    first_seen_at INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    removed_at    INTEGER,
    PRIMARY KEY (bucket, key)
);
CREATE INDEX objects_by_sample ON objects (sample_id, kind);

-- The workflow order of the steps (collections).
CREATE TABLE steps (
    collection TEXT PRIMARY KEY,
    ordinal    INTEGER NOT NULL
);

-- EC2 instances (filled by launch and by `anamo sync` from EC2).
CREATE TABLE instances (
    instance_id   TEXT PRIMARY KEY,
    step          TEXT,
    launch_id     TEXT,
    state         TEXT,
    state_reason  TEXT,
    instance_type TEXT,
    lifecycle     TEXT,              -- spot / on-demand
    launch_time   INTEGER,
    terminated_at INTEGER,
    tags          TEXT NOT NULL DEFAULT '{}',
    first_seen_at INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL
);
CREATE INDEX instances_by_step ON instances (step, state);

CREATE TABLE instance_events (
    id          INTEGER PRIMARY KEY,
    instance_id TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    from_state  TEXT,
    to_state    TEXT    NOT NULL,
    reason      TEXT
);
CREATE INDEX instance_events_by_instance ON instance_events (instance_id, at);

-- Every cluster launch: who asked for what, and what came of it.
CREATE TABLE launches (
    launch_id     TEXT PRIMARY KEY,
    requested_at  INTEGER NOT NULL,
    requested_by  TEXT,
    step          TEXT NOT NULL,
    template      TEXT,
    requested     INTEGER NOT NULL,
    started       INTEGER NOT NULL DEFAULT 0,
    instance_ids  TEXT NOT NULL DEFAULT '[]',
    spot          INTEGER NOT NULL DEFAULT 0,
    dry_run       INTEGER NOT NULL DEFAULT 0,
    error         TEXT
);

-- One row per sync of one source.
CREATE TABLE sync_runs (
    id          INTEGER PRIMARY KEY,
    source      TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    status      TEXT    NOT NULL,     -- running / ok / failed
    seen        INTEGER NOT NULL DEFAULT 0,
    new         INTEGER NOT NULL DEFAULT 0,
    changed     INTEGER NOT NULL DEFAULT 0,
    removed     INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    host        TEXT,
    pid         INTEGER
);

-- Tasks that still count: those in the store, and finished ones deleted after completion.
CREATE VIEW live_tasks AS
SELECT * FROM tasks WHERE removed_at IS NULL OR state IN ('done', 'failed');

-- Collection x state counts and percent done, in workflow order.
CREATE VIEW progress AS
SELECT t.collection,
       s.ordinal,
       sum(t.state = 'todo')    AS todo,
       sum(t.state = 'running') AS running,
       sum(t.state = 'done')    AS done,
       sum(t.state = 'failed')  AS failed,
       count(*)                 AS total,
       round(100.0 * sum(t.state = 'done') / count(*), 1) AS pct_done
FROM live_tasks t
LEFT JOIN steps s ON s.collection = t.collection
GROUP BY t.collection
ORDER BY s.ordinal IS NULL, s.ordinal, t.collection;

-- Sample x step -> state: done if any task of the sample in the step is done, else running,
-- todo, failed; 'none' when the sample has no task in the step.
CREATE VIEW sample_progress AS
SELECT sm.sample_id,
       sm.cohort,
       sm.status AS sample_status,
       st.collection,
       st.ordinal,
       coalesce((
           SELECT CASE
                      WHEN sum(t.state = 'done') > 0 THEN 'done'
                      WHEN sum(t.state = 'running') > 0 THEN 'running'
                      WHEN sum(t.state = 'todo') > 0 THEN 'todo'
                      WHEN sum(t.state = 'failed') > 0 THEN 'failed'
                  END
           FROM live_tasks t
           WHERE t.sample = sm.sample_id AND t.collection = st.collection
       ), 'none') AS state
FROM samples sm
CROSS JOIN steps st;
