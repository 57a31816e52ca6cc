//! The page's sections, one function each, in the order the page shows them. Each reads what
//! it shows from the catalog (`catalog::history`, `catalog::progress`, the built-in saved
//! reports) and says plainly when there is nothing yet and what to run. Markup comes from
//! `page` only: data goes in as text or cells, never spliced into a string of markup.

use super::charts;
use super::page::{Cell, Html, Row, chart, element, fitted_chart, p, scrolled, table};
use super::{Options, TIMELINE_MS, duration, running_totals, runs_span, size, time_labels};
use crate::catalog::{CatalogRead, history, progress};
use crate::clock::{now_ms, rfc3339};
use crate::error::Result;
use crate::query;
use crate::wording::StepWords;

/// The title, then when the page was written, from which catalog and store, and the syncs.
pub fn header(catalog: &CatalogRead, opts: &Options, steps: &[progress::StepRow]) -> Result<Html> {
    let store = catalog
        .store_identity()?
        .unwrap_or_else(|| "(none synced yet)".into());
    let tasks: u64 = steps.iter().map(|s| s.total).sum();
    let done: u64 = steps.iter().map(|s| s.done).sum();
    let totals = format!("{tasks} in {} step(s), {done} done", steps.len());
    let mut rows = vec![
        Row::new(["written".into(), rfc3339(now_ms()).into()]),
        Row::new(["catalog".into(), Cell::from(&opts.catalog)]),
        Row::new(["task store".into(), Cell::from(store)]),
        Row::new(["tasks".into(), Cell::from(totals).attr("id", "total-tasks")]),
    ];
    let syncs = catalog.last_syncs()?;
    if syncs.is_empty() {
        let never = Html::lit(
            "never: run <code>anamo sync</code> (with <code>--instances</code> and \
             <code>--objects</code> for EC2 and S3)",
        );
        rows.push(Row::new([
            "last sync".into(),
            Cell::from(never).attr("class", "none"),
        ]));
    }
    for (source, at) in syncs {
        let when = format!("{source}: {}", rfc3339(at));
        rows.push(Row::new(["last sync".into(), when.into()]));
    }
    let meta = element("table", &[("class", "meta")], rows.into_iter().collect());
    Ok(element("h1", &[], Html::text(&opts.title)) + meta)
}

/// The states' colours; `apart`: also the pale one of the states set apart (the grid).
fn legend(apart: bool) -> Html {
    let swatch = |style: String, label: Html| element("span", &[("style", &style)], label);
    let mut spans: Html = charts::STATE_COLOURS
        .iter()
        .map(|(state, _)| {
            let style = format!("background:{}", charts::css_colour(state));
            swatch(style, Html::text(state))
        })
        .collect();
    if apart {
        let style = format!("background:{};color:#333", charts::css_colour("dropped"));
        spans += swatch(style, Html::lit("dropped, abandoned, not added"));
    }
    element("p", &[("class", "legend")], spans)
}

pub fn steps(steps: &[progress::StepRow]) -> Result<Html> {
    let mut out = Html::lit("<h2>Steps</h2>");
    if steps.is_empty() {
        return Ok(out
            + Html::lit(
                "<p class=\"none\">No task in the catalog yet: add tasks (<code>anamo tasks \
                 add</code>), run workers, then <code>anamo sync</code>; <code>anamo steps \
                 set</code> gives the workflow order.</p>",
            ));
    }
    out += legend(false);
    out += fitted_chart(charts::step_bars(steps)?);
    let now = now_ms();
    // What a phone's first screen must show comes first: how far along, and what failed.
    let columns = [
        "step",
        "% done",
        "failed",
        "done",
        "running",
        "todo",
        "waiting",
        "held",
        "total",
        "done in 24 h",
        "ETA",
        "set apart",
    ];
    out += table("steps", &columns, steps.iter().map(|s| step_row(s, now)));
    Ok(out)
}

/// A step's row, in the words `status` uses (set apart: the tasks outside the total, why a
/// step's total can be below the tasks it was given).
fn step_row(s: &progress::StepRow, now: i64) -> Row {
    let words = StepWords::of(s, now);
    let count = |state: &'static str, n: u64| Cell::from(n).attr("data-state", state);
    Row::new([
        Cell::from(&s.step),
        Cell::from(words.percent).attr("class", "pct"),
        count("failed", s.failed),
        count("done", s.done),
        count("running", s.running),
        count("todo", s.todo),
        count("waiting", s.waiting),
        count("held", s.held),
        count("total", s.total),
        s.done_24h.into(),
        words.eta.into(),
        words.set_apart.into(),
    ])
    .attr("data-step", &s.step)
}

