//! Group commit for signups. Each request hands its signup to a writer
//! task and waits for the commit; the task writes whatever has queued up
//! meanwhile in one transaction. Under load, dozens of signups share one
//! round trip and one commit; alone, a signup is written at once. A request
//! is answered only after its own commit, so durability is unchanged.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

use crate::db::Db;
use crate::db::subscribers::{self, SQLITE_MAX_BATCH, SignupPolicy, SignupRow};

/// Most signups in one PostgreSQL statement.
const POSTGRES_MAX_BATCH: usize = 256;
/// Batches PostgreSQL writes at once: one fills while another commits.
const POSTGRES_LANES: usize = 4;

#[derive(Clone)]
pub struct SignupWriter {
    queue: mpsc::Sender<Pending>,
}

struct Pending {
    row: SignupRow,
    done: oneshot::Sender<Result<(), Arc<sqlx::Error>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("the signup writer has stopped")]
    Stopped,
    #[error("cannot record the signup: {0}")]
    Database(Arc<sqlx::Error>),
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
        for _ in 0..lanes {
            tokio::spawn(lane(db.clone(), policy, incoming.clone(), committed.clone(), max_batch));
        }
        Self { queue }
    }

    /// Records one signup; returns once it is committed.
    pub async fn record(&self, row: SignupRow) -> Result<(), RecordError> {
        let (done, committed) = oneshot::channel();
        self.queue
            .send(Pending { row, done })
            .await
            .map_err(|_| RecordError::Stopped)?;
        committed
            .await
            .map_err(|_| RecordError::Stopped)?
            .map_err(RecordError::Database)
    }
}

async fn lane(
    db: Db,
    policy: SignupPolicy,
    incoming: Arc<Mutex<mpsc::Receiver<Pending>>>,
    committed: Arc<Notify>,
    max_batch: usize,
) {
    // One address may appear once per PostgreSQL batch; a second signup for
    // it waits for this lane's next batch.
    let one_per_address = matches!(db, Db::Postgres(_));
    let mut held_over: Option<Pending> = None;
    loop {
        let mut batch = Vec::new();
        match held_over.take() {
            // A held-over signup goes out now: waiting for the receiver here
            // could wait forever while another lane waits for new signups.
            Some(first) => {
                batch.push(first);
                if let Ok(mut incoming) = incoming.try_lock() {
                    held_over = fill(&mut batch, &mut incoming, max_batch, one_per_address);
                }
            }
            None => {
                let mut incoming = incoming.lock().await;
                match incoming.recv().await {
                    Some(first) => batch.push(first),
                    None => return,
                }
                held_over = fill(&mut batch, &mut incoming, max_batch, one_per_address);
            }
        }
        let rows: Vec<SignupRow> = batch.iter().map(|p| p.row.clone()).collect();
        let result = subscribers::record_signups(&db, &rows, policy, Utc::now())
            .await
            .map_err(Arc::new);
        if let Err(e) = &result {
            tracing::error!(error = %e, signups = rows.len(), "cannot record a batch of signups");
        } else {
            committed.notify_one();
        }
        for pending in batch {
            let _ = pending.done.send(result.clone());
        }
    }
}

/// Adds the signups already waiting to `batch`, up to `max_batch`; returns
/// the one that must wait for another batch, if any.
fn fill(
    batch: &mut Vec<Pending>,
    incoming: &mut mpsc::Receiver<Pending>,
    max_batch: usize,
    one_per_address: bool,
) -> Option<Pending> {
    let mut addresses: HashSet<String> = batch.iter().map(|p| p.row.email_key().to_owned()).collect();
    while batch.len() < max_batch {
        let next = incoming.try_recv().ok()?;
        if one_per_address && !addresses.insert(next.row.email_key().to_owned()) {
            return Some(next);
        }
        batch.push(next);
    }
    None
}
