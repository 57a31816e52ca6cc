//! Study metadata the users bring: samples (with cohort, status and any other column as JSON
//! metadata), QC metrics, and the workflow order of the steps. Each import is one transaction.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{OptionalExtension, params};
use serde_json::{Map, Value};

use super::Catalog;
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::taskfile::records::{self, text};

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub rows: u64,
    /// Rows naming a sample the catalog did not have (QC only).
    pub unknown_samples: u64,
    /// Dropped samples the sheet set active again, with the reason they had been dropped.
    pub reactivated: Vec<(String, String)>,
}

const SAMPLE_COLUMNS: &[&str] = &["sample_id", "sample"];

fn sample_of(file: &str, line: u64, fields: &[(String, Value)]) -> Result<String> {
    fields
        .iter()
        .find(|(k, _)| SAMPLE_COLUMNS.contains(&k.as_str()))
        .and_then(|(_, v)| text(v))
        .ok_or_else(|| Error::input(file, line, "no sample_id on this row"))
}

fn has_sample_column(file: &str, headers: &[String]) -> Result<()> {
    if headers.iter().any(|h| SAMPLE_COLUMNS.contains(&h.as_str())) {
        Ok(())
    } else {
        Err(Error::input(
            file,
            1,
            "no 'sample_id' column; the first line must name the columns (sample_id,cohort,...)",
        ))
    }
}

/// Imports samples: `sample_id`, `cohort`, `status` (`active` or `dropped`); every other column
/// goes into `metadata` (merged into what the sample had). Re-importing updates, and
/// re-importing a dropped sample as `active` clears its drop.
pub fn import_samples(catalog: &mut Catalog, path: &Path) -> Result<ImportReport> {
    let result = (|| -> Result<ImportReport> {
        let file = path.display().to_string();
        let (headers, rows) = records::read(path)?;
        has_sample_column(&file, &headers)?;
        let now = now_ms();
        let mut seen: HashMap<String, u64> = HashMap::new();
        let mut reactivated = vec![];
        let tx = catalog.conn_mut().transaction()?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO samples (sample_id, cohort, status, metadata, imported_at) \
                 VALUES (?1, ?2, coalesce(?3, 'active'), ?4, ?5) \
                 ON CONFLICT (sample_id) DO UPDATE SET cohort = coalesce(excluded.cohort, cohort), \
                 status = coalesce(?3, status), metadata = json_patch(metadata, excluded.metadata), \
                 imported_at = excluded.imported_at, \
                 dropped_at = CASE WHEN ?3 = 'active' THEN NULL ELSE dropped_at END, \
                 drop_reason = CASE WHEN ?3 = 'active' THEN NULL ELSE drop_reason END",
            )?;
            let mut was_dropped = tx.prepare_cached(
                "SELECT coalesce(drop_reason, '') FROM samples \
                 WHERE sample_id = ?1 AND status = 'dropped'",
            )?;
            for row in &rows {
                let sample = sample_of(&file, row.line, &row.fields)?;
                if let Some(first) = seen.insert(sample.clone(), row.line) {
                    return Err(Error::input(
                        &file,
                        row.line,
                        format!("sample '{sample}' is listed twice (first on line {first})"),
                    ));
                }
                let mut cohort = None;
                let mut status = None;
                let mut metadata = Map::new();
                for (k, v) in &row.fields {
                    match k.as_str() {
                        "sample_id" | "sample" => {}
                        "cohort" => cohort = text(v),
                        "status" => {
                            status = text(v).map(|s| s.trim().to_ascii_lowercase());
                            // Only these two mean anything to progress; anything else is a typo.
                            if let Some(st) = status.as_deref()
                                && st != "active"
                                && st != "dropped"
                            {
                                return Err(Error::input(
                                    &file,
                                    row.line,
                                    format!(
                                        "status '{st}' for sample '{sample}' is neither active nor \
                                         dropped (drop a sample with `anamo samples drop`)"
                                    ),
                                ));
                            }
                        }
                        _ if text(v).is_some() => {
                            metadata.insert(k.clone(), v.clone());
                        }
                        _ => {}
                    }
                }
                if status.as_deref() == Some("active")
                    && let Some(reason) = was_dropped
                        .query_row([&sample], |r| r.get::<_, String>(0))
                        .optional()?
                {
                    reactivated.push((sample.clone(), reason));
                }
                upsert.execute(params![
                    sample,
                    cohort,
                    status,
                    Value::Object(metadata).to_string(),
                    now
                ])?;
            }
        }
        tx.commit()?;
        Ok(ImportReport {
            rows: rows.len() as u64,
            unknown_samples: 0,
            reactivated,
        })
    })();
    crate::error::in_db(result, "catalog", catalog.path())
}

