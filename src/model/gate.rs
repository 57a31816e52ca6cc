//! QC gates: what a task added `--require 'mean_coverage >= 15'` needs of the metrics its
//! upstream tasks reported before it may run. One metric, one comparison, one number or quoted
//! word; parsed when the task is added (a malformed gate is refused with the column it fails
//! at) and judged when its upstream is done. A gate that cannot be judged (the metric was never
//! reported, or is a word where a number is asked) holds the task: a metric silently missing
//! must not pass a sample on.

use std::fmt;

use super::{MetricValue, check_metric_name};

/// The most gates one task may carry.
pub const MAX_GATES: usize = 16;

/// How a gate compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    /// Longest first, so `<=` is not read as `<`.
    const ALL: [(&'static str, Op); 6] = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    /// The comparison that holds when this one fails: how a hold is worded
    /// (`12.4 < 15` for a gate `>= 15`).
    fn negated(self) -> Op {
        match self {
            Op::Lt => Op::Ge,
            Op::Le => Op::Gt,
            Op::Gt => Op::Le,
            Op::Ge => Op::Lt,
            Op::Eq => Op::Ne,
            Op::Ne => Op::Eq,
        }
    }

    fn compare<T: PartialOrd>(self, a: &T, b: &T) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

/// One gate: `metric op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    pub metric: String,
    pub op: Op,
    pub value: MetricValue,
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.metric, self.op.as_str())?;
        match &self.value {
            MetricValue::Number(n) => write!(f, "{n}"),
            MetricValue::Text(t) => write!(f, "'{t}'"),
        }
    }
}

/// A metric as the gate reads it: its value and the run that reported it
/// (`ReadProcessing/S17 run 2`).
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub value: MetricValue,
    pub source: String,
}

impl Gate {
    /// Parses `mean_coverage >= 15`, `freemix < 0.03`, `sex == 'F'`. The error names the column
    /// (1-based) where the text stops making sense, and what was expected there.
    pub fn parse(text: &str) -> Result<Gate, String> {
        let fail = |at: usize, what: &str| {
            Err(format!(
                "gate '{text}': at column {}, {what} (a gate is METRIC OP VALUE, e.g. \
                 'mean_coverage >= 15'; OP is one of < <= > >= == !=)",
                at + 1
            ))
        };
        let start = text.len() - text.trim_start().len();
        let name_len = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
            .unwrap_or(text.len() - start);
        let metric = &text[start..start + name_len];
        if metric.is_empty() {
            return fail(start, "expected a metric name");
        }
        if let Err(e) = check_metric_name(metric) {
            return fail(start, &e);
        }
        let mut at = start + name_len;
        at += text[at..].len() - text[at..].trim_start().len();
        let Some((symbol, op)) = Op::ALL.iter().find(|(s, _)| text[at..].starts_with(s)) else {
            return fail(at, "expected one of < <= > >= == !=");
        };
        let op_at = at;
        at += symbol.len();
        at += text[at..].len() - text[at..].trim_start().len();
        let rest = text[at..].trim_end();
        if rest.is_empty() {
            return fail(at, "expected a number or a quoted word to compare with");
        }
        let value = match rest.chars().next() {
            Some(q @ ('\'' | '"')) => {
                if rest.len() < 2 || !rest.ends_with(q) || rest[1..rest.len() - 1].contains(q) {
                    return fail(at, "a quoted word must end with the quote it starts with");
                }
                MetricValue::Text(rest[1..rest.len() - 1].to_string())
            }
            _ => match rest.parse::<f64>() {
                Ok(n) if n.is_finite() => MetricValue::Number(n),
                _ => {
                    // A word is quoted, and only == and != compare one.
                    let wordy = rest
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
                    let hint = if !wordy {
                        "a number, such as 15 or 0.03".to_string()
                    } else if matches!(op, Op::Eq | Op::Ne) {
                        format!(
                            "a number; to compare a word, quote it: '{rest}' (in the shell: \
                             --require \"{metric} {} '{rest}'\")",
                            symbol
                        )
                    } else {
                        format!("a number ({} compares numbers only)", symbol)
                    };
                    return fail(at, &format!("'{rest}' is not {hint}"));
                }
            },
        };
        if matches!(value, MetricValue::Text(_)) && !matches!(op, Op::Eq | Op::Ne) {
            return fail(
                op_at,
                "only == and != compare a word; < <= > >= need a number",
            );
        }
        Ok(Gate {
            metric: metric.to_string(),
            op: *op,
            value,
        })
    }

