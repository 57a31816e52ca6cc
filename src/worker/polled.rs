//! Watching a script from its slot's own thread: one poll(2) on the script's pidfd and its two
//! pipes both copies its output and sees it exit, with no thread per run (three thread starts
//! and their wake-ups were most of the worker's cost per task beyond bash's own). Used where
//! the kernel has pidfd_open (Linux 5.3); process.rs keeps threads as the fallback.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::{Child, ChildStderr, ChildStdout, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::process::copy_once;

/// A running script's exit and output, watched by poll.
pub struct Polled {
    child: Child,
    pidfd: OwnedFd,
    out: Option<(ChildStdout, Option<File>)>,
    err: Option<(ChildStderr, Option<File>)>,
    tail: Arc<Mutex<std::collections::VecDeque<u8>>>,
    status: Option<ExitStatus>,
}

/// A pidfd for `child`, or `None` when the kernel has none to give.
fn pidfd_of(child: &Child) -> Option<OwnedFd> {
    // A fault hook for the test of the fallback on kernels without pidfd_open; not in
    // release builds.
    #[cfg(debug_assertions)]
    if std::env::var_os("ANAMO_DEBUG_NO_PIDFD").is_some() {
        return None;
    }
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the descriptor was just returned to us and is owned by nobody else.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

impl Polled {
    /// Takes over `child` (its stdout and stderr piped) when a pidfd can watch it; gives it
    /// back otherwise.
    pub fn start(
        mut child: Child,
        sink: Option<File>,
        tail: Arc<Mutex<std::collections::VecDeque<u8>>>,
    ) -> Result<Self, (Child, Option<File>)> {
        let Some(pidfd) = pidfd_of(&child) else {
            return Err((child, sink));
        };
        let out_sink = match sink.as_ref().map(File::try_clone).transpose() {
            Ok(s) => s,
            Err(_) => return Err((child, sink)),
        };
        let out = child.stdout.take().map(|p| (p, out_sink));
        let err = child.stderr.take().map(|p| (p, sink));
        Ok(Self {
            child,
            pidfd,
            out,
            err,
            tail,
            status: None,
        })
    }

    /// Copies output until the script exits or `until` passes; its exit status once it has.
    pub fn wait_until(&mut self, until: Instant) -> Option<io::Result<ExitStatus>> {
        loop {
            if let Some(status) = self.status {
                return Some(Ok(status));
            }
            let (pidfd_ready, timed_out) = match self.poll(until, true) {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
            };
            if pidfd_ready {
                match self.child.try_wait() {
                    Ok(Some(status)) => self.status = Some(status),
                    Ok(None) => {}
                    Err(e) => return Some(Err(e)),
                }
                continue;
            }
            if timed_out {
                return None;
            }
        }
    }

    /// Copies what is left of the output, until both pipes close or `until` passes (a
    /// background job the script left may hold them open for ever).
    pub fn drain_until(&mut self, until: Instant) {
        while self.out.is_some() || self.err.is_some() {
            match self.poll(until, false) {
                Ok((_, false)) => {}
                _ => return,
            }
        }
    }

    /// One poll of the pipes (and the pidfd when `exit_too`), copying what is ready. Returns
    /// whether the pidfd was ready and whether `until` passed with nothing ready.
    fn poll(&mut self, until: Instant, exit_too: bool) -> io::Result<(bool, bool)> {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(3);
        let watch = |fd: RawFd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        if exit_too {
            fds.push(watch(self.pidfd.as_raw_fd()));
        }
        let out_at = self.out.as_ref().map(|(p, _)| {
            fds.push(watch(p.as_raw_fd()));
            fds.len() - 1
        });
        let err_at = self.err.as_ref().map(|(p, _)| {
            fds.push(watch(p.as_raw_fd()));
            fds.len() - 1
        });
        let left = until.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs for the call's length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok((false, false))
            } else {
                Err(e)
            };
        }
        if n == 0 {
            return Ok((false, true));
        }
        let ready = |i: Option<usize>| i.is_some_and(|i| fds[i].revents != 0);
        if ready(out_at) && !copy_some(&mut self.out, None) {
            self.out = None;
        }
        if ready(err_at) && !copy_some(&mut self.err, Some(&self.tail)) {
            self.err = None;
        }
        Ok((exit_too && fds[0].revents != 0, false))
    }

    /// Whether the script was seen to exit (and was reaped).
    pub fn reaped(&self) -> bool {
        self.status.is_some()
    }
}

/// Copies one read's worth from a ready pipe; false once it is closed (or already gone).
fn copy_some<P: Read>(
    pipe: &mut Option<(P, Option<File>)>,
    tail: Option<&Mutex<std::collections::VecDeque<u8>>>,
) -> bool {
    pipe.as_mut()
        .is_some_and(|(from, to)| copy_once(from, to, tail))
}
