//! How an issue did, for its page in the staff area: what became of its
//! copies beyond the progress counts (`issues::progress`), what readers did
//! because of it (bounces, complaints and unsubscribes the reader's history
//! ties to the issue: a bounce's return path and an unsubscribe link name
//! it), and its recipients one by one, searchable and exportable.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::db::search_keys::{key_pattern, lowercase_pattern};
use crate::domain::DeliveryStatus;
use crate::with_pool;

/// What followed an issue's send.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct Aftermath {
    /// When its last copy went out (`None` before any did, and once the
    /// delivery rows are pruned).
    pub last_sent_at: Option<DateTime<Utc>>,
    /// Copies waiting for another try after a temporary failure.
    pub deferred: i64,
    /// Readers whose copy bounced for good.
    pub bounced: i64,
    /// Readers who reported their copy as spam.
    pub complained: i64,
    /// Readers who left through this issue's link or list headers.
    pub unsubscribed: i64,
}

pub async fn aftermath(db: &Db, issue_id: Uuid) -> Result<Aftermath, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT (SELECT MAX(sent_at) FROM deliveries WHERE issue_id = $1) AS last_sent_at,
                    (SELECT COUNT(*) FROM deliveries WHERE issue_id = $1 AND status = 'queued' AND attempts > 0)
                        AS deferred,
                    (SELECT COUNT(DISTINCT subscriber_id) FROM subscriber_events WHERE issue_id = $1 AND kind = 'bounced')
                        AS bounced,
                    (SELECT COUNT(DISTINCT subscriber_id) FROM subscriber_events
                     WHERE issue_id = $1 AND kind = 'complained') AS complained,
                    (SELECT COUNT(DISTINCT subscriber_id) FROM subscriber_events
                     WHERE issue_id = $1 AND kind = 'unsubscribed') AS unsubscribed",
        )
        .bind(issue_id)
        .fetch_one(pool)
        .await
    })
}

/// One reader's copy of an issue.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Recipient {
    pub subscriber_id: Uuid,
    pub email: String,
    pub email_key: String,
    pub name: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// Which recipients to list.
#[derive(Debug, Clone, Default)]
pub struct RecipientFilter {
    /// Part of the address or the name, folded as staff searches are
    /// (`db::search_keys`; empty: all).
    pub query: String,
    pub status: Option<DeliveryStatus>,
}

/// Up to `limit` of the issue's recipients that `filter` selects, in
/// address order after `after` (an address key: the last one of the page
/// before).
pub async fn recipients(
    db: &Db,
    issue_id: Uuid,
    filter: &RecipientFilter,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Recipient>, sqlx::Error> {
    let (folded, lowercase) = (key_pattern(&filter.query), lowercase_pattern(&filter.query));
    with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT d.subscriber_id, s.email, s.email_key, s.name, d.status, d.attempts, d.sent_at, d.last_error
             FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
             WHERE d.issue_id = $1
               AND (s.search_key LIKE $2 ESCAPE '\\'
                    OR (s.search_key IS NULL AND (s.email_key LIKE $6 ESCAPE '\\' OR LOWER(s.name) LIKE $6 ESCAPE '\\')))
               AND ($3 = '' OR d.status = $3)
               AND s.email_key > $4
             ORDER BY s.email_key
             LIMIT $5",
        )
        .bind(issue_id)
        .bind(&folded)
        .bind(filter.status.map_or("", |s| s.as_str()))
        .bind(after.unwrap_or(""))
        .bind(limit)
        .bind(&lowercase)
        .fetch_all(pool)
        .await
    })
}

/// One issue a reader was sent (or was to be sent).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReceivedIssue {
    pub week: String,
    pub subject: String,
    pub status: DeliveryStatus,
    pub sent_at: Option<DateTime<Utc>>,
}

/// The issues queued for a reader, newest first, at most `limit` (the
/// rows retention has not pruned yet).
pub async fn received_by(db: &Db, subscriber_id: Uuid, limit: i64) -> Result<Vec<ReceivedIssue>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT i.week, i.subject, d.status, d.sent_at
             FROM deliveries d JOIN issues i ON i.id = d.issue_id
             WHERE d.subscriber_id = $1
             ORDER BY i.week DESC
             LIMIT $2",
        )
        .bind(subscriber_id)
        .bind(limit)
        .fetch_all(pool)
        .await
    })
}
