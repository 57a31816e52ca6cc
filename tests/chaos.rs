//! Chaos: workers over many tasks while a loop SIGKILLs and SIGTERMs random workers and starts
//! new ones. At the end every task is done, none is left running, and a task's side effect
//! appears more than once only when its first run was cut short by a killed worker (it started
//! again after the lease expired). Both stores (DynamoDB on the emulator). Small in CI; ANAMO_CHAOS_TASKS / ANAMO_CHAOS_SECS make it a
//! local soak.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::harness::{Env, Running, WARN, file_lines, wait_for};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A tiny deterministic generator: the same chaos every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

#[test]
fn chaos_on_the_sqlite_store_loses_nothing() {
    chaos(
        &Env::new(),
        env_num("ANAMO_CHAOS_TASKS", 150),
        env_num("ANAMO_CHAOS_SECS", 8),
    );
}

#[test]
fn chaos_on_the_dynamodb_store_loses_nothing() {
    let Some(moto) = crate::harness::moto::Moto::start() else {
        return;
    };
    let mut vars = moto.env();
    vars.push(("ANAMO_STORE", "dynamodb://chaos".to_string()));
    let env = Env::new().with_vars(vars);
    env.ok(&["store", "init"]);
    chaos(
        &env,
        env_num("ANAMO_CHAOS_TASKS", 150) / 2,
        env_num("ANAMO_CHAOS_SECS", 8),
    );
}

fn chaos(env: &Env, tasks: u64, secs: u64) {
    let mut csv = String::from("task_id,script\n");
    for i in 0..tasks {
        csv.push_str(&format!(
            "t{i:05},\"echo $ANAMO_TASK_ID >> starts.txt; sleep 0.{}; echo $ANAMO_TASK_ID >> done.txt\"\n",
            5 + i % 15
        ));
    }
    env.write("tasks.csv", &csv);
    env.ok(&[
        "tasks",
        "add",
        "tasks.csv",
        "-c",
        "Chaos",
        "--max-attempts",
        "100",
    ]);
    // A worker's log: the note of its SIGTERM, and warnings of leases lost to the chaos.
    let log = format!(
        r"(?:{WARN}|stopping \(SIGTERM\): claiming nothing more; \d+ running task\(s\) get 0s, then they are killed and handed back \(again to stop now\)\n)*"
    );
    let worker = |env: &Env| {
        env.anamo(&[
            "worker", "-c", "Chaos", "--lease", "1s", "--grace", "300ms", "--wait",
        ])
        .stderr_matches(&log)
        .spawn()
    };
    let mut workers: Vec<Running> = (0..6).map(|_| worker(env)).collect();
    let mut rng = Lcg(7);
    let (mut kills, mut terms) = (0, 0);
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(250 + rng.next(250)));
        let i = rng.next(workers.len() as u64) as usize;
        let victim = workers.swap_remove(i);
        if rng.next(10) < 4 {
            victim.kill(Duration::from_secs(10));
            kills += 1;
        } else {
            victim.stop(libc::SIGTERM, Duration::from_secs(10));
            terms += 1;
        }
        workers.push(worker(env));
    }
    // Let the survivors drain what is left (expired leases included), then stop them.
    let drained = wait_for(Duration::from_secs(120), || {
        env.states().get("done").copied().unwrap_or(0) == tasks as usize
    });
    for w in workers {
        w.signal(libc::SIGTERM);
        w.wait(Duration::from_secs(10));
    }
    assert!(drained, "not every task got done: {:?}", env.states());
    assert_eq!(
        env.states().len(),
        1,
        "nothing left todo, running or failed"
    );

    let count = |file: &str| {
        let mut m: HashMap<String, usize> = HashMap::new();
        for l in file_lines(&env.path(file)) {
            *m.entry(l).or_default() += 1;
        }
        m
    };
    let (starts, done) = (count("starts.txt"), count("done.txt"));
    assert_eq!(
        done.len(),
        tasks as usize,
        "every task's side effect happened"
    );
    for (id, n) in &done {
        if *n > 1 {
            assert!(starts[id] > 1, "{id} finished {n} times from one start");
        }
    }
    let twice = done.values().filter(|n| **n > 1).count();
    eprintln!(
        "chaos on {}: {tasks} tasks, {kills} SIGKILLs, {terms} SIGTERMs; {} restarts, {twice} side effects repeated after a killed run",
        env.vars
            .iter()
            .find(|(k, _)| k == "ANAMO_STORE")
            .map_or("sqlite", |(_, v)| v.as_str()),
        starts.values().map(|n| n - 1).sum::<usize>()
    );
}
