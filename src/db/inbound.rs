//! Inbound mail as it arrived (`inbound_messages`), and the shared key of
//! the return-path addresses (`app_secrets`).

use chrono::{DateTime, Utc};
use rand::RngCore;
use uuid::Uuid;

use crate::db::Db;
use crate::domain::{InboundSource, InboundStatus, WebhookEvent};
use crate::with_pool;

/// A message as it came in, before anything reads it.
#[derive(Debug, Clone)]
pub struct NewInbound<'a> {
    pub source: InboundSource,
    /// Says "this is the same message" across deliveries of it (an IMAP
    /// message's mailbox, UIDVALIDITY and UID; a provider's event id); a
    /// second arrival with the same key is not stored again.
    pub dedupe_key: Option<&'a str>,
    /// The envelope recipients, where the source knows them.
    pub envelope_to: &'a [String],
    pub raw: &'a [u8],
    pub received_at: DateTime<Utc>,
}

/// What [`store`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New(Uuid),
    /// The dedupe key was stored before, as this row.
    Duplicate(Uuid),
}

impl Stored {
    pub fn id(self) -> Uuid {
        match self {
            Self::New(id) | Self::Duplicate(id) => id,
        }
    }
}

const INSERT: &str = "INSERT INTO inbound_messages (id, received_at, source, dedupe_key, envelope_to, raw, status)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (dedupe_key) DO NOTHING";

/// Stores `message` with status `received`, unless its dedupe key is known.
pub async fn store(db: &Db, message: &NewInbound<'_>) -> Result<Stored, sqlx::Error> {
    let id = Uuid::now_v7();
    let inserted = with_pool!(db, pool => sqlx::query(INSERT)
        .bind(id)
        .bind(message.received_at)
        .bind(message.source)
        .bind(message.dedupe_key)
        .bind(message.envelope_to.join("\n"))
        .bind(message.raw)
        .bind(InboundStatus::Received)
        .execute(pool)
        .await?
        .rows_affected());
    if inserted == 1 {
        return Ok(Stored::New(id));
    }
    let existing: (Uuid,) = with_pool!(db, pool => sqlx::query_as("SELECT id FROM inbound_messages WHERE dedupe_key = $1")
        .bind(message.dedupe_key)
        .fetch_one(pool)
        .await?);
    Ok(Stored::Duplicate(existing.0))
}

/// A stored message, to be read.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredInbound {
    pub id: Uuid,
    pub source: InboundSource,
    pub envelope_to: String,
    pub raw: Vec<u8>,
    pub received_at: DateTime<Utc>,
}

