//! How a worker finds and wins a task on DynamoDB when hundreds start at once.
//!
//! The claimable index is split into [`SHARDS`] partitions (`collection#NN`, from a hash of the
//! task id), so a fleet reads many index partitions instead of one, and each worker starts at
//! a random shard. One index read returns up to [`CANDIDATES`] tasks; the worker keeps them
//! and claims the next ones from that list without reading the index again, as long as it
//! keeps winning. A lost race (another worker was first, or the index lagged behind the
//! table) costs one failed conditional write: the worker forgets the list, remembers the task
//! for a while (the eventually consistent index may show it again), moves to another shard and
//! pauses a jittered moment. A claim says "nothing to claim" only after every shard's index
//! read came back empty in one sweep: a lost race never looks like a drained queue.
//!
//! The requests go through [`ClaimRequests`], so the fleet simulation (benches/fleet.rs) runs
//! this same code against a model of DynamoDB. Nothing here sleeps or reads the clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::error::Result;
use crate::model::{Task, TaskKey};

/// Partitions of the claimable index per collection. Part of the table's data format: every
/// task's `claim_shard` is one of them, so changing it needs a migration.
pub const SHARDS: u32 = 16;
/// Tasks one index read asks for.
pub const CANDIDATES: usize = 16;
/// How long a list of candidates is trusted: older ones were probably taken by others.
const CANDIDATES_TTL_MS: i64 = 5_000;
/// How long a task seen taken is skipped when the (eventually consistent) index shows it.
const LOST_MEMORY_MS: i64 = 10_000;
/// Longest pause after lost races.
const MAX_PAUSE_MS: u64 = 2_000;

/// The shard a task's id falls in (FNV-1a: stable across Rust versions and machines).
pub fn shard_of(task_id: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in task_id.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h % SHARDS
}

/// The index partition key of a shard of a collection.
pub fn shard_key(collection: &str, shard: u32) -> String {
    format!("{collection}#{shard:02}")
}

/// A task the index says is claimable, as the index saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub key: TaskKey,
    pub version: i64,
    /// Running on its last attempt with an expired lease: its worker died; it ends failed.
    pub exhausted: bool,
}

/// The outcome of one conditional claim write.
#[derive(Debug)]
// One per claim write, moved out at once: boxing the task would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Take {
    Won(Task),
    /// The condition failed: someone else holds it, or it changed since the index saw it.
    Lost,
}

/// The requests a claim makes, one per call. The DynamoDB store sends them to DynamoDB; the
/// fleet simulation answers them from its model.
pub trait ClaimRequests {
    /// Reads up to `limit` tasks of `shard` claimable at `now` (oldest first) from the index,
    /// and whether the shard has more beyond them.
    fn candidates(
        &self,
        collection: &str,
        shard: u32,
        now: i64,
        limit: usize,
    ) -> Result<(Vec<Candidate>, bool)>;

    /// The conditional write that takes `c` for `owner` until `until`.
    fn take(&self, c: &Candidate, owner: &str, now: i64, until: i64) -> Result<Take>;

    /// Ends an exhausted candidate as failed (conditional; losing that race is fine).
    fn fail_lost(&self, c: &Candidate, now: i64) -> Result<()>;
}

/// What one step of a claim did; each step sends at most one request.
#[derive(Debug)]
// One per claimer step, moved out at once: boxing the task would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Step {
    Claimed(Task),
    /// Progress was made (candidates read, an empty shard passed): step again at once.
    Again,
    /// A race was lost: step again after this pause.
    Pause(Duration),
    /// Every shard's index read came back empty in one sweep.
    Drained,
}

/// A worker's claim state, shared by its slots.
pub struct Claimer {
    shards: u32,
    state: Mutex<State>,
}

struct State {
    collection: String,
    /// Candidates from the last index read, with the time they were read.
    cache: Vec<Candidate>,
    read_at: i64,
    shard: u32,
    /// Shards whose index read came back empty since work was last seen (one bit each).
    empty: u64,
    /// When a sweep last found every shard empty.
    drained_at: Option<i64>,
    /// Races lost in a row: the pause grows with them.
    losses: u32,
    /// Tasks seen taken, until when to skip them.
    lost: HashMap<TaskKey, i64>,
    rng: fastrand::Rng,
}

impl Claimer {
    /// A claimer over `shards` index partitions (1 to 64); `seed` spreads workers' random
    /// choices.
    pub fn new(shards: u32, seed: u64) -> Self {
        let mut state = State {
            collection: String::new(),
            cache: vec![],
            read_at: 0,
            shard: 0,
            empty: 0,
            drained_at: None,
            losses: 0,
            lost: HashMap::new(),
            rng: fastrand::Rng::with_seed(seed),
        };
        let shards = shards.clamp(1, 64);
        state.shard = state.random(shards);
        Self {
            shards,
            state: Mutex::new(state),
        }
    }

