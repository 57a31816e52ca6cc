//! Shipping the worker to a stock AMI: `anamo ship` puts this Linux build in S3, and
//! `launch --binary` gives each instance a presigned HTTPS URL, the SHA-256 and the CPU
//! architecture of that object, read at launch. The instance's user data then needs only
//! curl or wget, sha256sum and uname: it refuses a binary whose checksum or architecture is
//! wrong with one line in its log, and powers off.

use std::io::Write;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::aws::s3::{S3, S3Uri};
use crate::clock::{now_ms, rfc3339};
use crate::error::{Error, Result};
use crate::placeholders::shell_quote;

/// How long the presigned URL in the user data works: instances boot within minutes of the
/// launch; a URL that outlived its launch would only be a leak.
pub const URL_VALID: Duration = Duration::from_secs(6 * 3600);

/// The binary a launch ships, as read at launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipped {
    pub uri: String,
    /// Lower-case hex.
    pub sha256: String,
    /// `uname -m` of the machines it runs on: `x86_64` or `aarch64`.
    pub arch: &'static str,
    pub size: u64,
    /// The presigned GET URL, a bearer token: sent in the user data, never printed or recorded.
    pub url: String,
    /// When the URL stops working (epoch ms).
    pub valid_until: i64,
}

/// The CPU of a Linux executable, from its ELF header (`e_machine`); `None` for anything else.
pub fn elf_arch(head: &[u8]) -> Option<&'static str> {
    if head.len() < 20 || &head[..4] != b"\x7fELF" || head[5] != 1 {
        return None;
    }
    match u16::from_le_bytes([head[18], head[19]]) {
        0x3E => Some("x86_64"),
        0xB7 => Some("aarch64"),
        _ => None,
    }
}

/// Reads the object once (streamed, never held whole) for its checksum and header, and
/// presigns a URL for it.
/// The binary's place must be an object, not a folder (`s3://bucket/` or `.../tools/`): the
/// one line `ship` and `launch --binary` give, before any request.
pub fn require_object_key(uri: &S3Uri) -> Result<()> {
    if uri.key.is_empty() || uri.key.ends_with('/') {
        return Err(Error::Invalid(format!(
            "{uri} names a folder; give the object's full key, e.g. {}anamo",
            uri.as_folder()
        )));
    }
    Ok(())
}

pub fn prepare(s3: &S3, uri: &S3Uri) -> Result<Shipped> {
    require_object_key(uri)?;
    let mut reader = Reader::default();
    s3.copy_to(uri, &mut reader)?;
    let arch = elf_arch(&reader.head).ok_or_else(|| {
        Error::Invalid(format!(
            "{uri} is not a Linux x86_64 or aarch64 executable; put one there with `anamo \
             ship {uri}` from a Linux build"
        ))
    })?;
    let url = s3.presign_get(uri, URL_VALID)?;
    Ok(Shipped {
        uri: uri.to_string(),
        sha256: hex(&reader.hash.finalize()),
        arch,
        size: reader.size,
        url,
        valid_until: now_ms() + URL_VALID.as_millis() as i64,
    })
}

/// Hashes what passes through and keeps the first bytes.
#[derive(Default)]
struct Reader {
    hash: Sha256,
    head: Vec<u8>,
    size: u64,
}

