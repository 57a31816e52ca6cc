//! Task <-> DynamoDB item. Nobody else knows the attribute names.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::model::{Attrs, NewTask, Task, TaskKey, TaskState};

pub type Item = HashMap<String, AttributeValue>;

/// The sort key of the sparse claim index: when the task may be claimed (creation time
/// while `todo`, lease expiry while `running`). Finished tasks do not have it, so the index
/// holds only tasks that are or will become claimable.
pub const CLAIMABLE_AT: &str = "claimable_at";
/// The partition key of the claim index: `collection#NN`, one of the collection's shards
/// (claim.rs). Set when the task is written and never changed.
pub const CLAIM_SHARD: &str = "claim_shard";
/// The sharded claim index on (claim_shard, claimable_at).
pub const INDEX: &str = "claim_by_shard";
/// The unsharded index of tables made before sharding, on (collection, claimable_at);
/// `anamo store init` replaces it.
pub const LEGACY_INDEX: &str = "claimable";

pub fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

pub fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The claim shard a task belongs to.
pub fn shard_of_task(collection: &str, task_id: &str) -> String {
    super::claim::shard_key(collection, super::claim::shard_of(task_id))
}

pub fn key(collection: &str, task_id: &str) -> Item {
    HashMap::from([
        ("collection".to_string(), s(collection)),
        ("task_id".to_string(), s(task_id)),
    ])
}

/// A new task's item, `todo` and claimable from `now`.
pub fn from_new(t: &NewTask, now: i64, version: i64) -> Item {
    let mut item = key(&t.collection, &t.task_id);
    item.insert("script".into(), s(&t.script));
    item.insert("state".into(), s(TaskState::Todo.as_str()));
    item.insert("attempts".into(), n(0));
    item.insert("max_attempts".into(), n(t.max_attempts));
    item.insert("created_at".into(), n(now));
    item.insert("updated_at".into(), n(now));
    item.insert("version".into(), n(version));
    item.insert(CLAIMABLE_AT.into(), n(now));
    item.insert(
        CLAIM_SHARD.into(),
        s(&shard_of_task(&t.collection, &t.task_id)),
    );
    if let Some(sample) = &t.sample {
        item.insert("sample".into(), s(sample));
    }
    if let Some(secs) = t.timeout_secs {
        item.insert("timeout_secs".into(), n(secs));
    }
    if !t.attrs.is_empty() {
        let map = t.attrs.iter().map(|(k, v)| (k.clone(), s(v))).collect();
        item.insert("attrs".into(), AttributeValue::M(map));
    }
    item
}

fn get_s(item: &Item, name: &str) -> Result<Option<String>, String> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
        Some(_) => Err(format!("attribute '{name}' is not a string")),
    }
}

fn get_n(item: &Item, name: &str) -> Result<Option<i64>, String> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(v)) => v
            .parse::<f64>()
            .map(|f| Some(f as i64))
            .map_err(|_| format!("attribute '{name}' is not a number")),
        Some(_) => Err(format!("attribute '{name}' is not a number")),
    }
}

fn need<T>(v: Option<T>, name: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("missing required attribute '{name}'"))
}

/// The key of an item, as far as it can be read (for reporting damaged items).
pub fn key_text(item: &Item) -> String {
    let part = |n: &str| get_s(item, n).ok().flatten().unwrap_or_else(|| "?".into());
    format!("{}/{}", part("collection"), part("task_id"))
}

pub fn task_key(item: &Item) -> Option<TaskKey> {
    Some(TaskKey {
        collection: get_s(item, "collection").ok()??,
        task_id: get_s(item, "task_id").ok()??,
    })
}

/// Reads a task; an item written by hand without required attributes is an error message.
pub fn to_task(item: &Item) -> Result<Task, String> {
    let state: String = need(get_s(item, "state")?, "state")?;
    let attrs: Attrs = match item.get("attrs") {
        None => Attrs::new(),
        Some(AttributeValue::M(m)) => m
            .iter()
            .map(|(k, v)| match v {
                AttributeValue::S(s) => Ok((k.clone(), s.clone())),
                _ => Err(format!("attribute attrs.{k} is not a string")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("attribute 'attrs' is not a map".into()),
    };
    Ok(Task {
        collection: need(get_s(item, "collection")?, "collection")?,
        task_id: need(get_s(item, "task_id")?, "task_id")?,
        sample: get_s(item, "sample")?,
        script: need(get_s(item, "script")?, "script")?,
        attrs,
        state: state.parse()?,
        attempts: get_n(item, "attempts")?.unwrap_or(0) as u32,
        max_attempts: need(get_n(item, "max_attempts")?, "max_attempts")? as u32,
        timeout_secs: get_n(item, "timeout_secs")?.map(|v| v as u64),
        owner: get_s(item, "owner")?,
        lease_until: get_n(item, "lease_until")?,
        created_at: get_n(item, "created_at")?.unwrap_or(0),
        updated_at: get_n(item, "updated_at")?.unwrap_or(0),
        started_at: get_n(item, "started_at")?,
        finished_at: get_n(item, "finished_at")?,
        exit_code: get_n(item, "exit_code")?.map(|v| v as i32),
        log_uri: get_s(item, "log_uri")?,
        error_tail: get_s(item, "error_tail")?,
        version: need(get_n(item, "version")?, "version")?,
    })
}

/// Attribute names used in an expression: every `#name` token stands for `name`, so reserved
/// words (state, owner, ...) never clash.
pub fn names_in(expressions: &[&str]) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for e in expressions {
        let mut rest = *e;
        while let Some(i) = rest.find('#') {
            let tail = &rest[i + 1..];
            let len = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(format!("#{}", &tail[..len]), tail[..len].to_string());
            rest = &tail[len..];
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let t = NewTask {
            collection: "A".into(),
            task_id: "t1".into(),
            sample: Some("S1".into()),
            script: "true".into(),
            attrs: Attrs::from([("ref".to_string(), "hg38".to_string())]),
            max_attempts: 3,
            timeout_secs: Some(60),
        };
        let item = from_new(&t, 5, 0);
        let back = to_task(&item).unwrap();
        assert_eq!(
            (back.task_id.as_str(), back.attrs["ref"].as_str()),
            ("t1", "hg38")
        );
        let mut broken = item.clone();
        broken.remove("script");
        assert_eq!(
            to_task(&broken).unwrap_err(),
            "missing required attribute 'script'"
        );
        assert_eq!(key_text(&broken), "A/t1");
    }

    #[test]
    fn names_are_found() {
        let n = names_in(&["SET #state = :s, #version = #version + :one", "#owner = :o"]);
        assert_eq!(n.len(), 3);
        assert_eq!(n["#state"], "state");
    }
}
