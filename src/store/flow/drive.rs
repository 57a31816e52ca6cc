//! The flow against a store: promoting a sample's ready tasks, and the looks at a step's waiting
//! tasks that idle workers, `--wait` launches and `release-stale` make, and a retry that leaves
//! replaced failures alone.

use super::{Outlook, ready, superseded_by, waiting_outlooks};
use crate::error::Result;
use crate::model::{SampleView, Survey, TaskState};
use crate::store::TaskStore;

/// Promotes the waiting tasks of `sample` whose upstream is done; how many it moved. What a
/// worker calls after a task of the sample ends done. Safe to repeat: each write is
/// conditional on the task still waiting at the version read.
pub fn promote<S: TaskStore + ?Sized>(store: &S, sample: &str) -> Result<u64> {
    let view = store.sample_view(sample)?;
    let mut moved = 0;
    for t in ready(&view, None) {
        moved += store.promote_task(&t.collection, &t.task_id, t.version)? as u64;
    }
    Ok(moved)
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
    for (t, outlook) in waiting_outlooks(view, collection) {
        match outlook {
            Outlook::Ready => {
                if store.promote_task(&t.collection, &t.task_id, t.version)? {
                    survey.promoted += 1;
                } else {
                    // Moved by someone else meanwhile: it is not waiting any more.
                    survey.will_run += 1;
                }
            }
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
