//! The one test harness: a temp dir with input files, and the real `anamo` binary run in it
//! with its whole outcome pinned. Like just's `Test`, a run expects exit code 0 and an empty
//! stderr unless the test says otherwise (`fails(code)`, `stderr(..)` and its looser,
//! clearly-named kin), so a test that forgets to look at the exit code or at a stray warning
//! still fails. A run built and never run, or a spawned process never waited for, fails too.

pub mod cloud;
pub mod dynalite;
pub mod imds;
pub mod moto;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use regex::Regex;
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;
use tempfile::TempDir;

/// The binary under test, built by cargo for this test crate.
pub const BIN: &str = env!("CARGO_BIN_EXE_anamo");

/// A DynamoDB emulator server on 127.0.0.1 (moto or dynalite): what a test needs to point
/// the library or an `anamo` process at it.
pub trait Emulator {
    fn url(&self) -> &str;

    fn aws(&self) -> anamo::aws::AwsOptions {
        anamo::aws::AwsOptions {
            region: Some("us-east-1".into()),
            profile: None,
            endpoint_url: Some(self.url().to_string()),
            static_keys: Some(("testing".into(), "testing".into())),
        }
    }

    /// Environment for an `anamo` process talking to it.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url().to_string()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }
}

/// The note `status` prints on stderr when the catalog's last sync finished (a regex).
pub const FRESH: &str =
    r"tasks as of the last sync, \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(\d+ min ago\)\n";

/// One warning line of a worker's log (tracing's format; no colour off a terminal), a regex.
pub const WARN: &str = r"\S+ +WARN [\w:]+: [^\n]*\n";

