//! Signups, confirmation links, unsubscribing and bounces: a reader's own
//! steps through the subscription life cycle.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::db::new_readers::{self, Existing, LinkRules, NewReader, SqliteTransaction};
use crate::db::subscriber_events::EventKind;
use crate::db::webhooks::record_webhook;
use crate::domain::{IssueWeek, SubscriberStatus, Token, UnsubscribeToken, WebhookEvent};
use crate::with_pool;

/// How many confirmation emails an address may get, and how long links live.
#[derive(Debug, Clone, Copy)]
pub struct SignupPolicy {
    pub token_ttl: Duration,
    pub mails_per_day: u32,
    /// Confirmation emails queued per rolling hour across every process
    /// (`limits.confirmations_per_hour`); 0 = no cap.
    pub confirmations_per_hour: u32,
}

impl SignupPolicy {
    fn links(self) -> LinkRules {
        LinkRules {
            token_ttl: self.token_ttl,
            mails_per_day: self.mails_per_day,
        }
    }
}

/// The most signups one SQLite batch carries.
pub const SQLITE_MAX_BATCH: usize = 64;

/// What became of a batch of signups: the first `admitted` were written;
/// the rest were refused, with nothing written, because the hourly cap on
/// confirmation emails was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub admitted: usize,
    /// When the cap next leaves room, if any signup was refused.
    pub room_at: Option<DateTime<Utc>>,
}

/// An arbitrary, fixed key for the PostgreSQL advisory lock that makes the
/// count of the hour's confirmation emails and the batch's own one step,
/// whichever process writes it.
const CONFIRMATION_CAP_LOCK_KEY: i64 = 0x6761_7a65_7474_6502;

// The hour's confirmation emails (`outgoing_mail_confirmations_by_time`
// serves both), and the `$2`-th oldest of them: once it is an hour old,
// the cap has room again.
const CONFIRMATIONS_SINCE: &str = "SELECT COUNT(*) FROM outgoing_mail WHERE kind = 'confirmation' AND created_at > $1";
const NTH_CONFIRMATION_SINCE: &str = "SELECT created_at FROM outgoing_mail
    WHERE kind = 'confirmation' AND created_at > $1 ORDER BY created_at LIMIT 1 OFFSET $2";

/// How many of `wanted` signups fit under the cap, counted on `conn` inside
/// the batch's transaction (which holds SQLite's write lock, or the
/// PostgreSQL advisory lock), so concurrent writers cannot both take the
/// last room. A signup may queue no email (a confirmed reader, an address
/// at its daily cap): counting it anyway keeps the cap exact, and makes
/// the answer the same for every address.
macro_rules! admit {
    ($conn:expr, $wanted:expr, $cap:expr, $now:expr) => {{
        let hour_ago = $now - Duration::hours(1);
        let queued: i64 = sqlx::query_scalar(CONFIRMATIONS_SINCE)
            .bind(hour_ago)
            .fetch_one(&mut *$conn)
            .await?;
        let room = usize::try_from(i64::from($cap) - queued).unwrap_or(0);
        let admitted = $wanted.min(room);
        let room_at = if admitted < $wanted {
            // After this batch, room comes back when enough of the hour's
            // emails (the batch's own last) are an hour old.
            let nth = queued + admitted as i64 - i64::from($cap);
            let oldest: Option<DateTime<Utc>> = sqlx::query_scalar(NTH_CONFIRMATION_SINCE)
                .bind(hour_ago)
                .bind(nth.max(0))
                .fetch_optional(&mut *$conn)
                .await?;
            Some(oldest.unwrap_or($now) + Duration::hours(1))
        } else {
            None
        };
        Admission { admitted, room_at }
    }};
}

