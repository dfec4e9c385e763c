//! Test sends: a draft issue rendered once and queued as transactional mail
//! (kind `digest_test`) to staff addresses, so the worker sends it like any
//! other message and a test never waits behind a large digest.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::digest::render::DigestSnapshot;
use crate::domain::SubscriberEmail;
use crate::with_pool;

/// The draft a test send carries.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TestDraft {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// Stores the draft and queues one message per recipient, in one transaction.
pub async fn queue(
    db: &Db,
    draft: &DigestSnapshot,
    recipients: &[SubscriberEmail],
    now: DateTime<Utc>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query("INSERT INTO test_sends (id, subject, html, text, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(&draft.subject)
            .bind(&draft.html)
            .bind(&draft.text)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        for recipient in recipients {
            sqlx::query(
                "INSERT INTO outgoing_mail (id, kind, recipient, recipient_name, status, attempts, next_attempt_at,
                                            created_at, test_send_id)
                 VALUES ($1, 'digest_test', $2, '', 'queued', 0, $3, $3, $4)",
            )
            .bind(Uuid::now_v7())
            .bind(recipient.as_str())
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
    });
    Ok(id)
}

pub async fn find(db: &Db, id: Uuid) -> Result<Option<TestDraft>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as("SELECT subject, html, text FROM test_sends WHERE id = $1").bind(id).fetch_optional(pool).await
    })
}
