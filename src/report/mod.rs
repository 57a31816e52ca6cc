//! `anamo report`: one self-contained HTML page of where the cohort stands, for the people who
//! are not at the terminal. Everything is inline (CSS, charts as SVG drawn by plotters, no
//! script, nothing fetched), it reads the catalog only, and every section says plainly when it
//! has no data and what to run to get some. Numbers come from the same typed reads as `status`
//! (`catalog::progress`) and `catalog::history`, so the page and the terminal agree.
//!
//! The page is built from typed markup (`page.rs`): data reaches it as escaped text unless it
//! is `Html`, which only literals, escaped text and the charts make. `sections.rs` has one
//! function per section, `charts.rs` draws the SVG.

mod charts;
mod gates;
mod page;
mod sections;

use crate::catalog::{CatalogRead, history};
use crate::clock::rfc3339;
use crate::error::{Error, Result};

/// What the page shows beyond the catalog.
#[derive(Debug, Clone)]
pub struct Options {
    /// The study's name for the header.
    pub title: String,
    /// The catalog, named in the header.
    pub catalog: String,
    /// Samples listed one by one, the least advanced first; past it, counts per cohort lead.
    pub samples_listed: usize,
    /// Failed tasks listed.
    pub failures_listed: usize,
    /// Instances drawn on the timeline.
    pub instances_drawn: usize,
    /// File kinds every active sample must have in S3; empty: every kind the listings hold.
    pub required_kinds: Vec<String>,
}

impl Options {
    /// The page of a study (anamo.toml's `[study]`): `title` when given, else the study's
    /// name, else one naming `catalog`; the file kinds the study requires.
    pub fn of_study(
        title: Option<String>,
        study: crate::config::StudyConfig,
        catalog: impl Into<String>,
    ) -> Self {
        let catalog = catalog.into();
        let title = title
            .or(study.name)
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| format!("anamo report: {catalog}"));
        let mut options = Self::new(title, catalog);
        options.required_kinds = study.required_kinds;
        options
    }

    pub fn new(title: impl Into<String>, catalog: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            catalog: catalog.into(),
            samples_listed: 200,
            failures_listed: 50,
            instances_drawn: 40,
            required_kinds: vec![],
        }
    }
}

/// The whole page. At cohort scale the catalog reads are its whole cost, so the samples, fleet
/// and files sections are read on a second read-only connection at the same time (SQLite
/// readers do not wait for each other).
pub fn render(catalog: &CatalogRead, opts: &Options) -> Result<String> {
    let path = catalog.path().to_path_buf();
    std::thread::scope(|scope| {
        let second = scope.spawn(|| -> Result<(page::Html, page::Html)> {
            let other = CatalogRead::open(&path)?;
            let standing = sections::samples(&other, opts)?;
            let fleet = sections::instances(&other, opts)? + sections::objects(&other, opts)?;
            Ok((standing, fleet))
        });
        let steps = catalog.overview()?;
        let mut body = sections::header(catalog, opts, &steps)?;
        body += sections::steps(&steps)?;
        body += sections::over_time(catalog)?;
        body += sections::run_times(catalog)?;
        let failed = sections::failures(catalog, opts)?;
        let gates = gates::gates(catalog, opts)?;
        let (standing, fleet) = second
            .join()
            .map_err(|_| Error::Internal("the report's second reader panicked".into()))??;
        Ok(page::document(
            &opts.title,
            body + standing + failed + gates + fleet,
        ))
    })
}

/// The labels of the done-over-time chart's parts: times of day for a span within a day,
/// seconds from the first finish for one of under a minute, else dates.
fn time_labels(over: &history::OverTime) -> Vec<String> {
    let parts = over.steps.first().map_or(1, |(_, v)| v.len().max(1));
    let span = over.to - over.from;
    (0..parts)
        .map(|k| {
            let at = over.from + span * (k as i64 + 1) / parts as i64;
            let t = rfc3339(at);
            if span < 60_000 {
                format!("+{:.1}s", (at - over.from) as f64 / 1000.0)
            } else if span < 86_400_000 {
                t[11..19].to_string()
            } else {
                t[..10].to_string()
            }
        })
        .collect()
}

/// Each step's running total of tasks done, part by part.
fn running_totals(over: &history::OverTime) -> Vec<(String, Vec<u64>)> {
    over.steps
        .iter()
        .map(|(step, counts)| {
            let line = counts.iter().scan(0, |sum, n| {
                *sum += n;
                Some(*sum)
            });
            (step.clone(), line.collect())
        })
        .collect()
}

/// Seconds as a person reads them: `42s`, `3m 20s`, `5h 02m`.
fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{:.1}s", secs.max(0.0)),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

/// Bytes as a person reads them: `512 B`, `3.4 GiB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// The span the instance timeline covers, before the report is written.
const TIMELINE_MS: i64 = 48 * 3_600_000;
/// The shortest span the timeline draws, so a few short runs are still bars.
const TIMELINE_MIN_MS: i64 = 10 * 60_000;

/// From the first run's start to the last run's end (within `from`..`to`), with a little room
/// on each side, and at least [`TIMELINE_MIN_MS`].
fn runs_span(drawn: &[history::InstanceRuns], from: i64, to: i64) -> (i64, i64) {
    let runs = drawn.iter().flat_map(|i| &i.runs);
    let (Some(first), Some(last)) = (
        runs.clone().map(|r| r.start).min(),
        runs.map(|r| r.end).max(),
    ) else {
        return (from, to);
    };
    let room = ((last - first) / 50).max(60_000);
    let hi = (last + room).min(to);
    let lo = (first - room).max(from).min(hi - TIMELINE_MIN_MS).max(from);
    (lo, hi)
}