impl StoredInbound {
    pub fn envelope_recipients(&self) -> Vec<String> {
        self.envelope_to
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

pub async fn load(db: &Db, id: Uuid) -> Result<Option<StoredInbound>, sqlx::Error> {
    with_pool!(db, pool => sqlx::query_as(
        "SELECT id, source, envelope_to, raw, received_at FROM inbound_messages WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await)
}

/// The ids of messages stored but not read yet, oldest first (ids are
/// UUIDv7, so in the order they were stored), after `after` when given: a
/// caller walks them once, and a message whose reading keeps failing is
/// not read again and again.
pub async fn received(db: &Db, after: Option<Uuid>, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    // The nil UUID sorts before every id (a typed bind, where `$2 IS NULL`
    // would leave PostgreSQL unable to tell the parameter's type).
    let rows: Vec<(Uuid,)> = with_pool!(db, pool => sqlx::query_as(
        "SELECT id FROM inbound_messages WHERE status = $1 AND id > $2 ORDER BY id LIMIT $3")
        .bind(InboundStatus::Received)
        .bind(after.unwrap_or(Uuid::nil()))
        .bind(limit)
        .fetch_all(pool)
        .await?);
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

const RETURN_PATH_SECRET: &str = "return_path";

/// The HMAC key of the return-path addresses (`mail::verp`): made by the
/// first process that asks and read by every other, so workers and the
/// inbound listener on any machine agree on it.
pub async fn return_path_secret(db: &Db) -> Result<Vec<u8>, sqlx::Error> {
    let mut fresh = [0u8; 32];
    rand::rng().fill_bytes(&mut fresh);
    with_pool!(db, pool => {
        sqlx::query("INSERT INTO app_secrets (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(RETURN_PATH_SECRET)
            .bind(&fresh[..])
            .execute(pool)
            .await?;
        sqlx::query_scalar(SECRET).bind(RETURN_PATH_SECRET).fetch_one(pool).await
    })
}

/// The return-path key if a process made it already; makes none (nothing
/// was sent with a return path before it exists).
pub async fn existing_return_path_secret(db: &Db) -> Result<Option<Vec<u8>>, sqlx::Error> {
    with_pool!(db, pool => sqlx::query_scalar(SECRET).bind(RETURN_PATH_SECRET).fetch_optional(pool).await)
}

const SECRET: &str = "SELECT secret FROM app_secrets WHERE name = $1";

// ---------------------------------------------------------------------------
// Applying a reading (`inbound::apply`): one transaction per message.

/// Who a message names, as the pipeline found it in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderKey {
    /// The reader's unsubscribe token: their id and link secret.
    Token {
        subscriber: Uuid,
        secret: Vec<u8>,
    },
    /// A reader's copy of the issue of `week` (`2026-W48`).
    Digest {
        subscriber: Uuid,
        week: String,
    },
    /// A transactional message (`outgoing_mail`), by its id.
    Mail(Uuid),
    /// An address, by its key (`subscribers.email_key`).
    Address(String),
    Nobody,
}

/// A reader as the transaction found them (locked on PostgreSQL).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Reader {
    pub id: Uuid,
    pub status: crate::domain::SubscriberStatus,
    /// As the reader wrote it (a placeholder once erased).
    pub email: String,
    pub email_key: String,
    pub complained: bool,
    pub erased: bool,
}

/// A reader's copy of an issue that was handed to the relay.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SentCopy {
    pub issue_id: Uuid,
    pub sent_at: DateTime<Utc>,
    /// A soft or hard bounce about this copy is on record.
    pub bounced: bool,
}

/// What a soft bounce is counted against: the reader's earlier soft
/// bounces and the copies sent to them since a moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SoftHistory {
    /// When the earlier soft bounces (not this one) were received.
    pub bounces: Vec<DateTime<Utc>>,
    pub copies: Vec<SentCopy>,
}

/// What the transaction found before anything is decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub reader: Option<Reader>,
    /// The issue the message is about: named by the return path, or, for a
    /// reader found by address, the last issue handed to the relay for them.
    pub issue_id: Option<Uuid>,
    /// Only for a soft bounce with a reader.
    pub soft: Option<SoftHistory>,
}

/// What a decision does to the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderChange {
    Nothing,
    /// `bounced`, from pending or confirmed.
    Bounce,
    /// `unsubscribed` (by their unsubscribe address).
    Unsubscribe,
    /// `unsubscribed` and `complained_at`.
    Complain,
}

/// The decision for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub status: InboundStatus,
    pub change: ReaderChange,
    pub event: Option<(crate::db::subscriber_events::EventKind, String)>,
}

/// The reading of a message, as it is stored on its row.
#[derive(Debug, Clone)]
pub struct Reading<'a> {
    pub kind: crate::domain::InboundKind,
    pub reason: &'a str,
    pub recipient: Option<&'a str>,
    pub status_code: Option<&'a str>,
    pub diagnostic: Option<&'a str>,
}

/// Marks the row as being read; nothing when it was read already (by
/// another process, or a second `process` of the same id). The write comes
/// first so SQLite takes its write lock before any read, and PostgreSQL
/// holds the row until the transaction ends.
const START: &str = "UPDATE inbound_messages SET processed_at = $2 WHERE id = $1 AND status = 'received'";

macro_rules! reader_sql {
    ($where:literal) => {
        [
            concat!(
                "SELECT id, status, email, email_key, complained_at IS NOT NULL AS complained,
                        erased_at IS NOT NULL AS erased
                 FROM subscribers ",
                $where
            ),
            concat!(
                "SELECT id, status, email, email_key, complained_at IS NOT NULL AS complained,
                        erased_at IS NOT NULL AS erased
                 FROM subscribers ",
                $where,
                " FOR UPDATE"
            ),
        ]
    };
}

