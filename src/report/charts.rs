//! The report's charts, drawn by plotters into inline SVG (text stays text: the browser sets
//! it, so no font is needed here). Each function takes plain numbers and returns one `<svg>`
//! as an [`Svg`], the only way markup leaves this module.

use plotters::coord::ranged1d::{AsRangedCoord, SegmentedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordu32;
use plotters::prelude::*;

use crate::catalog::progress::StepRow;
use crate::error::{Error, Result};

/// One chart as drawn by plotters, which escapes the text it sets (step names, sample ids), so
/// the page may carry it as markup (`page::Html` takes it). Only this module makes one.
#[derive(Debug)]
pub struct Svg(String);

impl Svg {
    pub fn into_markup(self) -> String {
        self.0
    }
}

/// The colours of the states, shared with the page's legend and grid.
pub const STATE_COLOURS: [(&str, RGBColor); 6] = [
    ("done", RGBColor(46, 139, 87)),
    ("running", RGBColor(52, 101, 164)),
    ("todo", RGBColor(140, 140, 140)),
    ("waiting", RGBColor(200, 130, 0)),
    // Held by a QC gate: a person decides, so near the failures' red, but not one.
    ("held", RGBColor(148, 80, 170)),
    ("failed", RGBColor(204, 51, 51)),
];

/// A state's colour; `None` for the states set apart (dropped, abandoned, not added).
pub fn state_colour(state: &str) -> Option<RGBColor> {
    STATE_COLOURS
        .iter()
        .find(|(s, _)| *s == state)
        .map(|(_, c)| *c)
}

/// The colour of a state as CSS; the states set apart are pale.
pub fn css_colour(state: &str) -> String {
    state_colour(state).map_or_else(
        || "#d8d8d8".into(),
        |c| format!("rgb({},{},{})", c.0, c.1, c.2),
    )
}

/// Axis and legend text: large enough to read when a phone shows the chart at its width.
const TEXT: (&str, u32) = ("sans-serif", 15);

/// The steps' lines, apart from the states' colours (a red line must not read as failed).
const LINE_COLOURS: [RGBColor; 6] = [
    RGBColor(117, 80, 179),
    RGBColor(0, 128, 128),
    RGBColor(140, 86, 75),
    RGBColor(214, 39, 140),
    RGBColor(60, 60, 60),
    RGBColor(128, 128, 0),
];

fn line_colour(k: usize) -> RGBColor {
    LINE_COLOURS[k % LINE_COLOURS.len()]
}

/// The label of a row on an axis of rows drawn top down: row `k` of `names` sits at
/// segment `len - 1 - k`, so the first is on top.
fn row_name(names: &[&str], v: &SegmentValue<u32>) -> String {
    match v {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => names
            .len()
            .checked_sub(1 + *i as usize)
            .and_then(|k| names.get(k))
            .map(|s| s.to_string())
            .unwrap_or_default(),
        SegmentValue::Last => String::new(),
    }
}

/// The segment of row `k` of `n`, counted from the top.
fn row_at(k: usize, n: usize) -> u32 {
    n.saturating_sub(1 + k) as u32
}

fn drawing<E: std::fmt::Debug>(e: E) -> Error {
    Error::Internal(format!("drawing a chart: {e:?}"))
}

/// A chart of one row per name, the first on top, over the x axis `x`.
type Rows<'a, X> = ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, SegmentedCoord<RangedCoordu32>>>;

/// The frame the step bars, the run-time boxes and the instance timeline share: `size` is
/// (height, x label area, y label area) in pixels; `draw` adds each row's shapes.
fn rows_chart<R: AsRangedCoord>(
    names: &[&str],
    size: (u32, u32, u32),
    x: R,
    x_desc: &str,
    draw: impl FnOnce(&mut Rows<'_, R::CoordDescType>) -> Result<()>,
) -> Result<Svg>
where
    R::CoordDescType: ValueFormatter<R::Value>,
{
    let (height, x_labels, y_labels) = size;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, height)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let n = names.len().max(1) as u32;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(x_labels)
            .y_label_area_size(y_labels)
            .build_cartesian_2d(x, (0u32..n).into_segmented())
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .label_style(TEXT)
            .axis_desc_style(TEXT)
            .disable_y_mesh()
            .y_labels(n as usize)
            .y_label_formatter(&|v| row_name(names, v))
            .x_desc(x_desc)
            .draw()
            .map_err(drawing)?;
        draw(&mut chart)?;
        root.present().map_err(drawing)?;
    }
    Ok(Svg(svg))
}

