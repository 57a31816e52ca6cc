//! Study metadata the users bring: samples (with cohort, status and any other column as JSON
//! metadata), QC metrics, and the workflow order of the steps. Each import is one transaction.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{OptionalExtension, params};
use serde_json::{Map, Value};

use super::{Catalog, CatalogRead};
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

impl Catalog {
    /// Imports samples: `sample_id`, `cohort`, `status` (`active` or `dropped`); every other column
    /// goes into `metadata` (merged into what the sample had). Re-importing updates, and
    /// re-importing a dropped sample as `active` clears its drop.
    pub fn import_samples(&mut self, path: &Path) -> Result<ImportReport> {
        self.write(|tx| {
        let file = path.display().to_string();
        let (headers, rows) = records::read(path)?;
        has_sample_column(&file, &headers)?;
        let now = now_ms();
        let mut seen: HashMap<String, u64> = HashMap::new();
        let mut reactivated = vec![];
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
        Ok(ImportReport {
            rows: rows.len() as u64,
            unknown_samples: 0,
            reactivated,
        })
    })
    }

    /// Marks a sample as having left the study; its history stays.
    pub fn drop_sample(&mut self, sample: &str, reason: &str) -> Result<DropOutcome> {
        self.write(|tx| {
        let status: Option<String> = tx
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
                tx.execute(
                    "UPDATE samples SET status = 'dropped', dropped_at = ?2, drop_reason = ?3 \
                     WHERE sample_id = ?1",
                    params![sample, now_ms(), reason],
                )?;
                Ok(DropOutcome::Dropped)
            }
        }
    })
    }

    /// Imports QC metrics, long form (`sample_id,metric,value`) or wide form (`sample_id` and one
    /// column per metric). `source` tells imports apart; re-importing a source replaces its values.
    pub fn import_qc(&mut self, path: &Path, source: &str) -> Result<ImportReport> {
        self.write(|tx| {
            let file = path.display().to_string();
            let (headers, rows) = records::read(path)?;
            has_sample_column(&file, &headers)?;
            let long =
                headers.iter().any(|h| h == "metric") && headers.iter().any(|h| h == "value");
            let now = now_ms();
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
                        let metric = get("metric").ok_or_else(|| {
                            Error::input(&file, row.line, "no metric on this row")
                        })?;
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
            Ok(report)
        })
    }
}

/// What `drop_sample` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropOutcome {
    Dropped,
    AlreadyDropped,
}

impl CatalogRead {
    /// The QC metrics the catalog holds.
    pub fn metrics(&self) -> Result<Vec<String>> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare("SELECT DISTINCT metric FROM qc_metrics ORDER BY metric")?;
            let metrics = stmt
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(metrics)
        })
    }

    /// Whether the catalog knows a sample: imported, named by a task, or read from a file's key.
    pub fn sample_known(&self, sample: &str) -> Result<bool> {
        self.read(|conn| {
            Ok(conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM samples WHERE sample_id = ?1) \
                 OR EXISTS (SELECT 1 FROM tasks WHERE sample = ?1) \
                 OR EXISTS (SELECT 1 FROM objects WHERE sample_id = ?1)",
                [sample],
                |r| r.get(0),
            )?)
        })
    }

    /// Whether any sample was imported.
    pub fn has_samples(&self) -> Result<bool> {
        self.read(|conn| {
            Ok(conn.query_row("SELECT EXISTS (SELECT 1 FROM samples)", [], |r| r.get(0))?)
        })
    }
}
