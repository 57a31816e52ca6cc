//! The worker's warden: one small bash per worker that kills what the worker's scripts started
//! when the worker dies, however it dies. A worker SIGKILLed (the OOM killer, a Spot reclaim
//! the agent missed, `kill -9`) must take its scripts' tools with it, or a tool would run on,
//! unowned, while another worker runs the task again.
//!
//! The worker tells the warden, on a pipe, each script's process group as it starts (`+PGID`)
//! and ends (`-PGID`). The warden only reads; when the pipe reaches end-of-file, which the
//! kernel delivers when the worker is gone for any reason, it SIGKILLs every group still
//! listed and exits. It ignores the terminal's signals and has its own process group, so a
//! Ctrl-C reaches the worker, which decides. One warden per worker instead of a guard shell
//! per task: a task starts one bash, as a bash loop would.
//!
//! A script must not run before the warden watches it: a worker killed in between would leave
//! it unowned. So each script passes a gate first: its bash sources [`GATE`] (named by
//! BASH_ENV, before the script), which waits for the worker's go on stdin; the worker sends it
//! once the warden has the group. A worker that dies first closes that pipe, and the script
//! exits without running. The gate needs nothing in the child between fork and exec, so the
//! script starts with posix_spawn, not a fork of the whole worker.

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};

/// The warden's loop: bash builtins only, so a task's two lines cost it no fork.
const WARDEN: &str = r#"trap '' INT TERM HUP
declare -A live
while read -r op group; do
  if [ "$op" = + ]; then live[$group]=1; else unset "live[$group]"; fi
done
for group in "${!live[@]}"; do kill -KILL -- "-$group" 2>/dev/null; done"#;

/// Sourced by each script's bash before the script: wait for the worker's go (end-of-file: the
/// worker is gone, run nothing), give the script /dev/null as stdin as before, and honour the
/// user's own BASH_ENV if there was one. BASH_ENV is unset first, so the script's own bash
/// children do not pass the gate again.
const GATE: &str = r#"unset BASH_ENV
IFS= read -r _ || exit 125
exec 0</dev/null
if [ -n "${ANAMO_USER_BASH_ENV-}" ]; then
  export BASH_ENV="$ANAMO_USER_BASH_ENV"
  unset ANAMO_USER_BASH_ENV
  . "$BASH_ENV"
fi
"#;

/// A handle on the worker's warden; clones share it.
#[derive(Clone)]
pub struct Warden {
    inner: Arc<Mutex<Inner>>,
    /// What each script's bash needs to pass the gate: BASH_ENV naming it, and the user's own
    /// BASH_ENV kept aside; worked out once, not at every spawn.
    gate_env: Arc<[(&'static str, OsString)]>,
    /// bash, found on PATH once: a script started as plain `bash` would try each PATH folder
    /// in turn at every start (eight failed execs per task on a stock PATH).
    bash: Arc<Path>,
}

struct Inner {
    /// Closed (taken) when the warden is let go.
    to: Option<ChildStdin>,
    child: Child,
    /// The gate file, removed with the warden.
    gate: PathBuf,
}

impl Warden {
    /// Starts the warden, and writes the gate its scripts pass.
    pub fn start() -> io::Result<Self> {
        let gate = write_gate()?;
        let bash: Arc<Path> = find_bash().into();
        let mut child = Command::new(&*bash)
            .args(["-c", WARDEN])
            .env_remove("BASH_ENV")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&gate);
            })?;
        let to = child.stdin.take();
        let mut gate_env = vec![("BASH_ENV", gate.clone().into_os_string())];
        if let Some(theirs) = std::env::var_os("BASH_ENV") {
            gate_env.push(("ANAMO_USER_BASH_ENV", theirs));
        }
        Ok(Self {
            inner: Arc::new(Mutex::new(Inner { to, child, gate })),
            gate_env: gate_env.into(),
            bash,
        })
    }

    /// The bash scripts run under (a path when PATH has one).
    pub fn bash(&self) -> &Path {
        &self.bash
    }

    /// Makes `bash` pass the gate before its script: BASH_ENV names it (the user's own
    /// BASH_ENV is kept for the gate to source after), and stdin must be piped, for the go.
    pub fn gate(&self, bash: &mut Command) {
        bash.envs(self.gate_env.iter().map(|(k, v)| (k, v)));
    }

    /// The script leading process group `group` has started.
    pub fn watch(&self, group: i32) -> io::Result<()> {
        self.tell(&format!("+ {group}\n"))
    }

    /// The script of `group` has ended (or was killed and reaped).
    pub fn release(&self, group: i32) {
        // A warden that is gone can do nothing for a finished script either.
        let _ = self.tell(&format!("- {group}\n"));
    }

    fn tell(&self, line: &str) -> io::Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match inner.to.as_mut() {
            Some(to) => to.write_all(line.as_bytes()),
            None => Err(io::Error::other("the worker's warden was let go")),
        }
    }
}

impl Drop for Inner {
    /// The worker is done: the warden reads end-of-file, kills what is still listed (nothing,
    /// when every script ended) and exits; it is reaped here, not left a zombie.
    fn drop(&mut self) {
        drop(self.to.take());
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.gate);
    }
}

/// Writes [`GATE`] to a new file of this worker's in the temporary folder (a name nobody else
/// holds: created, never opened if it exists).
fn write_gate() -> io::Result<PathBuf> {
    let dir = std::env::temp_dir();
    for _ in 0..16 {
        let path = dir.join(format!(
            "anamo-gate-{}-{:016x}.sh",
            std::process::id(),
            crate::backoff::seed()
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                file.write_all(GATE.as_bytes())?;
                return Ok(path);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot write the script gate in '{}': {e}", dir.display()),
                ));
            }
        }
    }
    Err(io::Error::other(format!(
        "cannot find a free name for the script gate in '{}'",
        dir.display()
    )))
}

/// The first executable `bash` on PATH; plain `bash` (left to the spawn to find, or to fail
/// on) when there is none.
fn find_bash() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("bash"))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .unwrap_or_else(|| PathBuf::from("bash"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A script behind the gate, given `stdin` (what the worker sends before closing it).
    fn through_gate(warden: &Warden, dir: &std::path::Path, stdin: &[u8]) -> std::process::Output {
        let mut bash = Command::new("bash");
        bash.args([
            "-eo",
            "pipefail",
            "-c",
            // Its own stdin is /dev/null again, and a bash it starts does not wait at the gate.
            "touch ran; cat > stdin-seen; bash -c 'touch nested-ran'",
        ])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        warden.gate(&mut bash);
        let mut child = bash.spawn().unwrap();
        let mut go = child.stdin.take().unwrap();
        go.write_all(stdin).unwrap();
        drop(go);
        child.wait_with_output().unwrap()
    }

    #[test]
    fn a_script_runs_only_after_the_go_and_then_reads_nothing() {
        let warden = Warden::start().unwrap();
        let dir = std::env::temp_dir().join(format!("anamo-gate-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // The worker died before its go: the pipe closed empty, nothing ran.
        let out = through_gate(&warden, &dir, b"");
        assert_eq!(out.status.code(), Some(125), "{out:?}");
        assert!(!dir.join("ran").exists());
        // The go came: the script ran, with an empty stdin, and its own bash ran at once.
        let out = through_gate(&warden, &dir, b"go\nmore the script must not see\n");
        assert!(out.status.success(), "{out:?}");
        assert!(dir.join("ran").exists() && dir.join("nested-ran").exists());
        assert_eq!(std::fs::read(dir.join("stdin-seen")).unwrap(), b"");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
