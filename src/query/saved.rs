//! Saved queries (what `anamo reports` lists and `anamo query NAME` runs): `.sql` files with a header, built into the binary from `queries/`, plus a user
//! folder whose files add to or override them by name.
//!
//! ```sql
//! -- name: samples-left
//! -- description: Active samples not yet done in a step
//! -- params: step, limit=20
//! -- choices: kind=fastq|bam|cram
//! SELECT ...
//! ```
//!
//! `choices` lists the only values a parameter takes; anything else is refused with the list.
//! `kinds` says what a parameter names (`step`, `metric`, `sample`) or that it is an
//! `integer`: a value the catalog does not know is refused with what it does know, so a typo
//! never reads as "nothing left".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::catalog::CatalogRead;
use crate::error::{Error, Result};

/// The reports shipped in `queries/`, built in.
const BUILT_IN: &[(&str, &str)] = &[
    (
        "blocked-samples.sql",
        include_str!("../../queries/blocked-samples.sql"),
    ),
    (
        "cost-by-sample.sql",
        include_str!("../../queries/cost-by-sample.sql"),
    ),
    (
        "cost-by-step.sql",
        include_str!("../../queries/cost-by-step.sql"),
    ),
    (
        "died-holding-tasks.sql",
        include_str!("../../queries/died-holding-tasks.sql"),
    ),
    (
        "dropped-samples.sql",
        include_str!("../../queries/dropped-samples.sql"),
    ),
    (
        "failed-tasks.sql",
        include_str!("../../queries/failed-tasks.sql"),
    ),
    (
        "files-without-sample.sql",
        include_str!("../../queries/files-without-sample.sql"),
    ),
    (
        "gate-holds.sql",
        include_str!("../../queries/gate-holds.sql"),
    ),
    (
        "instance-hours-by-step.sql",
        include_str!("../../queries/instance-hours-by-step.sql"),
    ),
    (
        "instances-without-work.sql",
        include_str!("../../queries/instances-without-work.sql"),
    ),
    (
        "launch-history.sql",
        include_str!("../../queries/launch-history.sql"),
    ),
    (
        "outputs-missing.sql",
        include_str!("../../queries/outputs-missing.sql"),
    ),
    (
        "qc-by-step.sql",
        include_str!("../../queries/qc-by-step.sql"),
    ),
    (
        "qc-outliers.sql",
        include_str!("../../queries/qc-outliers.sql"),
    ),
    (
        "sample-timeline.sql",
        include_str!("../../queries/sample-timeline.sql"),
    ),
    (
        "samples-done.sql",
        include_str!("../../queries/samples-done.sql"),
    ),
    (
        "samples-left.sql",
        include_str!("../../queries/samples-left.sql"),
    ),
    (
        "samples-missing-files.sql",
        include_str!("../../queries/samples-missing-files.sql"),
    ),
    (
        "samples-not-imported.sql",
        include_str!("../../queries/samples-not-imported.sql"),
    ),
    (
        "slowest-tasks.sql",
        include_str!("../../queries/slowest-tasks.sql"),
    ),
    (
        "step-outputs.sql",
        include_str!("../../queries/step-outputs.sql"),
    ),
    (
        "step-progress.sql",
        include_str!("../../queries/step-progress.sql"),
    ),
    (
        "storage-by-sample.sql",
        include_str!("../../queries/storage-by-sample.sql"),
    ),
    ("stuck.sql", include_str!("../../queries/stuck.sql")),
    (
        "tasks-per-instance.sql",
        include_str!("../../queries/tasks-per-instance.sql"),
    ),
    (
        "throughput-by-day.sql",
        include_str!("../../queries/throughput-by-day.sql"),
    ),
];

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    /// `None`: the caller must give it.
    pub default: Option<String>,
    /// The only values it takes, when the header lists them (`-- choices: name=a|b`).
    pub choices: Option<Vec<String>>,
    /// What it names (`-- kinds: name=step`): checked against the catalog before running.
    pub kind: Option<Kind>,
}

/// What a parameter's value names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Integer,
    Number,
    Step,
    Metric,
    Sample,
}

