//! What the benchmarks share: sizes from the environment, a command's wall time and peak RSS,
//! and the moto emulator.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs a command to the end (with `input` on stdin); returns wall time and peak RSS in MiB.
/// The child is reaped by `wait4`, which also gives its resource usage.
#[allow(clippy::zombie_processes)]
pub fn measure_with(cmd: &mut Command, input: Option<&str>) -> (Duration, f64) {
    use std::io::Write;
    let started = Instant::now();
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).expect("stdin");
    }
    let mut status = 0;
    // SAFETY: wait4 on our own child, with valid pointers.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::wait4(child.id() as i32, &mut status, 0, &mut usage);
        usage
    };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "command failed: {cmd:?}"
    );
    (started.elapsed(), usage.ru_maxrss as f64 / 1024.0)
}

pub fn measure(cmd: &mut Command) -> (Duration, f64) {
    measure_with(cmd, None)
}

/// The emulator process, and the file where it logs each request's operation.
pub struct Moto(Child, std::path::PathBuf);

impl Moto {
    /// How many requests the emulator has served so far.
    pub fn requests(&self) -> usize {
        std::fs::read_to_string(&self.1)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_file(&self.1);
    }
}

/// moto's server (serving one request at a time) on a free port; `None` when not installed.
pub fn start_moto() -> Option<(Moto, String)> {
    let python = std::env::var("ANAMO_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python").to_string());
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/moto_serial.py");
    let log = std::env::temp_dir().join(format!("anamo-bench-moto-{port}.log"));
    let child = Command::new(&python)
        .args([script, "127.0.0.1", &port.to_string()])
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let moto = Moto(child, log);
    let until = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((moto, format!("http://127.0.0.1:{port}")))
}

/// Options for talking to the emulator at `url` with dummy keys.
pub fn emulator(url: &str) -> anamo::aws::AwsOptions {
    anamo::aws::AwsOptions {
        region: Some("us-east-1".into()),
        profile: None,
        endpoint_url: Some(url.to_string()),
        static_keys: Some(("bench".into(), "bench".into())),
    }
}
