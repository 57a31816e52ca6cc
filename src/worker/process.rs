//! One run of a task's script: `bash -eo pipefail -c SCRIPT` in its own process group, watched
//! by the worker's warden (warden.rs), with stdout and stderr copied to the attempt's log (or
//! the worker's stderr) and the last bytes of stderr kept for the task's error tail.
//! Its exit and output are followed from the slot's own thread (polled.rs) where the kernel
//! gives a pidfd, else by three threads.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::polled::Polled;
use super::warden::Warden;
use crate::model::{ERROR_TAIL_BYTES, Task};

/// A script that is running.
pub struct Running {
    pid: i32,
    warden: Warden,
    /// Set once its exit was seen; until then, dropping it kills the script.
    reaped: std::cell::Cell<bool>,
    watch: Watch,
    tail: Arc<Mutex<VecDeque<u8>>>,
}

/// How its exit and output are followed.
enum Watch {
    /// By the slot's own thread, polling the script's pidfd and pipes (polled.rs).
    Polled(RefCell<Polled>),
    /// By three threads (a kernel without pidfd_open): two copy the pipes, one waits.
    Threads {
        exited: Receiver<io::Result<ExitStatus>>,
        pumps_done: Receiver<()>,
    },
}

/// How long to wait for output after the script exits: a background job it left behind may
/// hold the pipes open forever, and must not hold the worker too.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// Starts the script of `task`, with `env` set besides the task's own variables.
pub fn spawn(
    task: &Task,
    log: Option<&Path>,
    env: &[(String, String)],
    warden: &Warden,
) -> io::Result<Running> {
    let mut cmd = Command::new(warden.bash());
    cmd.args(["-eo", "pipefail", "-c", &task.script])
        // The gate (warden.rs): the script waits on stdin for the worker's go.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a terminal's Ctrl-C reaches the worker only, which decides,
        // and a kill reaches everything the script started.
        .process_group(0)
        .env("ANAMO_TASK_ID", &task.task_id)
        .env("ANAMO_COLLECTION", &task.collection)
        .env("ANAMO_SAMPLE", task.sample.as_deref().unwrap_or(""))
        .env("ANAMO_ATTEMPT", task.attempts.to_string())
        .env("ANAMO_RUN", task.runs.to_string());
    for (name, value) in &task.attrs {
        cmd.env(format!("ANAMO_ATTR_{}", name.to_ascii_uppercase()), value);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    warden.gate(&mut cmd);
    let sink = match log {
        Some(path) => {
            // io::Result here: name the file, as Error::Write would.
            let cannot_write = |e: io::Error| {
                io::Error::new(e.kind(), format!("cannot write '{}': {e}", path.display()))
            };
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(cannot_write)?;
            }
            Some(File::create(path).map_err(cannot_write)?)
        }
        None => None,
    };
    let mut child = cmd.spawn()?;
    let pid = child.id() as i32;
    let go = child.stdin.take();
    if let Err(e) = warden.watch(pid).and_then(|()| open_gate(go)) {
        // Unwatched, it could outlive a killed worker: not run at all.
        // SAFETY: kill(2) with a negative pid signals the process group the script leads.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = child.wait();
        return Err(io::Error::other(format!(
            "the worker's warden is gone ({e})"
        )));
    }
    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(ERROR_TAIL_BYTES)));
    let (mut child, sink) = match Polled::start(child, sink, Arc::clone(&tail)) {
        Ok(polled) => {
            return Ok(Running {
                pid,
                warden: warden.clone(),
                reaped: std::cell::Cell::new(false),
                watch: Watch::Polled(RefCell::new(polled)),
                tail,
            });
        }
        Err(given_back) => given_back,
    };
    let (done_tx, pumps_done) = mpsc::channel();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out_sink = sink.as_ref().map(File::try_clone).transpose()?;
    if let Some(stdout) = stdout {
        let done = done_tx.clone();
        thread::spawn(move || {
            pump(stdout, out_sink, None);
            let _ = done.send(());
        });
    }
    if let Some(stderr) = stderr {
        let tail = Arc::clone(&tail);
        thread::spawn(move || {
            pump(stderr, sink, Some(&tail));
            let _ = done_tx.send(());
        });
    }
    let (exit_tx, exited) = mpsc::channel();
    thread::spawn(move || {
        let _ = exit_tx.send(child.wait());
    });
    Ok(Running {
        pid,
        warden: warden.clone(),
        reaped: std::cell::Cell::new(false),
        watch: Watch::Threads { exited, pumps_done },
        tail,
    })
}

