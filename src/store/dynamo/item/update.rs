//! Writes: each conditional UpdateItem a task goes through. Every write to a task is built by
//! [`TaskWrite`], which always moves the version on, stamps `updated_at` and carries `:v` and
//! `:now`: the read-back that settles an ambiguous write ([`bears_write`]) relies on every
//! write bearing them, so no write can leave them out.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{
    Item, LEASE_UNTIL, NEVER, OWNER, UPDATED_AT, VERSION, Values, attr_n, attr_s, key, n, names_in,
    s, shard_of_task, state_value,
};
use crate::model::{Claim, Outcome, Settle, Task, TaskKey, TaskState};

/// One conditional UpdateItem: the key, what it sets and removes, the condition it needs and
/// the values both use.
#[derive(Debug, Clone)]
pub struct Update {
    pub key: Item,
    pub expression: String,
    pub condition: String,
    pub values: Values,
}

impl Update {
    /// The attribute names its expression and condition use.
    pub fn names(&self) -> HashMap<String, String> {
        names_in(&[&self.expression, &self.condition])
    }
}

/// A write to a task at the version the writer read: `#version = :v` is always part of its
/// condition, and it always sets `updated_at = :now` and `version = version + 1`.
pub struct TaskWrite {
    key: TaskKey,
    set: Vec<String>,
    remove: Vec<&'static str>,
    condition: Vec<String>,
    values: Values,
}

/// Starts a write to task `k`, read at `version`, at time `now`.
pub fn task_write(k: &TaskKey, version: i64, now: i64) -> TaskWrite {
    TaskWrite {
        key: k.clone(),
        set: vec![
            "#updated_at = :now".into(),
            "#version = #version + :one".into(),
        ],
        remove: vec![],
        condition: vec!["#version = :v".into()],
        values: vec![(":v", n(version)), (":now", n(now)), (":one", n(1))],
    }
}

impl TaskWrite {
    /// Sets an attribute (`#name = expression`).
    fn set(mut self, assignment: &str) -> Self {
        self.set.push(assignment.to_string());
        self
    }

    fn remove(mut self, name: &'static str) -> Self {
        self.remove.push(name);
        self
    }

    /// A placeholder's value (`:one`, `:now` and `:v` are always there).
    fn value(mut self, placeholder: &'static str, value: AttributeValue) -> Self {
        if !self.values.iter().any(|(p, _)| *p == placeholder) {
            self.values.push((placeholder, value));
        }
        self
    }

    /// Moves the task to `state`.
    fn to(self, state: TaskState) -> Self {
        let (placeholder, value) = state_value(state);
        self.set(&format!("#state = {placeholder}"))
            .value(placeholder, value)
    }

    /// Only while the task is in `state`.
    fn only_if(mut self, state: TaskState) -> Self {
        let (placeholder, value) = state_value(state);
        self.condition.push(format!("#state = {placeholder}"));
        self.value(placeholder, value)
    }

    /// Only while the task is in one of `states`.
    fn only_if_any(mut self, states: &[TaskState]) -> Self {
        let placeholders: Vec<&str> = states.iter().map(|st| state_value(*st).0).collect();
        self.condition
            .push(format!("#state IN ({})", placeholders.join(", ")));
        for st in states {
            let (placeholder, value) = state_value(*st);
            self = self.value(placeholder, value);
        }
        self
    }

    /// Only while `claim`'s worker holds the task: it owns it, at the version it holds, running.
    fn held(mut self, claim: &Claim) -> Self {
        self.condition.push("#owner = :owner".into());
        self.value(":owner", s(claim.owner()))
            .only_if(TaskState::Running)
    }

    /// A further condition.
    fn when(mut self, condition: &str) -> Self {
        self.condition.push(condition.to_string());
        self
    }

    fn done(self) -> Update {
        let mut expression = format!("SET {}", self.set.join(", "));
        if !self.remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", self.remove.join(", ")));
        }
        Update {
            key: key(&self.key.collection, &self.key.task_id),
            expression,
            condition: self.condition.join(" AND "),
            values: self.values,
        }
    }
}

/// Takes a task for `owner` until `until`: running, one more attempt, and claimable again
/// when the lease runs out. Only if it is still the version the index showed and claimable.
pub fn claim(k: &TaskKey, version: i64, owner: &str, now: i64, until: i64) -> Update {
    task_write(k, version, now)
        .to(TaskState::Running)
        .set("#owner = :owner")
        .set("#lease_until = :until")
        .set("#claimable_at = :until")
        .set("#attempts = #attempts + :one")
        .set("#runs = if_not_exists(#runs, :zero) + :one")
        .set("#started_at = :now")
        .remove("#finished_at")
        .remove("#exit_code")
        .when("#claimable_at <= :now")
        .value(":owner", s(owner))
        .value(":until", n(until))
        .value(":zero", n(0))
        .done()
}

