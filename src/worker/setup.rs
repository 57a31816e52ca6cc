//! A worker's flags made into a working configuration, in one place (as ripgrep's
//! `HiArgs::from_low_args`): who it is, which step, the results prefix and log destinations
//! checked, signals and the Spot notice watched. Everything that can make every task fail is
//! checked here, before the first claim; the command only words the outcome.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{LogShipper, MAX_IDLE, Options, Shutdown, Wait};
use crate::aws::AwsOptions;
use crate::aws::s3::{RESULTS_POLICY, S3, S3Uri};
use crate::error::{Error, Result};
use crate::placeholders::{Quoting, fill};
use crate::store::TaskStore;

/// What the worker was asked for, as its flags say it.
#[derive(Debug, Clone)]
pub struct Setup {
    pub collection: Option<String>,
    pub owner: Option<String>,
    pub slots: u16,
    pub max_tasks: Option<u64>,
    pub lease: Duration,
    pub wait: Wait,
    pub idle_timeout: Option<Duration>,
    /// `--results`, `{collection}` not yet filled.
    pub results: Option<String>,
    pub stop_claiming_after: Option<Duration>,
    pub grace: Duration,
    pub log_dir: Option<PathBuf>,
    pub log_uri: Option<String>,
}

/// A worker ready to claim.
pub struct Prepared {
    pub store: Box<dyn TaskStore>,
    pub options: Options,
    pub shutdown: Arc<Shutdown>,
    /// The step has no task in the store and the worker waits for some (`--watch`): said, not
    /// refused.
    pub warning: Option<String>,
}

/// `--results` for this step: `{collection}` filled, and a folder (a trailing `/`).
pub fn results_prefix(pattern: &str, collection: &str) -> Result<S3Uri> {
    let filled = fill(
        "--results",
        pattern,
        &[("collection", collection)],
        Quoting::Plain,
    )?;
    Ok(S3Uri::parse(&filled)?.as_folder())
}

impl Setup {
    /// Checks what the worker needs before it claims anything: the results prefix first
    /// (nothing else is worth doing on a machine that cannot deliver the step's results), then
    /// the store (`open_store`) and the step, the log folder and the log bucket.
    pub fn prepare(
        self,
        open_store: impl FnOnce() -> Result<Box<dyn TaskStore>>,
        aws: &AwsOptions,
    ) -> Result<Prepared> {
        let (owner, metadata) = match &self.owner {
            Some(o) => (o.clone(), None),
            None => super::detect_owner(),
        };
        let collection = match &self.collection {
            Some(c) => c.clone(),
            None => super::step_from_tag(metadata.as_ref(), &owner, aws)?,
        };
        // One S3 client for the results probe and the log uploads (AWS configuration is
        // loaded once, and only when S3 is used).
        let s3 = if self.results.is_some() || self.log_uri.is_some() {
            Some(S3::connect(aws)?)
        } else {
            None
        };
        let script_env = match (&self.results, &s3) {
            (Some(results), Some(s3)) => vec![(
                "ANAMO_RESULTS".to_string(),
                probe_results(s3, results, &collection, &owner)?,
            )],
            _ => vec![],
        };
        let store = open_store()?;
        let warning = self.check_step(store.as_ref(), &collection)?;
        let (log_dir, log_shipper) = self.logs(s3, &owner)?;
        let shutdown = Arc::new(Shutdown::new(self.grace));
        shutdown
            .watch_signals()
            .map_err(|e| Error::Invalid(format!("cannot install signal handlers: {e}")))?;
        if let Some(session) = metadata {
            super::watch_spot_notice(session, Arc::clone(&shutdown));
        }
        let options = Options {
            owner,
            collection,
            slots: self.slots as usize,
            max_tasks: self.max_tasks,
            lease: self.lease,
            wait: self.wait,
            max_idle: MAX_IDLE,
            idle_timeout: self.idle_timeout,
            script_env,
            stop_claiming_after: self.stop_claiming_after,
            log_dir,
            log_shipper,
        };
        Ok(Prepared {
            store,
            options,
            shutdown,
            warning,
        })
    }

    /// A collection with no task at all is most often a typo: refused rather than reported
    /// "0 done" as if the step were finished (one key read, on any store); with `--watch`,
    /// said.
    fn check_step(&self, store: &dyn TaskStore, collection: &str) -> Result<Option<String>> {
        let Some(hint) = crate::study::unknown_collection(store, collection, None)? else {
            return Ok(None);
        };
        if self.wait != Wait::Forever {
            return Err(Error::Invalid(format!(
                "{hint}, or pass --watch to wait for tasks to be added"
            )));
        }
        Ok(Some(format!(
            "warning: {hint}; waiting for tasks to be added (--watch)"
        )))
    }

    /// Where logs go, each destination checked: a folder the worker cannot write, or a bucket
    /// it cannot put to, would fail or lose every task's log, so nothing is claimed.
    fn logs(
        &self,
        s3: Option<S3>,
        owner: &str,
    ) -> Result<(Option<PathBuf>, Option<Arc<LogShipper>>)> {
        let (dir, shipper) = match (&self.log_uri, s3) {
            (Some(uri), Some(s3)) => {
                let keep_local = self.log_dir.is_some();
                let dir = self.log_dir.clone().unwrap_or_else(|| {
                    std::env::temp_dir().join(format!("anamo-logs-{}", std::process::id()))
                });
                let shipper = LogShipper::new(s3, S3Uri::parse(uri)?, keep_local);
                (Some(dir), Some(Arc::new(shipper)))
            }
            _ => (self.log_dir.clone(), None),
        };
        if let Some(dir) = &dir {
            check_log_dir(dir).map_err(|e| {
                Error::Invalid(format!(
                    "worker cannot write its logs in '{}': {e}; fix --log-dir (or \
                     ANAMO_LOG_DIR). Nothing was claimed",
                    dir.display()
                ))
            })?;
        }
        if let Some(shipper) = &shipper {
            // What S3 said first (NoSuchBucket, AccessDenied), then what to do about it.
            shipper.preflight(owner).map_err(|e| {
                Error::Invalid(format!(
                    "worker cannot write its logs under {}: {e}; fix --log-uri (the bucket \
                     must exist) or give the instance role s3:PutObject and s3:DeleteObject \
                     there. Nothing was claimed",
                    self.log_uri.as_deref().unwrap_or_default()
                ))
            })?;
        }
        Ok((dir, shipper))
    }
}

/// Writes and deletes a probe object under the step's results prefix; the prefix, as scripts
/// get it.
fn probe_results(s3: &S3, pattern: &str, collection: &str, owner: &str) -> Result<String> {
    let prefix = results_prefix(pattern, collection)?;
    s3.probe_write(&prefix, owner, RESULTS_POLICY)
        .map_err(|e| {
            Error::Invalid(format!(
                "worker cannot write the step's results under {prefix}: {e}; the bucket must \
             exist and the instance role needs s3:PutObject and s3:DeleteObject there. \
             Nothing was claimed"
            ))
        })?;
    Ok(prefix.to_string())
}

/// Makes the log folder and writes and removes a probe file in it.
fn check_log_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".anamo-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}
