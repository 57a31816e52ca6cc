//! The overview a person looks at first, rendered: per step, in workflow order, counts by
//! state, percent done, throughput over the last 24 hours and an ETA at the recent pace. The
//! numbers come from `catalog::progress`; this module only lays them out (`status` and `demo`
//! share it), in the words of `wording.rs`, which the HTML report uses too.

use std::io::Write;

use serde_json::{Value, json};

use crate::catalog::progress::{Freshness, StepRow};
use crate::clock::{now_ms, rfc3339};
use crate::error::Result;
use crate::output::{Format, RowWriter};
use crate::wording::StepWords;

/// A line saying how fresh the catalog is, and whether a sync is running (`sync_running`) or
/// the last one did not finish (the numbers below it are then older, or partial).
pub fn freshness_line(f: &Freshness, sync_running: bool) -> String {
    let last_ok = match f.last_ok {
        Some(at) => {
            let minutes = (now_ms() - at) / 60_000;
            format!(
                "tasks as of the last sync, {} ({minutes} min ago)",
                rfc3339(at)
            )
        }
        None => "tasks never fully synced: run `anamo sync`".to_string(),
    };
    match &f.unfinished {
        Some(_) if sync_running => format!("a sync is running now; {last_ok}"),
        Some((started, error)) => format!(
            "the last sync (started {}) did not finish{}; {last_ok}",
            rfc3339(*started),
            error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
        ),
        None => last_ok,
    }
}

/// The progress bar beside the percentage (`StepWords::percent`).
fn bar(pct: f64, percent: &str) -> String {
    // Ten cells: the percentage beside it says the rest, and the table fits 80 columns.
    let filled = ((pct / 100.0) * 10.0).round().clamp(0.0, 10.0) as usize;
    format!(
        "{}{} {percent:>6}",
        "█".repeat(filled),
        "░".repeat(10 - filled)
    )
}

/// Samples with tasks but not in the imported sheet are counted in the steps, yet absent from
/// every per-sample answer: the line that says so, and where to see them.
pub fn not_imported_note(samples: u64) -> Option<String> {
    (samples > 0).then(|| {
        format!(
            "{samples} sample(s) have tasks but are not among the imported samples, so \
             samples-left, samples-done and the report's grid leave them out: `anamo query \
             samples-not-imported` lists them"
        )
    })
}

/// `$12.34`, `$12.34 + 2 unpriced`, `2 unpriced`, or `-` without instances.
fn cost_text(r: &StepRow) -> String {
    let unpriced = (r.unpriced_instances > 0).then(|| format!("{} unpriced", r.unpriced_instances));
    match (r.cost_usd, unpriced) {
        (Some(c), Some(u)) => format!("${c:.2} + {u}"),
        (Some(c), None) => format!("${c:.2}"),
        (None, Some(u)) => u,
        (None, None) => "-".into(),
    }
}

/// Writes the overview: a table with bars for people, plain numbers for programs.
pub fn render(rows: &[StepRow], format: Format, out: impl Write) -> Result<()> {
    let people = format == Format::Table;
    let now = now_ms();
    let mut columns = vec![
        "step", "waiting", "held", "todo", "running", "done", "failed", "total",
    ];
    columns.extend(if people {
        ["progress", "done_24h", "eta", "instances", "cost"].as_slice()
    } else {
        [
            "pct_done",
            "done_24h",
            "eta_hours",
            "instances",
            "cost_usd",
            "unpriced_instances",
            "abandoned",
            "superseded",
            "dropped",
            "blocked",
        ]
        .as_slice()
    });
    if people {
        columns.push("set apart");
    }
    let mut w = RowWriter::new(format, columns.iter().map(|c| c.to_string()).collect(), out)?;
    for r in rows {
        let mut row: Vec<Value> = vec![
            json!(r.step),
            json!(r.waiting),
            json!(r.held),
            json!(r.todo),
            json!(r.running),
            json!(r.done),
            json!(r.failed),
            json!(r.total),
        ];
        if people {
            let words = StepWords::of(r, now);
            row.extend([
                json!(bar(r.pct_done(), &words.percent)),
                json!(r.done_24h),
                json!(words.eta),
                json!(r.instances),
                json!(cost_text(r)),
                json!(words.set_apart),
            ]);
        } else {
            // Rounded up: work left never reads as 0.0 (done).
            let eta = r.eta_hours(now).map(|h| (h * 100.0).ceil() / 100.0);
            row.extend([
                json!((r.pct_done() * 10.0).round() / 10.0),
                json!(r.done_24h),
                json!(eta),
                json!(r.instances),
                json!(r.cost_usd.map(|c| (c * 100.0).round() / 100.0)),
                json!(r.unpriced_instances),
                json!(r.abandoned),
                json!(r.superseded),
                json!(r.dropped),
                json!(r.blocked),
            ]);
        }
        w.write_row(&row)?;
    }
    w.finish()?;
    Ok(())
}

/// The overview as one line, for `status --watch` in a pipe or a log: the time, then per step
/// what is outstanding and done (`2026-12-03T10:00:00Z Alignment: 0 waiting, 0 held, 0 todo,
/// 1 running, 0 failed, 1375 done | VariantCalling: ...`).
pub fn one_line(rows: &[StepRow], now: i64) -> String {
    let steps: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}: {} waiting, {} held, {} todo, {} running, {} failed, {} done",
                r.step, r.waiting, r.held, r.todo, r.running, r.failed, r.done
            )
        })
        .collect();
    if steps.is_empty() {
        return format!("{} no task synced yet", rfc3339(now));
    }
    format!("{} {}", rfc3339(now), steps.join(" | "))
}
