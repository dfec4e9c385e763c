//! Workers' proofs of life. Each worker holds a lock for as long as its
//! process lives and names itself in the `workers` table; its claims carry
//! its id (`claimed_by`). A row of `workers` whose lock nobody holds
//! belongs to a dead worker: [`reap`] returns its claimed rows to the
//! queue at once, instead of when their lease runs out.
//!
//! PostgreSQL: a session-level advisory lock (class [`LOCK_CLASS`], key
//! `lock_key`) on a connection the worker keeps for it; the server drops it
//! with the connection (process killed, machine gone, database restarted).
//! SQLite: an exclusive `flock` on `<database>-worker-<id>.lock`, which the
//! kernel releases when the process dies. An in-memory SQLite database is
//! seen by one process only: there is nobody else to prove anything to.
//!
//! The lock is taken before the row is written and the row removed before
//! the lock is let go, so a live worker's row is never seen without its
//! lock. A worker that loses its lock (its connection dropped) is dead to
//! the others from that moment: it proves itself again under a new id and
//! never sends what it claimed under the old one.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rand::Rng;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::db::Db;
use crate::with_pool;

/// The first key of every worker's advisory lock ("gaze"), so the locks
/// cannot be mistaken for another application's in `pg_locks`.
pub const LOCK_CLASS: i32 = 1_734_441_573;

/// A worker's proof of life, held until [`Proof::end`] or the process dies.
pub struct Proof {
    id: Uuid,
    hold: Hold,
}

enum Hold {
    /// The connection that holds the advisory lock.
    Postgres(PgConnection),
    /// The locked file, removed when the proof ends.
    File { _file: std::fs::File, path: PathBuf },
    /// An in-memory SQLite database: only this process sees it.
    Process,
}

/// Why a worker could not prove itself.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("cannot lock the worker's lock file {path}: {source}")]
    LockFile { path: String, source: std::io::Error },
}

const REGISTER: &str =
    "INSERT INTO workers (id, started_at, host, pid, lock_key, last_seen) VALUES ($1, $2, $3, $4, $5, $2)";

/// The SQLite database's file, when it has one on disk.
fn sqlite_file(db: &Db) -> Option<PathBuf> {
    match db {
        Db::Sqlite(pool) => {
            let file = pool.connect_options().get_filename().to_path_buf();
            file.is_file().then_some(file)
        }
        Db::Postgres(_) => None,
    }
}

fn lock_file(database: &Path, id: Uuid) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(format!("-worker-{id}.lock"));
    PathBuf::from(name)
}

/// The machine's name, for the operator reading `workers`.
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Takes a new proof of life under a new id and registers it.
pub async fn prove(db: &Db, now: DateTime<Utc>) -> Result<Proof, ProofError> {
    let id = Uuid::new_v4();
    let pid = i64::from(std::process::id());
    match db {
        Db::Postgres(pool) => {
            let mut conn = pool.acquire().await?.detach();
            // A key another worker holds (a one in two billion chance) is
            // simply not taken: try another.
            let key = loop {
                let key = rand::rng().random_range(1..i32::MAX);
                let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
                    .bind(LOCK_CLASS)
                    .bind(key)
                    .fetch_one(&mut conn)
                    .await?;
                if locked {
                    break key;
                }
            };
            sqlx::query(REGISTER)
                .bind(id)
                .bind(now)
                .bind(host())
                .bind(pid)
                .bind(i64::from(key))
                .execute(&mut conn)
                .await?;
            Ok(Proof {
                id,
                hold: Hold::Postgres(conn),
            })
        }
        Db::Sqlite(pool) => {
            let hold = match sqlite_file(db) {
                Some(database) => {
                    let path = lock_file(&database, id);
                    let failed = |source| ProofError::LockFile {
                        path: path.display().to_string(),
                        source,
                    };
                    let file = std::fs::File::create(&path).map_err(failed)?;
                    file.try_lock().map_err(|e| failed(e.into()))?;
                    Hold::File { _file: file, path }
                }
                None => Hold::Process,
            };
            let registered = sqlx::query(REGISTER)
                .bind(id)
                .bind(now)
                .bind(host())
                .bind(pid)
                .bind(0i64)
                .execute(pool)
                .await;
            let proof = Proof { id, hold };
            if let Err(e) = registered {
                proof.let_go();
                return Err(e.into());
            }
            Ok(proof)
        }
    }
}

