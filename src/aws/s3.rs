//! The S3 calls anamo makes: ListObjectsV2 pages (`sync --objects`), uploads of worker logs
//! and of the shipped binary (multipart above MULTIPART_AT), streamed downloads (`anamo logs`,
//! the binary's checksum at launch) and presigned GET URLs (the binary, for user data).
//! Nothing else touches the S3 SDK.

use std::io::Write;
use std::path::Path;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use tokio::runtime::Runtime;
use tracing::warn;

use crate::aws::{self, AwsOptions};
use crate::error::{Error, Result};

pub use super::s3uri::S3Uri;

/// Files at least this big go up in parts of this size (S3's minimum part is 5 MiB).
pub const MULTIPART_AT: u64 = 8 * 1024 * 1024;
/// Tries per listing page before a sync gives up; each resumes at the page that failed.
const PAGE_TRIES: u32 = 3;

/// One object of a listing, as S3 gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub key: String,
    pub size: i64,
    pub etag: Option<String>,
    pub last_modified: Option<i64>,
    pub storage_class: Option<String>,
}

pub struct S3 {
    rt: Runtime,
    client: Client,
    /// The README section whose policy grants what this client is for, named in a denial.
    policy: &'static str,
}

/// The README sections with S3 policies: objects and logs (the default), the workers'
/// results prefix, and the shipped binary.
pub const OBJECTS_AND_LOGS_POLICY: &str = "AWS: sample files in S3, and worker logs (IAM)";
pub const RESULTS_POLICY: &str = "AWS: launching a step's cluster on EC2 (IAM for the workers)";
pub const BINARY_POLICY: &str = "AWS: from a stock AMI to a costed cohort (IAM additions)";
/// The published catalog's section: the syncer writes it, readers read it.
pub const PUBLISH_POLICY: &str = "A team on one cohort (IAM)";

impl S3 {
    pub fn connect(opts: &AwsOptions) -> Result<Self> {
        let rt = aws::runtime()?;
        let config = rt.block_on(aws::config(opts));
        // Path-style addressing: emulators and dotted bucket names need it; S3 accepts it.
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build();
        Ok(Self {
            client: Client::from_conf(s3_config),
            rt,
            policy: OBJECTS_AND_LOGS_POLICY,
        })
    }

    /// This client serves what the README's `policy` section grants (see the constants).
    pub fn for_policy(mut self, policy: &'static str) -> Self {
        self.policy = policy;
        self
    }

    /// An S3 call's error, naming its IAM action (S3 says only "Access Denied") and the README
    /// section whose policy grants it.
    fn error<E>(
        &self,
        action: &str,
        doing: &str,
        e: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> Error
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.error_in(self.policy, action, doing, e)
    }

    /// [`Self::error`] for a call made under another section's policy.
    fn error_in<E>(
        &self,
        policy: &str,
        action: &str,
        doing: &str,
        e: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> Error
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        aws::sdk_error_as("S3", Some((action, policy)), doing, e)
    }

