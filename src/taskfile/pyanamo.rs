//! PyAnamo task lines: `itemID|taskID|TaskScript|TaskArgs`. The item id is the sample, the
//! script runs as `TaskScript TaskArgs`, and both parts are kept as attributes too.

use crate::error::{Error, Result};
use crate::model::{Attrs, NewTask};

use super::{Defaults, Located};

pub(crate) fn read(file: &str, text: &str, defaults: &Defaults) -> Result<Vec<Located>> {
    let collection = defaults.collection.clone().ok_or_else(|| {
        Error::Invalid(format!(
            "'{file}' is in PyAnamo format, which names no collection; pass --collection"
        ))
    })?;
    let mut tasks = vec![];
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        let raw = raw.trim();
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = raw.splitn(4, '|').map(str::trim).collect();
        if parts.len() < 3 {
            return Err(Error::input(
                file,
                line,
                "expected itemID|taskID|TaskScript|TaskArgs",
            ));
        }
        let args = parts.get(3).copied().unwrap_or("");
        let script = if args.is_empty() {
            parts[2].to_string()
        } else {
            format!("{} {args}", parts[2])
        };
        let mut attrs = Attrs::new();
        attrs.insert("task_script".into(), parts[2].to_string());
        attrs.insert("task_args".into(), args.to_string());
        tasks.push((
            line,
            NewTask {
                collection: collection.clone(),
                task_id: parts[1].to_string(),
                sample: (!parts[0].is_empty()).then(|| parts[0].to_string()),
                script,
                attrs,
                max_attempts: defaults.max_attempts,
                timeout_secs: defaults.timeout_secs,
                after: defaults.after.clone(),
                require: defaults.require.clone(),
            },
        ));
    }
    Ok(tasks)
}
