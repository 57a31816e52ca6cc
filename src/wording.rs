//! How a step's standing is worded for people: percent done, the ETA with the work it leaves
//! out, and what is set apart. `status` and the HTML report both word a step through
//! [`StepWords::of`], so the terminal and the page say the same parts in the same order. Words
//! only: the numbers come from `catalog::progress`, and the layout (columns, bars, markup)
//! belongs to the callers.

use crate::catalog::progress::StepRow;

/// A step's standing in words, as `status` and the report show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepWords {
    /// `87.5%`.
    pub percent: String,
    /// `3.2h`, `3.2h (10 blocked, 2 held)`, `10 blocked`, `2 held`, `done` or `-`.
    pub eta: String,
    /// `1 abandoned, 2 dropped`, or `-` when nothing is set apart.
    pub set_apart: String,
}

impl StepWords {
    /// The words of step `r` as of `now` (epoch ms, for the ETA).
    pub fn of(r: &StepRow, now: i64) -> Self {
        Self {
            percent: format!("{:.1}%", r.pct_done()),
            eta: eta(r, now),
            set_apart: set_apart(r),
        }
    }
}

/// Tasks outside the total, in the `progress` view's order: why a step's total can be below
/// the tasks it was given.
fn set_apart(r: &StepRow) -> String {
    let parts: Vec<String> = [
        (r.abandoned, "abandoned"),
        (r.superseded, "superseded"),
        (r.dropped, "dropped"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// The ETA as people read it, with the work it leaves out: `3.2h (10 blocked)`, `3.2h (10
/// blocked, 2 held)`, `- (2 held)` without a pace yet, or `10 blocked` / `2 held` when nothing
/// else is left to forecast; `done` only when nothing is left, blocked, held or failed.
fn eta(r: &StepRow, now: i64) -> String {
    let out: Vec<String> = [(r.blocked, "blocked"), (r.held, "held")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    let left = r.waiting.saturating_sub(r.blocked) + r.todo + r.running;
    match (r.eta_hours(now), out.is_empty()) {
        (h, true) => hours(h),
        // Nothing else left: what is out is all there is.
        (None, false) if left == 0 => out.join(", "),
        (h, false) => format!("{} ({})", hours(h), out.join(", ")),
    }
}

fn hours(h: Option<f64>) -> String {
    match h {
        Some(0.0) => "done".into(),
        Some(h) if h < 1.0 => format!("{}m", (h * 60.0).ceil().max(1.0)),
        Some(h) if h < 48.0 => format!("{h:.1}h"),
        Some(h) => format!("{:.1}d", h / 24.0),
        None => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> StepRow {
        StepRow {
            step: "A".into(),
            waiting: 0,
            held: 0,
            todo: 0,
            running: 0,
            done: 7,
            failed: 1,
            total: 8,
            done_24h: 0,
            instances: 0,
            first_done_24h: None,
            cost_usd: None,
            unpriced_instances: 0,
            abandoned: 0,
            superseded: 0,
            dropped: 0,
            blocked: 0,
        }
    }

    #[test]
    fn the_parts_come_in_the_progress_view_s_order() {
        let mut r = row();
        assert_eq!(StepWords::of(&r, 0).set_apart, "-");
        (r.dropped, r.abandoned, r.superseded) = (2, 1, 3);
        let words = StepWords::of(&r, 0);
        assert_eq!(words.set_apart, "1 abandoned, 3 superseded, 2 dropped");
        assert_eq!(words.percent, "87.5%");
        // A failure waits for a person: not done, and no pace to forecast from.
        assert_eq!(words.eta, "-");
        r.blocked = 2;
        assert_eq!(StepWords::of(&r, 0).eta, "2 blocked");
        // Held by a QC gate: left out of the forecast and said beside it, as blocked work is.
        r.held = 3;
        assert_eq!(StepWords::of(&r, 0).eta, "2 blocked, 3 held");
        (r.failed, r.blocked) = (0, 0);
        assert_eq!(StepWords::of(&r, 0).eta, "3 held", "held work is not done");
    }
}
