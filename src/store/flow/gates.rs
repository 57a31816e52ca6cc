//! The verdict of a task's QC gates: what its upstream steps' done tasks reported (the latest
//! value of each metric, live tasks and tombstones alike) against each `--require`. Pure, like
//! the rest of the flow: the store reads the reports, this decides.

use std::collections::BTreeMap;

use super::in_step;
use crate::model::{
    Reading, SampleTask, SampleView, Settle, TaskState, UpstreamReport, judge, parse_gates,
};
use crate::standing::Standing;

/// The done tasks of the sample in the steps `after` names, whose reports a gate reads.
pub fn upstream_done<'a>(view: &'a SampleView, after: &[String]) -> Vec<&'a SampleTask> {
    after
        .iter()
        .flat_map(|step| in_step(view, step))
        .filter(|(t, s)| *s == Standing::Done && !t.task_id.is_empty())
        .map(|(t, _)| t)
        .collect()
}

/// Each metric the done tasks of `after` reported, at its latest: the run that finished last
/// (a re-run's value replaces the first run's), the later run number on a tie.
pub fn readings(
    view: &SampleView,
    after: &[String],
    reports: &[UpstreamReport],
) -> BTreeMap<String, Reading> {
    let done: Vec<(&str, &str)> = upstream_done(view, after)
        .into_iter()
        .map(|t| (t.collection.as_str(), t.task_id.as_str()))
        .collect();
    let mut latest: BTreeMap<String, (Option<i64>, u32, Reading)> = BTreeMap::new();
    for r in reports
        .iter()
        .filter(|r| done.contains(&(r.collection.as_str(), r.task_id.as_str())))
    {
        for (name, value) in &r.metrics {
            let newer = latest
                .get(name)
                .is_none_or(|(at, run, _)| (r.finished_at, r.run) >= (*at, *run));
            if newer {
                let reading = Reading {
                    value: value.clone(),
                    source: format!("{}/{} run {}", r.collection, r.task_id, r.run),
                };
                latest.insert(name.clone(), (r.finished_at, r.run, reading));
            }
        }
    }
    latest.into_iter().map(|(k, (_, _, r))| (k, r)).collect()
}

/// How a held task that waits again for its upstream's re-run is noted, before what held it.
pub const WAITS_AGAIN: &str = "waits for its upstream's new run; was ";

/// How to settle `task` (waiting or held, its upstream done) on these readings; `None` when
/// it stands as it should already (held, for the same reason).
pub fn verdict(task: &SampleTask, readings: &BTreeMap<String, Reading>) -> Option<Settle> {
    let hold = match parse_gates(&task.require) {
        Ok(gates) => judge(&gates, |m| readings.get(m)),
        // Checked when added: a gate unreadable now is damage, and damage holds.
        Err(e) => Some(format!("held: {e}")),
    };
    match (hold, task.state) {
        (Some(why), TaskState::Held) if task.gate_note.as_deref() == Some(why.as_str()) => None,
        (Some(why), _) => Some(Settle::Hold(why)),
        // Held before (and perhaps waiting again for a re-run since): the pass keeps what held
        // it on record.
        (None, _) if task.state == TaskState::Held || task.gate_note.is_some() => {
            let was = task.gate_note.as_deref().unwrap_or("held");
            let was = was.strip_prefix(WAITS_AGAIN).unwrap_or(was);
            Some(Settle::Run(Some(format!(
                "passed on a later upstream run; was {was}"
            ))))
        }
        (None, _) => Some(Settle::Run(None)),
    }
}
