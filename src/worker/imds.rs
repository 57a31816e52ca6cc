//! The EC2 instance metadata service (IMDSv2), read with a few lines of plain HTTP over a
//! short-timeout socket: a worker must learn in well under a second whether it is on EC2, and
//! must not start an async runtime or load AWS configuration to find out.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Where the metadata service answers; ANAMO_IMDS_ENDPOINT points tests at a stand-in.
pub fn endpoint() -> Option<String> {
    if std::env::var("AWS_EC2_METADATA_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    Some(
        std::env::var("ANAMO_IMDS_ENDPOINT")
            .unwrap_or_else(|_| "http://169.254.169.254".to_string()),
    )
}

/// A session with the metadata service: the IMDSv2 token, taken once.
pub struct Imds {
    host: String,
    token: String,
}

const TIMEOUT: Duration = Duration::from_millis(300);

impl Imds {
    /// Takes a token; `None` when nothing answers (not on EC2) within the short timeouts.
    pub fn connect(endpoint: &str) -> Option<Self> {
        let host = endpoint
            .strip_prefix("http://")?
            .trim_end_matches('/')
            .to_string();
        let (status, token) = request(
            &host,
            "PUT",
            "/latest/api/token",
            &[("X-aws-ec2-metadata-token-ttl-seconds", "21600")],
        )?;
        (status == 200 && !token.is_empty()).then(|| Self {
            host,
            token: token.trim().to_string(),
        })
    }

    /// GET a metadata path: `Some(body)` on 200, `None` on anything else.
    pub fn get(&self, path: &str) -> Option<String> {
        self.status_and_body(path)
            .and_then(|(status, body)| (status == 200).then_some(body))
    }

    /// GET a metadata path: the HTTP status and body, `None` when nothing answered.
    pub fn status_and_body(&self, path: &str) -> Option<(u16, String)> {
        request(
            &self.host,
            "GET",
            path,
            &[("X-aws-ec2-metadata-token", &self.token)],
        )
    }

    /// A fresh session on the same host (tokens expire after six hours).
    pub fn renew(&self) -> Option<Self> {
        Self::connect(&format!("http://{}", self.host))
    }
}

fn request(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<(u16, String)> {
    let addr = host.to_socket_addrs().ok()?.next()?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).ok()?;
    stream.set_read_timeout(Some(TIMEOUT)).ok()?;
    stream.set_write_timeout(Some(TIMEOUT)).ok()?;
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Length: 0\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).ok()?;
    let mut response = String::new();
    stream.take(64 * 1024).read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}