pub fn over_time(catalog: &CatalogRead) -> Result<Html> {
    let mut out = Html::lit("<h2>Tasks done over time</h2>");
    let per_day = catalog.finished_per_day()?;
    if per_day.is_empty() {
        return Ok(out
            + Html::lit(
                "<p class=\"none\">No task has finished yet (or none was synced: run \
                 <code>anamo sync</code>).</p>",
            ));
    }
    // Running totals over the span of finish times, cut in equal parts.
    let over = catalog.finished_over_time(120)?;
    let totals = running_totals(&over);
    out += chart(charts::lines(&time_labels(&over), &totals, "tasks done")?);
    out += Html::lit("<h3>Tasks done per day</h3>");
    out += per_day_section(&over, &per_day)?;
    Ok(out)
}

/// Tasks done per day: a group of bars per day, and the newest days' counts.
fn per_day_section(over: &history::OverTime, per_day: &[history::DayCount]) -> Result<Html> {
    let mut days: Vec<String> = per_day.iter().map(|c| c.day.clone()).collect();
    days.dedup();
    let mut daily: Vec<(String, Vec<u64>)> = over
        .steps
        .iter()
        .map(|(step, _)| (step.clone(), vec![0; days.len()]))
        .collect();
    for c in per_day {
        let (Some(line), Ok(k)) = (
            daily.iter_mut().find(|(s, _)| *s == c.step),
            days.binary_search(&c.day),
        ) else {
            continue;
        };
        line.1[k] = c.done;
    }
    // The newest days first; within a day, steps in workflow order.
    let order = |step: &str| over.steps.iter().position(|(s, _)| s == step);
    let mut newest: Vec<&history::DayCount> = per_day.iter().collect();
    newest.sort_by(|a, b| b.day.cmp(&a.day).then(order(&a.step).cmp(&order(&b.step))));
    let rows = newest
        .into_iter()
        .take(60)
        .map(|c| Row::new([Cell::from(&c.day), Cell::from(&c.step), c.done.into()]));
    Ok(chart(charts::day_bars(&days, &daily)?) + table("per-day", &["day", "step", "done"], rows))
}

pub fn run_times(catalog: &CatalogRead) -> Result<Html> {
    let mut out = Html::lit("<h2>Run times</h2>");
    let steps = catalog.run_times()?;
    if steps.is_empty() {
        return Ok(out
            + Html::lit(
                "<p class=\"none\">No task has finished yet, so no run time is known.</p>",
            ));
    }
    out += chart(charts::run_time_boxes(&steps)?);
    let columns = [
        "step",
        "tasks",
        "shortest",
        "lower quartile",
        "median",
        "upper quartile",
        "longest",
    ];
    let rows = steps.iter().map(|s| {
        let quartiles = s.quartiles.map(|q| Cell::from(duration(q)));
        Row::new(
            [Cell::from(&s.step), s.tasks.into()]
                .into_iter()
                .chain(quartiles),
        )
    });
    out += table("run-times", &columns, rows);
    out += Html::lit("<h3>Slowest tasks</h3>");
    let rows = catalog.slowest(10)?.into_iter().map(|t| {
        Row::new([
            Cell::from(t.step),
            Cell::from(t.task_id),
            Cell::from(t.sample.unwrap_or_default()),
            Cell::from(duration(t.seconds)),
            Cell::from(t.owner.unwrap_or_default()),
        ])
    });
    out += table("slowest", &["step", "task", "sample", "ran", "where"], rows);
    Ok(out)
}

pub fn samples(catalog: &CatalogRead, opts: &Options) -> Result<Html> {
    let mut out = Html::lit("<h2>Samples</h2>");
    let steps = catalog.step_order()?;
    let standing = catalog.sample_standing(opts.samples_listed)?;
    let (rows, total) = (&standing.listed, standing.total);
    if total == 0 {
        return Ok(out
            + Html::lit(
                "<p class=\"none\">No sample sheet imported: <code>anamo samples import \
                 FILE</code> (a <code>sample_id</code> column, and <code>cohort</code>).</p>",
            ));
    }
    if steps.is_empty() {
        return Ok(out
            + Html::lit(
                "<p class=\"none\">No workflow order: <code>anamo steps set STEP ...</code> \
                 names the steps each sample goes through.</p>",
            ));
    }
    if total as usize > rows.len() {
        out += Html::lit("<h3>Samples per cohort and step</h3>");
        let cohorts = standing.cohorts.iter().map(|c| {
            let texts = [&c.cohort, &c.step, &c.state].map(Cell::from);
            Row::new(texts.into_iter().chain([c.samples.into()]))
        });
        out += table("cohorts", &["cohort", "step", "state", "samples"], cohorts);
        let least = format!("The {} least advanced of {total} samples:", rows.len());
        out += p(Html::text(&least));
    }
    out += legend(true);
    let head = Row::header(
        [Cell::from("sample"), Cell::from("cohort")]
            .into_iter()
            .chain(steps.iter().map(Cell::from)),
    );
    let grid = Html::from(head) + rows.iter().map(grid_row).collect();
    out += scrolled(element(
        "table",
        &[("class", "grid"), ("id", "samples")],
        grid,
    ));
    Ok(out)
}

