//! Subscriber queries for staff: search, one reader's record, unsubscribe
//! and erase by id, counts for the dashboard, and the pages of the export
//! (`gazette subscribers export` and the staff download read the same
//! pages, so both leave out the same readers).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::db::search_keys::{key_pattern, lowercase_pattern};
use crate::domain::{SearchKey, SubscriberStatus, fold_for_search};
use crate::with_pool;

/// Which readers a list or an export shows: erased readers never, others
/// by a text in their address or name (in any case, accents aside: see
/// [`SearchKey`]), and by status.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub query: String,
    pub status: Option<SubscriberStatus>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ListedSubscriber {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub status: SubscriberStatus,
    pub signed_up_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
}

// $1 the query folded, $2 the pattern of keys holding it, $3 the pattern
// of a row without a key yet (see `db::search_keys`), $4 the status or ''.
macro_rules! filtered {
    ($select:literal, $rest:literal) => {
        concat!(
            $select,
            " FROM subscribers
             WHERE erased_at IS NULL
               AND ($1 = '' OR search_key LIKE $2 ESCAPE '\\'
                    OR (search_key IS NULL AND (email_key LIKE $3 ESCAPE '\\' OR LOWER(name) LIKE $3 ESCAPE '\\')))
               AND ($4 = '' OR status = $4) ",
            $rest
        )
    };
}

fn status_param(filter: &Filter) -> &'static str {
    filter.status.map(SubscriberStatus::as_str).unwrap_or("")
}

/// Binds the filter's four parameters.
macro_rules! bind_filter {
    ($query:expr, $filter:expr) => {
        $query
            .bind(fold_for_search(&$filter.query))
            .bind(key_pattern(&$filter.query))
            .bind(lowercase_pattern(&$filter.query))
            .bind(status_param($filter))
    };
}

pub async fn list(db: &Db, filter: &Filter, limit: i64, offset: i64) -> Result<Vec<ListedSubscriber>, sqlx::Error> {
    with_pool!(db, pool => {
        let query = sqlx::query_as(filtered!(
            "SELECT id, email, name, status, signed_up_at, confirmed_at",
            "ORDER BY signed_up_at DESC, id DESC LIMIT $5 OFFSET $6"
        ));
        bind_filter!(query, filter)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await
    })
}

pub async fn count(db: &Db, filter: &Filter) -> Result<i64, sqlx::Error> {
    with_pool!(db, pool => {
        let query = sqlx::query_scalar(filtered!("SELECT COUNT(*)", ""));
        bind_filter!(query, filter)
            .fetch_one(pool)
            .await
    })
}

/// One reader as an export lists them.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ExportedSubscriber {
    /// Where the next page starts; not exported.
    pub email_key: String,
    pub email: String,
    pub name: String,
    pub status: SubscriberStatus,
    pub signup_source: String,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
}

/// One page of the export, in address order after the address key `after`
/// (keyset pagination: a large export never holds more than a page in
/// memory, nor a connection between pages). Erased readers are left out
/// like everywhere else [`Filter`] applies: their row keeps only a
/// placeholder address, a status and dates, nothing that describes a
/// person, and an export is a list of people.
pub async fn export_page(
    db: &Db,
    filter: &Filter,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<ExportedSubscriber>, sqlx::Error> {
    // Every key is a non-empty address, so '' comes before them all.
    let after = after.unwrap_or("");
    with_pool!(db, pool => {
        let query = sqlx::query_as(filtered!(
            "SELECT email_key, email, name, status, signup_source, created_at, confirmed_at, unsubscribed_at",
            "AND email_key > $5 ORDER BY email_key LIMIT $6"
        ));
        bind_filter!(query, filter)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await
    })
}

/// The readers among `ids`, as an export lists them, in address order;
/// erased readers are left out, as from every export.
pub async fn export_selected(db: &Db, ids: &[Uuid]) -> Result<Vec<ExportedSubscriber>, sqlx::Error> {
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let row: Option<ExportedSubscriber> = with_pool!(db, pool => {
            sqlx::query_as(
                "SELECT email_key, email, name, status, signup_source, created_at, confirmed_at, unsubscribed_at
                 FROM subscribers WHERE id = $1 AND erased_at IS NULL",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        found.extend(row);
    }
    found.sort_by(|a, b| a.email_key.cmp(&b.email_key));
    Ok(found)
}

/// A reader's whole record: details, consent, and the dates of each change.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SubscriberRecord {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub status: SubscriberStatus,
    pub signup_ip: Option<String>,
    pub signup_source: String,
    pub created_at: DateTime<Utc>,
    pub signed_up_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
    pub erased_at: Option<DateTime<Utc>>,
}

impl SubscriberRecord {
    pub fn is_unsubscribed(&self) -> bool {
        self.status == SubscriberStatus::Unsubscribed
    }
}

pub async fn find(db: &Db, id: Uuid) -> Result<Option<SubscriberRecord>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT id, email, name, status, signup_ip, signup_source, created_at, signed_up_at, confirmed_at,
                    unsubscribed_at, erased_at
             FROM subscribers WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await
    })
}

