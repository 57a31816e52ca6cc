//! The flow between steps on DynamoDB (the rules are store/flow.rs's): a sample's tasks from
//! the sample index, a collection's waiting tasks from the claim index (they sit there with
//! `claimable_at` = NEVER), the promotion write, and the start state of added tasks. Never a
//! Scan of the table, except `waiting_samples` across every collection (`release-stale`
//! without `-c`).
//!
//! The indexes are eventually consistent, so what they show is checked where it decides
//! something: every unfinished task a sample's view lists is read again consistently (a few
//! items), a promotion whose version was stale is tried again at the version read, and an
//! upstream step the index shows empty is confirmed by a consistent Query of the step before
//! a batch is refused for it. A task the index does not show yet (added a moment ago) is
//! promoted by the next look (an idle worker, `release-stale`), never lost.

use std::collections::{BTreeSet, HashMap};

use futures_util::{StreamExt, TryStreamExt, stream};

use super::DynamoStore;
use super::claim::{SHARDS, shard_key};
use super::item::{self, Item};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::model::{NewTask, SampleTask, SampleView, Settle, TaskKey, TaskState, UpstreamReport};
use crate::store::flow::{self, Refusal};

/// Samples whose tasks `add` reads at once.
const VIEWS_AT_ONCE: usize = 16;

impl DynamoStore {
    /// A sample's tasks, live and removed: the sample index, then read again consistently
    /// every unfinished task in it (the index may still show a task running that just ended)
    /// and, in a step where a failed task stands beside a done one, every task of the step
    /// (the index does not carry the times that tell a replacement from a lane).
    pub(super) async fn view(&self, sample: &str) -> Result<SampleView> {
        let items = self
            .query_all(
                Some(item::SAMPLE_INDEX),
                &item::of_the_sample(sample),
                None,
                None,
                false,
            )
            .await?;
        let mut view = SampleView {
            tasks: items.iter().filter_map(item::of_sample).collect(),
        };
        // Steps where a failed task stands beside another: whether that one replaces it (or
        // will) turns on when each was added and failed.
        let mixed: BTreeSet<&str> = view
            .tasks
            .iter()
            .filter(|t| t.state == TaskState::Failed)
            .map(|t| t.collection.as_str())
            .filter(|step| view.tasks.iter().filter(|o| o.collection == *step).count() > 1)
            .collect();
        let again: Vec<Item> = view
            .tasks
            .iter()
            .filter(|t| {
                (t.is_live() && !matches!(t.state, TaskState::Done | TaskState::Failed))
                    || (mixed.contains(t.collection.as_str()) && !t.task_id.is_empty())
            })
            .map(item::key_of_sample_task)
            .collect();
        if again.is_empty() {
            return Ok(view);
        }
        let fresh: HashMap<(String, String, bool), SampleTask> = self
            .get_many(again, None)
            .await?
            .iter()
            .filter_map(item::of_sample)
            .map(|t| ((t.collection.clone(), t.task_id.clone(), t.is_live()), t))
            .collect();
        let mut tasks = vec![];
        for t in view.tasks {
            let k = (t.collection.clone(), t.task_id.clone(), t.is_live());
            match fresh.get(&k) {
                Some(now) => tasks.push(now.clone()),
                // Deleted since the index was read (its tombstone shows at the next look).
                None if t.is_live() && !matches!(t.state, TaskState::Done | TaskState::Failed) => {}
                None => tasks.push(t),
            }
        }
        view.tasks = tasks;
        Ok(view)
    }

    /// Samples with a waiting task: from the claim index (where waiting tasks sit with
    /// `claimable_at` = NEVER) for one collection, their samples read by key; a filtered Scan
    /// across every collection.
    async fn samples_waiting(&self, collection: Option<&str>) -> Result<Vec<String>> {
        let items = match collection {
            None => self.items(None, Some(item::waiting())).await?,
            Some(c) => {
                let mut keys = vec![];
                for shard in 0..SHARDS {
                    let cond = item::waiting_in(&shard_key(c, shard));
                    for it in self
                        .query_all(Some(item::INDEX), &cond, None, None, false)
                        .await?
                    {
                        if let Some(k) = item::task_key(&it) {
                            keys.push(item::key(&k.collection, &k.task_id));
                        }
                    }
                }
                self.get_many(keys, Some(item::KEY_AND_SAMPLE)).await?
            }
        };
        let samples: BTreeSet<String> = items
            .iter()
            .filter_map(|it| item::sample_of(it).map(str::to_string))
            .collect();
        Ok(samples.into_iter().collect())
    }

    /// Settles a waiting or held task at `version`; when the version read from an index was
    /// stale, once more at the version a consistent read shows, if the task still waits (a
    /// hold or a release is judged on the task as read, so it is not repeated at another).
    async fn settle_one(&self, k: &TaskKey, version: i64, settle: &Settle) -> Result<bool> {
        let now = now_ms();
        if self
            .update(item::settle(k, version, now, settle))
            .await?
            .is_some()
        {
            return Ok(true);
        }
        if *settle != Settle::Run(None) {
            return Ok(false);
        }
        let current = self.get_item(&item::key(&k.collection, &k.task_id)).await?;
        let Some(task) = current.and_then(|it| item::to_task(&it).ok()) else {
            return Ok(false);
        };
        // A gated task is judged on its gates, never promoted at a version it was not read at.
        if task.state != TaskState::Waiting || task.version == version || !task.require.is_empty() {
            return Ok(false);
        }
        Ok(self
            .update(item::settle(k, task.version, now, settle))
            .await?
            .is_some())
    }