/// One stacked bar per step: done, running, todo, waiting, held, failed.
pub fn step_bars(steps: &[StepRow]) -> Result<Svg> {
    let most = steps.iter().map(|s| s.total).max().unwrap_or(0).max(1);
    let names: Vec<&str> = steps.iter().map(|s| s.step.as_str()).collect();
    let height = (56 + 28 * steps.len() as u32).max(126);
    // The x label area holds the tick labels and, below them, the axis title.
    rows_chart(&names, (height, 44, 130), 0u64..most, "tasks", |chart| {
        for (k, s) in steps.iter().enumerate() {
            let i = row_at(k, steps.len());
            let mut from = 0u64;
            for (state, count) in [
                ("done", s.done),
                ("running", s.running),
                ("todo", s.todo),
                ("waiting", s.waiting),
                ("held", s.held),
                ("failed", s.failed),
            ] {
                if count == 0 {
                    continue;
                }
                let colour = state_colour(state).unwrap_or(BLACK);
                let mut bar = Rectangle::new(
                    [
                        (from, SegmentValue::Exact(i)),
                        (from + count, SegmentValue::Exact(i + 1)),
                    ],
                    colour.filled(),
                );
                bar.set_margin(4, 4, 0, 0);
                chart.draw_series(std::iter::once(bar)).map_err(drawing)?;
                from += count;
            }
        }
        Ok(())
    })
}

/// One line per step through `per_step`'s values, the n-th point at `labels[n]`.
pub fn lines(labels: &[String], per_step: &[(String, Vec<u64>)], y_desc: &str) -> Result<Svg> {
    let days = labels;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let most = highest(per_step);
        let last_day = days.len().saturating_sub(1).max(1) as u32;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(50)
            .build_cartesian_2d(0u32..last_day, 0u64..most)
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .label_style(TEXT)
            .axis_desc_style(TEXT)
            .x_labels(days.len().min(8))
            .x_label_formatter(&|i| days.get(*i as usize).cloned().unwrap_or_default())
            .y_desc(y_desc)
            .draw()
            .map_err(drawing)?;
        for (k, (step, values)) in per_step.iter().enumerate() {
            let colour = line_colour(k);
            chart
                .draw_series(LineSeries::new(
                    values.iter().enumerate().map(|(i, v)| (i as u32, *v)),
                    colour.stroke_width(3),
                ))
                .map_err(drawing)?
                .label(step.clone())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(3))
                });
            // A series of a point or two (a day or two) shows as dots, not an empty chart.
            let dots = if values.len() <= 2 { values.len() } else { 0 };
            chart
                .draw_series(
                    values
                        .iter()
                        .take(dots)
                        .enumerate()
                        .map(|(i, v)| Circle::new((i as u32, *v), 4, colour.filled())),
                )
                .map_err(drawing)?;
        }
        chart
            .configure_series_labels()
            .label_font(TEXT)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(drawing)?;
        root.present().map_err(drawing)?;
    }
    Ok(Svg(svg))
}

