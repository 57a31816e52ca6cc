//! The flow against a store: settling a sample's ready tasks (promoted, or held by a gate, after
//! a finish or an add), the looks at a step's waiting tasks that idle workers, `--wait`
//! launches and `release-stale` make, and a retry that leaves replaced failures alone.

use super::gates::{readings, upstream_done, verdict};
use super::{Outlook, outlook, ready, rewaiting, superseded_by, waiting_outlooks};
use crate::error::Result;
use crate::model::{AddReport, NewTask, SampleTask, SampleView, Settle, Survey, TaskState};
use crate::store::TaskStore;

/// Settles the waiting and held tasks of `sample` whose upstream is done (`todo`, or `held`
/// by a gate), and puts back to waiting the held ones whose upstream is re-run; how many it
/// made claimable. What a worker calls after a task of the sample ends done. Safe to repeat:
/// each write is conditional on the version read.
pub fn promote<S: TaskStore + ?Sized>(store: &S, sample: &str) -> Result<u64> {
    let view = store.sample_view(sample)?;
    wait_again(store, &view, None)?;
    let settled = settle_ready(store, &view, None, |_| true)?;
    let may_run = settled
        .iter()
        .filter(|(_, settle, moved)| *moved && matches!(settle, Some(Settle::Run(_))));
    Ok(may_run.count() as u64)
}

/// Puts back to `waiting` the held tasks of one sample's view (in `collection` when given)
/// whose upstream is no longer done; each with whether the write took.
fn wait_again<'v, S: TaskStore + ?Sized>(
    store: &S,
    view: &'v SampleView,
    collection: Option<&'v str>,
) -> Result<Vec<(&'v SampleTask, bool)>> {
    let mut out = vec![];
    for t in rewaiting(view, collection) {
        let note = format!(
            "{}{}",
            super::gates::WAITS_AGAIN,
            t.gate_note.as_deref().unwrap_or("held")
        );
        let moved = store.settle_task(&t.collection, &t.task_id, t.version, &Settle::Wait(note))?;
        out.push((t, moved));
    }
    Ok(out)
}

/// Settles the ready tasks of one sample's view (in `collection` when given, those `pick`
/// chooses): each with what it was settled to (`None`: it stands as it should) and whether
/// the write took. The upstream reports are read only when a ready task has gates.
fn settle_ready<'v, S: TaskStore + ?Sized>(
    store: &S,
    view: &'v SampleView,
    collection: Option<&'v str>,
    pick: impl Fn(&SampleTask) -> bool,
) -> Result<Vec<(&'v SampleTask, Option<Settle>, bool)>> {
    let ready: Vec<&SampleTask> = ready(view, collection)
        .into_iter()
        .filter(|t| pick(t))
        .collect();
    let gated: Vec<&SampleTask> = ready
        .iter()
        .filter(|t| !t.require.is_empty())
        .copied()
        .collect();
    let reports = if gated.is_empty() {
        vec![]
    } else {
        let mut upstream: Vec<SampleTask> = vec![];
        for t in &gated {
            for u in upstream_done(view, &t.after) {
                if !upstream.contains(u) {
                    upstream.push(u.clone());
                }
            }
        }
        store.upstream_reports(&upstream)?
    };
    let mut out = vec![];
    let none = Default::default();
    for t in ready {
        // Only a gated task reads what its upstream reported: a plain promotion stays as
        // cheap as it was.
        let found;
        let readings = if t.require.is_empty() {
            &none
        } else {
            found = readings(view, &t.after, &reports);
            &found
        };
        let settle = verdict(t, readings);
        let moved = match &settle {
            Some(s) => store.settle_task(&t.collection, &t.task_id, t.version, s)?,
            None => false,
        };
        out.push((t, settle, moved));
    }
    Ok(out)
}

/// After an add: settles the gated tasks just added whose upstream was done already (they start
/// `waiting` and are judged here as a promotion would), and counts in `report` those it held
/// and those that may run at once.
pub fn settle_gated<S: TaskStore + ?Sized>(
    store: &S,
    tasks: &[NewTask],
    report: &mut AddReport,
) -> Result<()> {
    let mut samples: Vec<&str> = tasks
        .iter()
        .filter(|t| !t.require.is_empty())
        .filter_map(|t| t.sample.as_deref())
        .collect();
    samples.sort_unstable();
    samples.dedup();
    for chunk in samples.chunks(64) {
        let names: Vec<String> = chunk.iter().map(|s| s.to_string()).collect();
        for view in store.sample_views(&names)? {
            // Only the tasks just added: the others of the sample stand as their own
            // promotions left them.
            let added = |t: &SampleTask| {
                tasks
                    .iter()
                    .any(|n| n.collection == t.collection && n.task_id == t.task_id)
            };
            for (t, settle, moved) in settle_ready(store, &view, None, added)? {
                if !(moved && t.state == TaskState::Waiting) {
                    continue;
                }
                report.waiting = report.waiting.saturating_sub(1);
                if matches!(settle, Some(Settle::Hold(_))) {
                    report.held += 1;
                }
            }
        }
    }
    Ok(())
}

