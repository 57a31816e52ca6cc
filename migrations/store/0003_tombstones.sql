-- The store remembers what it removed: every task deleted (or withdrawn with its sample) leaves
-- a tombstone with its final state and times, so the flow still counts it by the one rule
-- (done, superseded or abandoned) and `tasks add` never brings a removed id back in silence,
-- from any machine, catalog or not. The done-marks of older stores are read as removed done
-- tasks.
CREATE TABLE tombstones (
    collection   TEXT    NOT NULL,
    task_id      TEXT    NOT NULL,
    sample       TEXT,
    state        TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,                -- epoch ms
    finished_at  INTEGER,
    removed_at   INTEGER NOT NULL,
    -- Its last run, so that a catalog that never saw the task still gets its history.
    attempts     INTEGER NOT NULL DEFAULT 0,
    owner        TEXT,
    started_at   INTEGER,
    exit_code    INTEGER,
    log_uri      TEXT,
    error_tail   TEXT,
    PRIMARY KEY (collection, task_id)
) WITHOUT ROWID;
CREATE INDEX tombstones_by_sample ON tombstones (sample);
