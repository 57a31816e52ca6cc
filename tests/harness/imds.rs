//! A small EC2 instance-metadata stand-in (IMDSv2) served on 127.0.0.1: a token for a PUT,
//! 401 without it, and for a GET whatever `answer` gives for the path (404 for `None`). Point
//! the worker at it with ANAMO_IMDS_ENDPOINT.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

const TOKEN: &str = "t0k3n";

/// Serves until the test process ends; returns its URL.
pub fn stand_in(answer: impl Fn(&str) -> Option<String> + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the metadata stand-in");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let Ok(copy) = stream.try_clone() else {
                continue;
            };
            let mut reader = BufReader::new(copy);
            let mut request = String::new();
            let mut token = false;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if request.is_empty() {
                    request = line.clone();
                }
                token |= line
                    .to_ascii_lowercase()
                    .starts_with(&format!("x-aws-ec2-metadata-token: {TOKEN}"));
                line.clear();
            }
            let words: Vec<&str> = request.split_whitespace().take(2).collect();
            let (status, body) = match words[..] {
                ["PUT", "/latest/api/token"] => (200, TOKEN.to_string()),
                [_, _] if !token => (401, String::new()),
                ["GET", path] => match answer(path) {
                    Some(body) => (200, body),
                    None => (404, String::new()),
                },
                _ => (404, String::new()),
            };
            let mut out = stream;
            let _ = write!(
                out,
                "HTTP/1.0 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}
