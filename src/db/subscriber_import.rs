//! Subscribers in bulk: the batched writes of an import, and the streamed
//! read of an export. Each batch is one transaction: a failure leaves the
//! batches before it written and nothing of its own.

use chrono::{DateTime, Duration, Utc};
use futures_util::stream::BoxStream;
use uuid::Uuid;

use crate::db::Db;
use crate::domain::{SubscriberEmail, SubscriberName, SubscriberStatus, Token, UnsubscribeToken};

/// Whether imported readers still have to confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// Each new reader is pending and gets a confirmation email, exactly as
    /// after a signup on the web form.
    OptIn,
    /// The readers consented elsewhere: new ones are added confirmed, and
    /// pending ones are confirmed.
    ConfirmedElsewhere,
}

impl Consent {
    /// The consent record's source, kept in `subscribers.signup_source`.
    pub fn source(self) -> &'static str {
        match self {
            Consent::OptIn => "import",
            Consent::ConfirmedElsewhere => "import --confirmed",
        }
    }
}

/// A reader to add, ready to be written, with their confirmation link's
/// token when they must opt in.
#[derive(Debug, Clone)]
pub struct ImportedReader {
    id: Uuid,
    email: String,
    email_key: String,
    name: String,
    unsubscribe_secret: Vec<u8>,
    opt_in: Option<OptIn>,
}

#[derive(Debug, Clone)]
struct OptIn {
    token: Token,
    token_hash: Vec<u8>,
    mail_id: Uuid,
}

impl ImportedReader {
    pub fn new(email: &SubscriberEmail, name: &SubscriberName, consent: Consent) -> Self {
        let id = Uuid::now_v7();
        let opt_in = (consent == Consent::OptIn).then(|| {
            let token = Token::generate();
            OptIn {
                token_hash: token.hash(),
                token,
                mail_id: Uuid::now_v7(),
            }
        });
        Self {
            id,
            email: email.as_str().to_owned(),
            email_key: email.dedupe_key(),
            name: name.as_str().to_owned(),
            unsubscribe_secret: UnsubscribeToken::generate(id).secret().to_vec(),
            opt_in,
        }
    }

    pub fn email_key(&self) -> &str {
        &self.email_key
    }
}

/// What one batch changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    /// New readers written.
    pub added: u64,
    /// Pending readers confirmed ([`Consent::ConfirmedElsewhere`] only).
    pub confirmed: u64,
}

/// Rows per SQLite statement: 12 parameters each, under SQLite's limit of
/// 32 766 per statement.
const SQLITE_ROWS_PER_STATEMENT: usize = 2_000;

const SQLITE_BULK_PRAGMAS: &str = "PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32768";

// SQLite: one row's values, in the order of the columns.
const SQLITE_INSERT: &str = "INSERT INTO subscribers (id, email, email_key, name, unsubscribe_secret, status,
    signup_source, created_at, signed_up_at, confirmed_at, mail_window_started_at, mails_in_window) VALUES";

// SQLite: binds now, now, the source, then the keys in parentheses.
const SQLITE_CONFIRM_PENDING: &str = "UPDATE subscribers SET status = 'confirmed', confirmed_at = ?, signed_up_at = ?,
    signup_source = ?, signup_ip = NULL WHERE status = 'pending' AND email_key IN";

// PostgreSQL: binds `$1` now, `$2` the source, `$3` the keys.
const CONFIRM_PENDING_POSTGRES: &str = "UPDATE subscribers SET status = 'confirmed', confirmed_at = $1,
    signed_up_at = $1, signup_source = $2, signup_ip = NULL
    WHERE status = 'pending' AND email_key = ANY($3::text[])";

macro_rules! insert_postgres {
    () => {
        "INSERT INTO subscribers (created_at, status, signup_source, confirmed_at, signed_up_at, mails_in_window,
                                  id, email, email_key, name, unsubscribe_secret, mail_window_started_at)
         SELECT $1, $2, $3, $4, $1, $5, i.id, i.email, i.email_key, i.name, i.unsubscribe_secret, $1
         FROM UNNEST($6::uuid[], $7::text[], $8::text[], $9::text[], $10::bytea[])
             AS i(id, email, email_key, name, unsubscribe_secret)
         ON CONFLICT (email_key) DO NOTHING
         RETURNING id"
    };
}

const INSERT_CONFIRMED_POSTGRES: &str = concat!("WITH added AS (", insert_postgres!(), ") SELECT COUNT(*) FROM added");

