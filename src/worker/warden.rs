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

use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};

/// The warden's loop: bash builtins only, so a task's two lines cost it no fork.
const WARDEN: &str = r#"trap '' INT TERM HUP
declare -A live
while read -r op group; do
  if [ "$op" = + ]; then live[$group]=1; else unset "live[$group]"; fi
done
for group in "${!live[@]}"; do kill -KILL -- "-$group" 2>/dev/null; done"#;

/// A handle on the worker's warden; clones share it.
#[derive(Clone)]
pub struct Warden {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    /// Closed (taken) when the warden is let go.
    to: Option<ChildStdin>,
    child: Child,
}

impl Warden {
    /// Starts the warden.
    pub fn start() -> io::Result<Self> {
        let mut child = Command::new("bash")
            .args(["-c", WARDEN])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        let to = child.stdin.take();
        Ok(Self {
            inner: Arc::new(Mutex::new(Inner { to, child })),
        })
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
    }
}
