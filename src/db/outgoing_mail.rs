//! The queue of transactional mail: confirmation and welcome emails, links
//! to confirm a new address, and staff test sends of a draft issue (see
//! [`MailKind`]). Each row is one message in the states of
//! [`crate::domain::DeliveryStatus`]: `queued → sending → sent`, or `failed`
//! once given up; never `skipped`. A row still `sending` whose worker died
//! goes back to the queue (at once, see [`crate::db::workers`], or when its
//! lease runs out), so it is sent again rather than lost.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::{Db, lease_claim_sql, requeue_expired_sql};
use crate::domain::MailKind;
use crate::with_pool;

/// A message claimed by a worker, with what it needs to render it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QueuedMail {
    pub id: Uuid,
    pub kind: MailKind,
    pub subscriber_id: Option<Uuid>,
    pub recipient: String,
    pub recipient_name: String,
    pub token: Option<String>,
    pub attempts: i32,
    /// For [`MailKind::DigestTest`]: the rendered draft in `test_sends`.
    pub test_send_id: Option<Uuid>,
    /// The reader's language, as stored (none for a staff test send).
    pub language: Option<String>,
    /// The reader's unsubscribe secret, which their preferences link
    /// carries (for [`MailKind::Welcome`]).
    pub unsubscribe_secret: Option<Vec<u8>>,
}

const CLAIM: [&str; 2] = lease_claim_sql!(
    "outgoing_mail",
    "id",
    "RETURNING id, kind, subscriber_id, recipient, recipient_name, token, attempts, test_send_id,
               (SELECT s.language FROM subscribers s WHERE s.id = outgoing_mail.subscriber_id) AS language,
               (SELECT s.unsubscribe_secret FROM subscribers s WHERE s.id = outgoing_mail.subscriber_id) AS unsubscribe_secret"
);

/// Claims up to `limit` due messages until `lease_until` for the worker
/// `worker` (the id of its proof of life).
pub async fn claim_due(
    db: &Db,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
    worker: Uuid,
) -> Result<Vec<QueuedMail>, sqlx::Error> {
    let sql = db.pick(&CLAIM);
    with_pool!(db, pool => {
        sqlx::query(requeue_expired_sql!("outgoing_mail")).bind(now).execute(pool).await?;
        sqlx::query_as(sql).bind(now).bind(lease_until).bind(limit).bind(worker).fetch_all(pool).await
    })
}

/// Marks a message sent and forgets its link secret. Not tied to the claim:
/// once a message has left, that is the truth whoever holds the lease.
pub async fn mark_sent(db: &Db, id: Uuid, message_id: &str, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query(
            "UPDATE outgoing_mail
             SET status = 'sent', sent_at = $2, message_id = $3, token = NULL, locked_until = NULL, claimed_by = NULL
             WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .bind(message_id)
        .execute(pool)
        .await
        .map(|_| ())
    })
}

/// Puts a message back in the queue for another attempt at `next_attempt_at`.
///
/// Only the claim that made attempt number `attempt` may do so: if its lease
/// ran out and another worker claimed the message since, that worker's
/// state stands.
pub async fn schedule_retry(
    db: &Db,
    id: Uuid,
    attempt: i32,
    next_attempt_at: DateTime<Utc>,
    error: &str,
) -> Result<(), sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query(
            "UPDATE outgoing_mail
             SET status = 'queued', next_attempt_at = $3, last_error = $4, locked_until = NULL, claimed_by = NULL
             WHERE id = $1 AND attempts = $2 AND status = 'sending'",
        )
        .bind(id)
        .bind(attempt)
        .bind(next_attempt_at)
        .bind(error)
        .execute(pool)
        .await
        .map(|_| ())
    })
}

/// Gives a message up for good (only the claim that made attempt `attempt`)
/// and, when `bounced` names its reader (the address does not exist), marks
/// that reader bounced in the same transaction.
pub async fn mark_failed(
    db: &Db,
    id: Uuid,
    attempt: i32,
    error: &str,
    bounced: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "UPDATE outgoing_mail
             SET status = 'failed', last_error = $3, token = NULL, locked_until = NULL, claimed_by = NULL
             WHERE id = $1 AND attempts = $2 AND status = 'sending'",
        )
        .bind(id)
        .bind(attempt)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        if let Some(reader) = bounced {
            let changed = sqlx::query(crate::db::subscribers::MARK_BOUNCED)
                .bind(reader)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 1 {
                crate::db::webhooks::record_webhook!(
                    &mut *tx,
                    crate::domain::WebhookEvent::SubscriberBounced,
                    reader,
                    Utc::now()
                )?;
            }
        }
        tx.commit().await
    })
}
