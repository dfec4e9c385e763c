//! Subscriber rows and their confirmation tokens.

use std::sync::OnceLock;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::domain::{SubscriberEmail, SubscriberName, SubscriberStatus, Token, UnsubscribeToken};
use crate::with_pool;

/// One signup, ready to be written: the parsed reader, the consent record,
/// and the confirmation link's token with the ids its rows will get.
#[derive(Debug, Clone)]
pub struct SignupRow {
    subscriber_id: Uuid,
    email: String,
    email_key: String,
    name: String,
    ip: Option<String>,
    source: String,
    token_hash: Vec<u8>,
    mail_id: Uuid,
    token: Token,
    /// Used only when the row is new: a reader keeps their unsubscribe link.
    unsubscribe_secret: Vec<u8>,
}

impl SignupRow {
    pub fn new(
        email: &SubscriberEmail,
        name: &SubscriberName,
        ip: Option<String>,
        source: &str,
        token: &Token,
    ) -> Self {
        let subscriber_id = Uuid::now_v7();
        Self {
            subscriber_id,
            email: email.as_str().to_owned(),
            email_key: email.dedupe_key(),
            name: name.as_str().to_owned(),
            ip,
            source: source.to_owned(),
            token_hash: token.hash(),
            mail_id: Uuid::now_v7(),
            token: token.clone(),
            unsubscribe_secret: UnsubscribeToken::generate(subscriber_id).secret().to_vec(),
        }
    }

    pub fn email_key(&self) -> &str {
        &self.email_key
    }
}

/// How many confirmation emails an address may get, and how long links live.
#[derive(Debug, Clone, Copy)]
pub struct SignupPolicy {
    pub token_ttl: Duration,
    pub mails_per_day: u32,
    /// Confirmation emails queued per rolling hour across every process
    /// (`limits.confirmations_per_hour`); 0 = no cap.
    pub confirmations_per_hour: u32,
}

// Parameters shared by every signup of a batch: $1 now, $2 the start of the
// 24-hour mail window, $3 the links' expiry, $4 the daily cap on emails.
//
// The conflict clause both backends share. A confirmed reader's row is left
// as it is (no enumeration, no overwriting a confirmed name by a stranger);
// any other row goes back to `pending` with the latest consent record. The
// mail window counts confirmation emails per address per 24 hours.
macro_rules! on_conflict_sql {
    () => {
        " ON CONFLICT (email_key) DO UPDATE SET
             status = CASE WHEN subscribers.status = 'confirmed' THEN 'confirmed' ELSE 'pending' END,
             email = CASE WHEN subscribers.status = 'confirmed' THEN subscribers.email ELSE excluded.email END,
             name = CASE WHEN subscribers.status = 'confirmed' THEN subscribers.name ELSE excluded.name END,
             signup_ip = CASE WHEN subscribers.status = 'confirmed'
                 THEN subscribers.signup_ip ELSE excluded.signup_ip END,
             signup_source = CASE WHEN subscribers.status = 'confirmed'
                 THEN subscribers.signup_source ELSE excluded.signup_source END,
             signed_up_at = CASE WHEN subscribers.status = 'confirmed'
                 THEN subscribers.signed_up_at ELSE excluded.signed_up_at END,
             mail_window_started_at = CASE WHEN subscribers.mail_window_started_at <= $2
                 THEN excluded.mail_window_started_at ELSE subscribers.mail_window_started_at END,
             mails_in_window = CASE WHEN subscribers.mail_window_started_at <= $2
                 THEN 1 ELSE subscribers.mails_in_window + 1 END"
    };
}

/// The most signups one SQLite script carries (10 parameters each).
pub const SQLITE_MAX_BATCH: usize = 64;

const SQLITE_BEGIN: &str = "BEGIN IMMEDIATE;";
const SQLITE_COMMIT: &str = "COMMIT;";

