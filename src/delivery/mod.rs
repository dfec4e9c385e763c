//! The delivery worker: claim → render → send → record.
//!
//! Messages wait in the database, never in memory, so a crash loses
//! nothing: a claimed message names the worker that claimed it, and when
//! that worker dies (its proof of life, see [`liveness`], goes with it)
//! any other worker returns it to the queue within seconds. The claim's
//! lease stays as the last resort.
//!
//! Two lanes share the SMTP connections and the relay's rate but nothing
//! else: transactional mail (confirmations) has a lane of its own, so it
//! never queues behind a large issue; digests run as a pipeline (see
//! [`digest`]) that claims and records in batches. The rate is the relay's,
//! shared with every other worker through the database (see [`rate`]).

mod digest;
mod liveness;
mod rate;
mod relay_report;
mod transactional;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::{Notify, watch};

use crate::config::DeliverySettings;
use crate::db::Db;
use crate::mail::{Composed, Composer, Mailer, SendError};

pub struct Worker {
    shared: Arc<Shared>,
    prover: liveness::Prover,
}

/// What both lanes use.
struct Shared {
    db: Db,
    mailer: Mailer,
    composer: Composer,
    settings: DeliverySettings,
    wakeup: Arc<Notify>,
    /// Each relay's rate, in the mailer's order of relays; `None` (rate
    /// 0): unlimited, and nothing on the send path asks the database
    /// anything.
    rates: Vec<Option<rate::RelayRate>>,
    /// The longest one SMTP exchange may take.
    smtp_timeout: Duration,
    /// The proof of life the lanes claim under.
    liveness: liveness::Liveness,
}

/// The result of handing a message to the transport.
enum Sent {
    Delivered,
    /// Worth another attempt later.
    Retry(String),
    /// Given up: a permanent refusal, or the last attempt failed.
    Failed(String),
    /// Not sent, not attempted: the relay's rate had no slot for it before
    /// its lease ran short, or the worker is stopping. It goes back to the
    /// queue.
    NoSlot,
}

impl Worker {
    /// Each relay of `mailer` has its rate (its own, or
    /// `delivery.rate_per_second`), shared with every other worker sending
    /// to it.
    pub fn new(
        db: Db,
        mailer: Mailer,
        composer: Composer,
        settings: DeliverySettings,
        smtp_timeout: Duration,
        wakeup: Arc<Notify>,
    ) -> Self {
        let rates = mailer
            .rates()
            .into_iter()
            .map(|(relay, rate)| {
                NonZeroU32::new(rate.unwrap_or(settings.rate_per_second))
                    .map(|r| rate::RelayRate::new(db.clone(), relay, r))
            })
            .collect();
        let (prover, liveness) = liveness::new(db.clone());
        Self {
            prover,
            shared: Arc::new(Shared {
                liveness,
                db,
                mailer,
                composer,
                settings,
                wakeup,
                rates,
                smtp_timeout,
            }),
        }
    }

    /// Delivers until `shutdown` turns true. Messages being sent then are
    /// finished; claimed messages not yet started go back to the queue.
    pub async fn run(mut self, shutdown: watch::Receiver<bool>) {
        // Before anything is claimed: with `mail.bounce_domain`, no message
        // may leave without the return path that lets its bounce find it.
        if !self.load_return_paths(&shutdown).await {
            tracing::info!("delivery worker stopped before it started");
            return;
        }
        let settings = &self.shared.settings;
        tracing::info!(
            concurrency = settings.concurrency,
            batch_size = settings.batch_size,
            rate_per_second = settings.rate_per_second,
            "delivery worker started"
        );
        for rate in self.shared.rates.iter().flatten() {
            tracing::info!(
                relay = rate.relay(),
                rate_per_second = rate.per_second(),
                burst = rate.burst(),
                "the relay's rate is held with every worker sending to it"
            );
        }
        let (stop_proving, proving_stopped) = watch::channel(false);
        let prover = tokio::spawn(self.prover.run(proving_stopped));
        let transactional = tokio::spawn(transactional::run(self.shared.clone(), shutdown.clone()));
        let relay_report = tokio::spawn(relay_report::run(
            self.shared.db.clone(),
            self.shared.mailer.clone(),
            shutdown.clone(),
        ));
        digest::run(self.shared.clone(), shutdown).await;
        if let Err(e) = transactional.await {
            tracing::error!(error = %e, "the transactional mail lane stopped abnormally");
        }
        let _ = relay_report.await;
        self.shared.mailer.close().await;
        // Only now: every row claimed under the proof is recorded or
        // released, so no other worker may take one back while it is sent.
        let _ = stop_proving.send(true);
        if let Err(e) = prover.await {
            tracing::error!(error = %e, "the worker's proof of life stopped abnormally");
        }
        tracing::info!("delivery worker stopped");
    }
}

