-- Samples dropped from the study, as the queue must know them: `tasks add` from any machine
-- (catalog or not) skips their tasks until the sample is re-activated.
CREATE TABLE dropped_samples (
    sample      TEXT    NOT NULL PRIMARY KEY,
    dropped_at  INTEGER NOT NULL,               -- epoch ms
    reason      TEXT
) WITHOUT ROWID;