// SQLite: one script per batch size, one trip to the database thread, one
// transaction. Per signup: the upsert, then the token and the email, both
// written only for a pending reader still under the daily cap.
fn sqlite_script(signups: usize) -> &'static str {
    static SCRIPTS: OnceLock<Vec<String>> = OnceLock::new();
    let scripts = SCRIPTS.get_or_init(|| {
        (0..=SQLITE_MAX_BATCH)
            .map(|n| {
                let mut sql = String::from(SQLITE_BEGIN);
                for i in 0..n {
                    let p = |k: usize| format!("${}", 5 + i * 10 + k);
                    let (id, email, key, name, ip, source) = (p(0), p(1), p(2), p(3), p(4), p(5));
                    let (hash, mail_id, token, unsubscribe) = (p(6), p(7), p(8), p(9));
                    sql.push_str(&format!(
                        "INSERT INTO subscribers (id, email, email_key, name, status, signup_ip, signup_source,
                             created_at, signed_up_at, mail_window_started_at, mails_in_window, unsubscribe_secret)
                         VALUES ({id}, {email}, {key}, {name}, 'pending', {ip}, {source}, $1, $1, $1, 1, {unsubscribe})
                         {conflict};
                         INSERT INTO confirmation_tokens (token_hash, subscriber_id, created_at, expires_at)
                         SELECT {hash}, id, $1, $3 FROM subscribers
                         WHERE email_key = {key} AND status = 'pending' AND mails_in_window <= $4;
                         INSERT INTO outgoing_mail (id, kind, subscriber_id, recipient, recipient_name, token,
                             status, attempts, next_attempt_at, created_at)
                         SELECT {mail_id}, 'confirmation', id, email, name, {token}, 'queued', 0, $1, $1
                         FROM subscribers
                         WHERE email_key = {key} AND status = 'pending' AND mails_in_window <= $4;",
                        conflict = on_conflict_sql!(),
                    ));
                }
                sql.push_str(SQLITE_COMMIT);
                sql
            })
            .collect()
    });
    &scripts[signups]
}

// PostgreSQL: a whole batch in one statement (one round trip, one implicit
// transaction): the signups arrive as arrays, and data-modifying CTEs write
// the three tables. Rows go in email order, so concurrent batches lock
// subscribers in one order and cannot deadlock. A batch must not hold one
// address twice (ON CONFLICT cannot touch a row twice in one statement).
const RECORD_SIGNUPS_POSTGRES: &str = concat!(
    "WITH input AS (
        SELECT * FROM UNNEST($5::uuid[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                             $11::bytea[], $12::uuid[], $13::text[], $14::bytea[])
            AS i(id, email, email_key, name, ip, source, token_hash, mail_id, token, unsubscribe_secret)
    ), subscriber AS (
        INSERT INTO subscribers (id, email, email_key, name, status, signup_ip, signup_source,
                                 created_at, signed_up_at, mail_window_started_at, mails_in_window, unsubscribe_secret)
        SELECT id, email, email_key, name, 'pending', ip, source, $1, $1, $1, 1, unsubscribe_secret
        FROM input ORDER BY email_key",
    on_conflict_sql!(),
    " RETURNING id, email_key, email, name, status, mails_in_window
    ), token AS (
        INSERT INTO confirmation_tokens (token_hash, subscriber_id, created_at, expires_at)
        SELECT i.token_hash, s.id, $1, $3 FROM subscriber s JOIN input i USING (email_key)
        WHERE s.status = 'pending' AND s.mails_in_window <= $4
        RETURNING token_hash, subscriber_id
    )
    INSERT INTO outgoing_mail (id, kind, subscriber_id, recipient, recipient_name, token,
                               status, attempts, next_attempt_at, created_at)
    SELECT i.mail_id, 'confirmation', s.id, s.email, s.name, i.token, 'queued', 0, $1, $1
    FROM token t JOIN input i USING (token_hash) JOIN subscriber s ON s.id = t.subscriber_id"
);

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