/// A temp dir that `anamo` runs in, with its store there and no ANAMO_*, AWS_* or RUST_LOG
/// from the outer world.
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

    /// `anamo ARGS` in the temp dir, expecting exit 0 and an empty stderr until told otherwise.
    pub fn anamo(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.dir.path());
        for (k, _) in std::env::vars() {
            if (k.starts_with("ANAMO_") && k != "ANAMO_PYTHON")
                || k.starts_with("AWS_")
                || k == "RUST_LOG"
            {
                cmd.env_remove(&k);
            }
        }
        cmd.env("ANAMO_STORE", self.store());
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd.args(args);
        Run::new(cmd, format!("anamo {}", shown(args)))
    }

    /// `anamo ARGS`, which must exit 0 with nothing on stderr; returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        self.anamo(args).run()
    }

    /// Every task in the store, as JSON objects (`tasks list --format jsonl`).
    #[track_caller]
    pub fn tasks(&self) -> Vec<Value> {
        self.ok(&["tasks", "list", "--format", "jsonl"])
            .lines()
            .map(|l| serde_json::from_str(l).expect("jsonl row"))
            .collect()
    }

    #[track_caller]
    pub fn task(&self, id: &str) -> Value {
        self.tasks()
            .into_iter()
            .find(|t| t["task_id"] == id)
            .unwrap_or_else(|| panic!("no task {id}"))
    }

    /// Count of tasks per state.
    #[track_caller]
    pub fn states(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for t in self.tasks() {
            *m.entry(t["state"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
        m
    }

    /// The one task `tasks show ID --format json` prints, every field of it.
    #[track_caller]
    pub fn show(&self, id: &str) -> Value {
        let out = self.ok(&["tasks", "show", id, "--format", "json"]);
        let rows: Vec<Value> = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("tasks show {id}: not a JSON array ({e}): {out}"));
        let [task] = <[Value; 1]>::try_from(rows)
            .unwrap_or_else(|rows| panic!("tasks show {id}: {} rows, expected one", rows.len()));
        task
    }

    /// The catalog (`anamo.db` here), opened read-only as a user's SQL would read it: what a
    /// test reads cannot change what it checks.
    #[track_caller]
    pub fn catalog(&self) -> Connection {
        self.catalog_in("anamo.db")
    }

    /// A catalog elsewhere in the temp dir (the demo's `d/anamo.db`), read-only.
    #[track_caller]
    pub fn catalog_in(&self, name: &str) -> Connection {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Connection::open_with_flags(self.path(name), flags)
            .unwrap_or_else(|e| panic!("catalog {name}: {e}"))
    }

    /// The catalog (`anamo.db`) opened for writing, made if missing: for a test that stages
    /// rows no command writes (times, instances), or spoils the file on purpose.
    #[track_caller]
    pub fn catalog_rw(&self) -> Connection {
        Connection::open(self.path("anamo.db")).unwrap_or_else(|e| panic!("catalog anamo.db: {e}"))
    }

    /// One number the catalog gives (`SELECT count(*) ...`).
    #[track_caller]
    pub fn count(&self, sql: &str) -> i64 {
        self.catalog()
            .query_row(sql, [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// Arguments as a person would type them (for failure messages).
fn shown(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            if a.is_empty() || a.contains([' ', '\n', '\'', '"', ';', '$']) {
                format!("{a:?}")
            } else {
                a.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What stderr must be. A run states at least one; none stated means "empty".
enum Check {
    Exact(String),
    FirstLine(String),
    StartsWith(String),
    EndsWith(String),
    Contains(String),
    /// One line, containing this.
    OneLineWith(String),
    /// A regex the whole of stderr must match.
    Matches(Regex),
}

impl Check {
    fn holds(&self, stderr: &str) -> bool {
        match self {
            Check::Exact(s) => stderr == s,
            Check::FirstLine(s) => stderr.lines().next() == Some(s.as_str()),
            Check::StartsWith(s) => stderr.starts_with(s.as_str()),
            Check::EndsWith(s) => stderr.ends_with(s.as_str()),
            Check::Contains(s) => stderr.contains(s.as_str()),
            Check::OneLineWith(s) => {
                stderr.ends_with('\n') && stderr.lines().count() == 1 && stderr.contains(s.as_str())
            }
            Check::Matches(re) => re.is_match(stderr),
        }
    }

    fn describe(&self) -> String {
        match self {
            Check::Exact(s) => format!("stderr should be exactly {s:?}"),
            Check::FirstLine(s) => format!("stderr's first line should be {s:?}"),
            Check::StartsWith(s) => format!("stderr should start with {s:?}"),
            Check::EndsWith(s) => format!("stderr should end with {s:?}"),
            Check::Contains(s) => format!("stderr should contain {s:?}"),
            Check::OneLineWith(s) => format!("stderr should be one line containing {s:?}"),
            Check::Matches(re) => format!("stderr should match the regex {:?}", re.as_str()),
        }
    }
}

/// The expected outcome of one process.
#[derive(Default)]
struct Expect {
    label: String,
    code: i32,
    stderr: Vec<Check>,
}

impl Expect {
    /// Panics naming every expectation the outcome broke, with both streams.
    #[track_caller]
    fn verify(&self, status: ExitStatus, out: &Output) {
        let mut wrong = vec![];
        if status.code() != Some(self.code) {
            let got = status.code().map_or(status.to_string(), |c| c.to_string());
            wrong.push(format!("exit code {got}, expected {}", self.code));
        }
        let empty = [Check::Exact(String::new())];
        let checks = if self.stderr.is_empty() {
            &empty[..]
        } else {
            &self.stderr[..]
        };
        wrong.extend(
            checks
                .iter()
                .filter(|c| !c.holds(&out.stderr))
                .map(Check::describe),
        );
        assert!(
            wrong.is_empty(),
            "{}\n{}\n--- stdout\n{}--- stderr\n{}---",
            self.label,
            wrong.join("\n"),
            out.stdout,
            out.stderr
        );
    }
}

/// What a finished process printed.
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

/// One process to run, and what it must end with. Build it, then `run()` (stdout back),
/// `output()` (both streams back) or `spawn()` (in the background).
#[must_use = "a run does nothing until .run(), .output() or .spawn()"]
pub struct Run {
    cmd: Option<Command>,
    expect: Expect,
}

impl Run {
    /// Any program (the README's shell blocks); `Env::anamo` for anamo itself.
    pub fn new(cmd: Command, label: String) -> Self {
        Self {
            cmd: Some(cmd),
            expect: Expect {
                label,
                ..Expect::default()
            },
        }
    }

    fn cmd(&mut self) -> &mut Command {
        self.cmd.as_mut().expect("not run yet")
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.cmd().env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Self {
        self.cmd().env_remove(key);
        self
    }

    /// The process must exit with this code (1 for a failure, 2 for a usage error).
    pub fn fails(mut self, code: i32) -> Self {
        assert_ne!(
            code, 0,
            "a run that fails with code 0 is a run that succeeds"
        );
        self.expect.code = code;
        self
    }

    /// Stderr must be exactly this.
    pub fn stderr(mut self, exact: impl Into<String>) -> Self {
        self.expect.stderr.push(Check::Exact(exact.into()));
        self
    }

    /// Stderr's first line must be exactly this (the rest is free: clap's usage lines).
    pub fn stderr_first_line(mut self, line: impl Into<String>) -> Self {
        self.expect.stderr.push(Check::FirstLine(line.into()));
        self
    }

    /// Stderr must start with this (the rest holds variable parts: paths, times).
    pub fn stderr_starts_with(mut self, prefix: impl Into<String>) -> Self {
        self.expect.stderr.push(Check::StartsWith(prefix.into()));
        self
    }

    /// Stderr must end with this (what comes before varies: a panic's message).
    pub fn stderr_ends_with(mut self, suffix: impl Into<String>) -> Self {
        self.expect.stderr.push(Check::EndsWith(suffix.into()));
        self
    }

    /// Stderr must be one line (an error's), containing this.
    pub fn stderr_one_line_with(mut self, part: impl Into<String>) -> Self {
        self.expect.stderr.push(Check::OneLineWith(part.into()));
        self
    }

    /// Stderr must contain this; each call adds one more part that must be there.
    pub fn stderr_contains(mut self, part: impl Into<String>) -> Self {
        self.expect.stderr.push(Check::Contains(part.into()));
        self
    }

    /// The whole of stderr must match this regex (for lines with variable parts).
    pub fn stderr_matches(mut self, regex: &str) -> Self {
        let re = Regex::new(&format!("^(?:{regex})$")).expect("a valid regex");
        self.expect.stderr.push(Check::Matches(re));
        self
    }

    /// Runs to the end and checks exit code and stderr; returns stdout.
    #[track_caller]
    pub fn run(self) -> String {
        self.output().stdout
    }

    /// Runs to the end and checks exit code and stderr; returns both streams.
    #[track_caller]
    pub fn output(mut self) -> Output {
        let label = self.expect.label.clone();
        let out = self
            .cmd
            .take()
            .expect("not run yet")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{label}: cannot start: {e}"));
        let output = Output {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        self.expect.verify(out.status, &output);
        output
    }

    /// Starts it in the background, its streams going to files (a pipe nobody reads could
    /// fill and stall it); `Running::wait` checks the outcome.
    pub fn spawn(mut self) -> Running {
        let files = tempfile::tempdir().expect("temp dir");
        let (out, err) = (files.path().join("stdout"), files.path().join("stderr"));
        let label = self.expect.label.clone();
        let child = self
            .cmd
            .take()
            .expect("not run yet")
            .stdin(Stdio::null())
            .stdout(File::create(&out).expect("stdout file"))
            .stderr(File::create(&err).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("{label}: cannot start: {e}"));
        Running {
            child,
            expect: std::mem::take(&mut self.expect),
            files,
            ended: false,
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.cmd.is_some() && !std::thread::panicking() {
            panic!(
                "{}: built but never run (call .run(), .output() or .spawn())",
                self.expect.label
            );
        }
    }
}

/// A process started by `Run::spawn`. It must be waited for (`wait`, `stop`) or killed
/// (`kill`): dropping it unchecked fails the test.
pub struct Running {
    child: Child,
    expect: Expect,
    files: TempDir,
    ended: bool,
}

impl Running {
    pub fn signal(&self, signal: i32) {
        // SAFETY: plain kill(2) on a child we started and have not reaped.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// What it has written to stdout so far.
    pub fn stdout_now(&self) -> String {
        self.streams().stdout
    }

    /// Whether it has ended (without checking how: `wait` does).
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_some()
    }

    #[track_caller]
    fn reap(&mut self, timeout: Duration) -> ExitStatus {
        let until = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                self.ended = true;
                return s;
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.ended = true;
                panic!("{}: did not exit within {timeout:?}", self.expect.label);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn streams(&self) -> Output {
        let read = |name: &str| {
            String::from_utf8_lossy(
                &std::fs::read(self.files.path().join(name)).unwrap_or_default(),
            )
            .into_owned()
        };
        Output {
            stdout: read("stdout"),
            stderr: read("stderr"),
        }
    }

    /// Waits for it to end (killing it and failing past `timeout`) and checks exit code and
    /// stderr as the run was built to expect.
    #[track_caller]
    pub fn wait(mut self, timeout: Duration) -> Output {
        let status = self.reap(timeout);
        let out = self.streams();
        self.expect.verify(status, &out);
        out
    }

    /// Sends `signal` and waits: it ends as the run was built to expect (it handled the
    /// signal), or it died of that very signal, sent before it could install its handlers
    /// (then there is nothing to check on stderr).
    #[track_caller]
    pub fn stop(mut self, signal: i32, timeout: Duration) {
        use std::os::unix::process::ExitStatusExt;
        self.signal(signal);
        let status = self.reap(timeout);
        if status.signal() != Some(signal) {
            self.expect.verify(status, &self.streams());
        }
    }

    /// SIGKILL, then checks that it died of it (a killed process's stderr ends wherever it
    /// was, so it is not checked), or that it had ended on its own as the run was built to
    /// expect (a `--wait` worker whose step drained, before the signal reached it).
    #[track_caller]
    pub fn kill(mut self, timeout: Duration) {
        use std::os::unix::process::ExitStatusExt;
        self.signal(libc::SIGKILL);
        let status = self.reap(timeout);
        if status.signal() != Some(libc::SIGKILL) {
            self.expect.verify(status, &self.streams());
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.child.kill();
            let _ = self.child.wait();
            if !std::thread::panicking() {
                panic!(
                    "{}: started but never waited for (call .wait(), .stop() or .kill())",
                    self.expect.label
                );
            }
        }
    }
}

/// Held by the tests that keep both cores busy on their own (worker herds, the DynamoDB model):
/// run side by side they starve each other and the serial emulator, and a herd that should
/// take two minutes takes five. Lighter tests still run beside them.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A heavy test that failed poisons the lock; the next one still runs alone.
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
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
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for l in &lines {
        *seen.entry(l.as_str()).or_default() += 1;
    }
    assert_eq!(seen.len(), n, "every task ran");
    let twice: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "tasks ran more than once: {twice:?}");
    assert_eq!(lines.len(), n);
}

// The harness's own promises: a run that is not told what to expect expects exit 0 and an
// empty stderr, and nothing built or started escapes unchecked.

#[test]
#[should_panic(expected = "stderr should be exactly \"\"")]
fn a_note_nobody_expected_fails_the_run() {
    let env = Env::new();
    let add = ["tasks", "add", "-c", "X", "--id", "a", "--script", "true"];
    env.ok(&add);
    // Added again: skipped, with a note on stderr that this run does not expect.
    env.ok(&add);
}

#[test]
#[should_panic(expected = "exit code 2, expected 0")]
fn an_exit_code_nobody_expected_fails_the_run() {
    Env::new()
        .anamo(&["tasks", "list", "--nope"])
        .stderr_first_line("error: unexpected argument '--nope' found")
        .run();
}

#[test]
#[should_panic(expected = "built but never run")]
fn a_run_built_and_never_run_fails_the_test() {
    let _forgotten = Env::new().anamo(&["--version"]);
}

#[test]
#[should_panic(expected = "started but never waited for")]
fn a_process_started_and_never_waited_for_fails_the_test() {
    let _forgotten = Env::new().anamo(&["--version"]).spawn();
}