/// Lets a watched script run: its gate reads this line, then stdin is /dev/null again.
fn open_gate(go: Option<std::process::ChildStdin>) -> io::Result<()> {
    match go {
        Some(mut go) => go.write_all(b"go\n"),
        None => Err(io::Error::other("the script's stdin was not piped")),
    }
}

/// Copies a pipe to the log file (or our stderr), keeping the last bytes in `tail`.
fn pump(mut from: impl Read, mut to: Option<File>, tail: Option<&Mutex<VecDeque<u8>>>) {
    while copy_once(&mut from, &mut to, tail) {}
}

/// Copies one read's worth of a pipe to the log file (or our stderr), keeping the last bytes
/// in `tail`; false once the pipe is closed. The one copy both watches use.
pub(super) fn copy_once(
    from: &mut impl Read,
    to: &mut Option<File>,
    tail: Option<&Mutex<VecDeque<u8>>>,
) -> bool {
    let mut buf = [0u8; 16 * 1024];
    let n = match from.read(&mut buf) {
        Ok(0) | Err(_) => return false,
        Ok(n) => n,
    };
    let chunk = &buf[..n];
    // A full disk must not stop the script: its output is dropped, the run goes on.
    let _ = match to.as_mut() {
        Some(f) => f.write_all(chunk),
        None => io::stderr().lock().write_all(chunk),
    };
    if let Some(tail) = tail {
        keep_tail(tail, chunk);
    }
    true
}

/// Adds `chunk` to a stderr tail, keeping its last [`ERROR_TAIL_BYTES`].
fn keep_tail(tail: &Mutex<VecDeque<u8>>, chunk: &[u8]) {
    let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
    t.extend(chunk);
    let excess = t.len().saturating_sub(ERROR_TAIL_BYTES);
    t.drain(..excess);
}

impl Running {
    /// Waits up to `d` for the script to exit.
    pub fn wait_timeout(&self, d: Duration) -> Option<io::Result<ExitStatus>> {
        let got = match &self.watch {
            Watch::Polled(p) => {
                let mut p = p.borrow_mut();
                let got = p.wait_until(Instant::now() + d);
                self.reaped.set(p.reaped());
                return got;
            }
            Watch::Threads { exited, .. } => exited.recv_timeout(d),
        };
        match got {
            Ok(r) => {
                self.reaped.set(true);
                Some(r)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                Some(Err(io::Error::other("lost track of the script")))
            }
        }
    }

    /// Kills the script's whole process group and waits for it.
    pub fn kill(&self) -> Option<io::Result<ExitStatus>> {
        // SAFETY: kill(2) with a negative pid signals the process group the script leads.
        unsafe {
            libc::kill(-self.pid, libc::SIGKILL);
        }
        self.wait_timeout(Duration::from_secs(10))
    }

    /// Waits (briefly) for the output to be copied, then returns the last bytes of stderr.
    pub fn finish_output(&self) -> String {
        let until = Instant::now() + OUTPUT_DRAIN;
        match &self.watch {
            Watch::Polled(p) => p.borrow_mut().drain_until(until),
            Watch::Threads { pumps_done, .. } => {
                for _ in 0..2 {
                    let left = until.saturating_duration_since(Instant::now());
                    if pumps_done.recv_timeout(left).is_err() {
                        break;
                    }
                }
            }
        }
        let t = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        let bytes: Vec<u8> = t.iter().copied().collect();
        // The cut may fall inside a UTF-8 character: drop its leftover bytes.
        let start = bytes
            .iter()
            .position(|b| (*b as i8) >= -0x40)
            .unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }
}

impl Drop for Running {
    /// A script nobody waits for any more (its slot panicked) must not run on unowned; and
    /// once it is reaped, the warden lets its group go.
    fn drop(&mut self) {
        if !self.reaped.get() {
            self.kill();
        }
        self.warden.release(self.pid);
    }
}

/// The exit code a shell would report: the code, or 128 + the signal that killed it.
pub fn exit_code(status: &ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}
