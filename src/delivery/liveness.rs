//! The worker's proof of life (see [`crate::db::workers`]): held for as
//! long as the worker runs, checked every [`CHECK_EVERY`], and taken again
//! under a new id when it is lost (the database restarted, or the lock's
//! connection dropped). Both lanes claim under the current proof and start
//! a send only while the proof its row was claimed under still holds: once
//! it is lost, any other worker may take those rows back and send them.
//!
//! The same task sweeps the rows of dead workers back into the queue every
//! [`SWEEP_EVERY`], so a killed worker's claims wait seconds, not a lease.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use uuid::Uuid;

use crate::db::Db;
use crate::db::workers::{self, Proof};

/// How often the proof is checked: a worker that lost it may start sends
/// of its old rows for at most this long before it knows.
const CHECK_EVERY: Duration = Duration::from_millis(500);
/// The longest a check may take before the proof is taken for lost.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How often dead workers' rows are swept back into the queue.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// The wait before proving again after a failure.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// What the lanes see of the proof: the id it holds, `None` while there is
/// none.
#[derive(Clone)]
pub(super) struct Liveness {
    current: watch::Receiver<Option<Uuid>>,
}

/// The side that holds the proof; run by [`Prover::run`].
pub(super) struct Prover {
    db: Db,
    current: watch::Sender<Option<Uuid>>,
}

pub(super) fn new(db: Db) -> (Prover, Liveness) {
    let (current, seen) = watch::channel(None);
    (Prover { db, current }, Liveness { current: seen })
}

impl Liveness {
    /// The id to claim under, when the worker holds a proof.
    pub(super) fn current(&self) -> Option<Uuid> {
        *self.current.borrow()
    }

    /// Whether rows claimed under `id` may still be sent by this worker.
    pub(super) fn holds(&self, id: Uuid) -> bool {
        self.current() == Some(id)
    }
}

impl Prover {
    /// Holds a proof until `stop` turns true, which the worker sends once
    /// its lanes have recorded or released every row they claimed: the
    /// proof must outlive the sends made under it.
    pub(super) async fn run(self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            let mut proof = match workers::prove(&self.db, Utc::now()).await {
                Ok(proof) => proof,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot prove this worker alive; sending nothing until it can");
                    pause(&mut stop, RETRY_EVERY).await;
                    continue;
                }
            };
            let id = proof.id();
            self.current.send_replace(Some(id));
            tracing::info!(worker = %id, "worker proven alive");
            match self.hold(&mut proof, &mut stop).await {
                Held::Stopped => {
                    self.current.send_replace(None);
                    proof.end(&self.db).await;
                    return;
                }
                Held::Lost(why) => {
                    self.current.send_replace(None);
                    tracing::warn!(worker = %id, reason = %why,
                        "worker lost its proof of life; its claimed rows are not sent until it proves itself again");
                    proof.let_go();
                }
            }
        }
        self.current.send_replace(None);
    }

    /// Checks the proof and sweeps dead workers until it is lost or the
    /// worker stops.
    async fn hold(&self, proof: &mut Proof, stop: &mut watch::Receiver<bool>) -> Held {
        let mut last_sweep: Option<tokio::time::Instant> = None;
        loop {
            if last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
                last_sweep = Some(tokio::time::Instant::now());
                match workers::reap(&self.db, proof.id()).await {
                    Ok(reaped) if reaped.workers > 0 => tracing::info!(
                        workers = reaped.workers,
                        rows = reaped.rows,
                        "dead workers' claimed rows returned to the queue"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot sweep dead workers' rows"),
                }
            }
            if pause(stop, CHECK_EVERY).await {
                return Held::Stopped;
            }
            match tokio::time::timeout(CHECK_TIMEOUT, proof.check(Utc::now())).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => return Held::Lost("another worker took this one for dead".into()),
                Ok(Err(e)) => return Held::Lost(e.to_string()),
                Err(_) => return Held::Lost(format!("the check took over {CHECK_TIMEOUT:?}")),
            }
        }
    }
}

enum Held {
    Stopped,
    Lost(String),
}

/// Waits `how_long` or until `stop`; true when stopping.
async fn pause(stop: &mut watch::Receiver<bool>, how_long: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(how_long) => false,
        // A dropped sender means the worker is going away too.
        _ = stop.wait_for(|stop| *stop) => true,
    }
}