impl Worker {
    /// Gives the composer the return paths of `mail.bounce_domain`, with
    /// the key every process shares through the database
    /// (`db::inbound::return_path_secret`), trying until the database
    /// answers; `false` if the worker was stopped first.
    async fn load_return_paths(&mut self, shutdown: &watch::Receiver<bool>) -> bool {
        let Some(domain) = self.shared.composer.needs_return_paths().map(str::to_owned) else {
            return true;
        };
        let mut delay = Duration::from_millis(200);
        let secret = loop {
            match crate::db::inbound::return_path_secret(&self.shared.db).await {
                Ok(secret) => break secret,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the return-path key from the database; trying again");
                    let mut shutdown = shutdown.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.wait_for(|stop| *stop) => return false,
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        };
        let paths = crate::mail::verp::ReturnPaths::new(&domain, &secret);
        let shared = Arc::get_mut(&mut self.shared).expect("nothing shares the worker's state before it runs");
        shared.composer = shared.composer.clone().with_return_paths(paths);
        tracing::info!(bounce_domain = %domain, "mail is sent with return paths at the bounce domain");
        true
    }
}

impl Shared {
    /// Runs `work` with the composer: on the calling task, or on the
    /// blocking pool when every message carries an RSA signature. One
    /// costs 0.5–1.6 ms of CPU, which on `gazette worker`'s one runtime
    /// thread (see `main.rs`) would hold up every connection; on the pool,
    /// signatures take as many cores as there are (2 879 against 2 015
    /// msgs/s on two cores). The hand-off costs ~7 µs a message, more than
    /// it saves for unsigned or Ed25519-signed mail (BENCHMARKS.md).
    async fn compose<T: Send + 'static>(self: &Arc<Self>, work: impl FnOnce(&Composer) -> T + Send + 'static) -> T {
        if !self.composer.is_slow() {
            return work(&self.composer);
        }
        let shared = self.clone();
        match tokio::task::spawn_blocking(move || work(&shared.composer)).await {
            Ok(done) => done,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Never started: the runtime is shutting down, and this task
            // goes with it.
            Err(_) => std::future::pending().await,
        }
    }

