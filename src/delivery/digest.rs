//! The digest lane, a pipeline of three stages joined by bounded channels:
//!
//! claimer ──jobs──▶ senders (`delivery.concurrency` at once) ──outcomes──▶ recorder
//!
//! The claimer takes a batch of rows per statement and only when the
//! senders have room for them, so a claimed row waits in memory for at most
//! two batches' worth of sends: with a rate limit, batches shrink so that
//! takes a quarter of the lease at most. A row whose lease is about to run
//! out before its turn is returned, not sent: another claim may own it by
//! then, and so is a row claimed under a proof of life the worker has
//! since lost (see [`super::liveness`]). The recorder writes outcomes in
//! batches, one transaction for many messages, and keeps a batch it cannot
//! write until the database answers again: a sent copy whose outcome were
//! dropped would be sent twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use super::{Sent, Shared};
use crate::config::DeliverySettings;
use crate::db::deliveries::{self, ClaimedDelivery, Outcome, Settled};
use crate::db::issues;
use crate::domain::{SubscriberStatus, UnsubscribeToken};
use crate::i18n::Language;
use crate::mail::{PreparedIssue, is_hard_bounce};

/// One reader's copy to send, with the issue it belongs to.
struct Job {
    delivery: ClaimedDelivery,
    issue: Arc<PreparedIssue>,
    lease_until: DateTime<Utc>,
    /// The proof of life the row was claimed under.
    claimed_by: Uuid,
}

/// How long the recorder waits to fill a batch before writing what it has.
const GATHER: Duration = Duration::from_millis(25);
/// The longest wait between two tries to record outcomes.
const MAX_WRITE_DELAY: Duration = Duration::from_secs(2);
/// How often a long send logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// How often the claimer returns rows whose lease ran out: a lease is
/// minutes long, and the statement reads every row in flight of every
/// worker (0.3 ms beside a 500-row claim's 4–5 ms in PostgreSQL's log with
/// one worker), so running it before each claim bought nothing.
const REQUEUE_EVERY: Duration = Duration::from_secs(1);

/// Rows per claim: `delivery.batch_size`, or fewer when the rate limit
/// could not send two batches within a quarter of the lease. The rate is
/// the relay's, shared with every other worker, so with several a row can
/// wait longer than this reckons: a row whose send slot would come too late
/// for its lease goes back to the queue unsent (see `Shared::send`).
fn claim_size(settings: &DeliverySettings) -> usize {
    match settings.rate_per_second {
        0 => settings.batch_size,
        rate => {
            let sendable = rate as usize * settings.lease_seconds as usize / 8;
            settings.batch_size.min(sendable.max(1))
        }
    }
}

/// How close to the end of its lease a row may still be sent: one SMTP
/// exchange must fit in what is left.
pub(super) fn send_margin(settings: &DeliverySettings, smtp_timeout: Duration) -> chrono::Duration {
    let quarter_lease = Duration::from_secs(settings.lease_seconds as u64) / 4;
    chrono::Duration::from_std(smtp_timeout.min(quarter_lease)).unwrap_or(chrono::Duration::seconds(30))
}

pub(super) async fn run(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let batch = claim_size(&shared.settings);
    let (jobs, queued) = mpsc::channel::<Job>(batch * 2);
    let (outcomes, settled) = mpsc::channel::<Outcome>(batch * 2);
    let recorded = Arc::new(AtomicBool::new(false));
    let behind = Arc::new(AtomicBool::new(false));
    let recorder = tokio::spawn(record(shared.clone(), settled, recorded.clone(), behind.clone()));
    tokio::join!(
        claim(&shared, jobs, outcomes.clone(), recorded, behind, shutdown.clone()),
        send(&shared, queued, outcomes, shutdown),
    );
    if let Err(e) = recorder.await {
        tracing::error!(error = %e, "the delivery recorder stopped abnormally");
    }
}