/// A sample's row of the grid: its state in each step, in the state's colour.
fn grid_row(r: &history::SampleRow) -> Row {
    let dark = |text: &str| Cell::from(text).attr("style", "color:#222");
    let states = r.states.iter().map(|st| {
        // Pale cells (dropped, abandoned, not added) take dark text.
        let text = if charts::state_colour(st).is_some() {
            "#fff"
        } else {
            "#333"
        };
        let style = format!("background:{};color:{text}", charts::css_colour(st));
        Cell::from(st).attr("style", style).attr("data-state", st)
    });
    let cohort = r.cohort.as_deref().unwrap_or("");
    Row::new([dark(&r.sample), dark(cohort)].into_iter().chain(states))
        .attr("data-sample", &r.sample)
}

pub fn failures(catalog: &CatalogRead, opts: &Options) -> Result<Html> {
    let mut out = Html::lit("<h2>Failures</h2>");
    let (rows, total) = catalog.failures(opts.failures_listed)?;
    if total == 0 {
        return Ok(out + Html::lit("<p class=\"none\">No task failed for good.</p>"));
    }
    let first = if total as usize > rows.len() {
        format!("; the first {}", rows.len())
    } else {
        String::new()
    };
    out += p(Html::text(&format!(
        "{total} task(s) failed on their last attempt{first}."
    )));
    let rows = rows.into_iter().map(|f| {
        let tail = element(
            "pre",
            &[],
            Html::text(f.error_tail.as_deref().unwrap_or("")),
        );
        Row::new([
            Cell::from(f.step),
            Cell::from(f.task_id),
            Cell::from(f.sample.unwrap_or_default()),
            Cell::from(f.exit_code.map(|c| c.to_string()).unwrap_or_default()),
            Cell::from(tail).attr("style", "text-align:left"),
        ])
    });
    let columns = ["step", "task", "sample", "exit", "error (tail)"];
    out += table("failures", &columns, rows);
    Ok(out)
}

pub fn instances(catalog: &CatalogRead, opts: &Options) -> Result<Html> {
    let mut out = Html::lit("<h2>Instances</h2>");
    if catalog.instance_count()? == 0 {
        return Ok(out
            + Html::lit(
                "<p class=\"none\">No EC2 instance in the catalog: run <code>anamo sync \
                 --instances</code> (or set <code>instances = true</code> under \
                 <code>[sync]</code> in anamo.toml).</p>",
            ));
    }
    out += Html::lit("<h3>Instance-hours per step and market</h3>");
    out += saved_table(
        catalog,
        "instance-hours-by-step",
        &[],
        100,
        "instance-hours",
    )?;
    out += Html::lit(
        "<h3>Cost per step and market</h3><p>US dollars as of the last instance sync: Spot \
         prices from EC2, on-demand ones from <code>anamo prices set</code> or \
         <code>[prices]</code> in anamo.toml. Instances without a known price are counted \
         apart (unpriced), never as free.</p>",
    );
    out += saved_table(catalog, "cost-by-step", &[], 100, "cost")?;
    out += Html::lit("<h3>Tasks per instance, last 48 hours</h3>");
    out += timeline(catalog, opts)?;
    out += Html::lit(
        "<h3>Instances that finished no work</h3><p>Ended, or up 6 hours or more, without \
         finishing a task and holding none (check the AMI, the instance role and the \
         store).</p>",
    );
    out += saved_table(
        catalog,
        "instances-without-work",
        &[("hours", "6")],
        50,
        "idle-instances",
    )?;
    Ok(out)
}

/// The instances that ran tasks in the last 48 hours: a bar per run, and their counts.
fn timeline(catalog: &CatalogRead, opts: &Options) -> Result<Html> {
    let to = now_ms();
    let from = to - TIMELINE_MS;
    let (drawn, more) = catalog.instance_timeline(from, to, opts.instances_drawn)?;
    if drawn.is_empty() {
        return Ok(Html::lit(
            "<p class=\"none\">No task ran on an instance in the last 48 hours.</p>",
        ));
    }
    let mut out = legend(false);
    // The axis spans the runs drawn, not the whole window: a cohort that ran for an
    // hour yesterday is not a sliver at the edge of two days.
    let (lo, hi) = runs_span(&drawn, from, to);
    out += chart(charts::timeline(&drawn, lo, hi)?);
    let rows = drawn.iter().map(|i| {
        let count = |state: &str| i.runs.iter().filter(|r| r.state == state).count();
        Row::new([
            Cell::from(&i.instance_id),
            Cell::from(i.step.as_deref().unwrap_or("")),
            Cell::from(i.lifecycle.as_deref().unwrap_or("")),
            i.runs.len().into(),
            count("done").into(),
            count("failed").into(),
            count("running").into(),
        ])
        .attr("data-instance", &i.instance_id)
    });
    let columns = [
        "instance", "step", "market", "runs", "done", "failed", "running",
    ];
    out += table("timeline", &columns, rows);
    if more > 0 {
        out += p(
            Html::text(&format!("{more} more instance(s) ran tasks in that time: "))
                + Html::lit(
                    "<code>anamo query tasks-per-instance -p step=STEP</code> lists them all.",
                ),
        );
    }
    Ok(out)
}

