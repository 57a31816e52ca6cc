//! The second DynamoDB: dynalite (an independent implementation on LevelDB, in memory here,
//! from the npm registry) on a free 127.0.0.1 port, started per test and stopped on drop.
//! `scripts/test.sh` installs it into `.dynalite/`; in CI a missing dynalite fails the test,
//! elsewhere the test says so and passes over it. dynalite applies each request's condition
//! and write under a lock of the item, as DynamoDB does, so it is served as it comes.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Emulator;

pub struct Dynalite {
    child: Child,
    pub url: String,
}

/// The dynalite launcher: ANAMO_DYNALITE, or the project's `.dynalite/` install.
fn launcher() -> Option<String> {
    let local = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/.dynalite/node_modules/.bin/dynalite"
    );
    [
        std::env::var("ANAMO_DYNALITE").ok(),
        Some(local.to_string()),
    ]
    .into_iter()
    .flatten()
    .find(|p| std::path::Path::new(p).is_file())
}

impl Dynalite {
    /// Starts dynalite, or `None` outside CI when it is not installed.
    pub fn start() -> Option<Dynalite> {
        let Some(bin) = launcher() else {
            if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
                panic!("dynalite is not installed: CI must install it (scripts/test.sh does)");
            }
            eprintln!("dynalite is not installed: run scripts/test.sh to install it; skipped");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        // Tables and indexes become ACTIVE at once (DynamoDB takes seconds; anamo waits for
        // it either way).
        let child = Command::new(&bin)
            .args(["--port", &port.to_string(), "--host", "127.0.0.1"])
            .args([
                "--createTableMs",
                "0",
                "--deleteTableMs",
                "0",
                "--updateTableMs",
                "0",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start dynalite {bin}: {e}"));
        let d = Dynalite {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let until = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < until,
                "dynalite did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(d)
    }
}

impl Emulator for Dynalite {
    fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Dynalite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