/// Records a batch of signups (at most one per address) in one
/// transaction: new readers, or a new consent record and a new confirmation
/// link for pending ones; confirmed readers are left alone (see
/// [`Existing::Renew`]). Each link's email is queued by the same write, so a
/// reader is never recorded without their email.
///
/// With `policy.confirmations_per_hour` set, only as many signups as the
/// hour's cap leaves room for are written, in the batch's order; the rest
/// are refused whole (see [`Admission`]).
pub async fn record_signups(
    db: &Db,
    signups: &[NewReader],
    policy: SignupPolicy,
    now: DateTime<Utc>,
) -> Result<Admission, sqlx::Error> {
    let everyone = Admission {
        admitted: signups.len(),
        room_at: None,
    };
    if signups.is_empty() {
        return Ok(everyone);
    }
    let cap = policy.confirmations_per_hour;
    let rules = policy.links();
    match db {
        Db::Sqlite(pool) => {
            let mut conn = pool.acquire().await?;
            if cap == 0 {
                // The write opens and commits its transaction in the same
                // trip to the database thread.
                let written =
                    new_readers::insert_sqlite(&mut conn, signups, Existing::Renew, rules, SqliteTransaction::Own, now)
                        .await;
                if let Err(e) = written {
                    // A failed statement leaves the script's transaction open.
                    let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                    return Err(e);
                }
                return Ok(everyone);
            }
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
            let written = async {
                let admission = admit!(conn, signups.len(), cap, now);
                let admitted = &signups[..admission.admitted];
                if !admitted.is_empty() {
                    new_readers::insert_sqlite(
                        &mut conn,
                        admitted,
                        Existing::Renew,
                        rules,
                        SqliteTransaction::Callers,
                        now,
                    )
                    .await?;
                }
                sqlx::query("COMMIT").execute(&mut *conn).await?;
                Ok(admission)
            }
            .await;
            if written.is_err() {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            }
            written
        }
        Db::Postgres(pool) => {
            if cap == 0 {
                new_readers::insert_postgres(pool, signups, Existing::Renew, rules, now).await?;
                return Ok(everyone);
            }
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(CONFIRMATION_CAP_LOCK_KEY)
                .execute(&mut *tx)
                .await?;
            let admission = admit!(tx, signups.len(), cap, now);
            if admission.admitted > 0 {
                new_readers::insert_postgres(&mut *tx, &signups[..admission.admitted], Existing::Renew, rules, now)
                    .await?;
            }
            tx.commit().await?;
            Ok(admission)
        }
    }
}

/// What a confirmation link points at, read without changing anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    /// No such link (never issued, or its reader was erased).
    Unknown,
    /// The reader is pending and the link still works.
    Valid,
    /// The reader is already confirmed: confirming again is harmless.
    AlreadyConfirmed,
    /// The link is past its expiry, or its reader has since left.
    Expired,
}

pub async fn token_state(db: &Db, token: &Token, now: DateTime<Utc>) -> Result<TokenState, sqlx::Error> {
    let row: Option<(SubscriberStatus, DateTime<Utc>)> = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT s.status, t.expires_at FROM confirmation_tokens t
             JOIN subscribers s ON s.id = t.subscriber_id
             WHERE t.token_hash = $1",
        )
        .bind(token.hash())
        .fetch_optional(pool)
        .await?
    });
    Ok(match row {
        None => TokenState::Unknown,
        Some((status, expires_at)) => match status {
            SubscriberStatus::Confirmed => TokenState::AlreadyConfirmed,
            SubscriberStatus::Pending if expires_at > now => TokenState::Valid,
            _ => TokenState::Expired,
        },
    })
}

/// Confirms the reader behind a valid link and, with `welcome`, queues
/// their welcome email in the same transaction, so a confirmed reader is
/// never left without it. Safe to repeat: a second confirmation reports
/// [`TokenState::AlreadyConfirmed`] and changes (and queues) nothing.
pub async fn confirm(db: &Db, token: &Token, welcome: bool, now: DateTime<Utc>) -> Result<TokenState, sqlx::Error> {
    let confirmed: Option<Uuid> = with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let confirmed: Option<Uuid> = sqlx::query_scalar(
            "UPDATE subscribers SET status = 'confirmed', confirmed_at = $2
             WHERE status = 'pending' AND id = (
                 SELECT subscriber_id FROM confirmation_tokens
                 WHERE token_hash = $1 AND expires_at > $2
             )
             RETURNING id",
        )
        .bind(token.hash())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(reader) = confirmed {
            record_webhook!(&mut *tx, WebhookEvent::SubscriberConfirmed, reader, now)?;
        }
        if let (Some(reader), true) = (confirmed, welcome) {
            sqlx::query(QUEUE_WELCOME)
                .bind(Uuid::now_v7())
                .bind(reader)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        confirmed
    });
    if confirmed.is_some() {
        return Ok(TokenState::Valid);
    }
    token_state(db, token, now).await
}

