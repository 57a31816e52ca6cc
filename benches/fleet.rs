//! Fleet simulation: 1,000 workers over 100,000 tasks on a model of DynamoDB, in virtual time.
//!
//! The model has what the emulator hides: per-item conditional writes, a claim index that lags
//! the table (eventually consistent), and per-partition request budgets that throttle (1,000
//! writes/s per base-table partition, 3,000 reads/s per index partition). The new design runs
//! anamo's own claim code (`store::dynamo::claim::Claimer`) against it through the same
//! `ClaimRequests` trait the DynamoDB store implements; the old design (one unsharded index
//! partition, the first 8 candidates, give up after 5 lost rounds) is written out below.
//!
//! Prints, for both side by side: requests per completed task, throttled requests, the time
//! from the first worker's start until every worker is busy, workers that quit while work was
//! left, and the claim latency tail. Asserts nothing. Run: `cargo bench --bench fleet`.
//! ANAMO_FLEET_WORKERS, ANAMO_FLEET_TASKS, ANAMO_FLEET_LAG_MS, ANAMO_FLEET_START_MS change the
//! workers (1000), tasks (100000), index lag (500 ms) and start spread (1000 ms).

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};

use anamo::error::{Error, Result};
use anamo::model::{Attrs, Task, TaskKey, TaskState};
use anamo::store::dynamo::claim::{
    Candidate, ClaimRequests, Claimer, SHARDS, Step, Take, shard_of,
};

const COLLECTION: &str = "Alignment";
/// Request round trip to DynamoDB from EC2 in the same region.
const LATENCY_MS: i64 = 8;
const LEASE_MS: i64 = 600_000;
const WRITES_PER_PARTITION: f64 = 1_000.0;
const READS_PER_PARTITION: f64 = 3_000.0;

fn env_or(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator, so both designs see the same tasks and start times.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: i64) -> i64 {
        (self.next() % n.max(1) as u64) as i64
    }
}

#[derive(Clone)]
struct Item {
    state: TaskState,
    version: i64,
    claimable_at: Option<i64>,
    shard: u32,
}

/// What the index shows of an item (possibly out of date).
#[derive(Clone)]
struct Entry {
    version: i64,
}

/// An index update waiting for its time: (visible_at, task_id, new claimable_at, version).
type PendingUpdate = (i64, String, Option<i64>, i64);

/// A token bucket per partition: `rate` requests a second, one second of burst.
struct Bucket {
    tokens: f64,
    at: i64,
}

struct Model {
    lag_ms: i64,
    items: RefCell<HashMap<String, Item>>,
    /// Per shard: (claimable_at, task_id) -> entry, as the lagging index shows it.
    index: RefCell<Vec<BTreeMap<(i64, String), Entry>>>,
    /// Where each task sits in the index now, to move or remove it.
    placed: RefCell<HashMap<String, (u32, i64)>>,
    /// Index updates waiting for their time.
    pending: RefCell<VecDeque<PendingUpdate>>,
    buckets: RefCell<HashMap<String, Bucket>>,
    requests: Cell<u64>,
    throttled: Cell<u64>,
    lost_races: Cell<u64>,
}

impl Model {
    fn new(shards: u32, lag_ms: i64, tasks: usize) -> Self {
        let m = Model {
            lag_ms,
            items: RefCell::new(HashMap::new()),
            index: RefCell::new(vec![BTreeMap::new(); shards as usize]),
            placed: RefCell::new(HashMap::new()),
            pending: RefCell::new(VecDeque::new()),
            buckets: RefCell::new(HashMap::new()),
            requests: Cell::new(0),
            throttled: Cell::new(0),
            lost_races: Cell::new(0),
        };
        for i in 0..tasks {
            let id = format!("S{i:06}");
            let shard = if shards == 1 { 0 } else { shard_of(&id) };
            let created = i as i64 / 100; // added over a few seconds before the fleet starts
            m.items.borrow_mut().insert(
                id.clone(),
                Item {
                    state: TaskState::Todo,
                    version: 0,
                    claimable_at: Some(created - 10_000),
                    shard,
                },
            );
            m.place(&id, Some(created - 10_000), 0);
        }
        m
    }

