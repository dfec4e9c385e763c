//! Issues: one per ISO week, stored with their rendered snapshot.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::digest::render::DigestSnapshot;
use crate::digest::week::IssueWeek;
use crate::with_pool;

/// Where the last issue's article window ended: the next one starts there.
pub async fn last_window_end(db: &Db) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_scalar("SELECT window_end FROM issues ORDER BY window_end DESC LIMIT 1")
            .fetch_optional(pool)
            .await
    })
}

/// A queued issue: its id and how many readers it goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    pub issue_id: Uuid,
    pub recipients: u64,
}

/// Stores the week's issue and queues one delivery per confirmed reader, in
/// one transaction. `None` when the week has an issue already: dispatching
/// twice queues nothing twice.
pub async fn create_and_queue(
    db: &Db,
    week: IssueWeek,
    snapshot: &DigestSnapshot,
    window: (DateTime<Utc>, DateTime<Utc>),
    now: DateTime<Utc>,
) -> Result<Option<Queued>, sqlx::Error> {
    let issue_id = Uuid::now_v7();
    let article_count = i32::try_from(snapshot.articles).unwrap_or(i32::MAX);
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let created = sqlx::query(
            "INSERT INTO issues (id, week, subject, html, text, article_count, window_start, window_end, status,
                                 created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'sending', $9)
             ON CONFLICT (week) DO NOTHING",
        )
        .bind(issue_id)
        .bind(week.to_string())
        .bind(&snapshot.subject)
        .bind(&snapshot.html)
        .bind(&snapshot.text)
        .bind(article_count)
        .bind(window.0)
        .bind(window.1)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if created == 0 {
            return Ok(None);
        }
        // Set-based: readers who confirm later are not added to this issue.
        let recipients = sqlx::query(
            "INSERT INTO deliveries (issue_id, subscriber_id, status, attempts, next_attempt_at)
             SELECT $1, id, 'queued', 0, $2 FROM subscribers WHERE status = 'confirmed'",
        )
        .bind(issue_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        // A big issue changes the table's shape at once; fresh statistics
        // keep the workers' claims on the index from the first one.
        if let Db::Postgres(pool) = db
            && let Err(e) = sqlx::query("ANALYZE deliveries").execute(pool).await
        {
            tracing::warn!(error = %e, "cannot refresh the deliveries table's statistics");
        }
        Ok(Some(Queued { issue_id, recipients }))
    })
}

/// Marks issues whose deliveries are all settled as sent.
pub async fn mark_finished(db: &Db) -> Result<u64, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query(
            "UPDATE issues SET status = 'sent'
             WHERE status = 'sending' AND NOT EXISTS (
                 SELECT 1 FROM deliveries d WHERE d.issue_id = issues.id AND d.status IN ('queued', 'sending')
             )",
        )
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
    })
}

/// Whether the week has its issue already.
pub async fn exists(db: &Db, week: IssueWeek) -> Result<bool, sqlx::Error> {
    let found: Option<i32> = with_pool!(db, pool => {
        sqlx::query_scalar("SELECT 1 FROM issues WHERE week = $1").bind(week.to_string()).fetch_optional(pool).await?
    });
    Ok(found.is_some())
}

/// An issue as the archive lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ArchivedIssue {
    pub week: String,
    pub subject: String,
    pub article_count: i32,
    pub created_at: DateTime<Utc>,
}

/// Every dispatched issue, newest first.
pub async fn archive(db: &Db) -> Result<Vec<ArchivedIssue>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as("SELECT week, subject, article_count, created_at FROM issues ORDER BY week DESC")
            .fetch_all(pool)
            .await
    })
}

/// One issue's stored HTML, by week.
pub async fn html_of(db: &Db, week: IssueWeek) -> Result<Option<String>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_scalar("SELECT html FROM issues WHERE week = $1").bind(week.to_string()).fetch_optional(pool).await
    })
}

/// An issue's rendered snapshot, as the sender needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredSnapshot {
    pub week: String,
    pub subject: String,
    pub html: String,
    pub text: String,
}

pub async fn snapshot(db: &Db, issue_id: Uuid) -> Result<Option<StoredSnapshot>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as("SELECT week, subject, html, text FROM issues WHERE id = $1")
            .bind(issue_id)
            .fetch_optional(pool)
            .await
    })
}