/// Claims due deliveries whenever the senders have room for a batch.
async fn claim(
    shared: &Shared,
    jobs: mpsc::Sender<Job>,
    outcomes: mpsc::Sender<Outcome>,
    recorded: Arc<AtomicBool>,
    behind: Arc<AtomicBool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let batch = claim_size(&shared.settings);
    // Each issue is read and encoded once, not once per reader.
    // Keyed by issue and language: each reader's copy is the issue in theirs.
    let mut prepared: HashMap<(Uuid, Language), Option<Arc<PreparedIssue>>> = HashMap::new();
    let mut requeued: Option<Instant> = None;
    while !*shutdown.borrow() {
        let mut permits = tokio::select! {
            permits = jobs.reserve_many(batch) => match permits {
                Ok(permits) => permits,
                Err(_) => return,
            },
            _ = shutdown.changed() => return,
        };
        // Nothing is claimed without a proof of life (no other worker could
        // tell whether this one still sends what it took), nor while
        // outcomes wait to be written: a row sent during a database outage
        // must be recorded before it can be claimed again.
        let me = shared.liveness.current();
        let Some(me) = me.filter(|_| !behind.load(Ordering::Acquire)) else {
            drop(permits);
            shared.idle(&mut shutdown, Duration::ZERO).await;
            continue;
        };
        let now = Utc::now();
        if requeued.is_none_or(|at| at.elapsed() >= REQUEUE_EVERY) {
            match deliveries::requeue_expired(&shared.db, now).await {
                Ok(0) => {}
                Ok(rows) => tracing::info!(rows, "deliveries whose lease ran out returned to the queue"),
                // The claim below meets the same database and says so.
                Err(e) => tracing::debug!(error = %e, "cannot return expired claims"),
            }
            requeued = Some(Instant::now());
        }
        let lease_until = shared.lease_until(now);
        let claimed = match deliveries::claim_due(&shared.db, now, lease_until, batch as i64, me).await {
            Ok(claimed) => claimed,
            Err(e) => {
                drop(permits);
                tracing::warn!(error = %e, "cannot claim deliveries from the database; trying again shortly");
                shared.idle(&mut shutdown, Duration::from_secs(1)).await;
                continue;
            }
        };
        if claimed.is_empty() {
            drop(permits);
            // Issues are checked for completion once the queue runs dry and
            // outcomes were written since the last look, not on every claim.
            if recorded.swap(false, Ordering::AcqRel) {
                match issues::mark_finished(&shared.db).await {
                    Ok(0) => {}
                    Ok(finished) => tracing::info!(issues = finished, "issue delivered to every reader"),
                    Err(e) => {
                        recorded.store(true, Ordering::Release);
                        tracing::warn!(error = %e, "cannot mark finished issues");
                    }
                }
            }
            prepared.clear();
            shared.idle(&mut shutdown, Duration::ZERO).await;
            continue;
        }
        for delivery in claimed {
            let language = shared.composer.language(Some(&delivery.language));
            let key = (delivery.issue_id, language);
            let issue = match prepared.get(&key) {
                Some(found) => Ok(found.clone()),
                None => issues::rendered(&shared.db, delivery.issue_id, language)
                    .await
                    .map(|found| {
                        let found =
                            found.map(|(week, issue)| Arc::new(shared.composer.prepare(week, &issue, language)));
                        prepared.insert(key, found.clone());
                        found
                    }),
            };
            let settled = match issue {
                Ok(Some(issue)) => {
                    let permit = permits.next().expect("a permit for each claimed row");
                    permit.send(Job {
                        delivery,
                        issue,
                        lease_until,
                        claimed_by: me,
                    });
                    continue;
                }
                Ok(None) => {
                    tracing::error!(issue = %delivery.issue_id, "the issue of a delivery is missing; giving it up");
                    Settled::Failed {
                        error: "the issue is missing".into(),
                        bounced: false,
                    }
                }
                Err(e) => {
                    tracing::warn!(issue = %delivery.issue_id, error = %e, "cannot read the issue; the delivery goes back to the queue");
                    Settled::Released
                }
            };
            let _ = outcomes.send(outcome_of(&delivery, settled)).await;
        }
    }
}