    /// Puts the index in the state it has at `now`.
    fn catch_up(&self, now: i64) {
        let mut pending = self.pending.borrow_mut();
        while pending.front().is_some_and(|p| p.0 <= now) {
            let (_, id, at, version) = pending.pop_front().unwrap();
            self.place(&id, at, version);
        }
    }

    fn place(&self, id: &str, at: Option<i64>, version: i64) {
        let shard = self.items.borrow()[id].shard;
        let mut index = self.index.borrow_mut();
        let mut placed = self.placed.borrow_mut();
        if let Some((s, old)) = placed.remove(id) {
            index[s as usize].remove(&(old, id.to_string()));
        }
        if let Some(at) = at {
            index[shard as usize].insert((at, id.to_string()), Entry { version });
            placed.insert(id.to_string(), (shard, at));
        }
    }

    /// Spends one request of `partition`'s budget; throttled when it is gone.
    fn spend(&self, partition: String, rate: f64, now: i64) -> Result<()> {
        self.requests.set(self.requests.get() + 1);
        let mut buckets = self.buckets.borrow_mut();
        let b = buckets.entry(partition).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        b.tokens = (b.tokens + (now - b.at) as f64 * rate / 1000.0).min(rate);
        b.at = now;
        if b.tokens < 1.0 {
            self.throttled.set(self.throttled.get() + 1);
            return Err(Error::AwsTransient(
                "ProvisionedThroughputExceededException".into(),
            ));
        }
        b.tokens -= 1.0;
        Ok(())
    }

    /// A conditional write to the table; the index sees it `lag_ms` later.
    fn write(&self, id: &str, now: i64, f: impl FnOnce(&mut Item) -> bool) -> Result<bool> {
        self.spend(format!("table:{COLLECTION}"), WRITES_PER_PARTITION, now)?;
        let mut items = self.items.borrow_mut();
        let item = items.get_mut(id).expect("known task");
        if !f(item) {
            self.lost_races.set(self.lost_races.get() + 1);
            return Ok(false);
        }
        item.version += 1;
        self.pending.borrow_mut().push_back((
            now + self.lag_ms,
            id.to_string(),
            item.claimable_at,
            item.version,
        ));
        Ok(true)
    }

    fn finish(&self, id: &str, version: i64, now: i64) -> Result<bool> {
        self.write(id, now, |it| {
            let ours = it.version == version && it.state == TaskState::Running;
            if ours {
                it.state = TaskState::Done;
                it.claimable_at = None;
            }
            ours
        })
    }

    fn heartbeat(&self, id: &str, version: i64, now: i64) -> Result<bool> {
        self.write(id, now, |it| {
            let ours = it.version == version && it.state == TaskState::Running;
            if ours {
                it.claimable_at = Some(now + LEASE_MS);
            }
            ours
        })
    }
}

fn task(id: &str, version: i64) -> Task {
    Task {
        collection: COLLECTION.into(),
        task_id: id.into(),
        sample: None,
        script: String::new(),
        attrs: Attrs::new(),
        after: vec![],
        state: TaskState::Running,
        attempts: 1,
        runs: 1,
        max_attempts: 3,
        timeout_secs: None,
        owner: None,
        lease_until: None,
        created_at: 0,
        updated_at: 0,
        started_at: None,
        finished_at: None,
        exit_code: None,
        log_uri: None,
        error_tail: None,
        reported: Default::default(),
        require: vec![],
        gate_note: None,
        version,
    }
}