    /// Sends one message (in a slot of its relay's rate, when there is
    /// one) and sorts the result: a 5xx reply is final, anything else is
    /// retried until `max_attempts`. A relay that cannot be reached
    /// (`SendError::Unreachable`) passes the message to another relay at
    /// once, without counting an attempt; only when every relay was tried
    /// does it count as one. Every message to a relay comes through here,
    /// confirmations as well as digests: the relay counts them all. The
    /// slot must come while the claim's lease (`lease_until`) still has
    /// room for the exchange and the worker's proof of life is still the
    /// one it claimed under (`claimed_by`), or the message is not sent.
    async fn send(
        &self,
        composed: &Composed,
        attempts: i32,
        lease_until: DateTime<Utc>,
        claimed_by: uuid::Uuid,
        shutdown: &watch::Receiver<bool>,
    ) -> Sent {
        let mut tried = Vec::new();
        let mut unreachable = String::new();
        while let Some(relay) = self.mailer.pick(&tried) {
            tried.push(relay);
            if let Some(rate) = self.rates.get(relay).and_then(Option::as_ref) {
                let margin = digest::send_margin(&self.settings, self.smtp_timeout);
                let room = (lease_until - margin - Utc::now()).to_std().unwrap_or_default();
                let mut shutdown = shutdown.clone();
                let waited = async {
                    let due = rate.next_slot(std::time::Instant::now() + room).await?;
                    tokio::time::sleep_until(due.into()).await;
                    Some(())
                };
                let stopping = async {
                    // A dropped sender means the worker is going away too.
                    let _ = shutdown.wait_for(|stop| *stop).await;
                };
                tokio::select! {
                    biased;
                    _ = stopping => return Sent::NoSlot,
                    slot = waited => if slot.is_none() { return Sent::NoSlot },
                }
            }
            // Only under the proof of life the row was claimed under: the
            // slot may have come after it was lost (a database restart), and
            // then the row may be another worker's.
            if !self.liveness.holds(claimed_by) {
                return Sent::NoSlot;
            }
            match self.mailer.send_via(relay, &composed.message).await {
                Ok(()) => return Sent::Delivered,
                Err(SendError::Permanent(reply)) => return Sent::Failed(reply),
                Err(SendError::Transient(reply)) => return self.retry_or_fail(attempts, reply),
                Err(SendError::Unreachable(reply)) => {
                    tracing::debug!(relay = self.mailer.identity(relay), error = %reply,
                        "the relay cannot be reached; trying the next one");
                    unreachable = reply;
                }
            }
        }
        self.retry_or_fail(attempts, unreachable)
    }

    fn retry_or_fail(&self, attempts: i32, reply: String) -> Sent {
        if attempts >= self.settings.max_attempts as i32 {
            Sent::Failed(reply)
        } else {
            Sent::Retry(reply)
        }
    }

    fn next_attempt_at(&self, attempts: i32) -> DateTime<Utc> {
        let delay = retry_delay(&self.settings, attempts);
        Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1))
    }

    /// The lease for a claim made now. A few random microseconds make each
    /// claim's lease time its own, which the SQLite claim reads its batch by.
    fn lease_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let jitter = rand::rng().random_range(0..1_000_000);
        now + chrono::Duration::seconds(self.settings.lease_seconds as i64) + chrono::Duration::microseconds(jitter)
    }

    /// Waits for the poll interval (at least `at_least`) or shutdown.
    async fn idle(&self, shutdown: &mut watch::Receiver<bool>, at_least: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(self.settings.poll_interval().max(at_least)) => {}
            _ = shutdown.changed() => {}
        }
    }

    /// Like [`Shared::idle`], but a signup in this process ends the wait at
    /// once (only the transactional lane listens, so no nudge is lost to
    /// the other lane).
    async fn idle_or_woken(&self, shutdown: &mut watch::Receiver<bool>) {
        tokio::select! {
            _ = self.wakeup.notified() => {}
            _ = self.idle(shutdown, Duration::ZERO) => {}
        }
    }
}

/// Exponential backoff with jitter: the base delay after the first attempt,
/// doubling after each, capped, and spread by ±20 % so retries from one
/// outage do not arrive together.
pub fn retry_delay(settings: &DeliverySettings, attempts: i32) -> Duration {
    let exponent = attempts.saturating_sub(1).clamp(0, 30);
    let delay = (settings.retry_base_seconds * 2f64.powi(exponent)).min(settings.retry_max_seconds);
    let jitter = rand::rng().random_range(0.8..=1.2);
    Duration::from_secs_f64(delay * jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DeliverySettings {
        DeliverySettings {
            concurrency: 1,
            batch_size: 10,
            lease_seconds: 300,
            rate_per_second: 0,
            max_attempts: 5,
            retry_base_seconds: 10.0,
            retry_max_seconds: 3600.0,
            poll_interval_ms: 100,
        }
    }

    #[test]
    fn retry_delay_doubles_within_jitter_and_is_capped() {
        let s = settings();
        for (attempts, base) in [(1, 10.0), (2, 20.0), (3, 40.0), (20, 3600.0)] {
            let d = retry_delay(&s, attempts).as_secs_f64();
            assert!(d >= base * 0.8 && d <= base * 1.2, "attempt {attempts}: {d}");
        }
    }
}