impl Proof {
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Whether the proof still holds. On PostgreSQL this asks the lock's own
    /// connection (and notes the time in the worker's row): an error means
    /// the connection, and with it the lock, is gone; no row means another
    /// worker already took this one for dead. A file lock holds for as long
    /// as the process does.
    pub async fn check(&mut self, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
        match &mut self.hold {
            Hold::Postgres(conn) => {
                let seen = sqlx::query("UPDATE workers SET last_seen = $2 WHERE id = $1")
                    .bind(self.id)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                Ok(seen.rows_affected() == 1)
            }
            Hold::File { .. } | Hold::Process => Ok(true),
        }
    }

    /// Ends a proof the worker no longer needs (it has stopped, and every
    /// row it claimed is recorded or released): its row, then its lock.
    pub async fn end(self, db: &Db) {
        let removed = with_pool!(db, pool => {
            sqlx::query("DELETE FROM workers WHERE id = $1").bind(self.id).execute(pool).await.map(|_| ())
        });
        if let Err(e) = removed {
            // The lock goes anyway; the next sweep of another worker
            // removes the row.
            tracing::warn!(error = %e, worker = %self.id, "cannot remove the worker's row");
        }
        match self.hold {
            Hold::Postgres(conn) => {
                let _ = conn.close().await;
            }
            hold => Proof { id: self.id, hold }.let_go(),
        }
    }

    /// Lets the lock go without touching the database (which may be away):
    /// from now on, the rows claimed under this proof are anyone's.
    pub fn let_go(self) {
        match self.hold {
            Hold::Postgres(conn) => {
                // Closing the connection ends the session and its lock;
                // dropping it does too, without waiting for the server.
                drop(conn);
            }
            Hold::File { _file, path } => {
                let _ = std::fs::remove_file(&path);
                drop(_file);
            }
            Hold::Process => {}
        }
    }
}

/// The workers other than `me` whose lock nobody holds.
const DEAD_POSTGRES: &str = "SELECT w.id FROM workers w
     WHERE w.id <> $1 AND NOT EXISTS (
         SELECT 1 FROM pg_locks l
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND l.classid = CAST(CAST($2 AS BIGINT) AS OID) AND l.objid = CAST(w.lock_key AS OID))";

const RETURN_DELIVERIES: &str = "UPDATE deliveries SET status = 'queued', locked_until = NULL, claimed_by = NULL
     WHERE status = 'sending' AND claimed_by = $1";
const RETURN_MAIL: &str = "UPDATE outgoing_mail SET status = 'queued', locked_until = NULL, claimed_by = NULL
     WHERE status = 'sending' AND claimed_by = $1";

/// What a sweep took back from dead workers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    pub workers: u64,
    pub rows: u64,
}

/// Returns to the queue the rows claimed by dead workers and forgets those
/// workers. As the lease's requeue, the next claim counts the attempt.
pub async fn reap(db: &Db, me: Uuid) -> Result<Reaped, sqlx::Error> {
    let dead: Vec<Uuid> = match db {
        Db::Postgres(pool) => {
            sqlx::query_scalar(DEAD_POSTGRES)
                .bind(me)
                .bind(i64::from(LOCK_CLASS))
                .fetch_all(pool)
                .await?
        }
        Db::Sqlite(pool) => {
            let Some(database) = sqlite_file(db) else {
                return Ok(Reaped::default());
            };
            let others: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM workers WHERE id <> $1")
                .bind(me)
                .fetch_all(pool)
                .await?;
            others
                .into_iter()
                .filter(|id| match std::fs::File::open(lock_file(&database, *id)) {
                    // The file goes after the row, so no file: no worker.
                    Err(e) => e.kind() == std::io::ErrorKind::NotFound,
                    // Dropping the file at the end of this closure lets the
                    // lock go again; a dead worker does not come back under
                    // its old id.
                    Ok(file) => file.try_lock().is_ok(),
                })
                .collect()
        }
    };
    let mut reaped = Reaped::default();
    if dead.is_empty() {
        return Ok(reaped);
    }
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        for id in &dead {
            reaped.rows += sqlx::query(RETURN_DELIVERIES).bind(id).execute(&mut *tx).await?.rows_affected();
            reaped.rows += sqlx::query(RETURN_MAIL).bind(id).execute(&mut *tx).await?.rows_affected();
            reaped.workers += sqlx::query("DELETE FROM workers WHERE id = $1").bind(id).execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
    });
    if let Some(database) = sqlite_file(db) {
        for id in &dead {
            let _ = std::fs::remove_file(lock_file(&database, *id));
        }
    }
    Ok(reaped)
}