impl ClaimRequests for Model {
    fn candidates(
        &self,
        collection: &str,
        shard: u32,
        now: i64,
        limit: usize,
    ) -> Result<(Vec<Candidate>, bool)> {
        self.catch_up(now);
        self.spend(
            format!("index:{collection}#{shard}"),
            READS_PER_PARTITION,
            now,
        )?;
        let index = self.index.borrow();
        let mut found: Vec<Candidate> = index[shard as usize]
            .range(..(now + 1, String::new()))
            .take(limit + 1)
            .map(|((_, id), e)| Candidate {
                key: TaskKey {
                    collection: collection.into(),
                    task_id: id.clone(),
                },
                version: e.version,
                exhausted: false,
            })
            .collect();
        let more = found.len() > limit;
        found.truncate(limit);
        Ok((found, more))
    }

    fn take(&self, c: &Candidate, _owner: &str, now: i64, until: i64) -> Result<Take> {
        let id = &c.key.task_id;
        let won = self.write(id, now, |it| {
            let ok = it.version == c.version && it.claimable_at.is_some_and(|at| at <= now);
            if ok {
                it.state = TaskState::Running;
                it.claimable_at = Some(until);
            }
            ok
        })?;
        Ok(if won {
            Take::Won(task(id, c.version + 1))
        } else {
            Take::Lost
        })
    }

    fn fail_lost(&self, _c: &Candidate, _now: i64) -> Result<()> {
        Ok(())
    }
}

/// The claim as it was before sharding: read the first 8 candidates of the one index
/// partition, try them from a random start, and after 5 such rounds say "nothing to claim".
struct Legacy {
    rng: RefCell<Rng>,
    round: Cell<u32>,
    list: RefCell<Vec<Candidate>>,
}

impl Legacy {
    fn step(&self, m: &Model, now: i64) -> Result<Step> {
        let next = self.list.borrow_mut().pop();
        match next {
            None => {
                if self.round.get() >= 5 {
                    self.round.set(0);
                    return Ok(Step::Drained);
                }
                self.round.set(self.round.get() + 1);
                let (mut found, _) = m.candidates(COLLECTION, 0, now, 8)?;
                if found.is_empty() {
                    self.round.set(0);
                    return Ok(Step::Drained);
                }
                let start = self.rng.borrow_mut().below(found.len() as i64) as usize;
                found.rotate_left(start);
                found.reverse();
                *self.list.borrow_mut() = found;
                Ok(Step::Again)
            }
            Some(c) => match m.take(&c, "w", now, now + LEASE_MS)? {
                Take::Won(t) => {
                    self.round.set(0);
                    self.list.borrow_mut().clear();
                    Ok(Step::Claimed(t))
                }
                Take::Lost => Ok(Step::Again),
            },
        }
    }
}

enum Design {
    New(Vec<Claimer>),
    Old(Vec<Legacy>),
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Claim,
    Heartbeat,
    Finish,
}

struct Report {
    claim_requests: u64,
    heartbeats: u64,
    done: u64,
    throttled: u64,
    lost_races: u64,
    ramp_ms: Option<i64>,
    quitters: usize,
    p50: i64,
    p99: i64,
    max: i64,
    makespan_ms: i64,
}