/// Run times per step as boxes: whiskers from the shortest to the longest run, the box from
/// the lower to the upper quartile, a bar at the median; in seconds, minutes or hours, as the
/// longest run needs.
pub fn run_time_boxes(steps: &[crate::catalog::history::RunTimes]) -> Result<Svg> {
    let longest = steps.iter().map(|s| s.quartiles[4]).fold(0.0f64, f64::max);
    let (unit, per) = match longest {
        x if x < 120.0 => ("seconds", 1.0),
        x if x < 7200.0 => ("minutes", 60.0),
        _ => ("hours", 3600.0),
    };
    let minutes = |s: f64| s / per;
    let most = steps
        .iter()
        .map(|s| minutes(s.quartiles[4]))
        .fold(0.0f64, f64::max)
        .max(0.01)
        * 1.05;
    let names: Vec<&str> = steps.iter().map(|s| s.step.as_str()).collect();
    let height = (50 + 34 * steps.len() as u32).max(120);
    let x_desc = format!("{unit} per task");
    rows_chart(
        &names,
        (height + 14, 44, 130),
        0f64..most,
        &x_desc,
        |chart| {
            let ink = RGBColor(52, 101, 164);
            for (k, s) in steps.iter().enumerate() {
                let i = row_at(k, steps.len());
                let [lo, q1, median, q3, hi] = s.quartiles.map(minutes);
                let centre = SegmentValue::CenterOf(i);
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        [(lo, centre.clone()), (hi, centre)],
                        ink.stroke_width(1),
                    )))
                    .map_err(drawing)?;
                let mut body = Rectangle::new(
                    [
                        (q1, SegmentValue::Exact(i)),
                        (q3, SegmentValue::Exact(i + 1)),
                    ],
                    ink.mix(0.35).filled(),
                );
                body.set_margin(6, 6, 0, 0);
                chart.draw_series(std::iter::once(body)).map_err(drawing)?;
                let mut mid = Rectangle::new(
                    [
                        (median, SegmentValue::Exact(i)),
                        (median + most / 400.0, SegmentValue::Exact(i + 1)),
                    ],
                    ink.filled(),
                );
                mid.set_margin(4, 4, 0, 0);
                chart.draw_series(std::iter::once(mid)).map_err(drawing)?;
            }
            Ok(())
        },
    )
}

/// Tasks per instance over a window: a row per instance, a bar per run in its state's colour;
/// time in hours before the window's end.
pub fn timeline(
    instances: &[crate::catalog::history::InstanceRuns],
    from: i64,
    to: i64,
) -> Result<Svg> {
    let hours = |at: i64| (at - to) as f64 / 3_600_000.0;
    let names: Vec<&str> = instances.iter().map(|i| i.instance_id.as_str()).collect();
    let height = (64 + 22 * instances.len() as u32).max(134);
    let x = hours(from)..0f64;
    rows_chart(
        &names,
        (height, 44, 150),
        x,
        "hours before the report",
        |chart| {
            for (k, instance) in instances.iter().enumerate() {
                let i = row_at(k, instances.len());
                for run in &instance.runs {
                    let colour = state_colour(&run.state).unwrap_or(BLACK);
                    // A run of seconds still shows as a sliver.
                    let end =
                        hours(run.end).max(hours(run.start) + (to - from) as f64 / 3.6e9 / 4.0);
                    let mut bar = Rectangle::new(
                        [
                            (hours(run.start), SegmentValue::Exact(i)),
                            (end, SegmentValue::Exact(i + 1)),
                        ],
                        colour.filled(),
                    );
                    bar.set_margin(2, 2, 0, 0);
                    chart.draw_series(std::iter::once(bar)).map_err(drawing)?;
                }
            }
            Ok(())
        },
    )
}

/// The highest of the values, at least 1 (an axis of zero height draws nothing).
fn highest(per_step: &[(String, Vec<u64>)]) -> u64 {
    per_step
        .iter()
        .filter_map(|(_, v)| v.iter().max().copied())
        .max()
        .unwrap_or(0)
        .max(1)
}

