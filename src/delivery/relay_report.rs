//! Writes this worker's figures of each relay to the database every
//! second while they change (`db::relay_status`), so that `/metrics` of `serve` and the
//! staff dashboard show every worker's relays, wherever the workers run.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use crate::db::Db;
use crate::db::relay_status::{self, RelayStatus};
use crate::mail::Mailer;

/// How often the figures are written: a cool-down (1 s at first) may begin
/// and end in between; a longer one shows.
pub(super) const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Reports until `shutdown`, then once more.
pub(super) async fn run(db: Db, mailer: Mailer, mut shutdown: watch::Receiver<bool>) {
    if mailer.relay_figures().is_empty() {
        return;
    }
    // Each process is its own worker: its counts start at 0.
    let worker = uuid::Uuid::now_v7().to_string();
    // What the database holds of this worker: an idle worker writes nothing
    // (a cool-down that ended needs no write: readers compare it with now).
    let mut written: Option<Vec<RelayStatus>> = None;
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(REPORT_EVERY) => false,
            _ = shutdown.wait_for(|stop| *stop) => true,
        };
        let figures: Vec<RelayStatus> = mailer
            .relay_figures()
            .into_iter()
            .map(|f| RelayStatus {
                relay: f.relay,
                sent: count(f.sent),
                deferred: count(f.deferred),
                failed: count(f.failed),
                unreachable: count(f.unreachable),
                cooling_until: f.cooling_until,
            })
            .collect();
        if written.as_ref() != Some(&figures) {
            match relay_status::report(&db, &worker, &figures, Utc::now()).await {
                Ok(()) => written = Some(figures),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot write the relays' figures to the database; trying again shortly")
                }
            }
        }
        if stopping {
            return;
        }
    }
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