impl Param {
    /// Refuses a value outside the parameter's choices, naming them.
    pub fn check(&self, report: &str, value: &str) -> std::result::Result<(), String> {
        match &self.choices {
            Some(choices) if !choices.iter().any(|c| c == value) => Err(format!(
                "report {report}: {}='{value}' is not one of {}",
                self.name,
                choices.join(", ")
            )),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    BuiltIn,
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SavedQuery {
    pub name: String,
    pub description: String,
    pub params: Vec<Param>,
    pub sql: String,
    pub origin: Origin,
}

/// The keys a report's header knows.
const HEADER_KEYS: &[&str] = &["name", "description", "params", "kinds", "choices"];

/// Reads a report's header; the name defaults to the file stem.
pub fn parse(
    file_name: &str,
    text: &str,
    origin: Origin,
) -> std::result::Result<SavedQuery, String> {
    parse_at(file_name, text, origin).map_err(|(_, message)| message)
}

/// As [`parse`], with the 1-based line of the header where a problem is.
pub fn parse_at(
    file_name: &str,
    text: &str,
    origin: Origin,
) -> std::result::Result<SavedQuery, (u64, String)> {
    let stem = file_name.strip_suffix(".sql").unwrap_or(file_name);
    let mut name = stem.to_string();
    let mut name_line = 1;
    let mut description = String::new();
    let mut params = vec![];
    for (index, line) in text.lines().enumerate() {
        let at = index as u64 + 1;
        let fail = |m: String| (at, m);
        let Some(comment) = line.trim().strip_prefix("--") else {
            if line.trim().is_empty() {
                continue;
            }
            break;
        };
        let Some((key, value)) = comment.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "name" => {
                name = value.to_string();
                name_line = at;
            }
            "description" => description = value.to_string(),
            "params" => {
                for p in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let (n, default) = match p.split_once('=') {
                        Some((n, d)) => (n.trim(), Some(d.trim().to_string())),
                        None => (p, None),
                    };
                    if !valid_name(n) {
                        return Err(fail(format!(
                            "parameter name '{n}' must be letters, digits and '_'"
                        )));
                    }
                    // Found by tests/fuzz.rs: a second default would silently lose to the first.
                    if params.iter().any(|q: &Param| q.name == n) {
                        return Err(fail(format!("parameter '{n}' is named twice")));
                    }
                    params.push(Param {
                        name: n.to_string(),
                        default,
                        choices: None,
                        kind: None,
                    });
                }
            }
            "kinds" => {
                for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let Some((n, k)) = pair.split_once('=') else {
                        return Err(fail(format!("kinds need NAME=KIND, not '{pair}'")));
                    };
                    let kind = match k.trim() {
                        "integer" => Kind::Integer,
                        "number" => Kind::Number,
                        "step" => Kind::Step,
                        "metric" => Kind::Metric,
                        "sample" => Kind::Sample,
                        other => {
                            return Err(fail(format!(
                                "kind '{other}' is not one of integer, number, step, metric, sample"
                            )));
                        }
                    };
                    let n = n.trim();
                    let Some(p) = params.iter_mut().find(|p| p.name == n) else {
                        return Err(fail(format!("kinds name '{n}', which is not in params")));
                    };
                    p.kind = Some(kind);
                }
            }
            "choices" => {
                let Some((n, list)) = value.split_once('=') else {
                    return Err(fail(format!("choices need NAME=a|b|c, not '{value}'")));
                };
                let n = n.trim();
                let Some(p) = params.iter_mut().find(|p| p.name == n) else {
                    return Err(fail(format!("choices name '{n}', which is not in params")));
                };
                p.choices = Some(list.split('|').map(|c| c.trim().to_string()).collect());
            }
            // A misspelt key would leave the report without its description or parameters
            // in silence: refused, as a task file's misspelt column is.
            other => {
                let other = other.trim();
                if let Some(known) = HEADER_KEYS
                    .iter()
                    .find(|k| crate::taskfile::fields::one_slip(&other.to_ascii_lowercase(), k))
                {
                    return Err(fail(format!(
                        "header key '{other}' looks like '{known}', misspelt; write '{known}:'"
                    )));
                }
            }
        }
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err((
            name_line,
            format!("report name '{name}' must be letters, digits, '-' and '_'"),
        ));
    }
    Ok(SavedQuery {
        name,
        description,
        params,
        sql: text.to_string(),
        origin,
    })
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Every report: the built-in ones, then the user folder's, which override by name.
pub fn all(user_dir: Option<&Path>) -> Result<Vec<SavedQuery>> {
    let mut reports: Vec<SavedQuery> = BUILT_IN
        .iter()
        .map(|(file, text)| {
            parse(file, text, Origin::BuiltIn)
                .map_err(|e| Error::Internal(format!("built-in report {file}: {e}")))
        })
        .collect::<Result<_>>()?;
    if let Some(dir) = user_dir {
        let entries = std::fs::read_dir(dir).map_err(|source| Error::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "sql"))
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            let file_name = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
            // One broken file must not take every other report down with it.
            match parse_at(file_name, &text, Origin::File(path.clone())) {
                Ok(report) => {
                    reports.retain(|r| r.name != report.name);
                    reports.push(report);
                }
                Err((line, e)) => {
                    crate::note!("skipped report {}:{line}: {e}", path.display());
                }
            }
        }
    }
    reports.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(reports)
}

