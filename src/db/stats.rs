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
    /// Inbound messages read, by kind (every kind, zero when none has it).
    pub inbound_by_kind: Vec<(String, i64)>,
}

pub async fn queue_stats(db: &Db) -> Result<QueueStats, sqlx::Error> {
    let (transactional_waiting, digest_waiting) = waiting(db).await?;
    Ok(QueueStats {
        transactional_waiting,
        digest_waiting,
        deliveries_by_status: deliveries_by_status(db).await?,
        inbound_by_kind: inbound_by_kind(db).await?,
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

/// Inbound messages by the kind they were read as; messages not read yet
/// have no kind and are not counted.
pub async fn inbound_by_kind(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows: Vec<(String, i64)> = with_pool!(db, pool => {
        sqlx::query_as("SELECT kind, COUNT(*) FROM inbound_messages WHERE kind IS NOT NULL GROUP BY kind")
            .fetch_all(pool)
            .await?
    });
    let mut all: BTreeMap<String, i64> = crate::domain::InboundKind::ALL
        .into_iter()
        .map(|k| (k.as_str().to_owned(), 0))
        .collect();
    all.extend(rows);
    Ok(all.into_iter().collect())
}

/// What came back about one issue: its copies, and the readers whose copy
/// bounced or who complained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueFeedback {
    pub week: String,
    /// Copies the relay took.
    pub sent: i64,
    /// Copies the relay refused for good.
    pub failed: i64,
    /// Readers with a hard or soft bounce about their copy.
    pub bounced: i64,
    pub complained: i64,
}

impl IssueFeedback {
    /// Bounces (refused copies and bounces reported later) per copy tried.
    pub fn bounce_rate(&self) -> f64 {
        ratio(self.failed + self.bounced, self.sent + self.failed)
    }

    /// Complaints per copy delivered.
    pub fn complaint_rate(&self) -> f64 {
        ratio(self.complained, self.sent)
    }
}

fn ratio(part: i64, whole: i64) -> f64 {
    if whole <= 0 { 0.0 } else { part as f64 / whole as f64 }
}

/// The bounces and complaints of the latest issue (by when it was made);
/// `None` before the first issue. Bounces and complaints count once per
/// reader, however many reports came about them.
pub async fn last_issue_feedback(db: &Db) -> Result<Option<IssueFeedback>, sqlx::Error> {
    with_pool!(db, pool => {
        let issue: Option<(uuid::Uuid, String)> =
            sqlx::query_as("SELECT id, week FROM issues ORDER BY created_at DESC LIMIT 1")
                .fetch_optional(pool)
                .await?;
        let Some((id, week)) = issue else { return Ok(None) };
        let (sent, failed): (i64, i64) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), 0) AS BIGINT),
                    CAST(COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS BIGINT)
             FROM deliveries WHERE issue_id = $1",
        )
        .bind(id)
        .fetch_one(pool)
        .await?;
        let (bounced, complained): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(DISTINCT CASE WHEN kind IN ('hard', 'soft') THEN subscriber_id END),
                    COUNT(DISTINCT CASE WHEN kind = 'complaint' THEN subscriber_id END)
             FROM inbound_messages WHERE issue_id = $1 AND subscriber_id IS NOT NULL",
        )
        .bind(id)
        .fetch_one(pool)
        .await?;
        Ok(Some(IssueFeedback { week, sent, failed, bounced, complained }))
    })
}

/// Policy blocks (the receiver refused the sender) received since `since`,
/// per receiving domain, most first, at most `limit` domains.
pub async fn policy_blocks_by_domain(
    db: &Db,
    since: chrono::DateTime<chrono::Utc>,
    limit: i64,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows: Vec<(Option<String>, i64)> = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT recipient_domain, COUNT(*) FROM inbound_messages
             WHERE kind = 'policy' AND received_at >= $1
             GROUP BY recipient_domain ORDER BY COUNT(*) DESC, recipient_domain LIMIT $2",
        )
        .bind(since)
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|(domain, n)| (domain.unwrap_or_else(|| "(unknown)".into()), n))
        .collect())
}
