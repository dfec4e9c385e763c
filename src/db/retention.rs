//! What the retention settings remove (`gazette prune` and the daily run
//! of `gazette serve`), each kind counted alone for `--dry-run` and removed
//! by one door. Nothing an open issue or a waiting message still needs is
//! ever matched: only settled deliveries of issues marked sent, only mail
//! that was sent or given up, only pending readers whose links have all
//! expired and who have no mail waiting.
//!
//! Several processes may prune at once (one daily run per `gazette serve`):
//! every statement here is idempotent or, for the delivery summary,
//! counts exactly the rows it deletes, so a second run finds nothing left.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::with_pool;

/// Issues created before this whose deliveries are all settled and that
/// are marked sent: their delivery rows may be summarised.
const PRUNABLE_ISSUES: &str = "SELECT i.id FROM issues i
     WHERE i.status = 'sent' AND i.created_at < $1
       AND EXISTS (SELECT 1 FROM deliveries d WHERE d.issue_id = i.id)
     ORDER BY i.created_at";

const SETTLED: &str = "('sent', 'failed', 'skipped')";

/// The issue `$1` is (still) marked sent.
const ISSUE_SENT: &str = "EXISTS (SELECT 1 FROM issues i WHERE i.id = $1 AND i.status = 'sent')";

/// Settled delivery rows of prunable issues: how many, of how many issues.
pub async fn count_deliveries(db: &Db, before: DateTime<Utc>) -> Result<(u64, u64), sqlx::Error> {
    let (issues, rows): (i64, i64) = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT COUNT(DISTINCT d.issue_id), COUNT(*) FROM deliveries d JOIN issues i ON i.id = d.issue_id
             WHERE i.status = 'sent' AND i.created_at < $1 AND d.status IN ('sent', 'failed', 'skipped')",
        )
        .bind(before)
        .fetch_one(pool)
        .await?
    });
    Ok((to_u64(issues), to_u64(rows)))
}

/// The issues whose delivery rows [`summarise_issue`] would remove.
pub async fn prunable_issues(db: &Db, before: DateTime<Utc>) -> Result<Vec<Uuid>, sqlx::Error> {
    with_pool!(db, pool => sqlx::query_scalar(PRUNABLE_ISSUES).bind(before).fetch_all(pool).await)
}

/// Adds the issue's settled delivery rows to its summary (counts per
/// outcome) and deletes them, atomically; returns how many went. The
/// issue is checked again inside: a "retry failed" since the listing
/// leaves it alone.
pub async fn summarise_issue(db: &Db, issue_id: Uuid, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    match db {
        // One statement: what is counted is exactly what was deleted, even
        // with another process pruning the same issue at the same moment.
        Db::Postgres(pool) => {
            let removed: i64 = sqlx::query_scalar(
                "WITH gone AS (
                     DELETE FROM deliveries d
                     WHERE d.issue_id = $1 AND d.status IN ('sent', 'failed', 'skipped')
                       AND EXISTS (SELECT 1 FROM issues i WHERE i.id = $1 AND i.status = 'sent')
                     RETURNING d.status
                 ), summary AS (
                     INSERT INTO delivery_summaries (issue_id, sent, failed, skipped, pruned_at)
                     SELECT $1, COUNT(*) FILTER (WHERE status = 'sent'), COUNT(*) FILTER (WHERE status = 'failed'),
                            COUNT(*) FILTER (WHERE status = 'skipped'), $2
                     FROM gone HAVING COUNT(*) > 0
                     ON CONFLICT (issue_id) DO UPDATE SET
                         sent = delivery_summaries.sent + excluded.sent,
                         failed = delivery_summaries.failed + excluded.failed,
                         skipped = delivery_summaries.skipped + excluded.skipped,
                         pruned_at = excluded.pruned_at
                     RETURNING 1
                 )
                 SELECT COUNT(*) FROM gone",
            )
            .bind(issue_id)
            .bind(now)
            .fetch_one(pool)
            .await?;
            Ok(to_u64(removed))
        }
        // SQLite has one writer: taken first (IMMEDIATE), the count and the
        // delete see the same rows.
        Db::Sqlite(pool) => {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO delivery_summaries (issue_id, sent, failed, skipped, pruned_at)
                 SELECT d.issue_id, SUM(CASE WHEN d.status = 'sent' THEN 1 ELSE 0 END),
                        SUM(CASE WHEN d.status = 'failed' THEN 1 ELSE 0 END),
                        SUM(CASE WHEN d.status = 'skipped' THEN 1 ELSE 0 END), $2
                 FROM deliveries d WHERE d.issue_id = $1 AND d.status IN {SETTLED} AND {ISSUE_SENT}
                 GROUP BY d.issue_id
                 ON CONFLICT (issue_id) DO UPDATE SET
                     sent = delivery_summaries.sent + excluded.sent,
                     failed = delivery_summaries.failed + excluded.failed,
                     skipped = delivery_summaries.skipped + excluded.skipped,
                     pruned_at = excluded.pruned_at"
            )))
            .bind(issue_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let removed = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM deliveries WHERE issue_id = $1 AND status IN {SETTLED} AND {ISSUE_SENT}"
            )))
            .bind(issue_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(removed)
        }
    }
}

