//! `anamo ship`: put this anamo in S3 for `launch --binary`.

use anyhow::Result;
use clap::Args;

use crate::aws::s3::{S3, S3Uri};
use crate::config::Context;
use crate::error::Error;

/// Upload this anamo (a Linux build) to S3, where `anamo launch --binary` fetches it for a
/// stock AMI: each instance downloads it at boot with a presigned HTTPS URL and checks its
/// SHA-256 and CPU architecture before it runs.
#[derive(Debug, Args)]
pub struct Cmd {
    /// Where to put it, e.g. s3://my-bucket/tools/anamo.
    #[arg(value_name = "S3_URI")]
    pub to: String,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        let to = S3Uri::parse(&self.to)?;
        crate::ship::require_object_key(&to)?;
        crate::ship::check_this_build()?;
        let exe = std::env::current_exe().map_err(|e| {
            Error::Invalid(format!("cannot find this anamo's own file to ship: {e}"))
        })?;
        let sha = crate::ship::file_sha256(&exe)?;
        let size = std::fs::metadata(&exe)
            .map_err(|source| Error::Read {
                path: exe.clone(),
                source,
            })?
            .len();
        S3::connect(&ctx.aws)?
            .for_policy(crate::aws::s3::BINARY_POLICY)
            .put_file(&exe, &to, "application/octet-stream")?;
        println!(
            "shipped anamo {} (linux {}, {size} bytes, sha256 {sha}) to {to}; launch with \
             --binary {to}",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH
        );
        Ok(())
    }
}