    /// What each of `tasks` reported on its last run (live tasks and tombstones), where it
    /// reported metrics: one consistent batch read.
    async fn reports_of(&self, tasks: &[SampleTask]) -> Result<Vec<UpstreamReport>> {
        let keys: Vec<Item> = tasks.iter().map(item::key_of_sample_task).collect();
        if keys.is_empty() {
            return Ok(vec![]);
        }
        let items = self.get_many(keys, None).await?;
        Ok(items.iter().filter_map(item::upstream_report).collect())
    }

    /// The state each task of a batch starts in (in batch order): its sample's view with the
    /// batch's own tasks in it. A step the index shows no task of the sample in is confirmed
    /// with a consistent Query of the step before it counts as missing. `Err` when one is
    /// missing and that is not allowed.
    pub(super) async fn start_states(
        &self,
        tasks: &[&NewTask],
        allow_missing: bool,
    ) -> Result<Vec<(TaskState, bool)>> {
        // A cohort's next step is thousands of samples: their views are read VIEWS_AT_ONCE at
        // a time, not one after the other.
        let wanted: BTreeSet<&str> = tasks
            .iter()
            .filter(|t| !t.after.is_empty())
            .filter_map(|t| t.sample.as_deref())
            .collect();
        let mut views: HashMap<&str, SampleView> = stream::iter(wanted)
            .map(|sample| async move { Ok::<_, Error>((sample, self.view(sample).await?)) })
            .buffer_unordered(VIEWS_AT_ONCE)
            .try_collect()
            .await?;
        for t in tasks {
            if let Some(view) = t.sample.as_deref().and_then(|s| views.get_mut(s)) {
                view.tasks
                    .retain(|o| (&o.collection, &o.task_id) != (&t.collection, &t.task_id));
                view.tasks.push(SampleTask {
                    collection: t.collection.clone(),
                    task_id: t.task_id.clone(),
                    state: if t.after.is_empty() {
                        TaskState::Todo
                    } else {
                        TaskState::Waiting
                    },
                    version: 0,
                    after: t.after.clone(),
                    created_at: Some(now_ms()),
                    finished_at: None,
                    removed_at: None,
                    require: t.require.clone(),
                    gate_note: None,
                });
            }
        }
        // Steps the index shows empty for some sample: read each such step once, consistently:
        // the samples it has tasks (or tombstones) of, and whether it has any item at all.
        let mut confirmed: HashMap<String, (BTreeSet<String>, bool)> = HashMap::new();
        let mut states = vec![];
        let mut missing = vec![];
        for t in tasks {
            let Some(view) = t.sample.as_deref().and_then(|s| views.get(s)) else {
                states.push((TaskState::Todo, false));
                continue;
            };
            match flow::initial_state(view, t) {
                Ok(state) => states.push((state, flow::blocked_now(view, t))),
                Err(Refusal::Loop(step)) => {
                    return Err(flow::refused(t, &Refusal::Loop(step), 1, true));
                }
                Err(Refusal::Missing(step)) => {
                    if !confirmed.contains_key(&step) {
                        // The step's tasks and its tombstones (a sample whose tasks there were
                        // removed has some), read consistently.
                        let mut present = BTreeSet::new();
                        let mut any = false;
                        for partition in [item::in_collection(&step), item::tombstones_of(&step)] {
                            let items = self
                                .query_all(None, &partition, None, Some(item::KEY_AND_SAMPLE), true)
                                .await?;
                            any |= !items.is_empty();
                            present.extend(
                                items
                                    .iter()
                                    .filter_map(|it| item::sample_of(it).map(str::to_string)),
                            );
                        }
                        confirmed.insert(step.clone(), (present, any));
                    }
                    let sample = t.sample.clone().unwrap_or_default();
                    if !confirmed[&step].0.contains(&sample) {
                        missing.push((*t, step));
                    }
                    // Present after all (the index lagged): it waits, and the next look
                    // promotes it if that task is done.
                    states.push((TaskState::Waiting, false));
                }
            }
        }
        if !allow_missing && let Some((t, step)) = missing.first() {
            let refusal = Refusal::Missing(step.clone());
            let alike = missing.iter().filter(|(_, s)| s == step).count();
            // A step with no task, no tombstone and no done-mark: most likely misspelt (its
            // tasks and tombstones were read above).
            let exists = confirmed[step].1
                || !self
                    .query_all(None, &item::marks_of(step), None, None, true)
                    .await?
                    .is_empty();
            return Err(flow::refused(t, &refusal, alike, exists));
        }
        Ok(states)
    }
}

pub(super) fn sample_view(store: &DynamoStore, sample: &str) -> Result<SampleView> {
    store.rt.block_on(store.view(sample))
}

/// Views of several samples, VIEWS_AT_ONCE read at a time, in the order asked.
pub(super) fn sample_views(store: &DynamoStore, samples: &[String]) -> Result<Vec<SampleView>> {
    store.rt.block_on(
        stream::iter(samples)
            .map(|s| store.view(s))
            .buffered(VIEWS_AT_ONCE)
            .try_collect(),
    )
}

pub(super) fn waiting_samples(
    store: &DynamoStore,
    collection: Option<&str>,
) -> Result<Vec<String>> {
    store.rt.block_on(store.samples_waiting(collection))
}

pub(super) fn settle_task(
    store: &DynamoStore,
    collection: &str,
    task_id: &str,
    version: i64,
    settle: &Settle,
) -> Result<bool> {
    let k = TaskKey::new(collection, task_id);
    store.rt.block_on(store.settle_one(&k, version, settle))
}

pub(super) fn upstream_reports(
    store: &DynamoStore,
    tasks: &[SampleTask],
) -> Result<Vec<UpstreamReport>> {
    store.rt.block_on(store.reports_of(tasks))
}