const READER_BY_TOKEN: [&str; 2] = reader_sql!("WHERE id = $1 AND unsubscribe_secret = $2");
const READER_BY_ID: [&str; 2] = reader_sql!("WHERE id = $1");
const READER_BY_ADDRESS: [&str; 2] = reader_sql!("WHERE email_key = $1 AND erased_at IS NULL");
const ISSUE_OF_WEEK: &str = "SELECT id FROM issues WHERE week = $1";
// The link to confirm a new address goes to that address, not the
// reader's: its bounce says nothing about the reader.
const MAIL_READER: &str = "SELECT subscriber_id FROM outgoing_mail WHERE id = $1 AND kind <> 'address_change'";
const EARLIER_SOFT_BOUNCES: &str = "SELECT received_at FROM inbound_messages
     WHERE subscriber_id = $1 AND kind = 'soft' AND received_at > $2 AND id <> $3";
// A reader's copies (the last, and those of the soft-bounce window) are
// found through the issues, one key lookup each (the key is issue, then
// reader): deliveries has no index by reader alone, since every index on it
// costs every copy sent an entry, and reading it by reader scanned the
// whole table (2.0 s a bounce at 10 M rows, 0.4 ms this way; BENCHMARKS.md).
// There are a few dozen issues a year. `CROSS JOIN` makes SQLite loop over
// the issues; PostgreSQL's planner does so by itself.
const LAST_COPY: &str = "SELECT d.issue_id FROM issues i CROSS JOIN deliveries d
     WHERE d.issue_id = i.id AND d.subscriber_id = $1 AND d.status = 'sent' AND d.sent_at <= $2
     ORDER BY d.sent_at DESC LIMIT 1";
const SENT_COPIES: &str = "SELECT d.issue_id, d.sent_at,
            EXISTS (SELECT 1 FROM inbound_messages m
                    WHERE m.subscriber_id = d.subscriber_id AND m.issue_id = d.issue_id
                      AND m.kind IN ('soft', 'hard')) AS bounced
     FROM issues i CROSS JOIN deliveries d
     WHERE d.issue_id = i.id AND d.subscriber_id = $1 AND d.status = 'sent' AND d.sent_at > $2";
const UNSUBSCRIBE: &str = "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = $2
     WHERE id = $1 AND status <> 'unsubscribed' AND erased_at IS NULL";
const COMPLAIN: &str = "UPDATE subscribers
     SET unsubscribed_at = CASE WHEN status = 'unsubscribed' THEN unsubscribed_at ELSE $2 END,
         status = 'unsubscribed', complained_at = COALESCE(complained_at, $2)
     WHERE id = $1";
const FINISH: &str = "UPDATE inbound_messages
     SET status = $2, kind = $3, reason = $4, recipient = $5, recipient_domain = $6, status_code = $7,
         diagnostic = $8, subscriber_id = $9, issue_id = $10, processed_at = $11
     WHERE id = $1";

/// The domain policy blocks are counted under: the failed recipient's,
/// else the reader's.
fn receiving_domain(recipient: Option<&str>, reader: Option<&Reader>) -> Option<String> {
    let from = |address: &str| {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        address
            .rsplit_once('@')
            .map(|(_, domain)| domain.trim().to_ascii_lowercase())
            .filter(|d| !d.is_empty() && d.len() <= 255)
    };
    recipient
        .and_then(from)
        .or_else(|| reader.and_then(|r| from(&r.email_key)))
}

