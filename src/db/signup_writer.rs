//! Group commit for signups. Each request hands its signup to a writer
//! task and waits for the commit; the task writes whatever has queued up
//! meanwhile in one transaction. Under load, dozens of signups share one
//! round trip and one commit; alone, a signup is written at once. A request
//! is answered only after its own commit, so durability is unchanged.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

use crate::db::Db;
use crate::db::new_readers::NewReader;
use crate::db::subscribers::{self, Admission, SQLITE_MAX_BATCH, SignupPolicy};

/// Most signups in one PostgreSQL statement.
const POSTGRES_MAX_BATCH: usize = 256;
/// Batches PostgreSQL writes at once: one fills while another commits.
const POSTGRES_LANES: usize = 4;

#[derive(Clone)]
pub struct SignupWriter {
    queue: mpsc::Sender<Pending>,
}

struct Pending {
    reader: NewReader,
    done: oneshot::Sender<Result<(), RecordError>>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("the signup writer has stopped")]
    Stopped,
    #[error("cannot record the signup: {0}")]
    Database(Arc<sqlx::Error>),
    /// `limits.confirmations_per_hour` is reached: nothing was written.
    #[error("the hourly cap on confirmation emails is reached until {room_at}")]
    CapReached { room_at: DateTime<Utc> },
}

impl SignupWriter {
    /// Starts the writer tasks; `committed` is notified after each batch
    /// that may have queued mail, to wake the delivery worker.
    pub fn start(db: Db, policy: SignupPolicy, committed: Arc<Notify>) -> Self {
        let (queue, incoming) = mpsc::channel(4096);
        let incoming = Arc::new(Mutex::new(incoming));
        // SQLite has one writer; PostgreSQL takes several batches at once.
        let (lanes, max_batch) = match db {
            Db::Sqlite(_) => (1, SQLITE_MAX_BATCH),
            Db::Postgres(_) => (POSTGRES_LANES, POSTGRES_MAX_BATCH),
        };
        let cap_reached = Arc::new(AtomicBool::new(false));
        for _ in 0..lanes {
            tokio::spawn(lane(
                db.clone(),
                policy,
                incoming.clone(),
                committed.clone(),
                cap_reached.clone(),
                max_batch,
            ));
        }
        Self { queue }
    }

    /// Records one signup; returns once it is committed, or refused
    /// whole by the hourly cap on confirmation emails.
    pub async fn record(&self, reader: NewReader) -> Result<(), RecordError> {
        let (done, committed) = oneshot::channel();
        self.queue
            .send(Pending { reader, done })
            .await
            .map_err(|_| RecordError::Stopped)?;
        committed.await.map_err(|_| RecordError::Stopped)?
    }
}

async fn lane(
    db: Db,
    policy: SignupPolicy,
    incoming: Arc<Mutex<mpsc::Receiver<Pending>>>,
    committed: Arc<Notify>,
    cap_reached: Arc<AtomicBool>,
    max_batch: usize,
) {
    let mut held_over: Option<Pending> = None;
    loop {
        let mut batch = Vec::new();
        match held_over.take() {
            // A held-over signup goes out now: waiting for the receiver here
            // could wait forever while another lane waits for new signups.
            Some(first) => {
                batch.push(first);
                if let Ok(mut incoming) = incoming.try_lock() {
                    held_over = fill(&mut batch, &mut incoming, max_batch);
                }
            }
            None => {
                let mut incoming = incoming.lock().await;
                match incoming.recv().await {
                    Some(first) => batch.push(first),
                    None => return,
                }
                held_over = fill(&mut batch, &mut incoming, max_batch);
            }
        }
        let readers: Vec<NewReader> = batch.iter().map(|p| p.reader.clone()).collect();
        let now = Utc::now();
        let result = subscribers::record_signups(&db, &readers, policy, now)
            .await
            .map_err(Arc::new);
        match &result {
            Err(e) => tracing::error!(error = %e, signups = readers.len(), "cannot record a batch of signups"),
            Ok(admission) => {
                if admission.admitted > 0 {
                    committed.notify_one();
                }
                note_cap(&cap_reached, admission, policy.confirmations_per_hour);
            }
        }
        for (i, pending) in batch.into_iter().enumerate() {
            let answer = match &result {
                Err(e) => Err(RecordError::Database(e.clone())),
                Ok(admission) if i < admission.admitted => Ok(()),
                Ok(admission) => Err(RecordError::CapReached {
                    room_at: admission.room_at.unwrap_or(now + chrono::Duration::hours(1)),
                }),
            };
            let _ = pending.done.send(answer);
        }
    }
}

/// Logs when the cap on confirmation emails starts refusing signups, and
/// when it stops: once each time, not once per refused request.
fn note_cap(cap_reached: &AtomicBool, admission: &Admission, cap: u32) {
    match admission.room_at {
        Some(room_at) if !cap_reached.swap(true, Ordering::Relaxed) => tracing::error!(
            limit = cap,
            %room_at,
            "limits.confirmations_per_hour reached: signups are refused (503, nothing written) until the \
             hour's confirmation emails fall under the cap; a flood of signups may be under way"
        ),
        None if cap_reached.swap(false, Ordering::Relaxed) => {
            tracing::warn!(
                limit = cap,
                "confirmation emails are under the hourly cap again: signups are accepted"
            );
        }
        _ => {}
    }
}

/// Adds the signups already waiting to `batch`, up to `max_batch`; returns
/// the one that must wait for another batch, if any. A batch holds an
/// address once: the write handles each address in one step (PostgreSQL's
/// `ON CONFLICT` cannot touch a row twice in one statement, and SQLite's
/// multi-row insert would count both signups against the address's daily
/// cap on emails before either got its link).
fn fill(batch: &mut Vec<Pending>, incoming: &mut mpsc::Receiver<Pending>, max_batch: usize) -> Option<Pending> {
    let mut addresses: HashSet<String> = batch.iter().map(|p| p.reader.email_key().to_owned()).collect();
    while batch.len() < max_batch {
        let next = incoming.try_recv().ok()?;
        if !addresses.insert(next.reader.email_key().to_owned()) {
            return Some(next);
        }
        batch.push(next);
    }
    None
}