fn simulate(design: Design, workers: usize, tasks: usize, lag_ms: i64, spread_ms: i64) -> Report {
    let shards = match design {
        Design::New(_) => SHARDS,
        Design::Old(_) => 1,
    };
    let m = Model::new(shards, lag_ms, tasks);
    let mut rng = Rng(0x5eed_f1ee7);
    let durations: Vec<i64> = (0..tasks).map(|_| 60_000 + rng.below(540_000)).collect();
    let mut queue: BinaryHeap<Reverse<(i64, u64, usize, Event)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |q: &mut BinaryHeap<_>, at: i64, w: usize, e: Event| {
        seq += 1;
        q.push(Reverse((at, seq, w, e)));
    };
    for w in 0..workers {
        push(&mut queue, rng.below(spread_ms), w, Event::Claim);
    }
    let first_start = queue.peek().map(|r| r.0.0).unwrap_or(0);
    // Per worker: (task id, version, finish time) while busy; when its claim began.
    let mut holding: Vec<Option<(String, i64, i64)>> = vec![None; workers];
    let mut claim_began: Vec<Option<i64>> = vec![None; workers];
    let mut backoff: Vec<i64> = vec![250; workers];
    let mut latencies = vec![];
    let (mut busy, mut ramp_ms, mut quitters, mut done, mut heartbeats) = (0, None, 0, 0, 0);
    let mut makespan = 0;
    let mut task_index: HashMap<String, usize> = HashMap::new();
    for i in 0..tasks {
        task_index.insert(format!("S{i:06}"), i);
    }
    while let Some(Reverse((now, _, w, event))) = queue.pop() {
        match event {
            Event::Claim => {
                let began = *claim_began[w].get_or_insert(now);
                let step = match &design {
                    Design::New(c) => c[w].step(&m, COLLECTION, "w", LEASE_MS, now, began),
                    Design::Old(l) => l[w].step(&m, now),
                };
                let next = now + LATENCY_MS;
                match step {
                    Ok(Step::Claimed(t)) => {
                        backoff[w] = 250;
                        latencies.push(next - began);
                        claim_began[w] = None;
                        let ends = next + durations[task_index[&t.task_id]];
                        holding[w] = Some((t.task_id, t.version, ends));
                        busy += 1;
                        if busy == workers && ramp_ms.is_none() {
                            ramp_ms = Some(next - first_start);
                        }
                        let beat = next + LEASE_MS / 3;
                        if beat < ends {
                            push(&mut queue, beat, w, Event::Heartbeat);
                        } else {
                            push(&mut queue, ends, w, Event::Finish);
                        }
                    }
                    Ok(Step::Again) => push(&mut queue, next, w, Event::Claim),
                    Ok(Step::Pause(d)) => {
                        push(&mut queue, next + d.as_millis() as i64, w, Event::Claim)
                    }
                    Ok(Step::Drained) => {
                        let left = m
                            .items
                            .borrow()
                            .values()
                            .any(|it| it.state == TaskState::Todo);
                        quitters += left as usize;
                        makespan = makespan.max(now);
                    }
                    Err(_) => {
                        push(&mut queue, next + backoff[w], w, Event::Claim);
                        backoff[w] = (backoff[w] * 2).min(30_000);
                    }
                }
            }
            Event::Heartbeat => {
                let (id, version, ends) = holding[w].clone().expect("busy");
                heartbeats += 1;
                let version = match m.heartbeat(&id, version, now) {
                    Ok(true) => version + 1,
                    _ => version,
                };
                holding[w] = Some((id, version, ends));
                let beat = now + LEASE_MS / 3;
                if beat < ends {
                    push(&mut queue, beat, w, Event::Heartbeat);
                } else {
                    push(&mut queue, ends, w, Event::Finish);
                }
            }
            Event::Finish => {
                let (id, version, _) = holding[w].clone().expect("busy");
                match m.finish(&id, version, now) {
                    Ok(true) => {
                        done += 1;
                        busy -= 1;
                        holding[w] = None;
                        makespan = makespan.max(now);
                        push(&mut queue, now + LATENCY_MS, w, Event::Claim);
                    }
                    // Throttled: the worker tries again while its lease holds.
                    _ => push(&mut queue, now + 250, w, Event::Finish),
                }
            }
        }
    }
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize];
    Report {
        claim_requests: m.requests.get() - heartbeats,
        heartbeats,
        done,
        throttled: m.throttled.get(),
        lost_races: m.lost_races.get(),
        ramp_ms,
        quitters,
        p50: pct(0.5),
        p99: pct(0.99),
        max: *latencies.last().unwrap_or(&0),
        makespan_ms: makespan,
    }
}

