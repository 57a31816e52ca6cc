//! Chaos: workers of three chained steps (each task --after its sample's task in the step
//! before), all running at once while a loop SIGKILLs and SIGTERMs random workers and starts
//! new ones. At the end every task is done, none is left waiting or running, no task started
//! before its sample's upstream task had finished, and a task's side effect appears more than
//! once only when its first run was cut short by a killed worker (it started again after the
//! lease expired). Both stores (DynamoDB on the emulator). Small in CI; ANAMO_CHAOS_TASKS / ANAMO_CHAOS_SECS make it a
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
    let _alone = crate::harness::heavy();
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

/// The three chained steps: each task of a sample waits for its sample's task in the step
/// before.
const STEPS: [&str; 3] = ["A", "B", "C"];

fn chaos(env: &Env, tasks: u64, secs: u64) {
    let samples = tasks / STEPS.len() as u64;
    let tasks = samples * STEPS.len() as u64;
    add_chained_steps(env, samples);
    let (kills, terms) = run_in_chaos(env, tasks, secs);
    each_ran_in_order_and_repeated_only_after_a_kill(env, samples, tasks, (kills, terms));
}

/// Every step at once, the later ones --after the one before, `samples` tasks each.
fn add_chained_steps(env: &Env, samples: u64) {
    // Every step at once, the later ones --after the one before. Each run notes its start and
    // end with a timestamp (ns), so the order can be checked afterwards.
    for (n, step) in STEPS.iter().enumerate() {
        let mut csv = String::from("task_id,sample,script\n");
        for i in 0..samples {
            csv.push_str(&format!(
                "{step}{i:05},s{i:05},\"echo $ANAMO_COLLECTION $ANAMO_SAMPLE $(date +%s%N) >> starts.txt; sleep 0.{}; echo $ANAMO_COLLECTION $ANAMO_SAMPLE $(date +%s%N) >> done.txt\"\n",
                5 + i % 15
            ));
        }
        env.write("tasks.csv", &csv);
        let mut args = vec![
            "tasks",
            "add",
            "tasks.csv",
            "-c",
            step,
            "--max-attempts",
            "100",
        ];
        if n > 0 {
            args.extend(["--after", STEPS[n - 1]]);
        }
        env.ok(&args);
    }
}

/// Six workers, killed and stopped at random for `secs`, then left to drain the `tasks`:
/// returns how many were SIGKILLed and SIGTERMed.
fn run_in_chaos(env: &Env, tasks: u64, secs: u64) -> (u32, u32) {
    // A worker's log: the note of its SIGTERM, and warnings of leases lost to the chaos.
    let log = format!(
        r"(?:{WARN}|stopping \(SIGTERM\): claiming nothing more; \d+ running task\(s\) get 0s, then they are killed and handed back \(again to stop now\)\n)*"
    );
    let worker = |env: &Env, step: &str| {
        env.anamo(&[
            "worker", "-c", step, "--lease", "1s", "--grace", "300ms", "--wait",
        ])
        .stderr_matches(&log)
        .spawn()
    };
    // Two workers per step, all at once; a stopped worker is replaced by one of its step.
    let mut workers: Vec<(Running, &str)> = (0..6)
        .map(|i| (worker(env, STEPS[i % 3]), STEPS[i % 3]))
        .collect();
    let mut rng = Lcg(7);
    let (mut kills, mut terms) = (0, 0);
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(250 + rng.next(250)));
        let i = rng.next(workers.len() as u64) as usize;
        let (victim, step) = workers.swap_remove(i);
        if rng.next(10) < 4 {
            victim.kill(Duration::from_secs(10));
            kills += 1;
        } else {
            victim.stop(libc::SIGTERM, Duration::from_secs(10));
            terms += 1;
        }
        workers.push((worker(env, step), step));
    }
    // Let the survivors drain what is left (expired leases included), then stop them.
    let drained = wait_for(Duration::from_secs(120), || {
        env.states().get("done").copied().unwrap_or(0) == tasks as usize
    });
    for (w, _) in workers {
        w.signal(libc::SIGTERM);
        w.wait(Duration::from_secs(10));
    }
    assert!(drained, "not every task got done: {:?}", env.states());
    assert_eq!(
        env.states().len(),
        1,
        "nothing left waiting, todo, running or failed"
    );
    (kills, terms)
}

fn each_ran_in_order_and_repeated_only_after_a_kill(
    env: &Env,
    samples: u64,
    tasks: u64,
    (kills, terms): (u32, u32),
) {
    // (step, sample) -> the times its runs started / wrote their side effect.
    let times = |file: &str| {
        let mut m: HashMap<(String, String), Vec<u128>> = HashMap::new();
        for l in file_lines(&env.path(file)) {
            let f: Vec<&str> = l.split(' ').collect();
            m.entry((f[0].to_string(), f[1].to_string()))
                .or_default()
                .push(f[2].parse().expect("a timestamp"));
        }
        m
    };
    let (started, ended) = (times("starts.txt"), times("done.txt"));
    // No downstream run ever started before its sample's upstream task had finished: after
    // the last side effect upstream (a run cut short after writing it ran again before done).
    let mut checked = 0;
    for (n, step) in STEPS.iter().enumerate().skip(1) {
        for i in 0..samples {
            let sample = format!("s{i:05}");
            let up = &ended[&(STEPS[n - 1].to_string(), sample.clone())];
            let first_start = started[&(step.to_string(), sample.clone())]
                .iter()
                .min()
                .copied();
            assert!(
                first_start > up.iter().max().copied(),
                "{step} of {sample} started before {} had finished",
                STEPS[n - 1]
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * samples);
    let count = |file: &str| -> HashMap<String, usize> {
        times(file)
            .into_iter()
            .map(|((step, sample), runs)| (format!("{step} {sample}"), runs.len()))
            .collect()
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
