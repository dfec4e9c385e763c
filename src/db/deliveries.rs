//! The delivery ledger: one row per (issue, reader), `queued → sending →
//! sent`, or `failed` (given up), or `skipped` (the reader left before
//! their copy went out). Claims carry a lease, like transactional mail.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::{Db, lease_claim_sql};
use crate::with_pool;

/// A claimed delivery with what the message needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedDelivery {
    pub issue_id: Uuid,
    pub subscriber_id: Uuid,
    pub attempts: i32,
    pub email: String,
    pub name: String,
    pub subscriber_status: String,
    pub unsubscribe_secret: Vec<u8>,
}

const CLAIM: [&str; 2] = lease_claim_sql!("deliveries", "issue_id, subscriber_id", "");

/// Claims up to `limit` due deliveries until `lease_until`, with each
/// reader's details: one statement to claim, one to read the batch (its
/// rows share the lease time). The issues' snapshots are read once per
/// issue by [`crate::db::issues::snapshot`], not once per reader.
pub async fn claim_due(
    db: &Db,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<ClaimedDelivery>, sqlx::Error> {
    let sql = db.pick(&CLAIM);
    let claimed = with_pool!(db, pool => {
        sqlx::query(sql).bind(now).bind(lease_until).bind(limit).execute(pool).await?.rows_affected()
    });
    if claimed == 0 {
        return Ok(Vec::new());
    }
    with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT d.issue_id, d.subscriber_id, d.attempts, s.email, s.name, s.status AS subscriber_status,
                    s.unsubscribe_secret
             FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
             WHERE d.status = 'sending' AND d.locked_until = $1",
        )
        .bind(lease_until)
        .fetch_all(pool)
        .await
    })
}

/// Records the outcome of the claim that made attempt number `attempt`:
/// `sent`, `failed` or `skipped`, or back to `queued` for a retry at
/// `next_attempt_at`.
pub async fn record(
    db: &Db,
    delivery: &ClaimedDelivery,
    outcome: DeliveryOutcome<'_>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let (status, next_attempt_at, error, message_id) = match outcome {
        DeliveryOutcome::Sent { message_id } => ("sent", None, None, Some(message_id)),
        DeliveryOutcome::Retry { at, error } => ("queued", Some(at), Some(error), None),
        DeliveryOutcome::Failed { error } => ("failed", None, Some(error), None),
        DeliveryOutcome::Skipped { reason } => ("skipped", None, Some(reason), None),
    };
    with_pool!(db, pool => {
        sqlx::query(
            "UPDATE deliveries
             SET status = $4, next_attempt_at = COALESCE($5, next_attempt_at), last_error = COALESCE($6, last_error),
                 message_id = $7, sent_at = CASE WHEN $4 = 'sent' THEN $8 ELSE sent_at END, locked_until = NULL
             WHERE issue_id = $1 AND subscriber_id = $2 AND attempts = $3 AND status = 'sending'",
        )
        .bind(delivery.issue_id)
        .bind(delivery.subscriber_id)
        .bind(delivery.attempts)
        .bind(status)
        .bind(next_attempt_at)
        .bind(error)
        .bind(message_id)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ())
    })
}

#[derive(Debug, Clone, Copy)]
pub enum DeliveryOutcome<'a> {
    Sent { message_id: &'a str },
    Retry { at: DateTime<Utc>, error: &'a str },
    Failed { error: &'a str },
    Skipped { reason: &'a str },
}

/// The status of the delivery to the reader with this address, for tests
/// with one issue.
pub async fn status_for(db: &Db, email_key: &str) -> Result<Option<String>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_scalar(
            "SELECT d.status FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id WHERE s.email_key = $1",
        )
        .bind(email_key)
        .fetch_optional(pool)
        .await
    })
}
