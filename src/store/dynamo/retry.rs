//! A slower retry layer over the SDK's own quick retries, for failures that pass: throttling
//! (a hot partition, a table at its limits), DynamoDB's 5xx, timeouts and dropped connections.
//! The SDK gives up after a few tries within a second or two and its retry quota runs dry
//! under sustained throttling; a fleet must ride that out, so every store operation goes
//! through [`retrying`]. Each retry is logged, so a throttled table is visible in the worker's
//! log rather than a mystery.

use std::future::Future;
use std::time::Duration;

use tracing::warn;

use crate::backoff::Backoff;
use crate::error::Result;

/// Tries of one store operation; with pauses of 0.25 s doubling, about 8 s in all.
pub const TRIES: u32 = 6;
const FIRST_PAUSE: Duration = Duration::from_millis(250);

/// Runs `op` until it succeeds, fails for good, or fails transiently `TRIES` times.
pub async fn retrying<T, F, Fut>(mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    // Jittered, so throttled workers do not retry in step.
    let mut backoff = Backoff::new(FIRST_PAUSE, FIRST_PAUSE * 2u32.pow(TRIES));
    let mut tries = 1;
    loop {
        match op().await {
            Err(e) if e.is_transient() && tries < TRIES => {
                let wait = backoff.next_pause();
                warn!(
                    "{e}; retrying in {:.2}s (try {tries} of {TRIES})",
                    wait.as_secs_f64()
                );
                tokio::time::sleep(wait).await;
                tries += 1;
            }
            other => return other,
        }
    }
}
