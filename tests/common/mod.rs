//! Test harness: a temp dir, input files, and the real `anamo` binary run in it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Output, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

pub mod moto;

pub struct Env {
    pub dir: TempDir,
    /// Set on every process after the defaults (e.g. a DynamoDB store and its emulator).
    pub vars: Vec<(String, String)>,
}

impl Env {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            vars: vec![],
        }
    }

    pub fn with_vars(mut self, vars: Vec<(&str, String)>) -> Self {
        self.vars
            .extend(vars.into_iter().map(|(k, v)| (k.to_string(), v)));
        self
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn store(&self) -> PathBuf {
        self.path("tasks.db")
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write input");
        p
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// `anamo` in the temp dir, with the store there and no ANAMO_* from the outer world.
    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("anamo").expect("binary");
        self.prepare(c.current_dir(self.dir.path()));
        c
    }

    fn prepare<C: Configure>(&self, c: &mut C) {
        for (k, _) in std::env::vars() {
            if (k.starts_with("ANAMO_") && k != "ANAMO_PYTHON")
                || k.starts_with("AWS_")
                || k == "RUST_LOG"
            {
                c.remove(&k);
            }
        }
        c.set("ANAMO_STORE", self.store().to_str().unwrap());
        for (k, v) in &self.vars {
            c.set(k, v);
        }
    }

    /// Runs anamo and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().expect("run anamo");
        assert!(
            out.status.success(),
            "anamo {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs anamo whatever the outcome: (success, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.cmd().args(args).output().expect("run anamo");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs anamo and asserts failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out: Output = self.cmd().args(args).output().expect("run anamo");
        assert!(
            !out.status.success(),
            "anamo {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Starts anamo in the background (for concurrent workers and signals).
    pub fn spawn(&self, args: &[&str]) -> Child {
        let mut c = StdCommand::new(assert_cmd::cargo::cargo_bin("anamo"));
        c.current_dir(self.dir.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self.prepare(&mut c);
        c.spawn().expect("spawn anamo")
    }

    /// Starts anamo in the background with stdout and stderr going to `log` (a pipe nobody
    /// reads until exit could fill and stall it).
    pub fn spawn_logged(&self, args: &[&str], log: &Path) -> Child {
        let file = std::fs::File::create(log).expect("worker log");
        let mut c = StdCommand::new(assert_cmd::cargo::cargo_bin("anamo"));
        c.current_dir(self.dir.path())
            .args(args)
            .stdout(file.try_clone().expect("log handle"))
            .stderr(file);
        self.prepare(&mut c);
        c.spawn().expect("spawn anamo")
    }

    /// Every task in the store, as JSON objects (`tasks list --format jsonl`).
    pub fn tasks(&self) -> Vec<Value> {
        self.ok(&["tasks", "list", "--format", "jsonl"])
            .lines()
            .map(|l| serde_json::from_str(l).expect("jsonl row"))
            .collect()
    }

    pub fn task(&self, id: &str) -> Value {
        self.tasks()
            .into_iter()
            .find(|t| t["task_id"] == id)
            .unwrap_or_else(|| panic!("no task {id}"))
    }

    /// Count of tasks per state, as "todo running done failed".
    pub fn states(&self) -> std::collections::BTreeMap<String, usize> {
        let mut m = std::collections::BTreeMap::new();
        for t in self.tasks() {
            *m.entry(t["state"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
        m
    }
}

trait Configure {
    fn remove(&mut self, k: &str);
    fn set(&mut self, k: &str, v: &str);
}

impl Configure for Command {
    fn remove(&mut self, k: &str) {
        self.env_remove(k);
    }
    fn set(&mut self, k: &str, v: &str) {
        self.env(k, v);
    }
}

impl Configure for StdCommand {
    fn remove(&mut self, k: &str) {
        self.env_remove(k);
    }
    fn set(&mut self, k: &str, v: &str) {
        self.env(k, v);
    }
}

/// Polls `cond` until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// Waits for a child with a deadline; kills it and panics if it does not exit.
pub fn wait_child(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let until = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("process did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn send_signal(child: &Child, signal: i32) {
    // SAFETY: plain kill(2) on a child we started.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
}

pub fn file_lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Asserts that `path` lists each of `n` ids exactly once (tasks' scripts append their id).
pub fn assert_each_ran_once(path: &Path, n: usize) {
    let lines = file_lines(path);
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for l in &lines {
        *seen.entry(l.as_str()).or_default() += 1;
    }
    assert_eq!(seen.len(), n, "every task ran");
    let twice: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "tasks ran more than once: {twice:?}");
    assert_eq!(lines.len(), n);
}

/// The one definition of progress, case by case, on whatever store `env` uses: every surface
/// (status, the views, the reports, status --sample) must give the same answer.
/// S1, S2 done; S3's task abandoned (deleted while todo); S4 dropped; S5 failed then replaced by
/// a done task; S6 never added; S7 failed.
pub fn progress_matrix(env: &Env) {
    let rows: String = (1..=7).map(|i| format!("S{i}\n")).collect();
    env.write("samples.csv", &format!("sample_id\n{rows}"));
    env.ok(&["samples", "import", "samples.csv"]);
    env.write(
        "vc.csv",
        "task_id,sample,script\nt1,S1,true\nt2,S2,true\nt4,S4,true\nt5,S5,exit 1\nt7,S7,exit 1\n",
    );
    env.ok(&["tasks", "add", "vc.csv", "-c", "VC", "--max-attempts", "1"]);
    env.ok(&["worker", "-c", "VC"]);
    env.ok(&[
        "tasks", "add", "-c", "VC", "--id", "t3", "--sample", "S3", "--script", "true",
    ]);
    env.ok(&["sync"]);
    env.ok(&["tasks", "delete", "-c", "VC", "--id", "t3"]);
    env.ok(&["samples", "drop", "S4", "--reason", "withdrawn"]);
    // The usual fix: delete the failed task, add a new one under another id.
    env.ok(&["tasks", "delete", "-c", "VC", "--id", "t5"]);
    env.ok(&[
        "tasks", "add", "-c", "VC", "--id", "t5b", "--sample", "S5", "--script", "true",
    ]);
    env.ok(&["worker", "-c", "VC"]);
    env.ok(&["sync"]);
    env.ok(&["steps", "set", "VC"]);
    let csv = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--format", "csv"]);
        env.ok(&all)
    };
    let status = csv(&["status"]);
    assert!(
        status.contains("\nVC,0,0,3,1,4,75.0,"),
        "todo 0, running 0, done 3, failed 1 of 4: {status}"
    );
    assert!(
        status.trim_end().ends_with(",1,1,1"),
        "1 abandoned, 1 superseded, 1 dropped: {status}"
    );
    let progress = csv(&[
        "query",
        "SELECT todo, running, done, failed, total, pct_done, abandoned, superseded, dropped FROM progress WHERE collection = 'VC'",
    ]);
    assert_eq!(
        progress.lines().nth(1),
        Some("0,0,3,1,4,75.0,1,1,1"),
        "{progress}"
    );
    let steps = csv(&["query", "step-progress"]);
    assert_eq!(
        steps.lines().nth(1),
        Some("VC,0,0,3,1,4,75.0,1,1,1"),
        "{steps}"
    );
    assert_eq!(
        csv(&["query", "samples-left", "-p", "step=VC"]),
        "sample_id,cohort,state\nS3,,abandoned\nS6,,not added\nS7,,failed\n"
    );
    assert_eq!(
        csv(&["query", "samples-done", "-p", "step=VC"]),
        "sample_id,cohort\nS1,\nS2,\nS5,\n"
    );
    assert_eq!(
        csv(&[
            "query",
            "SELECT sample_id, state FROM sample_progress ORDER BY sample_id"
        ]),
        "sample_id,state\nS1,done\nS2,done\nS3,abandoned\nS4,dropped\nS5,done\nS6,not added\nS7,failed\n"
    );
    let failed = csv(&["query", "failed-tasks"]);
    assert_eq!(
        failed.lines().count(),
        2,
        "only t7 counts as failed: {failed}"
    );
    assert!(failed.contains("\nVC,t7,S7,"), "{failed}");
    let timeline = csv(&["query", "sample-timeline", "-p", "sample=S5"]);
    assert!(
        timeline.contains("VC,t5,superseded,") && timeline.contains("VC,t5b,done,"),
        "{timeline}"
    );
    for (sample, state) in [
        ("S3", "abandoned"),
        ("S4", "dropped"),
        ("S5", "done"),
        ("S6", "not added"),
    ] {
        let journey = csv(&["status", "--sample", sample]);
        assert!(
            journey.contains(&format!(",{state},")),
            "{sample}: {journey}"
        );
    }
}
