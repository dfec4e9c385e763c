//! Subscriber rows and their confirmation tokens.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::domain::{SubscriberEmail, SubscriberName, SubscriberStatus, Token};
use crate::with_pool;

/// A signup as the form delivered it, already parsed.
pub struct Signup<'a> {
    pub email: &'a SubscriberEmail,
    pub name: &'a SubscriberName,
    pub ip: Option<String>,
    pub source: &'a str,
}

/// How many confirmation emails an address may get, and how long links live.
#[derive(Debug, Clone, Copy)]
pub struct SignupPolicy {
    pub token_ttl: Duration,
    pub mails_per_day: u32,
}

// The upsert both backends share. A confirmed reader's row is left as it
// is (no enumeration, no overwriting a confirmed name by a stranger); any
// other row goes back to `pending` with the latest consent record. The
// mail window counts confirmation emails per address per 24 hours.
macro_rules! upsert_subscriber_sql {
    () => {
        "INSERT INTO subscribers (id, email, email_key, name, status, signup_ip, signup_source,
                                  created_at, signed_up_at, mail_window_started_at, mails_in_window)
         VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $7, $7, 1)
         ON CONFLICT (email_key) DO UPDATE SET
             status = CASE WHEN subscribers.status = 'confirmed' THEN 'confirmed' ELSE 'pending' END,
             email = CASE WHEN subscribers.status = 'confirmed' THEN subscribers.email ELSE excluded.email END,
             name = CASE WHEN subscribers.status = 'confirmed' THEN subscribers.name ELSE excluded.name END,
             signup_ip = CASE WHEN subscribers.status = 'confirmed' THEN subscribers.signup_ip ELSE excluded.signup_ip END,
             signup_source = CASE WHEN subscribers.status = 'confirmed' THEN subscribers.signup_source ELSE excluded.signup_source END,
             signed_up_at = CASE WHEN subscribers.status = 'confirmed' THEN subscribers.signed_up_at ELSE excluded.signed_up_at END,
             mail_window_started_at = CASE WHEN subscribers.mail_window_started_at <= $8
                 THEN excluded.mail_window_started_at ELSE subscribers.mail_window_started_at END,
             mails_in_window = CASE WHEN subscribers.mail_window_started_at <= $8
                 THEN 1 ELSE subscribers.mails_in_window + 1 END"
    };
}

// SQLite: one script, one trip to the database thread. The token and the
// confirmation email are written only for a pending reader still under the
// daily cap, in the same transaction as the upsert.
const RECORD_SIGNUP_SQLITE: &str = concat!(
    "BEGIN IMMEDIATE;",
    upsert_subscriber_sql!(),
    ";
    INSERT INTO confirmation_tokens (token_hash, subscriber_id, created_at, expires_at)
    SELECT $9, id, $7, $10 FROM subscribers
    WHERE email_key = $3 AND status = 'pending' AND mails_in_window <= $11;
    INSERT INTO outgoing_mail (id, kind, subscriber_id, recipient, recipient_name, token,
                               status, attempts, next_attempt_at, created_at)
    SELECT $12, 'confirmation', id, email, name, $13, 'queued', 0, $7, $7 FROM subscribers
    WHERE email_key = $3 AND status = 'pending' AND mails_in_window <= $11;
    COMMIT;"
);

// PostgreSQL: the same three writes as one statement (one round trip, one
// implicit transaction) through data-modifying CTEs.
const RECORD_SIGNUP_POSTGRES: &str = concat!(
    "WITH subscriber AS (",
    upsert_subscriber_sql!(),
    " RETURNING id, email, name, status, mails_in_window
    ), token AS (
        INSERT INTO confirmation_tokens (token_hash, subscriber_id, created_at, expires_at)
        SELECT $9, id, $7, $10 FROM subscriber
        WHERE status = 'pending' AND mails_in_window <= $11
        RETURNING subscriber_id
    )
    INSERT INTO outgoing_mail (id, kind, subscriber_id, recipient, recipient_name, token,
                               status, attempts, next_attempt_at, created_at)
    SELECT $12, 'confirmation', s.id, s.email, s.name, $13, 'queued', 0, $7, $7
    FROM subscriber s JOIN token t ON t.subscriber_id = s.id"
);

/// Records a signup: a new reader, or a new consent record and a new
/// confirmation link for a pending one; a confirmed reader is left alone.
/// Returns whether a confirmation email was queued.
pub async fn record_signup(
    db: &Db,
    signup: &Signup<'_>,
    token: &Token,
    policy: SignupPolicy,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let window_cutoff = now - Duration::hours(24);
    let expires_at = now + policy.token_ttl;
    let mail_cap = i32::try_from(policy.mails_per_day).unwrap_or(i32::MAX);
    macro_rules! bind_all {
        ($sql:expr) => {
            sqlx::query($sql)
                .bind(Uuid::now_v7())
                .bind(signup.email.as_str())
                .bind(signup.email.dedupe_key())
                .bind(signup.name.as_str())
                .bind(signup.ip.as_deref())
                .bind(signup.source)
                .bind(now)
                .bind(window_cutoff)
                .bind(token.hash())
                .bind(expires_at)
                .bind(mail_cap)
                .bind(Uuid::now_v7())
                .bind(token.as_str())
        };
    }
    let queued = match db {
        Db::Sqlite(pool) => {
            let mut conn = pool.acquire().await?;
            match bind_all!(RECORD_SIGNUP_SQLITE).execute(&mut *conn).await {
                // The upsert always changes one row; the token and the mail
                // add one each when a confirmation email is queued.
                Ok(done) => done.rows_affected() > 1,
                Err(e) => {
                    // A failed statement leaves the script's transaction open.
                    let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                    return Err(e);
                }
            }
        }
        // The statement's own rows are the queued emails.
        Db::Postgres(pool) => bind_all!(RECORD_SIGNUP_POSTGRES).execute(pool).await?.rows_affected() > 0,
    };
    Ok(queued)
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
    let row: Option<(String, DateTime<Utc>)> = with_pool!(db, pool => {
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
        Some((status, expires_at)) => match SubscriberStatus::parse(&status) {
            Some(SubscriberStatus::Confirmed) => TokenState::AlreadyConfirmed,
            Some(SubscriberStatus::Pending) if expires_at > now => TokenState::Valid,
            _ => TokenState::Expired,
        },
    })
}

/// Confirms the reader behind a valid link. Safe to repeat: a second
/// confirmation reports [`TokenState::AlreadyConfirmed`] and changes nothing.
pub async fn confirm(db: &Db, token: &Token, now: DateTime<Utc>) -> Result<TokenState, sqlx::Error> {
    let confirmed = with_pool!(db, pool => {
        sqlx::query(
            "UPDATE subscribers SET status = 'confirmed', confirmed_at = $2
             WHERE status = 'pending' AND id = (
                 SELECT subscriber_id FROM confirmation_tokens
                 WHERE token_hash = $1 AND expires_at > $2
             )",
        )
        .bind(token.hash())
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()
    });
    if confirmed > 0 {
        return Ok(TokenState::Valid);
    }
    token_state(db, token, now).await
}

/// Counts of subscribers by status, for logs, tests and the benchmark.
pub async fn count_by_status(db: &Db, status: SubscriberStatus) -> Result<i64, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM subscribers WHERE status = $1")
            .bind(status.as_str())
            .fetch_one(pool)
            .await
    })
}
