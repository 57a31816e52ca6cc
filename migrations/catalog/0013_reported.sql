-- What scripts report (ANAMO_METRICS, ANAMO_OUTPUTS), kept by the catalog.
-- 1. Every task's last report as the store held it, for the record (a failed run's too).
ALTER TABLE tasks ADD COLUMN reported TEXT;

-- 2. QC metrics: a value may be a word (sex=F); a metric a run reported names its step, task
--    and run, and its source says so ('ReadProcessing/S17 run 2'): each run's is kept, beside
--    what `qc import` brought. Only runs that ended done are written here.
CREATE TABLE qc_metrics_new (
    sample_id   TEXT    NOT NULL,
    metric      TEXT    NOT NULL,
    value       REAL,                 -- a number ...
    text        TEXT,                 -- ... or a word
    source      TEXT    NOT NULL DEFAULT '',
    step        TEXT,                 -- set on reported metrics
    task_id     TEXT,
    run         INTEGER,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (sample_id, metric, source)
);
INSERT INTO qc_metrics_new (sample_id, metric, value, source, recorded_at)
SELECT sample_id, metric, value, source, recorded_at FROM qc_metrics;
DROP TABLE qc_metrics;
ALTER TABLE qc_metrics_new RENAME TO qc_metrics;
CREATE INDEX qc_by_metric ON qc_metrics (metric, value);

-- A sample's metric as it stands: the newest recorded value, whichever way it came (an import
-- newer than a report wins, and the other way round); ties go to the later source name.
CREATE VIEW qc_latest AS
SELECT q.*
FROM qc_metrics q
WHERE NOT EXISTS (
    SELECT 1 FROM qc_metrics n
    WHERE n.sample_id = q.sample_id AND n.metric = q.metric
      AND (n.recorded_at > q.recorded_at
           OR (n.recorded_at = q.recorded_at AND n.source > q.source)));

-- 3. The files runs say they wrote (done runs), by sample, step and task; an s3:// one keeps
--    its bucket and key to meet `sync --objects`' listing.
CREATE TABLE outputs (
    step        TEXT    NOT NULL,
    task_id     TEXT    NOT NULL,
    uri         TEXT    NOT NULL,
    sample_id   TEXT,
    kind        TEXT    NOT NULL,
    run         INTEGER,
    reported_at INTEGER NOT NULL,
    bucket      TEXT,
    key         TEXT,
    PRIMARY KEY (step, task_id, uri)
) WITHOUT ROWID;
CREATE INDEX outputs_by_sample ON outputs (sample_id, kind);
CREATE INDEX outputs_by_object ON outputs (bucket, key);