impl Write for Reader {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.hash.update(buf);
        let want = 64usize.saturating_sub(self.head.len()).min(buf.len());
        self.head.extend_from_slice(&buf[..want]);
        self.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of a local file, streamed.
pub fn file_sha256(path: &std::path::Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = Reader::default();
    std::io::copy(&mut file, &mut reader).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(hex(&reader.hash.finalize()))
}

/// What replaces the URL in everything shown or recorded.
fn withheld(shipped: &Shipped) -> String {
    format!(
        "(presigned URL for {}, valid until {}; withheld)",
        shipped.uri,
        rfc3339(shipped.valid_until)
    )
}

/// The user data's `{{install}}`: without a binary, a comment; with one, a bash block that
/// fetches it into `$root/usr/local/bin`, checks architecture and checksum, and powers the
/// machine off on any failure. `reveal`: the real URL (sent) or a note in its place (shown,
/// recorded).
pub fn install_block(shipped: Option<&Shipped>, reveal: bool) -> String {
    let Some(s) = shipped else {
        return "# anamo comes from the AMI (on PATH).".into();
    };
    let url = if reveal {
        shell_quote(&s.url)
    } else {
        shell_quote(&withheld(s))
    };
    format!(
        r#"# anamo from {uri} ({arch}, {size} bytes, sha256 {sha}), fetched over HTTPS with a
# presigned URL: the AMI needs curl or wget, sha256sum and uname, and no AWS tools.
# ANAMO_ROOT is empty on an instance; tests run this script in a temporary root.
root="${{ANAMO_ROOT:-}}"
anamo_refuse() {{
  echo "anamo: $* ; powering off" | tee -a "$root/var/log/anamo-worker.log" >&2
  shutdown -h now
  exit 1
}}
mkdir -p "$root/usr/local/bin" "$root/var/log"
[ "$(uname -m)" = {arch} ] || anamo_refuse "the shipped binary is for {arch}, this machine is $(uname -m)"
anamo_url={url}
if command -v curl >/dev/null; then
  curl -fsS --retry 5 -o "$root/usr/local/bin/anamo.part" "$anamo_url" || anamo_refuse "cannot download {uri}"
elif command -v wget >/dev/null; then
  wget -q -t 5 -O "$root/usr/local/bin/anamo.part" "$anamo_url" || anamo_refuse "cannot download {uri}"
else
  anamo_refuse "neither curl nor wget is installed"
fi
anamo_sum="$(sha256sum "$root/usr/local/bin/anamo.part" | cut -d' ' -f1)"
if [ "$anamo_sum" != {sha} ]; then
  rm -f "$root/usr/local/bin/anamo.part"
  anamo_refuse "checksum mismatch for {uri}: got $anamo_sum, launched with {sha}"
fi
chmod 755 "$root/usr/local/bin/anamo.part"
mv "$root/usr/local/bin/anamo.part" "$root/usr/local/bin/anamo"
export PATH="$root/usr/local/bin:$PATH""#,
        uri = s.uri,
        arch = s.arch,
        size = s.size,
        sha = s.sha256,
    )
}

/// `anamo ship`: only a Linux build runs on an instance.
pub fn check_this_build() -> Result<()> {
    if cfg!(target_os = "linux") {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "this anamo is built for {} {}, and instances run Linux; ship a Linux build (cargo \
         build --release on Linux, or --target x86_64-unknown-linux-gnu)",
        std::env::consts::OS,
        std::env::consts::ARCH
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_headers_name_their_cpu() {
        let mut head = vec![0u8; 64];
        head[..4].copy_from_slice(b"\x7fELF");
        head[5] = 1;
        head[18] = 0x3E;
        assert_eq!(elf_arch(&head), Some("x86_64"));
        head[18] = 0xB7;
        assert_eq!(elf_arch(&head), Some("aarch64"));
        head[18] = 0x28; // 32-bit ARM
        assert_eq!(elf_arch(&head), None);
        assert_eq!(elf_arch(b"#!/bin/sh\necho not a binary\n"), None);
        let this = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(elf_arch(&this), Some(std::env::consts::ARCH));
    }

    #[test]
    fn the_url_is_sent_and_never_shown() {
        let s = Shipped {
            uri: "s3://b/anamo".into(),
            sha256: "ab".repeat(32),
            arch: "x86_64",
            size: 3,
            url: "https://b.s3.amazonaws.com/anamo?X-Amz-Signature=secret&X-Amz-Security-Token=tok"
                .into(),
            valid_until: 0,
        };
        let sent = install_block(Some(&s), true);
        let shown = install_block(Some(&s), false);
        assert!(sent.contains("'https://b.s3.amazonaws.com/anamo?X-Amz-Signature=secret&"));
        assert!(!shown.contains("secret") && !shown.contains("tok"));
        assert!(shown.contains(
            "(presigned URL for s3://b/anamo, valid until 1970-01-01T00:00:00Z; withheld)"
        ));
    }
}
