//! Turns named fields (a CSV row, a JSON object) into a task: known names fill task fields,
//! every other name becomes an attribute. It also reads a JSON value as a field's text
//! (`scalar`, `type_name`) for every reader (plain JSON, PiCaS tokens, tables), so the readers
//! share it from here and not from one another: `json` hands tokens to `picas`, never back.

use serde_json::Value;

use crate::clock::parse_duration;
use crate::model::{Attrs, NewTask};

use super::Defaults;

/// What the input format calls the fields a task needs, for messages about a missing one.
pub(crate) struct Names {
    pub collection: &'static str,
    pub task_id: &'static str,
    pub script: &'static str,
    /// "column" or "field".
    pub kind: &'static str,
}

impl Names {
    /// CSV/TSV columns and JSON Lines keys.
    pub const PLAIN: Names = Names {
        collection: "collection",
        task_id: "task_id",
        script: "script",
        kind: "column",
    };
    /// PiCaS token fields.
    pub const PICAS: Names = Names {
        collection: "type",
        task_id: "_id",
        script: "Task_Script",
        kind: "field",
    };
}

/// Builds tasks from `name = value` pairs, in the order a row gives them.
pub(crate) struct TaskFields<'a> {
    defaults: &'a Defaults,
    names: &'static Names,
    collection: Option<String>,
    task_id: Option<String>,
    sample: Option<String>,
    script: Option<String>,
    max_attempts: Option<u32>,
    timeout_secs: Option<u64>,
    after: Option<Vec<String>>,
    require: Option<Vec<String>>,
    attrs: Attrs,
}

/// Why a field name one slip away from a task field's (`smaple`) is refused, rather than
/// silently becoming an attribute; `None` for a field or a plain attribute name.
pub fn misspelt(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let known = lower.as_str();
    if FIELDS.contains(&known) {
        return None;
    }
    let field = FIELDS
        .iter()
        .find(|f| known.len() >= 4 && one_slip(known, f) && !plural_or_numbered(known, f))?;
    Some(format!(
        "column '{name}' looks like '{field}', misspelt; rename it to '{field}' (or, if it \
         really is an attribute, to something less like a task field)"
    ))
}

impl<'a> TaskFields<'a> {
    pub fn new(defaults: &'a Defaults) -> Self {
        Self::named(defaults, &Names::PLAIN)
    }

    /// Fields of a format that calls them `names`.
    pub fn named(defaults: &'a Defaults, names: &'static Names) -> Self {
        Self {
            defaults,
            names,
            collection: None,
            task_id: None,
            sample: None,
            script: None,
            max_attempts: None,
            timeout_secs: None,
            after: None,
            require: None,
            attrs: Attrs::new(),
        }
    }

    /// Takes one field (its name checked by [`misspelt`]). Empty values count as absent. Field names are matched ignoring case
    /// (`Sample` is the sample); a name one slip away from a field's (`smaple`) is refused
    /// rather than silently becoming an attribute.
    pub fn set(&mut self, name: &str, value: String) -> Result<(), String> {
        if value.is_empty() {
            return Ok(());
        }
        if let Some(problem) = misspelt(name) {
            return Err(problem);
        }
        let lower = name.to_ascii_lowercase();
        let known = lower.as_str();
        match known {
            "collection" => self.collection = Some(value),
            "task_id" | "id" => self.task_id = Some(value),
            "sample" | "sample_id" => self.sample = Some(value),
            "script" => self.script = Some(value),
            "max_attempts" => {
                self.max_attempts = Some(
                    value
                        .trim()
                        .parse()
                        .map_err(|_| format!("max_attempts '{value}' is not a whole number"))?,
                )
            }
            "timeout" | "timeout_secs" => self.timeout_secs = Some(parse_timeout(&value)?),
            "after" => self.after = Some(super::parse_after(&value)),
            "require" => self.require = Some(super::parse_require(&value)),
            _ => {
                self.attrs.insert(name.to_string(), value);
            }
        }
        Ok(())
    }

