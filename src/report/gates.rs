//! The page's QC gates section: for each gate a step's tasks carry, the distribution of the
//! metric it reads over the cohort with its threshold drawn, and the samples it holds, with
//! why. No section without a gate.

use super::Options;
use super::charts;
use super::page::{Cell, Html, Row, chart, element, p, table};
use crate::catalog::CatalogRead;
use crate::error::Result;
use crate::model::MetricValue;

pub fn gates(catalog: &CatalogRead, opts: &Options) -> Result<Html> {
    let views = catalog.gates(opts.failures_listed)?;
    if views.is_empty() {
        return Ok(Html::lit(""));
    }
    let mut out = Html::lit("<h2>QC gates</h2>");
    out += p(Html::text(
        "What each step requires of its upstream's reported metrics (--require): each sample's \
         latest value, the threshold as a line, and the samples held for a person to look at \
         (anamo tasks release, or re-run the step upstream).",
    ));
    for v in views {
        let gate = v.gate.to_string();
        out += element(
            "h3",
            &[],
            Html::text(&format!("{} requires {gate}", v.step)),
        );
        out += p(Html::text(&match v.held_total {
            0 => "It holds no sample.".to_string(),
            n => format!("It holds {n} sample task(s)."),
        }));
        match (&v.histogram, &v.gate.value) {
            (Some((lo, width, counts)), MetricValue::Number(threshold)) => {
                let gate_of = &v.gate;
                let passes = |x: f64| {
                    let reading = crate::model::Reading {
                        value: MetricValue::Number(x),
                        source: String::new(),
                    };
                    gate_of.fails(Some(&reading)).is_none()
                };
                let svg = charts::gate_histogram(
                    *lo,
                    *width,
                    counts,
                    passes,
                    *threshold,
                    &v.gate.metric,
                    &format!("{} {}", v.gate.op.as_str(), threshold),
                )?;
                let threshold = threshold.to_string();
                out += element(
                    "figure",
                    &[
                        ("class", "gate"),
                        ("data-step", &v.step),
                        ("data-gate", &gate),
                        ("data-threshold", &threshold),
                    ],
                    chart(svg),
                );
            }
            (None, MetricValue::Number(_)) => {
                out += p(Html::text(&format!(
                    "No sample has reported {} yet.",
                    v.gate.metric
                )));
            }
            _ => {}
        }
        if !v.held.is_empty() {
            let rows = v.held.iter().map(|(sample, task, why)| {
                Row::new([
                    Cell::from(sample.as_str()),
                    Cell::from(task.as_str()),
                    Cell::from(why.as_str()).attr("style", "text-align:left"),
                ])
                .attr("data-state", "held")
            });
            out += table(
                &format!("held-{}", v.step),
                &["sample", "task", "why"],
                rows,
            );
        }
    }
    Ok(out)
}
