//! A real DynamoDB emulator (moto's server from PyPI, served one request at a time by
//! tests/support/moto_serial.py) on a free 127.0.0.1 port, started per test and stopped on drop.
//! `scripts/test.sh` installs it; in CI a missing emulator fails the
//! test, elsewhere the test says so and passes over the AWS part.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anamo::aws::AwsOptions;

pub struct Moto {
    child: Child,
    /// The Python that runs it (with boto3, which moto brings): for setup a test scripts.
    python: String,
    pub url: String,
    /// Every request's operation name, one per line.
    pub log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// A Python that has moto: ANAMO_PYTHON, the project's .venv, or python3 on PATH.
fn python() -> Option<String> {
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    let candidates = [
        std::env::var("ANAMO_PYTHON").ok(),
        Some(venv.to_string()),
        Some("python3".to_string()),
    ];
    candidates.into_iter().flatten().find(|py| {
        Command::new(py)
            .args(["-c", "import moto.server, werkzeug"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

impl Moto {
    /// Starts the emulator, or `None` outside CI when it is not installed.
    pub fn start() -> Option<Moto> {
        Self::start_with_faults(None)
    }

    /// Starts the emulator answering some requests with throttling errors
    /// (`OP[,OP...]:FAIL/EVERY`, see tests/support/moto_serial.py).
    pub fn start_with_faults(faults: Option<&str>) -> Option<Moto> {
        let Some(python) = python() else {
            if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
                panic!("moto is not installed: CI must install it (scripts/test.sh does)");
            }
            eprintln!("moto is not installed: run scripts/test.sh to install it; AWS part skipped");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/moto_serial.py");
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("requests.log");
        let child = Command::new(&python)
            .args([script, "127.0.0.1", &port.to_string()])
            .arg(&log)
            .args(faults)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto with {python}: {e}"));
        let moto = Moto {
            child,
            python: python.clone(),
            url: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        let until = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < until,
                "moto_server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(moto)
    }

    /// Runs a Python script with `boto3` against this emulator (ENDPOINT in its environment,
    /// with the emulator's dummy keys), `input` on its stdin; returns its stdout.
    pub fn python(&self, script: &str, input: &str) -> String {
        use std::io::Write as _;
        let mut child = Command::new(&self.python)
            .args(["-c", script])
            .envs(self.env())
            .env("ENDPOINT", &self.url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("python ran");
        assert!(
            out.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn aws(&self) -> AwsOptions {
        AwsOptions {
            region: Some("us-east-1".into()),
            profile: None,
            endpoint_url: Some(self.url.clone()),
            static_keys: Some(("testing".into(), "testing".into())),
        }
    }

    /// The operations received so far.
    pub fn requests(&self) -> Vec<String> {
        self.timed_requests()
            .into_iter()
            .map(|(op, _)| op)
            .collect()
    }

    /// The operations received so far, each with when it came (Unix seconds).
    pub fn timed_requests(&self) -> Vec<(String, f64)> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                let (op, at) = (words.next()?, words.next()?);
                Some((op.to_string(), at.parse().ok()?))
            })
            .collect()
    }

    /// The S3 requests received so far: method and path.
    pub fn s3_requests(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                let (op, _, path) = (words.next()?, words.next()?, words.next()?);
                Some((op.to_string(), path.to_string()))
            })
            .collect()
    }

    /// Environment for an `anamo` process talking to this emulator.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }
}

impl super::Emulator for Moto {
    fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The user data EC2 holds for an instance (DescribeInstanceAttribute), decoded.
pub fn user_data(rt: &tokio::runtime::Runtime, ec2: &aws_sdk_ec2::Client, id: &str) -> String {
    let out = rt
        .block_on(
            ec2.describe_instance_attribute()
                .instance_id(id)
                .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
                .send(),
        )
        .expect("user data");
    let b64 = out.user_data().and_then(|v| v.value()).unwrap_or_default();
    let bytes = aws_smithy_types::base64::decode(b64).expect("base64");
    String::from_utf8(bytes).expect("utf-8")
}