/// The reader `key` names, and the issue the message is about (named by
/// the return path, or, for a reader found by address, the last issue
/// handed to the relay for them before `now`): one lookup for applying a
/// message (in its transaction, rows locked) and for looking only
/// ([`named_reader`]). A macro because the two run on different executors
/// of each backend's own connection type.
macro_rules! find_reader {
    ($conn:expr, $reader_sql:expr, $key:expr, $now:expr) => {{
        let mut issue_id: Option<Uuid> = None;
        let reader: Option<Reader> = match $key {
            ReaderKey::Token { subscriber, secret } => {
                sqlx::query_as($reader_sql(&READER_BY_TOKEN))
                    .bind(subscriber)
                    .bind(secret)
                    .fetch_optional($conn)
                    .await?
            }
            ReaderKey::Digest { subscriber, week } => {
                issue_id = sqlx::query_scalar(ISSUE_OF_WEEK)
                    .bind(week)
                    .fetch_optional($conn)
                    .await?;
                sqlx::query_as($reader_sql(&READER_BY_ID))
                    .bind(subscriber)
                    .fetch_optional($conn)
                    .await?
            }
            ReaderKey::Mail(mail) => {
                let subscriber: Option<Option<Uuid>> =
                    sqlx::query_scalar(MAIL_READER).bind(mail).fetch_optional($conn).await?;
                match subscriber.flatten() {
                    Some(subscriber) => {
                        sqlx::query_as($reader_sql(&READER_BY_ID))
                            .bind(subscriber)
                            .fetch_optional($conn)
                            .await?
                    }
                    None => None,
                }
            }
            ReaderKey::Address(email_key) => {
                let reader: Option<Reader> = sqlx::query_as($reader_sql(&READER_BY_ADDRESS))
                    .bind(email_key)
                    .fetch_optional($conn)
                    .await?;
                if let Some(reader) = &reader {
                    issue_id = sqlx::query_scalar(LAST_COPY)
                        .bind(reader.id)
                        .bind($now)
                        .fetch_optional($conn)
                        .await?;
                }
                reader
            }
            ReaderKey::Nobody => None,
        };
        (reader, issue_id)
    }};
}