/// Sends queued jobs, `delivery.concurrency` at a time, until the claimer
/// stops and the queue is empty.
async fn send(
    shared: &Arc<Shared>,
    queued: mpsc::Receiver<Job>,
    outcomes: mpsc::Sender<Outcome>,
    shutdown: watch::Receiver<bool>,
) {
    let jobs = futures_util::stream::unfold(queued, |mut queued| async move {
        queued.recv().await.map(|job| (job, queued))
    });
    let margin = send_margin(&shared.settings, shared.smtp_timeout);
    let shutdown = &shutdown;
    jobs.for_each_concurrent(shared.settings.concurrency, |job| {
        let outcomes = outcomes.clone();
        let stopping = *shutdown.borrow();
        async move {
            let settled = if stopping || !shared.liveness.holds(job.claimed_by) {
                Settled::Released
            } else if Utc::now() + margin >= job.lease_until {
                tracing::warn!(reader = %job.delivery.subscriber_id,
                    "a claimed delivery waited too long for its turn; returning it rather than risk a second copy");
                Settled::Released
            } else {
                // Boxed: a send's future is large (the SMTP dialogue's state),
                // and the concurrent stream would copy it in for every job.
                Box::pin(deliver(shared, &job, shutdown)).await
            };
            let _ = outcomes.send(outcome_of(&job.delivery, settled)).await;
        }
    })
    .await;
}

fn outcome_of(delivery: &ClaimedDelivery, settled: Settled) -> Outcome {
    Outcome {
        issue_id: delivery.issue_id,
        subscriber_id: delivery.subscriber_id,
        attempts: delivery.attempts,
        settled,
    }
}

/// One reader's copy of an issue; a reader who left since the issue was
/// queued is skipped, not mailed.
async fn deliver(shared: &Arc<Shared>, job: &Job, shutdown: &watch::Receiver<bool>) -> Settled {
    let Job {
        delivery,
        issue,
        lease_until,
        claimed_by,
    } = job;
    let reader = delivery.subscriber_id;
    let week = issue.week();
    if delivery.subscriber_status != SubscriberStatus::Confirmed {
        return Settled::Skipped {
            reason: format!("the reader is {} now", delivery.subscriber_status),
        };
    }
    let composed = match UnsubscribeToken::from_parts(reader, &delivery.unsubscribe_secret) {
        Some(token) => {
            let (email, name, issue) = (delivery.email.clone(), delivery.name.clone(), issue.clone());
            shared
                .compose(move |composer| composer.digest_prepared(&email, &name, &token, &issue))
                .await
                .map_err(|e| e.to_string())
        }
        None => Err("the reader has no unsubscribe secret".to_owned()),
    };
    let composed = match composed {
        Ok(composed) => composed,
        Err(why) => {
            tracing::error!(%week, %reader, error = %why, "cannot render a digest; giving it up");
            return Settled::Failed {
                error: why,
                bounced: false,
            };
        }
    };
    match shared
        .send(&composed, delivery.attempts, *lease_until, *claimed_by, shutdown)
        .await
    {
        Sent::Delivered => Settled::Sent {
            message_id: composed.message_id,
            at: Utc::now(),
        },
        Sent::Retry(reply) => {
            tracing::warn!(%week, %reader, attempt = delivery.attempts, %reply, "digest not sent; will retry");
            Settled::Retry {
                at: shared.next_attempt_at(delivery.attempts),
                error: reply,
            }
        }
        Sent::Failed(reply) => {
            tracing::warn!(%week, %reader, attempt = delivery.attempts, %reply, "digest refused for good");
            // A hard bounce marks the reader `bounced` when this outcome is
            // recorded, so later issues skip them.
            let bounced = is_hard_bounce(&reply);
            if bounced {
                tracing::info!(%reader, %reply, "the address bounced; the reader is marked bounced");
            }
            Settled::Failed { error: reply, bounced }
        }
        Sent::NoSlot => {
            if !*shutdown.borrow() && shared.liveness.holds(*claimed_by) {
                tracing::warn!(%week, %reader,
                    "no send slot of the relay's rate came before the lease ran short; returning the delivery");
            }
            Settled::Released
        }
    }
}