fn main() {
    let workers = env_or("ANAMO_FLEET_WORKERS", 1000) as usize;
    let tasks = env_or("ANAMO_FLEET_TASKS", 100_000) as usize;
    let lag = env_or("ANAMO_FLEET_LAG_MS", 500);
    let spread = env_or("ANAMO_FLEET_START_MS", 1000);
    println!(
        "fleet simulation: {workers} workers started within {spread} ms, {tasks} tasks of 1-10 min, \
         index lag {lag} ms, {LATENCY_MS} ms per request, budgets {WRITES_PER_PARTITION:.0} \
         writes/s per table partition and {READS_PER_PARTITION:.0} reads/s per index partition"
    );
    let old = simulate(
        Design::Old(
            (0..workers)
                .map(|w| Legacy {
                    rng: RefCell::new(Rng(w as u64 * 7919 + 1)),
                    round: Cell::new(0),
                    list: RefCell::new(vec![]),
                })
                .collect(),
        ),
        workers,
        tasks,
        lag,
        spread,
    );
    let new = simulate(
        Design::New(
            (0..workers)
                .map(|w| Claimer::new(SHARDS, w as u64 * 104_729 + 17))
                .collect(),
        ),
        workers,
        tasks,
        lag,
        spread,
    );
    // The same design with one worker: the uncontended figure in the same model.
    let solo_tasks = tasks.min(2_000);
    let solo = simulate(
        Design::New(vec![Claimer::new(SHARDS, 17)]),
        1,
        solo_tasks,
        lag,
        0,
    );
    let per_task = |r: &Report| r.claim_requests as f64 / r.done.max(1) as f64;
    let ramp = |r: &Report| {
        r.ramp_ms
            .map(|ms| format!("{:.1} s", ms as f64 / 1000.0))
            .unwrap_or_else(|| "never".into())
    };
    println!(
        "{:<34} {:>16} {:>16}",
        "", "old (1 index, 8)", "new (16 shards)"
    );
    let row = |name: &str, a: String, b: String| println!("{name:<34} {a:>16} {b:>16}");
    row("tasks done", old.done.to_string(), new.done.to_string());
    row(
        "requests per task (claim+finish)",
        format!("{:.2}", per_task(&old)),
        format!("{:.2}", per_task(&new)),
    );
    row(
        "heartbeats per task",
        format!("{:.2}", old.heartbeats as f64 / old.done.max(1) as f64),
        format!("{:.2}", new.heartbeats as f64 / new.done.max(1) as f64),
    );
    row(
        "lost races (failed writes)",
        old.lost_races.to_string(),
        new.lost_races.to_string(),
    );
    row(
        "throttled requests",
        old.throttled.to_string(),
        new.throttled.to_string(),
    );
    row("time until every worker busy", ramp(&old), ramp(&new));
    row(
        "workers that quit with work left",
        old.quitters.to_string(),
        new.quitters.to_string(),
    );
    row(
        "claim latency p50",
        format!("{} ms", old.p50),
        format!("{} ms", new.p50),
    );
    row(
        "claim latency p99",
        format!("{} ms", old.p99),
        format!("{} ms", new.p99),
    );
    row(
        "claim latency max",
        format!("{} ms", old.max),
        format!("{} ms", new.max),
    );
    row(
        "all tasks done after",
        format!("{:.0} s", old.makespan_ms as f64 / 1000.0),
        format!("{:.0} s", new.makespan_ms as f64 / 1000.0),
    );
    println!(
        "one worker alone, new design, {solo_tasks} tasks: {:.2} requests per task (claim+finish)",
        per_task(&solo)
    );
    println!(
        "ratios: requests per task old/new {:.2}; new at {workers} workers / new alone {:.2}; \
         all done after old/new {:.2}",
        per_task(&old) / per_task(&new),
        per_task(&new) / per_task(&solo),
        old.makespan_ms as f64 / new.makespan_ms.max(1) as f64
    );
}