    /// Lists `at` (a prefix) page by page. A page that fails is tried again from where the
    /// listing stood, so a long listing survives a passing network fault.
    pub fn for_each_page(
        &self,
        at: &S3Uri,
        mut on_page: impl FnMut(Vec<Listed>) -> Result<()>,
    ) -> Result<()> {
        let mut resume: Option<String> = None;
        let mut failures = 0;
        'listing: loop {
            let mut pages = self
                .client
                .list_objects_v2()
                .bucket(&at.bucket)
                .prefix(&at.key)
                .set_continuation_token(resume.clone())
                .into_paginator()
                .send();
            while let Some(page) = self.rt.block_on(pages.next()) {
                let page = match page {
                    Ok(p) => p,
                    Err(e) if failures + 1 < PAGE_TRIES && e.as_service_error().is_none() => {
                        failures += 1;
                        warn!("listing {at} failed (try {failures} of {PAGE_TRIES}); resuming");
                        continue 'listing;
                    }
                    Err(e) => {
                        return Err(self.error("s3:ListBucket", &format!("cannot list {at}"), e));
                    }
                };
                let listed = page
                    .contents()
                    .iter()
                    .filter_map(|o| {
                        Some(Listed {
                            key: o.key()?.to_string(),
                            size: o.size().unwrap_or(0),
                            etag: o.e_tag().map(|e| e.trim_matches('"').to_string()),
                            last_modified: o.last_modified().and_then(|t| t.to_millis().ok()),
                            storage_class: o.storage_class().map(|c| c.as_str().to_string()),
                        })
                    })
                    .collect();
                on_page(listed)?;
                resume = page.next_continuation_token().map(str::to_string);
            }
            return Ok(());
        }
    }

    /// Proves that `owner` (a worker) can write and delete objects under `prefix`: puts a
    /// small probe object there (named after the owner, so two workers' checks never collide)
    /// and deletes it. The error names the permission that failed.
    pub fn probe_write(&self, prefix: &S3Uri, owner: &str, policy: &'static str) -> Result<()> {
        let probe = prefix.join(&format!(
            ".anamo-write-check-{}",
            owner.replace(['/', ':'], "-")
        ));
        self.rt.block_on(async {
            self.client
                .put_object()
                .bucket(&probe.bucket)
                .key(&probe.key)
                .body(ByteStream::from_static(b"anamo write check\n"))
                .send()
                .await
                .map_err(|e| {
                    self.error_in(
                        policy,
                        "s3:PutObject",
                        &format!("cannot write {probe} (s3:PutObject)"),
                        e,
                    )
                })?;
            self.client
                .delete_object()
                .bucket(&probe.bucket)
                .key(&probe.key)
                .send()
                .await
                .map_err(|e| {
                    self.error_in(
                        policy,
                        "s3:DeleteObject",
                        &format!("cannot delete {probe} (s3:DeleteObject)"),
                        e,
                    )
                })?;
            Ok(())
        })
    }

    /// A URL that lets anyone holding it GET `uri` over HTTPS until it expires: signed here,
    /// with this machine's credentials, without a request.
    pub fn presign_get(&self, uri: &S3Uri, valid: std::time::Duration) -> Result<String> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(valid)
            .map_err(|e| Error::Invalid(format!("cannot presign {uri}: {e}")))?;
        let request = self
            .rt
            .block_on(
                self.client
                    .get_object()
                    .bucket(&uri.bucket)
                    .key(&uri.key)
                    .presigned(config),
            )
            .map_err(|e| Error::Aws(format!("cannot presign {uri}: {e}")))?;
        Ok(request.uri().to_string())
    }

    /// Uploads a file (`content_type`: `text/plain` for logs); in parts when it is large.
    /// Each request carries the SHA-256 of its bytes as a header, which S3 checks: a part
    /// corrupted on the way is refused, not stored. (Sent as a header rather than the SDK's
    /// default trailer, which the moto emulator mis-parses when the body itself holds the
    /// text `x-amz-checksum-`, as the anamo binary does.)
    pub fn put_file(&self, path: &Path, to: &S3Uri, content_type: &str) -> Result<()> {
        let size = std::fs::metadata(path)
            .map_err(|source| Error::Read {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        let doing = format!("cannot upload {} to {to}", path.display());
        self.rt.block_on(async {
            if size < MULTIPART_AT {
                let bytes = read_part(path, 0, size)?;
                return self.put_one(bytes, to, content_type, &doing).await;
            }
            self.put_multipart(path, size, to, content_type, &doing)
                .await
        })
    }

    async fn put_multipart(
        &self,
        path: &Path,
        size: u64,
        to: &S3Uri,
        content_type: &str,
        doing: &str,
    ) -> Result<()> {
        let started = self
            .client
            .create_multipart_upload()
            .bucket(&to.bucket)
            .key(&to.key)
            .content_type(content_type)
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
            .send()
            .await
            .map_err(|e| self.error("s3:PutObject", doing, e))?;
        let upload_id = started.upload_id().unwrap_or_default().to_string();
        let uploaded = self.put_parts(path, size, to, &upload_id, doing).await;
        match uploaded {
            Ok(parts) => {
                self.client
                    .complete_multipart_upload()
                    .bucket(&to.bucket)
                    .key(&to.key)
                    .upload_id(&upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| self.error("s3:PutObject", doing, e))?;
                Ok(())
            }
            Err(e) => {
                // Parts of an abandoned upload are billed until aborted.
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&to.bucket)
                    .key(&to.key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                Err(e)
            }
        }
    }

    async fn put_parts(
        &self,
        path: &Path,
        size: u64,
        to: &S3Uri,
        upload_id: &str,
        doing: &str,
    ) -> Result<Vec<CompletedPart>> {
        let mut parts = vec![];
        let mut offset = 0;
        let mut number = 1;
        while offset < size {
            let length = MULTIPART_AT.min(size - offset);
            // One part in memory at a time (8 MiB), for its checksum.
            let bytes = read_part(path, offset, length)?;
            let checksum = sha256_base64(&bytes);
            let part = self
                .client
                .upload_part()
                .bucket(&to.bucket)
                .key(&to.key)
                .upload_id(upload_id)
                .part_number(number)
                .checksum_sha256(&checksum)
                .body(ByteStream::from(bytes))
                .send()
                .await
                .map_err(|e| self.error("s3:PutObject", doing, e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(part.e_tag().map(str::to_string))
                    .checksum_sha256(checksum)
                    .build(),
            );
            offset += length;
            number += 1;
        }
        Ok(parts)
    }

    /// Writes a small object from memory, its SHA-256 checked by S3 as `put_file`'s are.
    pub fn put_bytes(&self, bytes: Vec<u8>, to: &S3Uri, content_type: &str) -> Result<()> {
        let doing = format!("cannot write {to}");
        self.rt
            .block_on(self.put_one(bytes, to, content_type, &doing))
    }

    /// One PutObject, its SHA-256 sent as a header for S3 to check.
    async fn put_one(
        &self,
        bytes: Vec<u8>,
        to: &S3Uri,
        content_type: &str,
        doing: &str,
    ) -> Result<()> {
        self.client
            .put_object()
            .bucket(&to.bucket)
            .key(&to.key)
            .content_type(content_type)
            .checksum_sha256(sha256_base64(&bytes))
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| self.error("s3:PutObject", doing, e))?;
        Ok(())
    }

    /// Deletes an object (one already gone is no error: S3 answers the same).
    pub fn delete(&self, uri: &S3Uri) -> Result<()> {
        let doing = format!("cannot delete {uri}");
        self.rt.block_on(async {
            self.client
                .delete_object()
                .bucket(&uri.bucket)
                .key(&uri.key)
                .send()
                .await
                .map_err(|e| self.error("s3:DeleteObject", &doing, e))?;
            Ok(())
        })
    }

    /// A small object's bytes; `None` when there is no such object.
    pub fn get_bytes(&self, from: &S3Uri) -> Result<Option<Vec<u8>>> {
        let mut out = vec![];
        match self.copy_to(from, &mut out) {
            Ok(()) => Ok(Some(out)),
            Err(Error::Invalid(m)) if m.ends_with("no such object") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Streams an object to `out`, chunk by chunk.
    pub fn copy_to(&self, from: &S3Uri, out: &mut impl Write) -> Result<()> {
        let doing = format!("cannot read {from}");
        self.rt.block_on(async {
            let got = self
                .client
                .get_object()
                .bucket(&from.bucket)
                .key(&from.key)
                .send()
                .await
                .map_err(|e| {
                    if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                        Error::Invalid(format!("{doing}: no such object"))
                    } else {
                        self.error("s3:GetObject", &doing, e)
                    }
                })?;
            let mut body = got.body;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| Error::Aws(format!("{doing}: {e}")))?;
                out.write_all(&chunk)?;
            }
            out.flush()?;
            Ok(())
        })
    }
}

/// `length` bytes of a file from `offset`.
fn read_part(path: &Path, offset: u64, length: u64) -> Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let failed = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(failed)?;
    file.seek(SeekFrom::Start(offset)).map_err(failed)?;
    let mut bytes = Vec::with_capacity(length as usize);
    file.take(length).read_to_end(&mut bytes).map_err(failed)?;
    Ok(bytes)
}

/// The SHA-256 of `bytes`, base64, as S3's checksum headers take it.
fn sha256_base64(bytes: &[u8]) -> String {
    use sha2::Digest;
    aws_smithy_types::base64::encode(sha2::Sha256::digest(bytes))
}