/// Writes outcomes in batches until every sender is done.
async fn record(
    shared: Arc<Shared>,
    mut settled: mpsc::Receiver<Outcome>,
    recorded: Arc<AtomicBool>,
    behind: Arc<AtomicBool>,
) {
    let batch = claim_size(&shared.settings);
    let mut pending = Vec::with_capacity(batch);
    let mut progress = Progress::default();
    loop {
        if settled.recv_many(&mut pending, batch).await == 0 {
            break;
        }
        let deadline = tokio::time::Instant::now() + GATHER;
        while pending.len() < batch {
            let room = batch - pending.len();
            match tokio::time::timeout_at(deadline, settled.recv_many(&mut pending, room)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        write(&shared, &pending, &behind).await;
        recorded.store(true, Ordering::Release);
        progress.count(&pending);
        pending.clear();
    }
    progress.log();
}

/// Writes one batch, trying until the database takes it (it may be
/// restarting). Meanwhile the senders wait for room to report to, so the
/// worker starts no new sends whose outcome it could not keep.
async fn write(shared: &Shared, outcomes: &[Outcome], behind: &AtomicBool) {
    let mut delay = Duration::from_millis(200);
    for attempt in 1u32.. {
        match deliveries::record(&shared.db, outcomes).await {
            Ok(()) => {
                behind.store(false, Ordering::Release);
                if attempt > 1 {
                    tracing::info!(attempt, messages = outcomes.len(), "delivery outcomes recorded");
                }
                return;
            }
            Err(e) => {
                behind.store(true, Ordering::Release);
                tracing::warn!(error = %e, attempt, messages = outcomes.len(),
                    "cannot record delivery outcomes; keeping them and trying again");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_WRITE_DELAY);
            }
        }
    }
}

/// Counts for the progress lines of a long send.
#[derive(Default)]
struct Progress {
    since: Option<Instant>,
    last_log: Option<Instant>,
    sent: u64,
    retried: u64,
    failed: u64,
    skipped: u64,
}

impl Progress {
    fn count(&mut self, outcomes: &[Outcome]) {
        let now = Instant::now();
        self.since.get_or_insert(now);
        for outcome in outcomes {
            match outcome.settled {
                Settled::Sent { .. } => self.sent += 1,
                Settled::Retry { .. } => self.retried += 1,
                Settled::Failed { .. } => self.failed += 1,
                Settled::Skipped { .. } => self.skipped += 1,
                Settled::Released => {}
            }
        }
        if self.last_log.is_none_or(|at| at.elapsed() >= PROGRESS_EVERY) {
            self.last_log = Some(now);
            if self.since.is_some_and(|s| s.elapsed() >= PROGRESS_EVERY) {
                self.log();
            }
        }
    }

    fn log(&self) {
        let Some(since) = self.since else { return };
        let seconds = since.elapsed().as_secs_f64().max(0.001);
        tracing::info!(
            sent = self.sent,
            retrying = self.retried,
            failed = self.failed,
            skipped = self.skipped,
            per_second = (self.sent as f64 / seconds).round(),
            "digest delivery progress"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(rate_per_second: u32, lease_seconds: u32) -> DeliverySettings {
        DeliverySettings {
            concurrency: 16,
            batch_size: 500,
            lease_seconds,
            rate_per_second,
            max_attempts: 5,
            retry_base_seconds: 1.0,
            retry_max_seconds: 60.0,
            poll_interval_ms: 100,
        }
    }

    #[test]
    fn a_rate_limit_shrinks_claims_to_what_is_sent_well_within_the_lease() {
        assert_eq!(claim_size(&settings(0, 300)), 500);
        assert_eq!(claim_size(&settings(10_000, 300)), 500);
        // 5 a second for 300 s: two batches of 187 take 75 s, a quarter of the lease.
        assert_eq!(claim_size(&settings(5, 300)), 187);
        assert_eq!(claim_size(&settings(1, 2)), 1);
    }

    #[test]
    fn the_send_margin_fits_one_exchange_but_never_most_of_the_lease() {
        let margin = |lease, timeout| send_margin(&settings(0, lease), Duration::from_secs(timeout)).num_seconds();
        assert_eq!(margin(300, 30), 30);
        assert_eq!(margin(8, 30), 2);
    }
}
