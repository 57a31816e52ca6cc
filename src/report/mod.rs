//! `anamo report`: one self-contained HTML page of where the cohort stands, for the people who
//! are not at the terminal. Everything is inline (CSS, charts as SVG drawn by plotters, no
//! script, nothing fetched), it reads the catalog only, and every section says plainly when it
//! has no data and what to run to get some. Numbers come from the same typed reads as `status`
//! (`catalog::progress`) and `catalog::report`, so the page and the terminal agree.

mod charts;

use std::fmt::Write as _;

use rusqlite::Connection;

use crate::catalog::{self, progress, report};
use crate::clock::{now_ms, rfc3339};
use crate::error::{Error, Result};
use crate::query;

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

/// Text made safe for HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:960px;padding:12px;color:#222}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}
table{border-collapse:collapse;font-size:.9em}td,th{padding:2px 8px;text-align:right;border-bottom:1px solid #eee}
td:first-child,th:first-child{text-align:left}.scroll{overflow-x:auto}
svg{max-width:100%;height:auto}.chart{overflow-x:auto}.chart svg{min-width:600px}.chart.fit svg{min-width:0;width:100%;max-width:720px}.none{color:#666;font-style:italic}.meta td{text-align:left}
.grid td{text-align:center;font-size:.8em;color:#fff}.legend span{display:inline-block;padding:0 6px;margin-right:4px;color:#fff}
pre{white-space:pre-wrap;font-size:.8em;margin:0}
@media print{body{max-width:none}h2{break-after:avoid}}
";

/// The whole page. At cohort scale the catalog reads are its whole cost, so the samples, fleet
/// and files sections are read on a second read-only connection at the same time (SQLite
/// readers do not wait for each other).
pub fn render(conn: &Connection, opts: &Options) -> Result<String> {
    let path = catalog::path_of(conn).to_path_buf();
    std::thread::scope(|scope| {
        let second = scope.spawn(|| -> Result<(String, String)> {
            let conn = catalog::Catalog::read_only(&path)?;
            let mut standing = String::new();
            samples(&conn, opts, &mut standing)?;
            let mut fleet = String::new();
            instances(&conn, opts, &mut fleet)?;
            objects(&conn, opts, &mut fleet)?;
            Ok((standing, fleet))
        });
        let steps = progress::overview(conn)?;
        let mut page = String::new();
        let _ = write!(
            page,
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{}</title><style>{STYLE}</style></head><body>",
            esc(&opts.title)
        );
        header(conn, opts, &steps, &mut page)?;
        steps_section(&steps, &mut page)?;
        over_time(conn, &mut page)?;
        run_times(conn, &mut page)?;
        let mut failed = String::new();
        failures(conn, opts, &mut failed)?;
        let (standing, fleet) = second
            .join()
            .map_err(|_| Error::Internal("the report's second reader panicked".into()))??;
        page.push_str(&standing);
        page.push_str(&failed);
        page.push_str(&fleet);
        page.push_str("</body></html>\n");
        Ok(page)
    })
}

fn header(
    conn: &Connection,
    opts: &Options,
    steps: &[progress::StepRow],
    page: &mut String,
) -> Result<()> {
    let store = catalog::store_of(conn)?.unwrap_or_else(|| "(none synced yet)".into());
    let tasks: u64 = steps.iter().map(|s| s.total).sum();
    let done: u64 = steps.iter().map(|s| s.done).sum();
    let _ = write!(
        page,
        "<h1>{}</h1><table class=\"meta\">\
         <tr><td>written</td><td>{}</td></tr>\
         <tr><td>catalog</td><td>{}</td></tr>\
         <tr><td>task store</td><td>{}</td></tr>\
         <tr><td>tasks</td><td id=\"total-tasks\">{tasks} in {} step(s), {done} done</td></tr>",
        esc(&opts.title),
        rfc3339(now_ms()),
        esc(&opts.catalog),
        esc(&store),
        steps.len()
    );
    let syncs = report::last_syncs(conn)?;
    if syncs.is_empty() {
        page.push_str(
            "<tr><td>last sync</td><td class=\"none\">never: run <code>anamo sync</code> \
             (with <code>--instances</code> and <code>--objects</code> for EC2 and S3)</td></tr>",
        );
    }
    for (source, at) in syncs {
        let _ = write!(
            page,
            "<tr><td>last sync</td><td>{}: {}</td></tr>",
            esc(&source),
            rfc3339(at)
        );
    }
    page.push_str("</table>");
    Ok(())
}

/// A chart, scrolled sideways on a narrow screen rather than shrunk past reading.
fn chart(page: &mut String, svg: &str) {
    page.push_str("<div class=\"chart\">");
    page.push_str(svg);
    page.push_str("</div>");
}

/// A chart scaled to the width of the screen, never cut: the steps' bars, whose every state
/// must show on a phone (their step names stay readable at that scale).
fn fitted_chart(page: &mut String, svg: &str) {
    page.push_str("<div class=\"chart fit\">");
    page.push_str(svg);
    page.push_str("</div>");
}

/// Opens a table, scrolled sideways on a narrow screen, with its header row; `TABLE_END`
/// closes it.
fn table_head(page: &mut String, id: &str, columns: &[&str]) {
    let _ = write!(page, "<div class=\"scroll\"><table id=\"{id}\"><tr>");
    // A column named like `usd_per_done_task` may break after each underscore, so a wide
    // report fits the page instead of scrolling sideways.
    for c in columns {
        let _ = write!(page, "<th>{}</th>", esc(c).replace('_', "_<wbr>"));
    }
    page.push_str("</tr>");
}

const TABLE_END: &str = "</table></div>";

/// A row of plain cells, each escaped.
fn plain_row(page: &mut String, cells: &[&str]) {
    page.push_str("<tr>");
    for c in cells {
        let _ = write!(page, "<td>{}</td>", esc(c));
    }
    page.push_str("</tr>");
}

/// The states' colours; `apart`: also the pale one of the states set apart (the grid).
fn legend(page: &mut String, apart: bool) {
    page.push_str("<p class=\"legend\">");
    for (state, _) in charts::STATE_COLOURS {
        let _ = write!(
            page,
            "<span style=\"background:{}\">{state}</span>",
            charts::css_colour(state)
        );
    }
    if apart {
        let _ = write!(
            page,
            "<span style=\"background:{};color:#333\">dropped, abandoned, not added</span>",
            charts::css_colour("dropped")
        );
    }
    page.push_str("</p>");
}

fn steps_section(steps: &[progress::StepRow], page: &mut String) -> Result<()> {
    page.push_str("<h2>Steps</h2>");
    if steps.is_empty() {
        page.push_str(
            "<p class=\"none\">No task in the catalog yet: add tasks (<code>anamo tasks \
             add</code>), run workers, then <code>anamo sync</code>; <code>anamo steps set</code> \
             gives the workflow order.</p>",
        );
        return Ok(());
    }
    legend(page, false);
    fitted_chart(page, &charts::step_bars(steps)?);
    // What a phone's first screen must show comes first: how far along, and what failed.
    table_head(
        page,
        "steps",
        &[
            "step",
            "% done",
            "failed",
            "done",
            "running",
            "todo",
            "waiting",
            "total",
            "done in 24 h",
            "ETA",
            "set apart",
        ],
    );
    let now = now_ms();
    for s in steps {
        let _ = write!(
            page,
            "<tr data-step=\"{}\"><td>{}</td>",
            esc(&s.step),
            esc(&s.step)
        );
        let _ = write!(
            page,
            "<td class=\"pct\">{:.1}%</td><td data-state=\"failed\">{}</td>",
            s.pct_done(),
            s.failed
        );
        for (state, n) in [
            ("done", s.done),
            ("running", s.running),
            ("todo", s.todo),
            ("waiting", s.waiting),
            ("total", s.total),
        ] {
            let _ = write!(page, "<td data-state=\"{state}\">{n}</td>");
        }
        // Tasks outside the total, as `status` shows them: why a step's total can be below
        // the tasks it was given.
        let apart: Vec<String> = [
            ("dropped", s.dropped),
            ("abandoned", s.abandoned),
            ("superseded", s.superseded),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(what, n)| format!("{n} {what}"))
        .collect();
        let _ = write!(
            page,
            "<td>{}</td><td>{}</td><td>{}</td></tr>",
            s.done_24h,
            crate::status::eta_cell(s, now),
            if apart.is_empty() {
                "-".to_string()
            } else {
                apart.join(", ")
            }
        );
    }
    page.push_str(TABLE_END);
    Ok(())
}

fn over_time(conn: &Connection, page: &mut String) -> Result<()> {
    page.push_str("<h2>Tasks done over time</h2>");
    let per_day = report::finished_per_day(conn)?;
    if per_day.is_empty() {
        page.push_str(
            "<p class=\"none\">No task has finished yet (or none was synced: run <code>anamo \
             sync</code>).</p>",
        );
        return Ok(());
    }
    // Running totals over the span of finish times, cut in equal parts.
    let over = report::finished_over_time(conn, 120)?;
    let parts = over.steps.first().map_or(1, |(_, v)| v.len().max(1));
    let labels: Vec<String> = (0..parts)
        .map(|k| {
            let at = over.from + (over.to - over.from) * (k as i64 + 1) / parts as i64;
            let t = rfc3339(at);
            // A span within a day reads better as times of day; one of under a minute, in
            // seconds from the first finish.
            let span = over.to - over.from;
            if span < 60_000 {
                format!("+{:.1}s", (at - over.from) as f64 / 1000.0)
            } else if span < 86_400_000 {
                t[11..19].to_string()
            } else {
                t[..10].to_string()
            }
        })
        .collect();
    let cumulative: Vec<(String, Vec<u64>)> = over
        .steps
        .iter()
        .map(|(step, counts)| {
            let mut sum = 0;
            let line = counts
                .iter()
                .map(|n| {
                    sum += n;
                    sum
                })
                .collect();
            (step.clone(), line)
        })
        .collect();
    chart(page, &charts::lines(&labels, &cumulative, "tasks done")?);
    page.push_str("<h3>Tasks done per day</h3>");
    let days: Vec<String> = {
        let mut d: Vec<String> = per_day.iter().map(|c| c.day.clone()).collect();
        d.dedup();
        d
    };
    let mut daily: Vec<(String, Vec<u64>)> = over
        .steps
        .iter()
        .map(|(step, _)| (step.clone(), vec![0; days.len()]))
        .collect();
    for c in &per_day {
        let (Some(line), Ok(k)) = (
            daily.iter_mut().find(|(s, _)| *s == c.step),
            days.binary_search(&c.day),
        ) else {
            continue;
        };
        line.1[k] = c.done;
    }
    chart(page, &charts::day_bars(&days, &daily)?);
    table_head(page, "per-day", &["day", "step", "done"]);
    // The newest days first; within a day, steps in workflow order.
    let order = |step: &str| over.steps.iter().position(|(s, _)| s == step);
    let mut newest: Vec<&report::DayCount> = per_day.iter().collect();
    newest.sort_by(|a, b| b.day.cmp(&a.day).then(order(&a.step).cmp(&order(&b.step))));
    for c in newest.into_iter().take(60) {
        plain_row(page, &[&c.day, &c.step, &c.done.to_string()]);
    }
    page.push_str(TABLE_END);
    Ok(())
}

fn run_times(conn: &Connection, page: &mut String) -> Result<()> {
    page.push_str("<h2>Run times</h2>");
    let steps = report::run_times(conn)?;
    if steps.is_empty() {
        page.push_str("<p class=\"none\">No task has finished yet, so no run time is known.</p>");
        return Ok(());
    }
    chart(page, &charts::run_time_boxes(&steps)?);
    table_head(
        page,
        "run-times",
        &[
            "step",
            "tasks",
            "shortest",
            "lower quartile",
            "median",
            "upper quartile",
            "longest",
        ],
    );
    for s in &steps {
        let mut cells = vec![s.step.clone(), s.tasks.to_string()];
        cells.extend(s.quartiles.map(duration));
        plain_row(page, &cells.iter().map(String::as_str).collect::<Vec<_>>());
    }
    page.push_str(TABLE_END);
    page.push_str("<h3>Slowest tasks</h3>");
    table_head(page, "slowest", &["step", "task", "sample", "ran", "where"]);
    for t in report::slowest(conn, 10)? {
        plain_row(
            page,
            &[
                &t.step,
                &t.task_id,
                t.sample.as_deref().unwrap_or(""),
                &duration(t.seconds),
                t.owner.as_deref().unwrap_or(""),
            ],
        );
    }
    page.push_str(TABLE_END);
    Ok(())
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

fn samples(conn: &Connection, opts: &Options, page: &mut String) -> Result<()> {
    page.push_str("<h2>Samples</h2>");
    let steps = progress::step_order(conn)?;
    let standing = report::sample_standing(conn, opts.samples_listed)?;
    let (rows, total) = (&standing.listed, standing.total);
    if total == 0 {
        page.push_str(
            "<p class=\"none\">No sample sheet imported: <code>anamo samples import \
             FILE</code> (a <code>sample_id</code> column, and <code>cohort</code>).</p>",
        );
        return Ok(());
    }
    if steps.is_empty() {
        page.push_str(
            "<p class=\"none\">No workflow order: <code>anamo steps set STEP ...</code> names \
             the steps each sample goes through.</p>",
        );
        return Ok(());
    }
    if total as usize > rows.len() {
        page.push_str("<h3>Samples per cohort and step</h3>");
        table_head(page, "cohorts", &["cohort", "step", "state", "samples"]);
        for c in &standing.cohorts {
            plain_row(
                page,
                &[&c.cohort, &c.step, &c.state, &c.samples.to_string()],
            );
        }
        page.push_str(TABLE_END);
        let _ = write!(
            page,
            "<p>The {} least advanced of {total} samples:</p>",
            rows.len()
        );
    }
    legend(page, true);
    page.push_str("<div class=\"scroll\"><table class=\"grid\" id=\"samples\"><tr><th>sample</th><th>cohort</th>");
    for s in &steps {
        let _ = write!(page, "<th>{}</th>", esc(s));
    }
    page.push_str("</tr>");
    for r in rows {
        let _ = write!(
            page,
            "<tr data-sample=\"{}\"><td style=\"color:#222\">{}</td><td style=\"color:#222\">{}</td>",
            esc(&r.sample),
            esc(&r.sample),
            esc(r.cohort.as_deref().unwrap_or(""))
        );
        for st in &r.states {
            // Pale cells (dropped, abandoned, not added) take dark text.
            let text = if charts::state_colour(st).is_some() {
                "#fff"
            } else {
                "#333"
            };
            let _ = write!(
                page,
                "<td style=\"background:{};color:{text}\" data-state=\"{}\">{}</td>",
                charts::css_colour(st),
                esc(st),
                esc(st)
            );
        }
        page.push_str("</tr>");
    }
    page.push_str(TABLE_END);
    Ok(())
}

fn failures(conn: &Connection, opts: &Options, page: &mut String) -> Result<()> {
    page.push_str("<h2>Failures</h2>");
    let (rows, total) = report::failures(conn, opts.failures_listed)?;
    if total == 0 {
        page.push_str("<p class=\"none\">No task failed for good.</p>");
        return Ok(());
    }
    let _ = write!(
        page,
        "<p>{total} task(s) failed on their last attempt{}.</p>",
        if total as usize > rows.len() {
            format!("; the first {}", rows.len())
        } else {
            String::new()
        }
    );
    table_head(
        page,
        "failures",
        &["step", "task", "sample", "exit", "error (tail)"],
    );
    for f in rows {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td style=\"text-align:left\"><pre>{}</pre></td></tr>",
            esc(&f.step),
            esc(&f.task_id),
            esc(f.sample.as_deref().unwrap_or("")),
            f.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            esc(f.error_tail.as_deref().unwrap_or(""))
        );
    }
    page.push_str(TABLE_END);
    Ok(())
}

/// The span the instance timeline covers, before the report is written.
const TIMELINE_MS: i64 = 48 * 3_600_000;
/// The shortest span the timeline draws, so a few short runs are still bars.
const TIMELINE_MIN_MS: i64 = 10 * 60_000;

/// From the first run's start to the last run's end (within `from`..`to`), with a little room
/// on each side, and at least [`TIMELINE_MIN_MS`].
fn runs_span(drawn: &[report::InstanceRuns], from: i64, to: i64) -> (i64, i64) {
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

fn instances(conn: &Connection, opts: &Options, page: &mut String) -> Result<()> {
    page.push_str("<h2>Instances</h2>");
    if report::instance_count(conn)? == 0 {
        page.push_str(
            "<p class=\"none\">No EC2 instance in the catalog: run <code>anamo sync \
             --instances</code> (or set <code>instances = true</code> under <code>[sync]</code> \
             in anamo.toml).</p>",
        );
        return Ok(());
    }
    page.push_str("<h3>Instance-hours per step and market</h3>");
    saved_table(
        conn,
        "instance-hours-by-step",
        &[],
        100,
        "instance-hours",
        page,
    )?;
    page.push_str(
        "<h3>Cost per step and market</h3><p>US dollars as of the last instance sync: Spot \
         prices from EC2, on-demand ones from <code>anamo prices set</code> or \
         <code>[prices]</code> in anamo.toml. Instances without a known price are counted \
         apart (unpriced), never as free.</p>",
    );
    saved_table(conn, "cost-by-step", &[], 100, "cost", page)?;
    page.push_str("<h3>Tasks per instance, last 48 hours</h3>");
    let to = now_ms();
    let from = to - TIMELINE_MS;
    let (drawn, more) = report::instance_timeline(conn, from, to, opts.instances_drawn)?;
    if drawn.is_empty() {
        page.push_str("<p class=\"none\">No task ran on an instance in the last 48 hours.</p>");
    } else {
        legend(page, false);
        // The axis spans the runs drawn, not the whole window: a cohort that ran for an
        // hour yesterday is not a sliver at the edge of two days.
        let (lo, hi) = runs_span(&drawn, from, to);
        chart(page, &charts::timeline(&drawn, lo, hi)?);
        table_head(
            page,
            "timeline",
            &[
                "instance", "step", "market", "runs", "done", "failed", "running",
            ],
        );
        for i in &drawn {
            let count = |state: &str| i.runs.iter().filter(|r| r.state == state).count();
            let _ = write!(
                page,
                "<tr data-instance=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&i.instance_id),
                esc(&i.instance_id),
                esc(i.step.as_deref().unwrap_or("")),
                esc(i.lifecycle.as_deref().unwrap_or("")),
                i.runs.len(),
                count("done"),
                count("failed"),
                count("running")
            );
        }
        page.push_str(TABLE_END);
        if more > 0 {
            let _ = write!(
                page,
                "<p>{more} more instance(s) ran tasks in that time: <code>anamo query \
                 tasks-per-instance -p step=STEP</code> lists them all.</p>"
            );
        }
    }
    page.push_str(
        "<h3>Instances that finished no work</h3><p>Ended, or up 6 hours or more, without \
         finishing a task and holding none (check the AMI, the instance role and the store).</p>",
    );
    saved_table(
        conn,
        "instances-without-work",
        &[("hours", "6")],
        50,
        "idle-instances",
        page,
    )
}

fn objects(conn: &Connection, opts: &Options, page: &mut String) -> Result<()> {
    page.push_str("<h2>Files in S3</h2>");
    let kinds = report::objects_by_kind(conn)?;
    if kinds.is_empty() {
        page.push_str(
            "<p class=\"none\">No S3 listing in the catalog: run <code>anamo sync --objects \
             s3://BUCKET/PREFIX/</code> (or list the prefixes as <code>[[sync.objects]]</code> \
             in anamo.toml).</p>",
        );
        return Ok(());
    }
    table_head(page, "kinds", &["kind", "files", "size", "samples"]);
    for k in &kinds {
        let _ = write!(
            page,
            "<tr data-kind=\"{}\"><td>{}</td><td>{}</td><td data-bytes=\"{}\">{}</td><td>{}</td></tr>",
            esc(&k.kind),
            esc(&k.kind),
            k.files,
            k.bytes,
            size(k.bytes),
            k.samples
        );
    }
    page.push_str(TABLE_END);
    page.push_str("<h3>Samples missing a kind of file</h3>");
    let required: Vec<String> = if opts.required_kinds.is_empty() {
        kinds
            .iter()
            .map(|k| k.kind.clone())
            .filter(|k| k != "other")
            .collect()
    } else {
        opts.required_kinds.clone()
    };
    let _ = write!(
        page,
        "<p>Active samples of the sample sheet with no file of {} ({}).</p>",
        if opts.required_kinds.is_empty() {
            "each kind listed"
        } else {
            "each required kind"
        },
        if opts.required_kinds.is_empty() {
            "<code>required_kinds</code> under <code>[study]</code> in anamo.toml names the \
             kinds every sample must have"
        } else {
            "<code>[study] required_kinds</code> in anamo.toml"
        }
    );
    table_head(
        page,
        "missing",
        &["kind", "samples missing it", "the first of them"],
    );
    for kind in &required {
        let (ids, total) = report::samples_missing(conn, kind, 20)?;
        let _ = write!(
            page,
            "<tr data-kind=\"{}\"><td>{}</td><td>{total}</td><td style=\"text-align:left\">{}{}</td></tr>",
            esc(kind),
            esc(kind),
            esc(&ids.join(", ")),
            if total as usize > ids.len() {
                format!(
                    " &hellip; (<code>anamo query samples-missing-files -p kind={}</code>)",
                    esc(kind)
                )
            } else {
                String::new()
            }
        );
    }
    page.push_str(TABLE_END);
    Ok(())
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

/// A built-in saved report's rows as a table, so the page and `anamo query NAME` agree.
fn saved_table(
    conn: &Connection,
    name: &str,
    params: &[(&str, &str)],
    limit: usize,
    id: &str,
    page: &mut String,
) -> Result<()> {
    let report = query::saved::find(name, None)?
        .ok_or_else(|| Error::Internal(format!("no built-in report {name}")))?;
    let params = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let table = query::table(conn, &report.sql, &params, limit)?;
    if table.total == 0 {
        page.push_str("<p class=\"none\">None.</p>");
        return Ok(());
    }
    let columns: Vec<&str> = table.columns.iter().map(String::as_str).collect();
    table_head(page, id, &columns);
    for row in &table.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|v| match v {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        plain_row(page, &cells.iter().map(String::as_str).collect::<Vec<_>>());
    }
    page.push_str(TABLE_END);
    if table.total as usize > table.rows.len() {
        let _ = write!(
            page,
            "<p>The first {} of {} rows: <code>anamo query {name}</code> gives them all.</p>",
            table.rows.len(),
            table.total
        );
    }
    Ok(())
}
