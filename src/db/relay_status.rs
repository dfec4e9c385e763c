//! What each worker saw of each SMTP relay: one row per relay and worker
//! process, rewritten by that worker every few seconds ([`report`]), added
//! up per relay for `/metrics` and the staff dashboard ([`read`]).

use chrono::{DateTime, Utc};

use crate::db::Db;
use crate::with_pool;

/// One relay's figures: one worker's (to [`report`]), or every worker's
/// added up (from [`read`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayStatus {
    pub relay: String,
    pub sent: i64,
    pub deferred: i64,
    pub failed: i64,
    pub unreachable: i64,
    /// Until when it cools down; from [`read`], the latest any worker
    /// reported that is still ahead.
    pub cooling_until: Option<DateTime<Utc>>,
}

/// Binds: `$1` relay, `$2` worker, `$3`…`$6` sent, deferred, failed,
/// unreachable, `$7` cooling until, `$8` now.
const REPORT: &str =
    "INSERT INTO relay_status (relay, worker, sent, deferred, failed, unreachable, cooling_until, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (relay, worker) DO UPDATE
     SET sent = excluded.sent, deferred = excluded.deferred, failed = excluded.failed,
         unreachable = excluded.unreachable, cooling_until = excluded.cooling_until, updated_at = excluded.updated_at";

/// Writes `worker`'s figures of each relay, in one transaction.
pub async fn report(db: &Db, worker: &str, relays: &[RelayStatus], now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        for relay in relays {
            sqlx::query(REPORT)
                .bind(&relay.relay)
                .bind(worker)
                .bind(relay.sent)
                .bind(relay.deferred)
                .bind(relay.failed)
                .bind(relay.unreachable)
                .bind(relay.cooling_until)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    })
}

const READ: [&str; 2] = [
    "SELECT relay, SUM(sent), SUM(deferred), SUM(failed), SUM(unreachable), MAX(cooling_until)
     FROM relay_status GROUP BY relay ORDER BY relay",
    // SUM of BIGINT is NUMERIC on PostgreSQL.
    "SELECT relay, SUM(sent)::BIGINT, SUM(deferred)::BIGINT, SUM(failed)::BIGINT, SUM(unreachable)::BIGINT,
            MAX(cooling_until)
     FROM relay_status GROUP BY relay ORDER BY relay",
];

/// Every relay any worker reported, its figures added up over the workers,
/// cooling down while any worker's cool-down is still ahead of `now`.
pub async fn read(db: &Db, now: DateTime<Utc>) -> Result<Vec<RelayStatus>, sqlx::Error> {
    type Row = (String, i64, i64, i64, i64, Option<DateTime<Utc>>);
    let sql = db.pick(&READ);
    let rows: Vec<Row> = with_pool!(db, pool => sqlx::query_as(sql).fetch_all(pool).await?);
    Ok(rows
        .into_iter()
        .map(
            |(relay, sent, deferred, failed, unreachable, cooling_until)| RelayStatus {
                relay,
                sent,
                deferred,
                failed,
                unreachable,
                cooling_until: cooling_until.filter(|until| *until > now),
            },
        )
        .collect())
}