/// A write by the worker holding `claim`'s task.
fn by_holder(claim: &Claim, now: i64) -> TaskWrite {
    let t = &claim.task;
    task_write(&t.key(), t.version, now).held(claim)
}

/// Extends the lease of a held task to `until`. The one write that leaves `updated_at`: a
/// lease extension is not a change, so heartbeats never write the change index.
pub fn heartbeat(claim: &Claim, now: i64, until: i64) -> Update {
    let mut w = by_holder(claim, now)
        .set("#lease_until = :until")
        .set("#claimable_at = :until")
        .value(":until", n(until));
    w.set.retain(|a| !a.starts_with("#updated_at"));
    w.values.retain(|(p, _)| *p != ":now");
    w.done()
}

/// Ends a run of a held task in `state`, with what the run left.
pub fn finish(claim: &Claim, state: TaskState, outcome: &Outcome, now: i64) -> Update {
    let mut w = by_holder(claim, now)
        .to(state)
        .set("#finished_at = :at")
        .remove("#lease_until")
        .value(":at", n(outcome.finished_at));
    // A retried task is claimable again at once; a finished one leaves the index.
    w = if state == TaskState::Todo {
        w.set("#claimable_at = :at")
    } else {
        w.remove("#claimable_at")
    };
    for ((assignment, name, placeholder), value) in [
        (
            ("#exit_code = :exit_code", "#exit_code", ":exit_code"),
            outcome.exit_code.map(n),
        ),
        (
            ("#error_tail = :error_tail", "#error_tail", ":error_tail"),
            outcome.error_tail.as_deref().map(s),
        ),
        (
            ("#log_uri = :log_uri", "#log_uri", ":log_uri"),
            outcome.log_uri.as_deref().map(s),
        ),
        (
            ("#reported = :reported", "#reported", ":reported"),
            outcome.reported.to_json().as_deref().map(s),
        ),
    ] {
        w = match value {
            Some(v) => w.set(assignment).value(placeholder, v),
            None => w.remove(name),
        };
    }
    w.done()
}

/// Hands a held task back unrun: `todo`, claimable at once, the attempt not counted.
pub fn release(claim: &Claim, now: i64) -> Update {
    by_holder(claim, now)
        .to(TaskState::Todo)
        .set("#attempts = #attempts - :one")
        .set("#claimable_at = :now")
        .remove("#lease_until")
        .done()
}

/// Hands a running task whose lease expired back to `todo`, claimable at once.
pub fn requeue_stale(k: &TaskKey, version: i64, now: i64) -> Update {
    task_write(k, version, now)
        .only_if(TaskState::Running)
        .to(TaskState::Todo)
        .set("#claimable_at = :now")
        .remove("#lease_until")
        .done()
}

/// Ends a running task whose worker died on its last attempt: `failed`, out of the index.
pub fn fail_lost(k: &TaskKey, version: i64, now: i64) -> Update {
    task_write(k, version, now)
        .only_if(TaskState::Running)
        .to(TaskState::Failed)
        .set("#finished_at = :now")
        .set("#error_tail = :why")
        .remove("#claimable_at")
        .remove("#lease_until")
        .value(
            ":why",
            s("anamo: the lease expired on the last attempt (worker lost)"),
        )
        .done()
}

/// Settles a waiting or held task: `todo` and claimable at once, or `held` with the reason
/// (never claimable, as `waiting`); a release, or waiting again, only from `held`. Only at
/// `version`, so a settling applied twice changes nothing.
pub fn settle(k: &TaskKey, version: i64, now: i64, settle: &Settle) -> Update {
    let write = task_write(k, version, now);
    let (write, note) = match settle {
        Settle::Run(note) => (
            write
                .only_if_any(&[TaskState::Waiting, TaskState::Held])
                .to(TaskState::Todo)
                .set("#claimable_at = :now"),
            note.as_deref(),
        ),
        // Held, it stays in the claim index as waiting tasks do (never claimable), so an idle
        // worker's look finds it when its upstream is re-run.
        Settle::Hold(why) => (
            write
                .only_if_any(&[TaskState::Waiting, TaskState::Held])
                .to(TaskState::Held)
                .set("#claimable_at = :never")
                .value(":never", n(NEVER)),
            Some(why.as_str()),
        ),
        Settle::Wait(why) => (
            write
                .only_if(TaskState::Held)
                .to(TaskState::Waiting)
                .set("#claimable_at = :never")
                .value(":never", n(NEVER)),
            Some(why.as_str()),
        ),
        Settle::Release(why) => (
            write
                .only_if(TaskState::Held)
                .to(TaskState::Todo)
                .set("#claimable_at = :now"),
            Some(why.as_str()),
        ),
    };
    match note {
        Some(note) => write.set("#gate_note = :note").value(":note", s(note)),
        None => write.remove("#gate_note"),
    }
    .done()
}

