//! Counts over the mail queues and the delivery ledger, for monitoring
//! (`/metrics`). They scan whole tables, so readers cache them.

use std::collections::BTreeMap;

use crate::db::Db;
use crate::with_pool;

/// The queues and the ledger as counted at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    /// Transactional mail waiting to be sent (queued or being sent).
    pub transactional_waiting: i64,
    /// Digest copies waiting to be sent (queued or being sent).
    pub digest_waiting: i64,
    /// Digest deliveries by status, every status the ledger knows, zero
    /// when no row has it.
    pub deliveries_by_status: Vec<(String, i64)>,
}

pub async fn queue_stats(db: &Db) -> Result<QueueStats, sqlx::Error> {
    let (transactional_waiting, digest_waiting) = waiting(db).await?;
    Ok(QueueStats {
        transactional_waiting,
        digest_waiting,
        deliveries_by_status: deliveries_by_status(db).await?,
    })
}

async fn waiting(db: &Db) -> Result<(i64, i64), sqlx::Error> {
    with_pool!(db, pool => {
        let transactional: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outgoing_mail WHERE status IN ('queued', 'sending')")
                .fetch_one(pool)
                .await?;
        let digest: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE status IN ('queued', 'sending')")
                .fetch_one(pool)
                .await?;
        Ok((transactional, digest))
    })
}

async fn deliveries_by_status(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows: Vec<(String, i64)> = with_pool!(db, pool => {
        sqlx::query_as("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
            .fetch_all(pool)
            .await?
    });
    // Rows pruned by retention still count, through their issues' summaries.
    let (sent, failed, skipped): (i64, i64, i64) = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(sent), 0) AS BIGINT), CAST(COALESCE(SUM(failed), 0) AS BIGINT),
                    CAST(COALESCE(SUM(skipped), 0) AS BIGINT)
             FROM delivery_summaries",
        )
        .fetch_one(pool)
        .await?
    });
    // Every outcome the ledger knows, zero when no row has it, so a series
    // exists from the first scrape on.
    let mut all: BTreeMap<String, i64> = crate::domain::DeliveryStatus::ALL
        .into_iter()
        .map(|s| (s.as_str().to_owned(), 0))
        .collect();
    all.extend(rows);
    for (status, pruned) in [("sent", sent), ("failed", failed), ("skipped", skipped)] {
        *all.entry(status.to_owned()).or_default() += pruned;
    }
    Ok(all.into_iter().collect())
}