/// What `drop_sample` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropOutcome {
    Dropped,
    AlreadyDropped,
}

/// Marks a sample as having left the study; its history stays.
pub fn drop_sample(catalog: &Catalog, sample: &str, reason: &str) -> Result<DropOutcome> {
    let result = (|| -> Result<DropOutcome> {
        let status: Option<String> = catalog
            .conn()
            .query_row(
                "SELECT status FROM samples WHERE sample_id = ?1",
                params![sample],
                |r| r.get(0),
            )
            .optional()?;
        match status.as_deref() {
            None => Err(Error::Invalid(format!(
                "no sample '{sample}' in the catalog; import it first with `anamo samples import`"
            ))),
            Some("dropped") => Ok(DropOutcome::AlreadyDropped),
            Some(_) => {
                catalog.conn().execute(
                    "UPDATE samples SET status = 'dropped', dropped_at = ?2, drop_reason = ?3 \
                     WHERE sample_id = ?1",
                    params![sample, now_ms(), reason],
                )?;
                Ok(DropOutcome::Dropped)
            }
        }
    })();
    crate::error::in_db(result, "catalog", catalog.path())
}

/// Imports QC metrics, long form (`sample_id,metric,value`) or wide form (`sample_id` and one
/// column per metric). `source` tells imports apart; re-importing a source replaces its values.
pub fn import_qc(catalog: &mut Catalog, path: &Path, source: &str) -> Result<ImportReport> {
    let result = (|| -> Result<ImportReport> {
        let file = path.display().to_string();
        let (headers, rows) = records::read(path)?;
        has_sample_column(&file, &headers)?;
        let long = headers.iter().any(|h| h == "metric") && headers.iter().any(|h| h == "value");
        let now = now_ms();
        let tx = catalog.conn_mut().transaction()?;
        let mut report = ImportReport::default();
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO qc_metrics (sample_id, metric, value, source, recorded_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (sample_id, metric, source) \
                 DO UPDATE SET value = excluded.value, recorded_at = excluded.recorded_at",
            )?;
            let mut known = tx.prepare_cached("SELECT 1 FROM samples WHERE sample_id = ?1")?;
            for row in &rows {
                let sample = sample_of(&file, row.line, &row.fields)?;
                let get = |name: &str| {
                    row.fields
                        .iter()
                        .find(|(k, _)| k == name)
                        .and_then(|(_, v)| text(v))
                };
                let metrics: Vec<(String, String)> = if long {
                    let metric = get("metric")
                        .ok_or_else(|| Error::input(&file, row.line, "no metric on this row"))?;
                    get("value").map(|v| (metric, v)).into_iter().collect()
                } else {
                    row.fields
                        .iter()
                        .filter(|(k, _)| !SAMPLE_COLUMNS.contains(&k.as_str()) && k != "cohort")
                        .filter_map(|(k, v)| text(v).map(|v| (k.clone(), v)))
                        .collect()
                };
                if !known.exists(params![sample])? {
                    report.unknown_samples += 1;
                }
                for (metric, value) in metrics {
                    let number: f64 = value.trim().parse().map_err(|_| {
                        Error::input(
                            &file,
                            row.line,
                            format!("value '{value}' of metric '{metric}' is not a number"),
                        )
                    })?;
                    upsert.execute(params![sample, metric, number, source, now])?;
                    report.rows += 1;
                }
            }
        }
        tx.commit()?;
        Ok(report)
    })();
    crate::error::in_db(result, "catalog", catalog.path())
}

/// Sets the workflow order of the steps, replacing the old one.
pub fn set_steps(catalog: &mut Catalog, steps: &[String]) -> Result<()> {
    let result = (|| -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for s in steps {
            if !seen.insert(s) {
                return Err(Error::Invalid(format!("step '{s}' is named twice")));
            }
        }
        let tx = catalog.conn_mut().transaction()?;
        tx.execute("DELETE FROM steps", [])?;
        for (i, s) in steps.iter().enumerate() {
            tx.execute(
                "INSERT INTO steps (collection, ordinal) VALUES (?1, ?2)",
                params![s, i as i64 + 1],
            )?;
        }
        tx.commit()?;
        Ok(())
    })();
    crate::error::in_db(result, "catalog", catalog.path())
}

/// Every step the catalog knows: the workflow order first, then collections tasks were seen in.
pub fn known_steps(catalog: &Catalog) -> Result<Vec<String>> {
    steps_in(catalog.conn())
}