    pub fn set_attr(&mut self, name: &str, value: String) {
        self.attrs.insert(name.to_string(), value);
    }

    pub fn finish(self) -> Result<NewTask, String> {
        let n = self.names;
        let collection = self
            .collection
            .or_else(|| self.defaults.collection.clone())
            .ok_or_else(|| {
                format!(
                    "no collection: add a '{}' {} or pass --collection",
                    n.collection, n.kind
                )
            })?;
        let task_id = self
            .task_id
            .ok_or_else(|| format!("no task id: add a '{}' {}", n.task_id, n.kind))?;
        let script = self.script.ok_or_else(|| {
            format!(
                "task '{task_id}' has no script: fill its '{}' {} (or add one)",
                n.script, n.kind
            )
        })?;
        Ok(NewTask {
            collection,
            task_id,
            sample: self.sample,
            script,
            attrs: self.attrs,
            max_attempts: self.max_attempts.unwrap_or(self.defaults.max_attempts),
            timeout_secs: self.timeout_secs.or(self.defaults.timeout_secs),
            after: self.after.unwrap_or_else(|| self.defaults.after.clone()),
            require: self
                .require
                .unwrap_or_else(|| self.defaults.require.clone()),
        })
    }
}

/// The names that fill task fields rather than attributes.
const FIELDS: &[&str] = &[
    "collection",
    "task_id",
    "id",
    "sample",
    "sample_id",
    "script",
    "max_attempts",
    "timeout",
    "timeout_secs",
    "after",
    "require",
];

/// `samples`, `sample2`: a field's name plus `s` or digits is a name of its own.
fn plural_or_numbered(name: &str, field: &str) -> bool {
    name.strip_prefix(field)
        .is_some_and(|rest| rest == "s" || rest.chars().all(|c| c.is_ascii_digit()))
}

/// True when `a` becomes `b` by one edit: a letter changed, added, dropped, or two swapped.
pub(crate) fn one_slip(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a == b {
        return false;
    }
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let (ra, rb) = (&a[prefix..], &b[prefix..]);
    let same = |x: &[char], y: &[char]| x == y;
    same(&ra[ra.len().min(1)..], &rb[rb.len().min(1)..]) && ra.len() == rb.len()
        || same(&ra[ra.len().min(1)..], rb) && ra.len() == rb.len() + 1
        || same(ra, &rb[rb.len().min(1)..]) && rb.len() == ra.len() + 1
        || (ra.len() >= 2
            && ra.len() == rb.len()
            && ra[0] == rb[1]
            && ra[1] == rb[0]
            && ra[2..] == rb[2..])
}

/// A timeout is whole seconds or a duration such as `6h`.
pub(crate) fn parse_timeout(value: &str) -> Result<u64, String> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return if secs == 0 {
            Err("timeout must be longer than zero".into())
        } else {
            Ok(secs)
        };
    }
    Ok(parse_duration(v)?.as_secs().max(1))
}

/// Strings, numbers and booleans become text; null is absent; nested values are refused.
pub(crate) fn scalar(name: &str, value: Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        Value::Array(_) | Value::Object(_) => Err(format!(
            "field '{name}' is {}; expected a string or a number",
            type_name(&value)
        )),
    }
}

/// How a message names a JSON value's type.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::one_slip;

    #[test]
    fn slips_are_one_edit() {
        for (a, b) in [
            ("smaple", "sample"),
            ("sampel", "sample"),
            ("sampl", "sample"),
            ("scrpt", "script"),
            ("taks_id", "task_id"),
            ("collecton", "collection"),
            ("sxmple", "sample"),
            ("samplex", "sample"),
        ] {
            assert!(one_slip(a, b), "{a} {b}");
        }
        for (a, b) in [
            ("sample", "sample"),
            ("reference", "sample"),
            ("smpl", "sample"),
            ("ref", "id"),
        ] {
            assert!(!one_slip(a, b), "{a} {b}");
        }
    }
}