/// The reader `key` names, as [`apply_reading`] would find them, changing
/// nothing (`gazette inbound classify`).
pub async fn named_reader(db: &Db, key: &ReaderKey) -> Result<Option<Reader>, sqlx::Error> {
    let without_lock = |pair: &[&'static str; 2]| pair[0];
    let now = Utc::now();
    with_pool!(db, pool => {
        let (reader, _issue) = find_reader!(pool, without_lock, key, now);
        Ok(reader)
    })
}

/// Reads message `id` as `reading` says, in one transaction: finds the
/// reader `key` names, asks `decide` what to do (with the reader's soft
/// bounces since `soft_since`, when that is given and there is a reader),
/// changes the reader, records the event, and stores the status and
/// reading on the row. `None` when the row was read already: nothing is
/// done twice.
pub async fn apply_reading(
    db: &Db,
    id: Uuid,
    key: &ReaderKey,
    reading: &Reading<'_>,
    soft_since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    decide: impl Fn(&Found) -> Decision,
) -> Result<Option<(Found, Decision)>, sqlx::Error> {
    use crate::db::{subscriber_events, subscribers};
    let reader_sql = |pair: &[&'static str; 2]| db.pick(pair);
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let started = sqlx::query(START).bind(id).bind(now).execute(&mut *tx).await?.rows_affected();
        if started == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let (reader, issue_id) = find_reader!(&mut *tx, reader_sql, key, now);
        let soft = match (&reader, soft_since) {
            (Some(reader), Some(since)) => Some(SoftHistory {
                bounces: sqlx::query_scalar(EARLIER_SOFT_BOUNCES)
                    .bind(reader.id)
                    .bind(since)
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?,
                copies: sqlx::query_as(SENT_COPIES).bind(reader.id).bind(since).fetch_all(&mut *tx).await?,
            }),
            _ => None,
        };
        let found = Found { reader, issue_id, soft };
        let decision = decide(&found);
        if let Some(reader) = &found.reader {
            let statement = match decision.change {
                ReaderChange::Nothing => None,
                ReaderChange::Bounce => Some(subscribers::MARK_BOUNCED),
                ReaderChange::Unsubscribe => Some(UNSUBSCRIBE),
                ReaderChange::Complain => Some(COMPLAIN),
            };
            if let Some(statement) = statement {
                let query = sqlx::query(statement).bind(reader.id);
                let query = if decision.change == ReaderChange::Bounce { query } else { query.bind(now) };
                let changed = query.execute(&mut *tx).await?.rows_affected();
                let event = match decision.change {
                    ReaderChange::Bounce => Some(WebhookEvent::SubscriberBounced),
                    ReaderChange::Unsubscribe => Some(WebhookEvent::SubscriberUnsubscribed),
                    ReaderChange::Complain => Some(WebhookEvent::SubscriberComplained),
                    ReaderChange::Nothing => None,
                };
                if let (Some(event), 1) = (event, changed) {
                    crate::db::webhooks::record_webhook!(&mut *tx, event, reader.id, now)?;
                }
            }
            if let Some((kind, detail)) = &decision.event {
                sqlx::query(subscriber_events::INSERT)
                    .bind(Uuid::now_v7())
                    .bind(reader.id)
                    .bind(now)
                    .bind(kind.as_str())
                    .bind(detail)
                    .bind(id)
                    .bind(found.issue_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query(FINISH)
            .bind(id)
            .bind(decision.status)
            .bind(reading.kind)
            .bind(reading.reason)
            .bind(reading.recipient)
            .bind(receiving_domain(reading.recipient, found.reader.as_ref()))
            .bind(reading.status_code)
            .bind(reading.diagnostic)
            .bind(found.reader.as_ref().map(|r| r.id))
            .bind(found.issue_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some((found, decision)))
    })
}

// ---------------------------------------------------------------------------
// The staff area's view.

/// One message in the staff area's list.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Listed {
    pub id: Uuid,
    pub received_at: DateTime<Utc>,
    pub source: InboundSource,
    pub status: InboundStatus,
    pub kind: Option<crate::domain::InboundKind>,
    pub reason: Option<String>,
    pub recipient: Option<String>,
    pub status_code: Option<String>,
    pub subscriber_id: Option<Uuid>,
    /// The reader's address (not for an erased reader).
    pub email: Option<String>,
}

/// The latest `limit` messages, those nobody could read (`unknown`) first,
/// then those not read yet, then the rest, each newest first.
pub async fn recent(db: &Db, limit: i64) -> Result<Vec<Listed>, sqlx::Error> {
    with_pool!(db, pool => sqlx::query_as(
        "SELECT m.id, m.received_at, m.source, m.status, m.kind, m.reason, m.recipient, m.status_code,
                m.subscriber_id, CASE WHEN s.erased_at IS NULL THEN s.email END AS email
         FROM inbound_messages m LEFT JOIN subscribers s ON s.id = m.subscriber_id
         ORDER BY CASE m.status WHEN 'unknown' THEN 0 WHEN 'received' THEN 1 ELSE 2 END, m.received_at DESC, m.id DESC
         LIMIT $1")
        .bind(limit)
        .fetch_all(pool)
        .await)
}

/// How many messages have each status.
pub async fn count_by_status(db: &Db) -> Result<Vec<(InboundStatus, i64)>, sqlx::Error> {
    with_pool!(db, pool => sqlx::query_as("SELECT status, COUNT(*) FROM inbound_messages GROUP BY status")
        .fetch_all(pool)
        .await)
}

/// One message with everything stored about it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Detail {
    pub id: Uuid,
    pub received_at: DateTime<Utc>,
    pub source: InboundSource,
    pub dedupe_key: Option<String>,
    pub envelope_to: String,
    pub raw: Vec<u8>,
    pub status: InboundStatus,
    pub kind: Option<crate::domain::InboundKind>,
    pub reason: Option<String>,
    pub recipient: Option<String>,
    pub recipient_domain: Option<String>,
    pub status_code: Option<String>,
    pub diagnostic: Option<String>,
    pub subscriber_id: Option<Uuid>,
    pub email: Option<String>,
    pub week: Option<String>,
    pub processed_at: Option<DateTime<Utc>>,
}

pub async fn detail(db: &Db, id: Uuid) -> Result<Option<Detail>, sqlx::Error> {
    with_pool!(db, pool => sqlx::query_as(
        "SELECT m.id, m.received_at, m.source, m.dedupe_key, m.envelope_to, m.raw, m.status, m.kind, m.reason,
                m.recipient, m.recipient_domain, m.status_code, m.diagnostic, m.subscriber_id,
                CASE WHEN s.erased_at IS NULL THEN s.email END AS email, i.week, m.processed_at
         FROM inbound_messages m
         LEFT JOIN subscribers s ON s.id = m.subscriber_id
         LEFT JOIN issues i ON i.id = m.issue_id
         WHERE m.id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await)
}
