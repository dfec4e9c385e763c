//! The lock every dispatch of an issue holds (the scheduler, `gazette
//! dispatch` and the staff's "send now"), so that dispatches by several
//! processes run one after the other and the second finds the week's issue.

use sqlx::{Postgres, Transaction};

use crate::db::Db;

/// An arbitrary, fixed key for the PostgreSQL advisory lock.
const DISPATCH_LOCK_KEY: i64 = 0x6761_7a65_7474_6501;

/// The dispatch lock, held until [`DispatchLock::release`] or drop.
///
/// On PostgreSQL it is a transaction-scoped advisory lock on a connection
/// of its own, so it is released even if its holder is dropped half-way
/// (the transaction rolls back). SQLite's single connection serialises
/// writers already, and the unique week settles a race between processes
/// on one file, so there it holds nothing.
pub struct DispatchLock(Option<Transaction<'static, Postgres>>);

impl DispatchLock {
    /// Waits until no other dispatch holds the lock, then takes it.
    pub async fn acquire(db: &Db) -> Result<Self, sqlx::Error> {
        match db {
            Db::Postgres(pool) => {
                let mut lock = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(DISPATCH_LOCK_KEY)
                    .execute(&mut *lock)
                    .await?;
                Ok(Self(Some(lock)))
            }
            Db::Sqlite(_) => Ok(Self(None)),
        }
    }

    pub async fn release(self) {
        if let Some(lock) = self.0 {
            let _ = lock.rollback().await;
        }
    }
}