/// Records a batch of signups in one transaction: new readers, or a new
/// consent record and a new confirmation link for pending ones; confirmed
/// readers are left alone. Each link's email is queued in the same
/// transaction, so a reader is never recorded without their email.
///
/// With `policy.confirmations_per_hour` set, only as many signups as the
/// hour's cap leaves room for are written, in the batch's order; the rest
/// are refused whole (see [`Admission`]).
pub async fn record_signups(
    db: &Db,
    signups: &[SignupRow],
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
    match db {
        Db::Sqlite(pool) => {
            let mut conn = pool.acquire().await?;
            if cap == 0 {
                for chunk in signups.chunks(SQLITE_MAX_BATCH) {
                    let script = sqlite_script(chunk.len());
                    if let Err(e) = sqlite_signups(&mut conn, script, chunk, policy, now).await {
                        // A failed statement leaves the script's transaction open.
                        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                        return Err(e);
                    }
                }
                return Ok(everyone);
            }
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
            let written = async {
                let admission = admit!(conn, signups.len(), cap, now);
                for chunk in signups[..admission.admitted].chunks(SQLITE_MAX_BATCH) {
                    let script = sqlite_script(chunk.len());
                    let body = &script[SQLITE_BEGIN.len()..script.len() - SQLITE_COMMIT.len()];
                    sqlite_signups(&mut conn, body, chunk, policy, now).await?;
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
                postgres_signups(pool, signups, policy, now).await?;
                return Ok(everyone);
            }
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(CONFIRMATION_CAP_LOCK_KEY)
                .execute(&mut *tx)
                .await?;
            let admission = admit!(tx, signups.len(), cap, now);
            if admission.admitted > 0 {
                postgres_signups(&mut *tx, &signups[..admission.admitted], policy, now).await?;
            }
            tx.commit().await?;
            Ok(admission)
        }
    }
}

/// Runs one SQLite script (or its body, inside a transaction already
/// open) for a chunk of at most [`SQLITE_MAX_BATCH`] signups.
async fn sqlite_signups(
    conn: &mut sqlx::SqliteConnection,
    sql: &'static str,
    chunk: &[SignupRow],
    policy: SignupPolicy,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mail_cap = i32::try_from(policy.mails_per_day).unwrap_or(i32::MAX);
    let mut query = sqlx::query(sql)
        .bind(now)
        .bind(now - Duration::hours(24))
        .bind(now + policy.token_ttl)
        .bind(mail_cap);
    for s in chunk {
        query = query
            .bind(s.subscriber_id)
            .bind(&s.email)
            .bind(&s.email_key)
            .bind(&s.name)
            .bind(s.ip.as_deref())
            .bind(&s.source)
            .bind(&s.token_hash)
            .bind(s.mail_id)
            .bind(s.token.as_str())
            .bind(&s.unsubscribe_secret);
    }
    query.execute(&mut *conn).await.map(|_| ())
}

async fn postgres_signups<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    signups: &[SignupRow],
    policy: SignupPolicy,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mail_cap = i32::try_from(policy.mails_per_day).unwrap_or(i32::MAX);
    let mut sorted: Vec<&SignupRow> = signups.iter().collect();
    sorted.sort_by(|a, b| a.email_key.cmp(&b.email_key));
    let column = |f: fn(&SignupRow) -> String| sorted.iter().map(|s| f(s)).collect::<Vec<_>>();
    sqlx::query(RECORD_SIGNUPS_POSTGRES)
        .bind(now)
        .bind(now - Duration::hours(24))
        .bind(now + policy.token_ttl)
        .bind(mail_cap)
        .bind(sorted.iter().map(|s| s.subscriber_id).collect::<Vec<_>>())
        .bind(column(|s| s.email.clone()))
        .bind(column(|s| s.email_key.clone()))
        .bind(column(|s| s.name.clone()))
        .bind(sorted.iter().map(|s| s.ip.clone()).collect::<Vec<_>>())
        .bind(column(|s| s.source.clone()))
        .bind(sorted.iter().map(|s| s.token_hash.clone()).collect::<Vec<_>>())
        .bind(sorted.iter().map(|s| s.mail_id).collect::<Vec<_>>())
        .bind(column(|s| s.token.as_str().to_owned()))
        .bind(sorted.iter().map(|s| s.unsubscribe_secret.clone()).collect::<Vec<_>>())
        .execute(executor)
        .await
        .map(|_| ())
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

/// Unsubscribes the reader behind the link; repeating it changes nothing.
/// `None` when no reader has this link.
pub async fn unsubscribe(
    db: &Db,
    token: &UnsubscribeToken,
    now: DateTime<Utc>,
) -> Result<Option<LinkedReader>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query(
            "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = $3
             WHERE id = $1 AND unsubscribe_secret = $2 AND status <> 'unsubscribed'",
        )
        .bind(token.subscriber_id())
        .bind(token.secret())
        .bind(now)
        .execute(pool)
        .await?;
    });
    find_by_unsubscribe_token(db, token).await
}

/// Marks a reader whose address bounced for good (`$1`), so later issues
/// skip them. A reader who unsubscribed meanwhile stays unsubscribed. Run
/// in the transaction that records the message's failure, so nobody sees
/// the one without the other.
pub(crate) const MARK_BOUNCED: &str =
    "UPDATE subscribers SET status = 'bounced' WHERE id = $1 AND status IN ('pending', 'confirmed')";

/// [`MARK_BOUNCED`] for several readers at once (`$1` an array; PostgreSQL).
pub(crate) const MARK_BOUNCED_MANY: &str =
    "UPDATE subscribers SET status = 'bounced' WHERE id = ANY($1) AND status IN ('pending', 'confirmed')";