// The new readers, then a token and a queued email for each one added;
// data-modifying CTEs, so one round trip.
const INSERT_OPT_IN_POSTGRES: &str = concat!(
    "WITH added AS (",
    insert_postgres!(),
    "), input AS (
        SELECT * FROM UNNEST($6::uuid[], $7::text[], $9::text[], $12::bytea[], $13::uuid[], $14::text[])
            AS i(id, email, name, token_hash, mail_id, token)
    ), token AS (
        INSERT INTO confirmation_tokens (token_hash, subscriber_id, created_at, expires_at)
        SELECT i.token_hash, i.id, $1, $11 FROM input i JOIN added a ON a.id = i.id
        RETURNING subscriber_id
    ), mail AS (
        INSERT INTO outgoing_mail (id, kind, subscriber_id, recipient, recipient_name, token,
                                   status, attempts, next_attempt_at, created_at)
        SELECT i.mail_id, 'confirmation', i.id, i.email, i.name, i.token, 'queued', 0, $1, $1
        FROM input i JOIN token t ON t.subscriber_id = i.id
    )
    SELECT COUNT(*) FROM added"
);

/// Writes one batch in one transaction. Readers whose address is already
/// on the list are left as they are (a confirmed reader is never touched,
/// an unsubscribed one never re-subscribed), except that
/// [`Consent::ConfirmedElsewhere`] confirms pending ones. New opt-in
/// readers get a confirmation token (valid for `token_ttl`) and a queued
/// confirmation email in the same transaction. The batch must not hold
/// one address twice.
pub async fn write_batch(
    db: &Db,
    readers: &[ImportedReader],
    consent: Consent,
    token_ttl: Duration,
    now: DateTime<Utc>,
) -> Result<BatchOutcome, sqlx::Error> {
    if readers.is_empty() {
        return Ok(BatchOutcome::default());
    }
    let expires_at = now + token_ttl;
    let source = consent.source();
    let (status, confirmed_at, mails_in_window) = match consent {
        Consent::OptIn => ("pending", None, 1),
        Consent::ConfirmedElsewhere => ("confirmed", Some(now), 0),
    };
    let mut outcome = BatchOutcome::default();
    match db {
        Db::Sqlite(pool) => {
            // Anonymous `?` parameters only: sqlx looks up the name of every
            // numbered one (`$7`) with a linear search in SQLite, which makes
            // a statement of n parameters cost O(n²) to bind.
            //
            // Each multi-row statement keeps a journal of its own, to undo
            // it alone: in memory, not in a temporary file. A larger page
            // cache keeps the random-order indexes (email_key, token_hash)
            // from being re-read on every batch. Both are per connection.
            let mut conn = pool.acquire().await?;
            sqlx::query(SQLITE_BULK_PRAGMAS).execute(&mut *conn).await?;
            let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
            for chunk in readers.chunks(SQLITE_ROWS_PER_STATEMENT) {
                if consent == Consent::ConfirmedElsewhere {
                    let sql = format!("{SQLITE_CONFIRM_PENDING} ({})", anonymous(chunk.len(), 1));
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(now).bind(source);
                    for r in chunk {
                        query = query.bind(&r.email_key);
                    }
                    outcome.confirmed += query.execute(&mut *tx).await?.rows_affected();
                }
                let sql = format!(
                    "{SQLITE_INSERT} {} ON CONFLICT (email_key) DO NOTHING",
                    anonymous(chunk.len(), 12)
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for r in chunk {
                    query = query
                        .bind(r.id)
                        .bind(&r.email)
                        .bind(&r.email_key)
                        .bind(&r.name)
                        .bind(&r.unsubscribe_secret)
                        .bind(status)
                        .bind(source)
                        .bind(now)
                        .bind(now)
                        .bind(confirmed_at)
                        .bind(now)
                        .bind(mails_in_window);
                }
                outcome.added += query.execute(&mut *tx).await?.rows_affected();
                if consent == Consent::OptIn {
                    // Only readers this batch added have these ids.
                    let sql = format!(
                        "INSERT INTO confirmation_tokens (token_hash, subscriber_id, created_at, expires_at)
                         SELECT v.column1, v.column2, ?, ? FROM (VALUES {}) AS v
                         JOIN subscribers s ON s.id = v.column2",
                        anonymous(chunk.len(), 2)
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(expires_at);
                    for (r, opt_in) in opt_ins(chunk) {
                        query = query.bind(&opt_in.token_hash).bind(r.id);
                    }
                    query.execute(&mut *tx).await?;
                    let sql = format!(
                        "INSERT INTO outgoing_mail (id, kind, subscriber_id, recipient, recipient_name, token,
                                                    status, attempts, next_attempt_at, created_at)
                         SELECT v.column1, 'confirmation', s.id, s.email, s.name, v.column3, 'queued', 0, ?, ?
                         FROM (VALUES {}) AS v JOIN subscribers s ON s.id = v.column2",
                        anonymous(chunk.len(), 3)
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(now);
                    for (r, opt_in) in opt_ins(chunk) {
                        query = query.bind(opt_in.mail_id).bind(r.id).bind(opt_in.token.as_str());
                    }
                    query.execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
        }
        Db::Postgres(pool) => {
            // Rows go in address order, so a batch and concurrent signups
            // lock subscribers in one order.
            let mut sorted: Vec<&ImportedReader> = readers.iter().collect();
            sorted.sort_by(|a, b| a.email_key.cmp(&b.email_key));
            let ids: Vec<Uuid> = sorted.iter().map(|r| r.id).collect();
            let emails: Vec<&str> = sorted.iter().map(|r| r.email.as_str()).collect();
            let keys: Vec<&str> = sorted.iter().map(|r| r.email_key.as_str()).collect();
            let names: Vec<&str> = sorted.iter().map(|r| r.name.as_str()).collect();
            let secrets: Vec<&[u8]> = sorted.iter().map(|r| r.unsubscribe_secret.as_slice()).collect();
            let mut tx = pool.begin().await?;
            if consent == Consent::ConfirmedElsewhere {
                outcome.confirmed = sqlx::query(CONFIRM_PENDING_POSTGRES)
                    .bind(now)
                    .bind(source)
                    .bind(&keys)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            let added: i64 = match consent {
                Consent::ConfirmedElsewhere => {
                    sqlx::query_scalar(INSERT_CONFIRMED_POSTGRES)
                        .bind(now)
                        .bind(status)
                        .bind(source)
                        .bind(confirmed_at)
                        .bind(mails_in_window)
                        .bind(&ids)
                        .bind(&emails)
                        .bind(&keys)
                        .bind(&names)
                        .bind(&secrets)
                        .fetch_one(&mut *tx)
                        .await?
                }
                Consent::OptIn => {
                    let opt_ins: Vec<&OptIn> = sorted.iter().filter_map(|r| r.opt_in.as_ref()).collect();
                    sqlx::query_scalar(INSERT_OPT_IN_POSTGRES)
                        .bind(now)
                        .bind(status)
                        .bind(source)
                        .bind(confirmed_at)
                        .bind(mails_in_window)
                        .bind(&ids)
                        .bind(&emails)
                        .bind(&keys)
                        .bind(&names)
                        .bind(&secrets)
                        .bind(expires_at)
                        .bind(opt_ins.iter().map(|o| o.token_hash.as_slice()).collect::<Vec<_>>())
                        .bind(opt_ins.iter().map(|o| o.mail_id).collect::<Vec<_>>())
                        .bind(opt_ins.iter().map(|o| o.token.as_str()).collect::<Vec<_>>())
                        .fetch_one(&mut *tx)
                        .await?
                }
            };
            tx.commit().await?;
            outcome.added = u64::try_from(added).unwrap_or(0);
        }
    }
    Ok(outcome)
}

fn opt_ins(chunk: &[ImportedReader]) -> impl Iterator<Item = (&ImportedReader, &OptIn)> {
    chunk.iter().filter_map(|r| r.opt_in.as_ref().map(|o| (r, o)))
}

/// `(?, ?, …), (?, ?, …), …`: `rows` groups of `per_row` placeholders.
fn anonymous(rows: usize, per_row: usize) -> String {
    let row = format!("({})", vec!["?"; per_row].join(", "));
    vec![row.as_str(); rows].join(", ")
}

/// One reader as an export lists them.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ExportedSubscriber {
    pub email: String,
    pub name: String,
    pub status: String,
    pub signup_source: String,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
}

/// Every subscriber (or those with `status`), in address order, streamed
/// from the database rather than collected. Erased readers are left out:
/// nothing of them is left to export.
pub fn export(db: &Db, status: Option<SubscriberStatus>) -> BoxStream<'_, Result<ExportedSubscriber, sqlx::Error>> {
    const ALL: &str = concat!(
        "SELECT email, name, status, signup_source, created_at, confirmed_at, unsubscribed_at FROM subscribers",
        " WHERE erased_at IS NULL ORDER BY email_key"
    );
    const WITH_STATUS: &str = concat!(
        "SELECT email, name, status, signup_source, created_at, confirmed_at, unsubscribed_at FROM subscribers",
        " WHERE status = $1 AND erased_at IS NULL ORDER BY email_key"
    );
    match (db, status) {
        (Db::Sqlite(pool), None) => sqlx::query_as(ALL).fetch(pool),
        (Db::Postgres(pool), None) => sqlx::query_as(ALL).fetch(pool),
        (Db::Sqlite(pool), Some(status)) => sqlx::query_as(WITH_STATUS).bind(status.as_str()).fetch(pool),
        (Db::Postgres(pool), Some(status)) => sqlx::query_as(WITH_STATUS).bind(status.as_str()).fetch(pool),
    }
}