/// Queues reader `$2`'s welcome email as `$1` at `$3`. Its address and
/// name are read when it is claimed, like a confirmation's.
const QUEUE_WELCOME: &str =
    "INSERT INTO outgoing_mail (id, kind, subscriber_id, recipient, recipient_name, status, attempts,
                                next_attempt_at, created_at)
     SELECT $1, 'welcome', id, email, name, 'queued', 0, $3, $3 FROM subscribers WHERE id = $2";

/// Readers an issue dispatched at `now` goes to: the confirmed ones not
/// paused past it (the same rule as the dispatch's own insert).
pub async fn count_receiving(db: &Db, now: DateTime<Utc>) -> Result<i64, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM subscribers
             WHERE status = 'confirmed' AND (paused_until IS NULL OR paused_until <= $1)",
        )
        .bind(now)
        .fetch_one(pool)
        .await
    })
}

/// Counts of subscribers by status, for logs, tests and the benchmark.
pub async fn count_by_status(db: &Db, status: SubscriberStatus) -> Result<i64, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM subscribers WHERE status = $1")
            .bind(status)
            .fetch_one(pool)
            .await
    })
}

/// A reader as their unsubscribe link finds them.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LinkedReader {
    pub name: String,
    pub email: String,
    pub status: SubscriberStatus,
}

impl LinkedReader {
    pub fn is_unsubscribed(&self) -> bool {
        self.status == SubscriberStatus::Unsubscribed
    }
}

/// Who an unsubscribe link belongs to, read without changing anything.
pub async fn find_by_unsubscribe_token(db: &Db, token: &UnsubscribeToken) -> Result<Option<LinkedReader>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as("SELECT name, email, status FROM subscribers WHERE id = $1 AND unsubscribe_secret = $2")
            .bind(token.subscriber_id())
            .bind(token.secret())
            .fetch_optional(pool)
            .await
    })
}

/// How a reader left through their link, for their history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftBy {
    /// Their mail program's unsubscribe button (RFC 8058 one-click).
    OneClick,
    /// The button on the unsubscribe page.
    Page,
}

impl LeftBy {
    fn detail(self) -> &'static str {
        match self {
            LeftBy::OneClick => "with their mail program's unsubscribe button",
            LeftBy::Page => "on the unsubscribe page",
        }
    }
}

/// Unsubscribes the reader behind the link and records it in their
/// history, with the issue whose copy the link came from when it names one
/// (`from`); repeating it changes nothing. `None` when no reader has this
/// link.
pub async fn unsubscribe(
    db: &Db,
    token: &UnsubscribeToken,
    by: LeftBy,
    from: Option<IssueWeek>,
    now: DateTime<Utc>,
) -> Result<Option<LinkedReader>, sqlx::Error> {
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let left = sqlx::query(
            "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = $3
             WHERE id = $1 AND unsubscribe_secret = $2 AND status <> 'unsubscribed'",
        )
        .bind(token.subscriber_id())
        .bind(token.secret())
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if left == 1 {
            sqlx::query(
                "INSERT INTO subscriber_events (id, subscriber_id, at, kind, detail, inbound_message_id, issue_id)
                 VALUES ($1, $2, $3, $4, $5, NULL, (SELECT id FROM issues WHERE week = $6))",
            )
            .bind(Uuid::now_v7())
            .bind(token.subscriber_id())
            .bind(now)
            .bind(EventKind::Unsubscribed.as_str())
            .bind(by.detail())
            .bind(from.map(|week| week.to_string()))
            .execute(&mut *tx)
            .await?;
            record_webhook!(&mut *tx, WebhookEvent::SubscriberUnsubscribed, token.subscriber_id(), now)?;
        }
        tx.commit().await?;
    });
    find_by_unsubscribe_token(db, token).await
}

/// Marks a reader whose address bounced for good (`$1`), so later issues
/// skip them. A reader who unsubscribed meanwhile stays unsubscribed. Run
/// in the transaction that records the message's failure, so nobody sees
/// the one without the other; when it changed the reader, follow it with
/// [`crate::db::webhooks::record_webhook!`] (`subscriber.bounced`).
pub(crate) const MARK_BOUNCED: &str =
    "UPDATE subscribers SET status = 'bounced' WHERE id = $1 AND status IN ('pending', 'confirmed')";

/// [`MARK_BOUNCED`] for several readers at once (`$1` an array; PostgreSQL),
/// returning the readers it changed.
pub(crate) const MARK_BOUNCED_MANY: &str =
    "UPDATE subscribers SET status = 'bounced' WHERE id = ANY($1) AND status IN ('pending', 'confirmed') RETURNING id";