    /// One step towards a claim of `collection` at time `now` (epoch ms), in a claim attempt
    /// that began at `since`. A sweep that found every shard empty after `since` speaks for
    /// this attempt too: the other slots of a worker do not each sweep all shards again.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &self,
        requests: &dyn ClaimRequests,
        collection: &str,
        owner: &str,
        lease_ms: i64,
        now: i64,
        since: i64,
    ) -> Result<Step> {
        let next = {
            let mut st = self.lock();
            if st.collection != collection {
                st.collection = collection.to_string();
                st.cache.clear();
                st.lost.clear();
                st.empty = 0;
                st.drained_at = None;
            }
            st.lost.retain(|_, until| *until > now);
            if now - st.read_at > CANDIDATES_TTL_MS {
                st.cache.clear();
            }
            st.pop_candidate()
        };
        match next {
            Some(c) if c.exhausted => {
                requests.fail_lost(&c, now)?;
                Ok(Step::Again)
            }
            Some(c) => match requests.take(&c, owner, now, now + lease_ms)? {
                Take::Won(task) => {
                    let mut st = self.lock();
                    st.losses = 0;
                    st.empty = 0;
                    Ok(Step::Claimed(task))
                }
                Take::Lost => {
                    let mut st = self.lock();
                    st.lost.insert(c.key, now + LOST_MEMORY_MS);
                    // The list is contested: others read the same shard. Go elsewhere.
                    st.cache.clear();
                    st.shard = st.random(self.shards);
                    st.empty = 0;
                    st.losses += 1;
                    Ok(Step::Pause(st.pause()))
                }
            },
            None => {
                let drained_meanwhile = self.lock().drained_at.is_some_and(|at| at >= since);
                if drained_meanwhile {
                    return Ok(Step::Drained);
                }
                self.read_shard(requests, collection, now)
            }
        }
    }

    /// Reads the current shard's index partition into the candidate list. The shard is
    /// taken before the request goes out, so the slots of one worker read different shards at
    /// once instead of the same one (and then racing each other for its candidates).
    fn read_shard(&self, requests: &dyn ClaimRequests, collection: &str, now: i64) -> Result<Step> {
        let shard = {
            let mut st = self.lock();
            let shard = st.shard;
            st.shard = (shard + 1) % self.shards;
            shard
        };
        let (found, more) = requests.candidates(collection, shard, now, CANDIDATES)?;
        let mut st = self.lock();
        if found.is_empty() {
            // Slots share this state, so count shards, not reads: two slots may read one.
            st.empty |= 1 << shard;
            if st.empty.count_ones() >= self.shards {
                st.empty = 0;
                st.drained_at = Some(now);
                return Ok(Step::Drained);
            }
            return Ok(Step::Again);
        }
        // Work exists: the sweep starts over.
        st.empty = 0;
        st.drained_at = None;
        if more {
            // The shard holds more than one read returned: read it again next.
            st.shard = shard;
        }
        let fresh: Vec<Candidate> = found
            .into_iter()
            .filter(|c| !st.lost.contains_key(&c.key) && !st.cache.iter().any(|h| h.key == c.key))
            .collect();
        if fresh.is_empty() {
            if !st.cache.is_empty() {
                // Another slot already holds these: use them.
                return Ok(Step::Again);
            }
            // Only tasks just seen taken: the index has not caught up. Look elsewhere first.
            st.shard = st.random(self.shards);
            st.losses += 1;
            return Ok(Step::Pause(st.pause()));
        }
        st.cache.extend(fresh);
        st.read_at = now;
        Ok(Step::Again)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// Takes a random candidate off the list, skipping tasks seen taken.
    fn pop_candidate(&mut self) -> Option<Candidate> {
        while !self.cache.is_empty() {
            let i = self.random(self.cache.len() as u32) as usize;
            let c = self.cache.swap_remove(i);
            if !self.lost.contains_key(&c.key) {
                return Some(c);
            }
        }
        None
    }

    /// The pause after `losses` lost races in a row: full jitter over a doubling ceiling.
    fn pause(&mut self) -> Duration {
        let ceiling = (25u64 << self.losses.min(7)).min(MAX_PAUSE_MS);
        Duration::from_millis(1 + self.next() % ceiling)
    }

    fn random(&mut self, below: u32) -> u32 {
        self.rng.u32(..below.max(1))
    }

    fn next(&mut self) -> u64 {
        self.rng.u64(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(shard_of("NA12878"), shard_of("NA12878"));
        let mut seen = [0u32; SHARDS as usize];
        for i in 0..1600 {
            seen[shard_of(&format!("S{i:05}")) as usize] += 1;
        }
        assert!(seen.iter().all(|n| (60..140).contains(n)), "{seen:?}");
        assert_eq!(shard_key("Alignment", 3), "Alignment#03");
    }

    #[test]
    fn pauses_grow_but_stay_bounded() {
        let mut st = Claimer::new(SHARDS, 7).state.into_inner().unwrap();
        for losses in 0..20 {
            st.losses = losses;
            let p = st.pause();
            assert!(p >= Duration::from_millis(1) && p <= Duration::from_millis(MAX_PAUSE_MS));
        }
    }
}