pub fn objects(catalog: &CatalogRead, opts: &Options) -> Result<Html> {
    let mut out = Html::lit("<h2>Files in S3</h2>");
    let kinds = catalog.objects_by_kind()?;
    if kinds.is_empty() {
        return Ok(out
            + Html::lit(
                "<p class=\"none\">No S3 listing in the catalog: run <code>anamo sync \
                 --objects s3://BUCKET/PREFIX/</code> (or list the prefixes as \
                 <code>[[sync.objects]]</code> in anamo.toml).</p>",
            ));
    }
    let rows = kinds.iter().map(|k| {
        Row::new([
            Cell::from(&k.kind),
            k.files.into(),
            Cell::from(size(k.bytes)).attr("data-bytes", k.bytes.to_string()),
            k.samples.into(),
        ])
        .attr("data-kind", &k.kind)
    });
    out += table("kinds", &["kind", "files", "size", "samples"], rows);
    out += Html::lit("<h3>Samples missing a kind of file</h3>");
    out += missing(catalog, opts, &kinds)?;
    Ok(out)
}

/// Active samples with no file of a required kind (each kind listed, without
/// `required_kinds`), the first 20 named.
fn missing(catalog: &CatalogRead, opts: &Options, kinds: &[history::KindTotal]) -> Result<Html> {
    let (required, mut out): (Vec<String>, Html) = if opts.required_kinds.is_empty() {
        let listed = kinds.iter().map(|k| k.kind.clone());
        (
            listed.filter(|k| k != "other").collect(),
            Html::lit(
                "<p>Active samples of the sample sheet with no file of each kind listed \
                 (<code>required_kinds</code> under <code>[study]</code> in anamo.toml names \
                 the kinds every sample must have).</p>",
            ),
        )
    } else {
        (
            opts.required_kinds.clone(),
            Html::lit(
                "<p>Active samples of the sample sheet with no file of each required kind \
                 (<code>[study] required_kinds</code> in anamo.toml).</p>",
            ),
        )
    };
    let mut rows = vec![];
    for kind in &required {
        let (ids, total) = catalog.samples_missing(kind, 20)?;
        let mut first = Html::text(&ids.join(", "));
        if total as usize > ids.len() {
            let all = format!("anamo query samples-missing-files -p kind={kind}");
            first += Html::lit(" &hellip; (") + element("code", &[], Html::text(&all));
            first += Html::lit(")");
        }
        rows.push(
            Row::new([
                Cell::from(kind),
                total.into(),
                Cell::from(first).attr("style", "text-align:left"),
            ])
            .attr("data-kind", kind),
        );
    }
    let columns = ["kind", "samples missing it", "the first of them"];
    out += table("missing", &columns, rows);
    Ok(out)
}

/// A built-in saved report's rows as a table, so the page and `anamo query NAME` agree.
fn saved_table(
    catalog: &CatalogRead,
    name: &str,
    params: &[(&str, &str)],
    limit: usize,
    id: &str,
) -> Result<Html> {
    let report = query::saved::built_in(name)?;
    let given = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let params = report.bind(given, catalog)?;
    let found = query::table(catalog, &report.sql, &params, limit)?;
    if found.total == 0 {
        return Ok(Html::lit("<p class=\"none\">None.</p>"));
    }
    let columns: Vec<&str> = found.columns.iter().map(String::as_str).collect();
    let rows = found.rows.iter().map(|row| {
        Row::new(row.iter().map(|v| match v {
            serde_json::Value::Null => Cell::from(""),
            serde_json::Value::String(s) => Cell::from(s),
            other => Cell::from(other.to_string()),
        }))
    });
    let mut out = table(id, &columns, rows);
    if found.total as usize > found.rows.len() {
        let first = format!("The first {} of {} rows: ", found.rows.len(), found.total);
        let all = element("code", &[], Html::text(&format!("anamo query {name}")));
        out += p(Html::text(&first) + all + Html::lit(" gives them all."));
    }
    Ok(out)
}
