//! Inbound mail as it arrived (`inbound_messages`), and the shared key of
//! the return-path addresses (`app_secrets`).

use chrono::{DateTime, Utc};
use rand::RngCore;
use uuid::Uuid;

use crate::db::Db;
use crate::domain::{InboundSource, InboundStatus};
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

/// The ids of messages stored but not read yet, oldest first.
pub async fn received(db: &Db, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    let rows: Vec<(Uuid,)> = with_pool!(db, pool => sqlx::query_as(
        "SELECT id FROM inbound_messages WHERE status = $1 ORDER BY received_at LIMIT $2")
        .bind(InboundStatus::Received)
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
        let (secret,): (Vec<u8>,) = sqlx::query_as("SELECT secret FROM app_secrets WHERE name = $1")
            .bind(RETURN_PATH_SECRET)
            .fetch_one(pool)
            .await?;
        Ok(secret)
    })
}
