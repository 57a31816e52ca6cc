//! What a script reports about its run besides its exit code: QC metrics (`ANAMO_METRICS`,
//! `name=value` lines or one JSON object) and the files it wrote (`ANAMO_OUTPUTS`, one a line,
//! `URI` or `KIND<TAB>URI`). Parsed strictly: a malformed line is refused with its number, never
//! skipped, because a metric silently lost is a gate silently passed.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The most a run's two report files may hold together: they travel on the task's item, which
/// DynamoDB caps at 400 KB beside the script and the error tail.
pub const MAX_REPORTED_BYTES: usize = 64 * 1024;
/// The most a run's report may take once stored (JSON adds quotes and names: many short
/// output lines grow several times over).
pub const MAX_REPORTED_STORED_BYTES: usize = 96 * 1024;
/// The largest item DynamoDB stores.
pub const DYNAMODB_ITEM_BYTES: usize = 400 * 1024;
// A done task must fit one item whatever it carries: its script and its attributes (each
// capped at add time), its error tail, its report, and the rest of its fields (names, ids,
// times: well under 16 KiB).
const _: () = assert!(
    2 * super::task::MAX_SCRIPT_BYTES
        + super::task::ERROR_TAIL_BYTES
        + MAX_REPORTED_STORED_BYTES
        + 16 * 1024
        < DYNAMODB_ITEM_BYTES
);
/// The longest metric name.
pub const MAX_METRIC_NAME: usize = 64;
/// The longest output kind.
pub const MAX_KIND: usize = 32;

/// A metric's value: a number (coverage, a rate) or a word (`sex=F`, `pass`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MetricValue {
    Number(f64),
    Text(String),
}

impl MetricValue {
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Self::Number(n) => Some(*n),
            Self::Text(_) => None,
        }
    }
}

impl fmt::Display for MetricValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Text(s) => f.write_str(s),
        }
    }
}

/// A run's metrics by name.
pub type Metrics = BTreeMap<String, MetricValue>;

/// A file a run says it wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// `cram`, `gvcf`, ...: given by the script, or guessed from the name as `sync --objects`
    /// does.
    pub kind: String,
    /// `s3://bucket/key` or a path.
    pub uri: String,
}

/// What one run reported: kept on the task (its last run's) and on its tombstone, so a gate
/// can read it after the task is deleted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reported {
    #[serde(default, skip_serializing_if = "Metrics::is_empty")]
    pub metrics: Metrics,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<Output>,
}

impl Reported {
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty() && self.outputs.is_empty()
    }

    /// The stored form: compact JSON, `None` when there is nothing to keep.
    pub fn to_json(&self) -> Option<String> {
        (!self.is_empty()).then(|| serde_json::to_string(self).unwrap_or_default())
    }

    /// Refuses a report too large to store beside the task.
    pub fn check_stored_size(&self) -> Result<(), String> {
        let size = self.to_json().map_or(0, |j| j.len());
        if size > MAX_REPORTED_STORED_BYTES {
            return Err(format!(
                "the run's metrics and outputs take {size} bytes stored, more than \
                 {MAX_REPORTED_STORED_BYTES}; report fewer"
            ));
        }
        Ok(())
    }

    /// Reads the stored form back.
    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("unreadable reported metrics/outputs: {e}"))
    }
}

/// What is wrong with a report file, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportError {
    /// 1-based; 0 when the whole file is at fault.
    pub line: usize,
    pub problem: String,
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.problem)
        } else {
            write!(f, "line {}: {}", self.line, self.problem)
        }
    }
}

fn at(line: usize, problem: impl Into<String>) -> ReportError {
    ReportError {
        line,
        problem: problem.into(),
    }
}

/// Checks a metric name: a letter, then letters, digits, `_`, `.` or `-`, at most 64 bytes.
pub fn check_metric_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err(format!(
            "metric name '{name}' must start with a letter and hold only letters, digits, _ . -"
        ));
    }
    if name.len() > MAX_METRIC_NAME {
        return Err(format!(
            "metric name '{name}' is longer than {MAX_METRIC_NAME} bytes"
        ));
    }
    Ok(())
}

/// Parses `ANAMO_METRICS`: one JSON object of numbers and strings, or `name=value` lines
/// (blank lines and `#` comments skipped; a value that reads as a finite number is one).
pub fn parse_metrics(text: &str) -> Result<Metrics, ReportError> {
    if text.trim_start().starts_with('{') {
        return parse_metrics_json(text);
    }
    let mut metrics = Metrics::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((name, value)) = trimmed.split_once('=') else {
            return Err(at(line, format!("'{trimmed}' is not name=value")));
        };
        let (name, value) = (name.trim(), value.trim());
        check_metric_name(name).map_err(|e| at(line, e))?;
        if value.is_empty() {
            return Err(at(line, format!("metric '{name}' has no value")));
        }
        let value = match value.parse::<f64>() {
            Ok(n) if n.is_finite() => MetricValue::Number(n),
            Ok(_) => return Err(at(line, format!("metric '{name}' is not a finite number"))),
            Err(_) => MetricValue::Text(value.to_string()),
        };
        if metrics.insert(name.to_string(), value).is_some() {
            return Err(at(line, format!("metric '{name}' is given twice")));
        }
    }
    Ok(metrics)
}