// Settled transactional mail created before $1 that still holds an address.
const ADDRESSED_MAIL: &str = "created_at < $1 AND status IN ('sent', 'failed') AND recipient <> ''";

pub async fn count_mail_addresses(db: &Db, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let found: i64 = with_pool!(db, pool => {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM outgoing_mail WHERE {ADDRESSED_MAIL}")))
            .bind(before)
            .fetch_one(pool)
            .await?
    });
    Ok(to_u64(found))
}

/// Blanks the address, the name and the last SMTP reply (which often
/// quotes the address) of settled transactional mail created before
/// `before`. The rows stay: they are the record that mail went out.
pub async fn remove_mail_addresses(db: &Db, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE outgoing_mail SET recipient = '', recipient_name = '', last_error = NULL, token = NULL
             WHERE {ADDRESSED_MAIL}"
        )))
        .bind(before)
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
    })
}

// Readers who never confirmed and last signed up before $1, with no link
// still valid at $2, no mail waiting and no delivery ever (a reader who was
// confirmed once and signed up again is never matched).
const NEVER_CONFIRMED: &str = "status = 'pending' AND confirmed_at IS NULL AND signed_up_at < $1
     AND NOT EXISTS (SELECT 1 FROM confirmation_tokens t WHERE t.subscriber_id = subscribers.id AND t.expires_at > $2)
     AND NOT EXISTS (SELECT 1 FROM outgoing_mail m WHERE m.subscriber_id = subscribers.id
                     AND m.status IN ('queued', 'sending'))
     AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.subscriber_id = subscribers.id)";

pub async fn count_unconfirmed_readers(db: &Db, before: DateTime<Utc>, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let found: i64 = with_pool!(db, pool => {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM subscribers WHERE {NEVER_CONFIRMED}")))
            .bind(before)
            .bind(now)
            .fetch_one(pool)
            .await?
    });
    Ok(to_u64(found))
}

/// Deletes never-confirmed readers (see [`NEVER_CONFIRMED`]) with what
/// hangs on them: the address, name, signup IP and consent record in the
/// row, their expired tokens and their confirmation mail (cascades).
pub async fn remove_unconfirmed_readers(
    db: &Db,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM subscribers WHERE {NEVER_CONFIRMED}")))
            .bind(before)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
    })
}

// Articles staff deleted before $1.
const DELETED_ARTICLES: &str = "deleted_at IS NOT NULL AND deleted_at < $1";

pub async fn count_deleted_articles(db: &Db, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let found: i64 = with_pool!(db, pool => {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM articles WHERE {DELETED_ARTICLES}")))
            .bind(before)
            .fetch_one(pool)
            .await?
    });
    Ok(to_u64(found))
}

/// Purges articles staff deleted before `before`, with their summaries'
/// earlier versions (cascades): they can no longer be restored.
pub async fn remove_deleted_articles(db: &Db, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM articles WHERE {DELETED_ARTICLES}")))
            .bind(before)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
    })
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