/// Puts a failed task back to `todo` with its attempts reset.
pub fn retry_failed(t: &Task, now: i64) -> Update {
    task_write(&t.key(), t.version, now)
        .only_if(TaskState::Failed)
        .to(TaskState::Todo)
        .set("#attempts = :zero")
        .set("#claimable_at = :now")
        .remove("#exit_code")
        .remove("#finished_at")
        .remove("#lease_until")
        .value(":zero", n(0))
        .done()
}

/// Writes a whole `todo` task's claim keys again (its shard, claimable now, version on), so
/// an index that lost its entry, or holds it where no claim reads, shows it again. Only if it
/// is still that version and `todo`.
pub fn reindex(k: &TaskKey, version: i64, now: i64) -> Update {
    task_write(k, version, now)
        .only_if(TaskState::Todo)
        .set("#claim_shard = :shard")
        .set("#claimable_at = :now")
        .value(":shard", s(&shard_of_task(&k.collection, &k.task_id)))
        .done()
}

/// Gives an item of a table made before sharding its claim shard (a task deleted meanwhile
/// is not brought back). Not a task write: the version stays, and `store init` sends it once.
pub fn set_shard(k: &TaskKey) -> Update {
    Update {
        key: key(&k.collection, &k.task_id),
        expression: "SET #claim_shard = :s".into(),
        condition: "attribute_exists(#task_id) AND attribute_not_exists(#claim_shard)".into(),
        values: vec![(":s", s(&shard_of_task(&k.collection, &k.task_id)))],
    }
}

/// Gives an item made before the change index its change shard, and `updated_at` (`now`) if
/// it has none; only while it exists.
pub fn set_change_shard(k: &TaskKey, now: i64) -> Update {
    Update {
        key: key(&k.collection, &k.task_id),
        expression: "SET #change_shard = :cs, #updated_at = if_not_exists(#updated_at, :now)"
            .into(),
        condition: "attribute_exists(#task_id)".into(),
        values: vec![
            (":cs", super::change_shard_of(&k.collection, &k.task_id)),
            (":now", n(now)),
        ],
    }
}

/// Gives a `todo` or `waiting` task written without them the claim attributes it lacks, as
/// `tasks add` writes them (shard from its id, claimable now or never while waiting, version
/// and attempts 0, the default attempt limit); what it has is left. Only while its state is
/// still `state`. A repair, not a task write: the item may have no version to condition on.
/// The script cannot be made up: [`super::missing_for_claim`] names it for a person.
pub fn give_claim_attributes(k: &TaskKey, state: TaskState, now: i64) -> Update {
    let claimable_at = if state == TaskState::Waiting {
        NEVER
    } else {
        now
    };
    let (placeholder, value) = state_value(state);
    Update {
        key: key(&k.collection, &k.task_id),
        expression: "SET #claim_shard = if_not_exists(#claim_shard, :shard), \
             #claimable_at = if_not_exists(#claimable_at, :at), \
             #attempts = if_not_exists(#attempts, :zero), \
             #max_attempts = if_not_exists(#max_attempts, :max), \
             #version = if_not_exists(#version, :zero) + :one, #updated_at = :now"
            .into(),
        condition: format!("#state = {placeholder}"),
        values: vec![
            (":shard", s(&shard_of_task(&k.collection, &k.task_id))),
            (":at", n(claimable_at)),
            (":zero", n(0)),
            (":one", n(1)),
            (":max", n(crate::model::DEFAULT_MAX_ATTEMPTS)),
            (":now", n(now)),
            (placeholder, value),
        ],
    }
}

/// Whether `item` is what an update with these values leaves: the version after `:v`, the
/// `:now` it wrote (a heartbeat's `:until`, as it writes no `:now`), and its `:owner` when it
/// names one.
pub fn bears_write(item: &Item, values: &HashMap<String, AttributeValue>) -> bool {
    let num = |v: Option<&AttributeValue>| match v {
        Some(AttributeValue::N(x)) => x.parse::<i64>().ok(),
        _ => None,
    };
    let Some(v) = num(values.get(":v")) else {
        return false;
    };
    let owner_ok = match values.get(":owner") {
        Some(AttributeValue::S(o)) => attr_s(item, OWNER) == Some(o.as_str()),
        _ => true,
    };
    let stamped = num(values.get(":now")).is_some_and(|now| attr_n(item, UPDATED_AT) == Some(now))
        || num(values.get(":until")).is_some_and(|u| attr_n(item, LEASE_UNTIL) == Some(u));
    attr_n(item, VERSION) == Some(v + 1) && stamped && owner_ok
}