fn parse_metrics_json(text: &str) -> Result<Metrics, ReportError> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| at(e.line(), format!("not a JSON object: {e}")))?;
    let mut metrics = Metrics::new();
    for (name, value) in object {
        check_metric_name(&name).map_err(|e| at(0, e))?;
        let value = match value {
            serde_json::Value::Number(n) => match n.as_f64().filter(|n| n.is_finite()) {
                Some(n) => MetricValue::Number(n),
                None => return Err(at(0, format!("metric '{name}' is not a finite number"))),
            },
            serde_json::Value::String(s) => MetricValue::Text(s),
            other => {
                return Err(at(
                    0,
                    format!("metric '{name}' is {other}: a value is a number or a string"),
                ));
            }
        };
        metrics.insert(name, value);
    }
    Ok(metrics)
}

/// Parses `ANAMO_OUTPUTS`: `URI` or `KIND<TAB>URI` a line (blank lines and `#` comments
/// skipped); without a kind, `guess` names one from the file name.
pub fn parse_outputs(
    text: &str,
    guess: impl Fn(&str) -> &'static str,
) -> Result<Vec<Output>, ReportError> {
    let mut outputs: Vec<Output> = vec![];
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (kind, uri) = match trimmed.split_once('\t') {
            Some((kind, uri)) => (kind.trim().to_string(), uri.trim()),
            None => (guess(trimmed).to_string(), trimmed),
        };
        let kind_ok = !kind.is_empty()
            && kind.len() <= MAX_KIND
            && kind
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'));
        if !kind_ok {
            return Err(at(
                line,
                format!("kind '{kind}' must be 1 to {MAX_KIND} lowercase letters, digits, _ or -"),
            ));
        }
        if uri.is_empty() || uri.contains(char::is_whitespace) || uri.contains(char::is_control) {
            return Err(at(
                line,
                format!("'{uri}' is not a file: give one s3:// URI or path, without spaces"),
            ));
        }
        if uri.starts_with("s3://")
            && uri["s3://".len()..]
                .split_once('/')
                .is_none_or(|(bucket, key)| bucket.is_empty() || key.is_empty())
        {
            return Err(at(line, format!("'{uri}' is not s3://BUCKET/KEY")));
        }
        if outputs.iter().any(|o| o.uri == uri) {
            return Err(at(line, format!("'{uri}' is given twice")));
        }
        outputs.push(Output {
            kind,
            uri: uri.to_string(),
        });
    }
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guess(_: &str) -> &'static str {
        "other"
    }

    #[test]
    fn lines_and_json_read_alike() {
        let lines =
            parse_metrics("# samtools\nmean_coverage=31.2\n\nfreemix = 0.004\nsex=F\n").unwrap();
        let json =
            parse_metrics(r#"{"mean_coverage": 31.2, "freemix": 0.004, "sex": "F"}"#).unwrap();
        assert_eq!(lines, json);
        assert_eq!(lines["mean_coverage"], MetricValue::Number(31.2));
        assert_eq!(lines["sex"], MetricValue::Text("F".into()));
    }

    #[test]
    fn malformed_metrics_name_their_line() {
        for (text, line, says) in [
            ("a=1\nnot a pair\n", 2, "is not name=value"),
            ("a=1\n1x=2\n", 2, "must start with a letter"),
            ("a=\n", 1, "has no value"),
            ("a=1\nb=2\na=3\n", 3, "given twice"),
            ("a=inf\n", 1, "finite"),
        ] {
            let e = parse_metrics(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.problem.contains(says), "{text:?}: {e}");
        }
        let e = parse_metrics(r#"{"a": [1]}"#).unwrap_err();
        assert!(e.to_string().contains("a number or a string"), "{e}");
        let e = parse_metrics("{\"a\": 1,\n").unwrap_err();
        assert!(e.to_string().starts_with("line 2"), "{e}");
    }

    #[test]
    fn outputs_take_a_kind_or_guess_one() {
        let got = parse_outputs(
            "cram\ts3://b/S1.cram\ns3://b/S1.cram.crai\n/data/x.txt\n",
            |u| {
                if u.ends_with(".crai") {
                    "crai"
                } else {
                    "other"
                }
            },
        )
        .unwrap();
        assert_eq!(
            got.iter().map(|o| o.kind.as_str()).collect::<Vec<_>>(),
            ["cram", "crai", "other"]
        );
        for (text, says) in [
            ("CRAM\ts3://b/k\n", "kind 'CRAM'"),
            ("s3://b/\n", "not s3://BUCKET/KEY"),
            ("cram\ta file\n", "without spaces"),
            ("s3://b/k\ns3://b/k\n", "given twice"),
        ] {
            let e = parse_outputs(text, guess).unwrap_err();
            assert!(e.problem.contains(says), "{text:?}: {e}");
        }
    }
}