/// The samples with a waiting task in `collection` that will run without anyone acting (its
/// upstream done or under way, a failure's fix included), and those blocked: what a `--wait`
/// launch counts as work, by the same rule its workers stay by. Reads only.
pub fn waiting_samples_by_outlook<S: TaskStore + ?Sized>(
    store: &S,
    collection: &str,
) -> Result<(u64, u64)> {
    let samples = store.waiting_samples(Some(collection))?;
    let (mut will_run, mut blocked) = (0, 0);
    for chunk in samples.chunks(64) {
        for view in store.sample_views(chunk)? {
            let outlooks: Vec<Outlook> = waiting_outlooks(&view, Some(collection))
                .map(|(_, o)| o)
                .collect();
            if outlooks.iter().any(|o| *o != Outlook::Blocked) {
                will_run += 1;
            } else if !outlooks.is_empty() {
                blocked += 1;
            }
        }
    }
    Ok((will_run, blocked))
}

/// Looks at the waiting tasks of `collection` (all when `None`): promotes those whose upstream
/// is done (a promotion a crash skipped), and counts those that will run and those blocked.
/// With `first_alive`, stops at the first task that will run (enough to know a `--wait`
/// worker should stay); samples are visited from a random place, so that repeated looks do not
/// always stop at the same one.
pub fn survey<S: TaskStore + ?Sized>(
    store: &S,
    collection: Option<&str>,
    first_alive: bool,
) -> Result<Survey> {
    let mut samples = store.waiting_samples(collection)?;
    if !samples.is_empty() {
        let start = crate::backoff::below(samples.len() as u64) as usize;
        samples.rotate_left(start);
    }
    let mut survey = Survey::default();
    // A few views at a time: enough for a store that reads them in parallel, few enough that
    // a look which stops at the first task that will run reads little more than it needs.
    let views = samples
        .chunks(if first_alive { 4 } else { 64 })
        .map(|chunk| store.sample_views(chunk));
    for views in views {
        for view in views? {
            look_at(store, &view, collection, &mut survey)?;
        }
        if first_alive && survey.promoted + survey.will_run > 0 {
            break;
        }
    }
    Ok(survey)
}

/// Counts (and promotes) the waiting tasks of one sample's view, in `collection` when given.
fn look_at<S: TaskStore + ?Sized>(
    store: &S,
    view: &SampleView,
    collection: Option<&str>,
    survey: &mut Survey,
) -> Result<()> {
    // A held task whose upstream is re-run waits again: work that will run, or is blocked.
    for (t, moved) in wait_again(store, view, collection)? {
        match (moved, outlook(view, &t.after)) {
            (true, Outlook::Blocked) => survey.blocked += 1,
            (true, _) => survey.will_run += 1,
            (false, _) => {}
        }
    }
    for (t, settle, moved) in settle_ready(store, view, collection, |_| true)? {
        if t.state != TaskState::Waiting {
            continue;
        }
        match (settle, moved) {
            (Some(Settle::Hold(_)), true) => survey.blocked += 1,
            (_, true) => survey.promoted += 1,
            // Moved by someone else meanwhile: it is not waiting any more.
            (_, false) => survey.will_run += 1,
        }
    }
    for (_, outlook) in waiting_outlooks(view, collection) {
        match outlook {
            Outlook::Ready => {}
            Outlook::WillRun => survey.will_run += 1,
            Outlook::Blocked => survey.blocked += 1,
        }
    }
    Ok(())
}

/// Retries the failed tasks `selector` names, except those a fix has replaced (superseded by a
/// done task added after they failed): retrying one would run finished work again. Returns how
/// many were retried, and each (task, the done task that replaced it) left alone.
pub fn retry_unreplaced(
    store: &dyn TaskStore,
    collection: &str,
    selector: &crate::model::Selector,
) -> Result<(u64, Vec<(String, String)>)> {
    if let crate::model::Selector::State(s) = selector
        && *s != TaskState::Failed
    {
        return Err(crate::error::Error::Invalid(format!(
            "only failed tasks can be retried, not {s} ones"
        )));
    }
    let filter = crate::model::TaskFilter {
        collection: Some(collection.to_string()),
        state: Some(TaskState::Failed),
        ..Default::default()
    };
    let mut chosen = vec![];
    let mut replaced = vec![];
    crate::store::for_each_task(store, &filter, 1_000, |t| {
        let Ok(t) = t else {
            return Ok(std::ops::ControlFlow::Continue(()));
        };
        if selector.matches(&t) {
            let by = match &t.sample {
                Some(sample) => superseded_by(&store.sample_view(sample)?, collection, &t.task_id),
                None => None,
            };
            match by {
                Some(by) => replaced.push((t.task_id, by)),
                None => chosen.push(t.task_id),
            }
        }
        Ok(std::ops::ControlFlow::Continue(()))
    })?;
    let mut retried = 0;
    for ids in chosen.chunks(500) {
        retried += store.retry(collection, &crate::model::Selector::Ids(ids.to_vec()))?;
    }
    Ok((retried, replaced))
}