/// [`known_steps`] on any connection to a catalog (the read-only one of `query` too).
pub fn steps_in(conn: &rusqlite::Connection) -> Result<Vec<String>> {
    let result = (|| -> Result<Vec<String>> {
        let mut stmt = conn.prepare(
            "SELECT collection FROM (SELECT collection, ordinal FROM steps \
             UNION SELECT DISTINCT collection, NULL FROM tasks WHERE collection NOT IN \
             (SELECT collection FROM steps)) ORDER BY ordinal IS NULL, ordinal, collection",
        )?;
        let steps = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(steps)
    })();
    crate::error::in_db(result, "catalog", super::path_of(conn))
}

/// Where `step`'s finished tasks leave their output (a `{sample}` pattern), replacing any.
pub fn set_step_output(catalog: &Catalog, step: &str, pattern: &str) -> Result<()> {
    let result = (|| -> Result<()> {
        catalog.conn().execute(
            "INSERT INTO step_outputs (collection, pattern) VALUES (?1, ?2) \
             ON CONFLICT (collection) DO UPDATE SET pattern = excluded.pattern",
            params![step, pattern],
        )?;
        Ok(())
    })();
    crate::error::in_db(result, "catalog", catalog.path())
}

/// The QC metrics the catalog holds.
pub fn metrics_in(conn: &rusqlite::Connection) -> Result<Vec<String>> {
    let result = (|| -> Result<Vec<String>> {
        let mut stmt = conn.prepare("SELECT DISTINCT metric FROM qc_metrics ORDER BY metric")?;
        let metrics = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(metrics)
    })();
    crate::error::in_db(result, "catalog", super::path_of(conn))
}

/// Whether the catalog knows a sample: imported, named by a task, or read from a file's key.
pub fn sample_known(conn: &rusqlite::Connection, sample: &str) -> Result<bool> {
    let result = (|| -> Result<bool> {
        Ok(conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM samples WHERE sample_id = ?1) \
                 OR EXISTS (SELECT 1 FROM tasks WHERE sample = ?1) \
                 OR EXISTS (SELECT 1 FROM objects WHERE sample_id = ?1)",
            [sample],
            |r| r.get(0),
        )?)
    })();
    crate::error::in_db(result, "catalog", super::path_of(conn))
}

/// The tasks among `keys` that the catalog saw removed from the store, in any state: adding
/// one again would run it again and overwrite its history at the next sync.
pub fn removed_in_history(
    conn: &rusqlite::Connection,
    keys: &[(String, String)],
) -> Result<std::collections::HashMap<(String, String), Removed>> {
    let result = (|| -> Result<std::collections::HashMap<(String, String), Removed>> {
        let mut stmt = conn.prepare_cached(
            "SELECT state, removed_at, progress, \
                    (SELECT r.task_id FROM tasks r INDEXED BY tasks_by_sample \
                     WHERE p.progress = 'superseded' AND r.sample = p.sample \
                       AND r.collection = p.collection AND r.state = 'done' \
                       AND r.task_id <> p.task_id \
                       AND r.created_at >= coalesce(p.finished_at, p.updated_at) \
                     ORDER BY r.created_at LIMIT 1) \
             FROM task_progress p \
             WHERE collection = ?1 AND task_id = ?2 AND removed_at IS NOT NULL",
        )?;
        let mut found = std::collections::HashMap::new();
        for (c, t) in keys {
            let row = stmt
                .query_row(params![c, t], |r| {
                    Ok(Removed {
                        state: r.get(0)?,
                        at: r.get(1)?,
                        superseded_by: r.get(3)?,
                    })
                })
                .optional()?;
            if let Some(removed) = row {
                found.insert((c.clone(), t.clone()), removed);
            }
        }
        Ok(found)
    })();
    crate::error::in_db(result, "catalog", super::path_of(conn))
}

/// A task the catalog saw removed from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Its state when last seen.
    pub state: String,
    pub at: i64,
    /// The done task that replaced it, when it failed and was replaced.
    pub superseded_by: Option<String>,
}

/// The store identity a catalog was filled from (`catalog_meta`), if any.
pub fn store_of(conn: &rusqlite::Connection) -> Result<Option<String>> {
    let result = (|| -> Result<Option<String>> {
        use rusqlite::OptionalExtension;
        Ok(conn
            .query_row(
                "SELECT value FROM catalog_meta WHERE key = 'store'",
                [],
                |r| r.get(0),
            )
            .optional()?)
    })();
    crate::error::in_db(result, "catalog", super::path_of(conn))
}

/// Whether any sample was imported.
pub fn has_samples(conn: &rusqlite::Connection) -> Result<bool> {
    let result = (|| -> Result<bool> {
        Ok(conn.query_row("SELECT EXISTS (SELECT 1 FROM samples)", [], |r| r.get(0))?)
    })();
    crate::error::in_db(result, "catalog", super::path_of(conn))
}
