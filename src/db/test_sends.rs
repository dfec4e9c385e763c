//! Test sends: a draft issue rendered once and queued as transactional mail
//! (kind `digest_test`) to staff addresses, so the worker sends it like any
//! other message and a test never waits behind a large digest.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::db::issues::{RenderedColumns, StoredParts};
use crate::domain::{RenderedIssue, SubscriberEmail};
use crate::with_pool;

/// Stores the draft and queues one message per recipient, in one transaction.
pub async fn queue(
    db: &Db,
    draft: &RenderedIssue,
    recipients: &[SubscriberEmail],
    now: DateTime<Utc>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    let stored = StoredParts::of(draft);
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO test_sends (id, subject, html, html_links, text, text_links, article_count, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(&draft.subject)
        .bind(&stored.html)
        .bind(&stored.html_links)
        .bind(&stored.text)
        .bind(&stored.text_links)
        .bind(stored.article_count)
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

/// The draft a test send carries.
pub async fn find(db: &Db, id: Uuid) -> Result<Option<RenderedIssue>, sqlx::Error> {
    let found: Option<RenderedColumns> = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT subject, html, html_links, text, text_links, article_count FROM test_sends WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?
    });
    found.map(RenderedColumns::into_issue).transpose()
}