    /// Why this gate holds a task, given the metric's reading; `None` when it passes.
    pub fn fails(&self, reading: Option<&Reading>) -> Option<String> {
        let Some(reading) = reading else {
            return Some(format!("no {} reported", self.metric));
        };
        let passes = match (&reading.value, &self.value) {
            (MetricValue::Number(v), MetricValue::Number(g)) => self.op.compare(v, g),
            (MetricValue::Text(v), MetricValue::Text(g)) => self.op.compare(v, g),
            (MetricValue::Text(v), MetricValue::Number(_)) => {
                return Some(format!(
                    "{} is '{v}', not a number ({})",
                    self.metric, reading.source
                ));
            }
            // A number against a word: compared as the words they print as.
            (MetricValue::Number(v), MetricValue::Text(g)) => self.op.compare(&v.to_string(), g),
        };
        (!passes).then(|| {
            let wanted = match &self.value {
                MetricValue::Number(n) => n.to_string(),
                MetricValue::Text(t) => format!("'{t}'"),
            };
            format!(
                "{} {} {} {wanted} ({})",
                self.metric,
                reading.value,
                self.op.negated().as_str(),
                reading.source
            )
        })
    }
}

/// Parses a task's gates, in order; the first malformed one refuses them all.
pub fn parse_gates(texts: &[String]) -> Result<Vec<Gate>, String> {
    if texts.len() > MAX_GATES {
        return Err(format!(
            "{} gates on one task; the most is {MAX_GATES}",
            texts.len()
        ));
    }
    texts.iter().map(|t| Gate::parse(t)).collect()
}

/// The verdict of a task's gates on its upstream's readings: `None` when every gate passes,
/// else the hold's reason (`held: mean_coverage 12.4 < 15 (ReadProcessing/S17 run 2)`), every
/// failing gate named.
pub fn judge<'a>(gates: &[Gate], reading: impl Fn(&str) -> Option<&'a Reading>) -> Option<String> {
    let failing: Vec<String> = gates
        .iter()
        .filter_map(|g| g.fails(reading(&g.metric)))
        .collect();
    (!failing.is_empty()).then(|| format!("held: {}", failing.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(v: MetricValue) -> Reading {
        Reading {
            value: v,
            source: "ReadProcessing/S17 run 2".into(),
        }
    }

    #[test]
    fn gates_parse_and_print_back() {
        let g = Gate::parse("  mean_coverage>=15 ").unwrap();
        assert_eq!(g.metric, "mean_coverage");
        assert_eq!(g.op, Op::Ge);
        assert_eq!(g.to_string(), "mean_coverage >= 15");
        assert_eq!(Gate::parse("freemix < 0.03").unwrap().op, Op::Lt);
        assert_eq!(
            Gate::parse("sex == 'F'").unwrap().value,
            MetricValue::Text("F".into())
        );
        assert_eq!(
            Gate::parse("x != \"a b\"").unwrap().to_string(),
            "x != 'a b'"
        );
    }

    #[test]
    fn malformed_gates_name_their_column() {
        let e = Gate::parse("mean_coverage >> 15").unwrap_err();
        assert!(e.contains("at column 16"), "{e}");
        let e = Gate::parse("mean_coverage = 15").unwrap_err();
        assert!(
            e.contains("column 15") && e.contains("< <= > >= == !="),
            "{e}"
        );
        let e = Gate::parse("mean_coverage >= fifteen").unwrap_err();
        assert!(
            e.contains("column 18") && e.contains("'fifteen' is not a number (>= compares"),
            "{e}"
        );
        let e = Gate::parse("sex == F").unwrap_err();
        assert!(
            e.contains("quote it: 'F' (in the shell: --require \"sex == 'F'\")"),
            "{e}"
        );
        let e = Gate::parse("mean_coverage >= 15x%").unwrap_err();
        assert!(e.contains("'15x%' is not a number, such as 15"), "{e}");
        let e = Gate::parse(">= 15").unwrap_err();
        assert!(e.contains("column 1") && e.contains("metric name"), "{e}");
        let e = Gate::parse("sex < 'F'").unwrap_err();
        assert!(
            e.contains("column 5") && e.contains("only == and !="),
            "{e}"
        );
        assert!(Gate::parse("x == 'open").is_err());
        assert!(
            Gate::parse("x >= ")
                .unwrap_err()
                .contains("expected a number")
        );
        assert!(Gate::parse("x >= inf").is_err());
    }

    #[test]
    fn a_hold_names_the_value_the_threshold_and_the_run() {
        let g = Gate::parse("mean_coverage >= 15").unwrap();
        let low = reading(MetricValue::Number(12.4));
        let got = judge(std::slice::from_ref(&g), |_| Some(&low));
        assert_eq!(
            got.as_deref(),
            Some("held: mean_coverage 12.4 < 15 (ReadProcessing/S17 run 2)")
        );
        let fine = reading(MetricValue::Number(15.0));
        assert_eq!(judge(std::slice::from_ref(&g), |_| Some(&fine)), None);
        assert_eq!(
            judge(&[g], |_| None).as_deref(),
            Some("held: no mean_coverage reported")
        );
        let word = Gate::parse("mean_coverage >= 15").unwrap();
        let text = reading(MetricValue::Text("n/a".into()));
        assert!(word.fails(Some(&text)).unwrap().contains("not a number"));
    }
}