/// Unsubscribes a reader on their behalf; `false` when nothing changed.
pub async fn unsubscribe(db: &Db, id: Uuid, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let changed = with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let changed = sqlx::query(
            "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = $2
             WHERE id = $1 AND status <> 'unsubscribed' AND erased_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 1 {
            crate::db::webhooks::record_webhook!(
                &mut *tx,
                crate::domain::WebhookEvent::SubscriberUnsubscribed,
                id,
                now
            )?;
        }
        tx.commit().await?;
        changed
    });
    Ok(changed == 1)
}

/// Erases a reader's personal data (GDPR art. 17): the address, name, IP,
/// the unsubscribe link's secret, the mail queued for them and their
/// changes of address (asked for, and the addresses in their history) go;
/// the row stays, anonymous and unsubscribed, so counts and past issues'
/// delivery figures still add up. No export lists it again.
///
/// The secret becomes empty rather than NULL (PostgreSQL's column is NOT
/// NULL): no link matches it, and a digest for the row could not be
/// composed (`UnsubscribeToken::from_parts` wants 16 bytes).
pub async fn erase(db: &Db, id: Uuid, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let placeholder = format!("erased-{}", id.simple());
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let erased = sqlx::query(
            "UPDATE subscribers
             SET email = $2, email_key = $2, name = '', search_key = $5, signup_ip = NULL, signup_source = 'erased',
                 status = 'unsubscribed', unsubscribed_at = COALESCE(unsubscribed_at, $3), erased_at = $3,
                 unsubscribe_secret = $4
             WHERE id = $1 AND erased_at IS NULL",
        )
        .bind(id)
        .bind(&placeholder)
        .bind(now)
        .bind(Vec::<u8>::new())
        .bind(SearchKey::of_erased_reader().as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if erased == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM confirmation_tokens WHERE subscriber_id = $1").bind(id).execute(&mut *tx).await?;
        // The addresses they asked to move to, and the history of their moves.
        sqlx::query("DELETE FROM address_changes WHERE subscriber_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("UPDATE subscriber_events SET detail = 'erased' WHERE subscriber_id = $1 AND kind = 'address_changed'")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM outgoing_mail WHERE subscriber_id = $1").bind(id).execute(&mut *tx).await?;
        // The address in the webhook events about them (sent or still to send).
        sqlx::query("UPDATE webhook_events SET email = NULL WHERE subscriber_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // SMTP replies often quote the address. The reader's copies are
        // found through the issues, one key lookup each: by reader alone
        // the statement read the whole table (see `db::inbound`'s LAST_COPY).
        sqlx::query(
            "UPDATE deliveries SET last_error = NULL
             WHERE issue_id IN (SELECT id FROM issues) AND subscriber_id = $1 AND last_error IS NOT NULL",
        )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    })
}

/// Readers per status (erased readers apart), and how many were erased.
#[derive(Debug, Clone, Default)]
pub struct StatusCounts {
    pub pending: i64,
    pub confirmed: i64,
    pub unsubscribed: i64,
    pub bounced: i64,
    pub erased: i64,
}

pub async fn status_counts(db: &Db) -> Result<StatusCounts, sqlx::Error> {
    let rows: Vec<(SubscriberStatus, bool, i64)> = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT status, erased_at IS NOT NULL AS erased, COUNT(*) FROM subscribers
             GROUP BY status, erased_at IS NOT NULL",
        )
        .fetch_all(pool)
        .await?
    });
    let mut counts = StatusCounts::default();
    for (status, erased, n) in rows {
        if erased {
            counts.erased += n;
            continue;
        }
        match status {
            SubscriberStatus::Pending => counts.pending += n,
            SubscriberStatus::Confirmed => counts.confirmed += n,
            SubscriberStatus::Unsubscribed => counts.unsubscribed += n,
            SubscriberStatus::Bounced => counts.bounced += n,
        }
    }
    Ok(counts)
}

/// When readers signed up and confirmed since `since`, for the chart.
pub async fn activity_since(
    db: &Db,
    since: DateTime<Utc>,
) -> Result<(Vec<DateTime<Utc>>, Vec<DateTime<Utc>>), sqlx::Error> {
    with_pool!(db, pool => {
        let signups = sqlx::query_scalar("SELECT signed_up_at FROM subscribers WHERE signed_up_at >= $1")
            .bind(since)
            .fetch_all(pool)
            .await?;
        let confirmations = sqlx::query_scalar("SELECT confirmed_at FROM subscribers WHERE confirmed_at >= $1")
            .bind(since)
            .fetch_all(pool)
            .await?;
        Ok((signups, confirmations))
    })
}
