//! Spot interruption notices: EC2 gives two minutes' warning through the metadata service.
//! On a notice the worker stops as on SIGTERM, with its grace cut to fit the warning, so its
//! running tasks are handed back before the instance goes.

use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use super::Shutdown;
use super::imds::Imds;

/// Grace left for running scripts after a notice: the rest of the two minutes is for killing
/// them and handing their tasks back.
const SPOT_GRACE: Duration = Duration::from_secs(90);

/// How often to look; ANAMO_SPOT_POLL (e.g. `200ms`) changes it for tests.
fn poll_every() -> Duration {
    std::env::var("ANAMO_SPOT_POLL")
        .ok()
        .and_then(|v| crate::clock::parse_duration(&v).ok())
        .unwrap_or(Duration::from_secs(5))
}

/// Polls `spot/instance-action` in the background until a notice comes or the stop is asked
/// for some other reason.
pub fn watch_spot_notice(session: Imds, shutdown: Arc<Shutdown>) {
    let every = poll_every();
    std::thread::spawn(move || {
        let mut session = session;
        while !shutdown.requested() {
            match session.status_and_body("/latest/meta-data/spot/instance-action") {
                Some((200, body)) => {
                    warn!("Spot interruption notice ({}): stopping", body.trim());
                    shutdown.request_within(SPOT_GRACE);
                    return;
                }
                // The token expired (after six hours): take a new one.
                Some((401, _)) => {
                    if let Some(s) = session.renew() {
                        session = s;
                    }
                }
                _ => {}
            }
            shutdown.sleep(every);
        }
    });
}