/// Step `k`'s bar of `n` on day `d`: its slice of the day's width (`day` pixels, in
/// slices of `slice` pixels, one per step), in the step's line colour.
fn day_bar(d: usize, n: u64, k: usize, slice: f64, day: f64) -> Rectangle<(u32, u64)> {
    let mut bar = Rectangle::new(
        [(d as u32, 0u64), (d as u32 + 1, n)],
        line_colour(k).filled(),
    );
    let left = 2.0 + k as f64 * slice;
    let right = (day - left - slice).max(0.0);
    bar.set_margin(0, 0, left as u32, right as u32);
    bar
}

/// Tasks done per day: for each day a group of bars, one per step (in the steps' line
/// colours), so one day or equal counts still show.
pub fn day_bars(days: &[String], per_step: &[(String, Vec<u64>)]) -> Result<Svg> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let most = highest(per_step);
        let n_days = days.len().max(1) as u32;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(50)
            // Day d spans d..d + 1; its tick, at d, is labelled with the day.
            // Headroom above the highest bar for the legend.
            .build_cartesian_2d(0u32..n_days, 0u64..most + most / 2 + 1)
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .label_style(TEXT)
            .axis_desc_style(TEXT)
            .disable_x_mesh()
            .x_labels(days.len().min(8))
            .x_label_formatter(&|i| days.get(*i as usize).cloned().unwrap_or_default())
            .y_desc("tasks done that day")
            .draw()
            .map_err(drawing)?;
        // Each day's width split in equal slices, one per step: a bar's margins are pixels.
        let steps = per_step.len().max(1) as f64;
        let day = chart.plotting_area().dim_in_pixel().0 as f64 / f64::from(n_days);
        let slice = ((day - 4.0) / steps).max(1.0);
        for (k, (step, counts)) in per_step.iter().enumerate() {
            let colour = line_colour(k);
            chart
                .draw_series(
                    counts
                        .iter()
                        .enumerate()
                        .filter(|(_, n)| **n > 0)
                        .map(|(d, n)| day_bar(d, *n, k, slice, day)),
                )
                .map_err(drawing)?
                .label(step.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(TEXT)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(drawing)?;
        root.present().map_err(drawing)?;
    }
    Ok(Svg(svg))
}

/// A QC gate's metric over the cohort: a bar per bin of samples (`counts`, from `lo` in steps
/// of `width`; a bin whose middle fails the gate in the held colour), and the gate's threshold
/// as a vertical line in the held colour, labelled.
pub fn gate_histogram(
    lo: f64,
    width: f64,
    counts: &[u64],
    passes: impl Fn(f64) -> bool,
    threshold: f64,
    metric: &str,
    label: &str,
) -> Result<Svg> {
    let hi = lo + width * counts.len() as f64;
    let (from, to) = (lo.min(threshold), hi.max(threshold));
    let pad = (to - from) * 0.05 + 0.5;
    let most = counts.iter().copied().max().unwrap_or(0).max(1);
    let top = most + most / 5 + 1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 280)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d((from - pad)..(to + pad), 0u64..top)
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .label_style(TEXT)
            .axis_desc_style(TEXT)
            .disable_x_mesh()
            .x_desc(metric)
            .y_desc("samples")
            .draw()
            .map_err(drawing)?;
        let (ink, line) = (
            RGBColor(52, 101, 164),
            state_colour("held").unwrap_or(BLACK),
        );
        let bars = counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| {
                let left = lo + width * i as f64;
                let colour = if passes(left + width / 2.0) {
                    ink.filled()
                } else {
                    line.mix(0.6).filled()
                };
                let mut bar = Rectangle::new([(left, 0), (left + width, *n)], colour);
                bar.set_margin(0, 0, 1, 1);
                bar
            });
        chart.draw_series(bars).map_err(drawing)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                [(threshold, 0), (threshold, top)],
                line.stroke_width(3),
            )))
            .map_err(drawing)?;
        let style = TEXT.into_font().color(&line);
        chart
            .draw_series(std::iter::once(Text::new(
                label.to_string(),
                (threshold, top - top / 12),
                style,
            )))
            .map_err(drawing)?;
        root.present().map_err(drawing)?;
    }
    Ok(Svg(svg))
}