/// One saved query by name, built-in or from the user's folder.
pub fn find(name: &str, user_dir: Option<&Path>) -> Result<Option<SavedQuery>> {
    Ok(all(user_dir)?.into_iter().find(|r| r.name == name))
}

/// A built-in saved query that anamo's own commands run (the page, `status`, the demo): its
/// absence is a bug in anamo, not something the user did.
pub fn built_in(name: &str) -> Result<SavedQuery> {
    let file = format!("{name}.sql");
    let (file, text) = BUILT_IN
        .iter()
        .find(|(f, _)| *f == file)
        .ok_or_else(|| Error::Internal(format!("the built-in report {name} is missing")))?;
    parse(file, text, Origin::BuiltIn)
        .map_err(|e| Error::Internal(format!("built-in report {file}: {e}")))
}

/// A saved query's parameters, bound: every default filled in and every value checked.
pub type Params = BTreeMap<String, String>;

impl SavedQuery {
    /// Binds `given` (NAME=VALUE) to the parameters, for every caller alike: defaults fill
    /// what is not given, and each value is checked against its choices and its kind (a
    /// number, or a step, metric or sample the catalog knows), naming what it knows.
    pub fn bind(&self, given: Params, catalog: &CatalogRead) -> Result<Params> {
        let mut params = given;
        for p in &self.params {
            if let Some(d) = &p.default {
                params.entry(p.name.clone()).or_insert_with(|| d.clone());
            }
            let Some(value) = params.get(&p.name) else {
                continue;
            };
            p.check(&self.name, value).map_err(Error::Invalid)?;
            // An empty value is the "all" default (step=, sample=).
            if let Some(kind) = p.kind
                && !value.is_empty()
            {
                self.check_kind(p, kind, value, catalog)?;
            }
        }
        Ok(params)
    }

    fn check_kind(&self, p: &Param, kind: Kind, value: &str, catalog: &CatalogRead) -> Result<()> {
        let refuse = |what: String| Err(Error::Invalid(format!("report {}: {what}", self.name)));
        let known = |list: Vec<String>, what: &str| -> Result<()> {
            if list.iter().any(|v| v == value) {
                return Ok(());
            }
            let shown: Vec<&str> = list.iter().take(20).map(String::as_str).collect();
            let more = if list.len() > 20 { ", ..." } else { "" };
            let knows = if shown.is_empty() {
                "none yet".to_string()
            } else {
                shown.join(", ")
            };
            refuse(format!(
                "no {what} '{value}' in the catalog; it knows {knows}{more}"
            ))
        };
        match kind {
            Kind::Integer if value.trim().parse::<i64>().is_err() => {
                refuse(format!("{}='{value}' is not a whole number", p.name))
            }
            Kind::Number if value.trim().parse::<f64>().is_err() => {
                refuse(format!("{}='{value}' is not a number", p.name))
            }
            Kind::Integer | Kind::Number => Ok(()),
            // One key lookup; the list is read only to name what the catalog knows instead.
            Kind::Step if catalog.step_known(value)? => Ok(()),
            Kind::Step => known(catalog.steps()?, "step"),
            Kind::Metric => known(catalog.metrics()?, "metric"),
            Kind::Sample if !catalog.sample_known(value)? => {
                refuse(format!("no sample '{value}' in the catalog"))
            }
            Kind::Sample => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_queries_is_built_in() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/queries");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".sql"))
            .collect();
        on_disk.sort();
        let built_in: Vec<String> = BUILT_IN.iter().map(|(f, _)| f.to_string()).collect();
        assert_eq!(on_disk, built_in);
    }

    #[test]
    fn headers_parse() {
        let r = parse(
            "x.sql",
            "-- name: left\n-- description: what is left\n-- params: step, limit=20\nSELECT 1",
            Origin::BuiltIn,
        )
        .unwrap();
        assert_eq!(r.name, "left");
        assert_eq!(r.params[1].default.as_deref(), Some("20"));
        assert!(parse("x.sql", "-- params: a b\nSELECT 1", Origin::BuiltIn).is_err());
        // Regression from fuzzing: the minimal input it found.
        let e = parse("r.sql", "--params: a, a=", Origin::BuiltIn).unwrap_err();
        assert_eq!(e, "parameter 'a' is named twice");
        assert_eq!(
            parse("y.sql", "SELECT 1", Origin::BuiltIn).unwrap().name,
            "y"
        );
    }
}
