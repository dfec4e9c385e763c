//! Feed sources: feeds registered once and polled by Gazette. A row holds
//! the source (address, name) and its poll state: what the last poll did,
//! the failing streak, when the next poll is due, the validators for the
//! next conditional request, and the claim of the process polling it now.
//!
//! A poll starts with [`claim`], one conditional UPDATE that takes the row
//! only when no one holds it (or their claim ran out), and, for the
//! periodic poll, only while it is still due: two processes (two `gazette
//! serve` on one PostgreSQL database) racing for a source get it once, and
//! the loser does not poll it again after the winner recorded its result.
//! The holder records the outcome and gives the claim back in one UPDATE
//! ([`record`]); a process that died holding a claim loses it when it runs
//! out.

use chrono::{DateTime, Utc};

use crate::db::Db;
use crate::i18n::Language;
use crate::with_pool;

/// What the last poll of a source found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text")]
pub enum PollResult {
    /// The feed was read and its entries saved.
    #[sqlx(rename = "ok")]
    Ok,
    /// The server answered 304: nothing changed since the poll before.
    #[sqlx(rename = "not_modified")]
    NotModified,
    #[sqlx(rename = "failed")]
    Failed,
}

impl PollResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::NotModified => "not modified",
            Self::Failed => "failed",
        }
    }
}

/// A source and its poll state.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FeedSource {
    pub id: i64,
    /// The address, as `url::Url` writes it: also the identity of the feed
    /// its articles carry, the string `gazette articles import URL` uses.
    pub url: String,
    pub name: String,
    /// Staff gave the name; otherwise it follows the feed's own title.
    pub named_by_staff: bool,
    /// The tag of the language staff declared its articles are in; `None`:
    /// the language the feed declares, if any.
    language: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_polled_at: Option<DateTime<Utc>>,
    pub last_result: Option<PollResult>,
    pub last_error: Option<String>,
    pub last_added: i32,
    pub last_updated: i32,
    pub last_rejected: i32,
    pub total_added: i64,
    /// Failed polls in a row.
    pub failures: i32,
    /// When the first of those failures was.
    pub failing_since: Option<DateTime<Utc>>,
    pub next_poll_at: DateTime<Utc>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub claimed_by: Option<String>,
    pub claimed_until: Option<DateTime<Utc>>,
}

impl FeedSource {
    /// The language staff declared for its articles, over the feed's own.
    pub fn declared_language(&self) -> Option<Language> {
        self.language.as_deref().and_then(Language::parse)
    }

    /// Someone holds the claim at `now`: a poll is running.
    pub fn is_being_polled(&self, now: DateTime<Utc>) -> bool {
        self.claimed_until.is_some_and(|until| until > now)
    }
}

macro_rules! columns {
    () => {
        "id, url, name, named_by_staff, language, created_at, last_polled_at, last_result, last_error, last_added, \
         last_updated, last_rejected, total_added, failures, failing_since, next_poll_at, etag, last_modified, \
         claimed_by, claimed_until"
    };
}

/// Registers a source, due at once, its articles in `language` (`None`:
/// the feed's own). `Err` holds the source already registered at that
/// address.
pub async fn add(
    db: &Db,
    url: &str,
    name: &str,
    named_by_staff: bool,
    language: Option<Language>,
    now: DateTime<Utc>,
) -> Result<Result<FeedSource, FeedSource>, sqlx::Error> {
    // Looked up first: an INSERT that conflicts still uses up an id on
    // both backends, and ids are what people type.
    if let Some(existing) = find_by_url(db, url).await? {
        return Ok(Err(existing));
    }
    let added: Option<FeedSource> = with_pool!(db, pool => {
        sqlx::query_as(concat!(
            "INSERT INTO feed_sources (url, name, named_by_staff, created_at, next_poll_at, language)
             VALUES ($1, $2, $3, $4, $4, $5)
             ON CONFLICT (url) DO NOTHING RETURNING ",
            columns!()
        ))
        .bind(url)
        .bind(name)
        .bind(named_by_staff)
        .bind(now)
        .bind(language.map(Language::tag))
        .fetch_optional(pool)
        .await?
    });
    match added {
        Some(added) => Ok(Ok(added)),
        // Registered by someone else in between.
        None => Ok(Err(find_by_url(db, url).await?.ok_or(sqlx::Error::RowNotFound)?)),
    }
}

/// The source registered at `url` (as `url::Url` writes it), if any.
pub async fn find_by_url(db: &Db, url: &str) -> Result<Option<FeedSource>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(concat!("SELECT ", columns!(), " FROM feed_sources WHERE url = $1"))
            .bind(url)
            .fetch_optional(pool)
            .await
    })
}

/// Every source, oldest first.
pub async fn list(db: &Db) -> Result<Vec<FeedSource>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(concat!("SELECT ", columns!(), " FROM feed_sources ORDER BY id"))
            .fetch_all(pool)
            .await
    })
}

pub async fn find(db: &Db, id: i64) -> Result<Option<FeedSource>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(concat!("SELECT ", columns!(), " FROM feed_sources WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await
    })
}

/// Declares the language of source `id`'s articles (`None`: the feed's
/// own), and forgets the validators of its last answer, so that its next
/// poll reads the whole feed again and relabels the articles still in it
/// rather than hearing "not modified". A declared language is also given
/// at once to the articles it brought that staff have not edited, so this
/// week's issue has it even before that poll. `None` when there is no
/// such source.
pub async fn set_language(db: &Db, id: i64, language: Option<Language>) -> Result<Option<FeedSource>, sqlx::Error> {
    let tag = language.map(Language::tag);
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let source: Option<FeedSource> = sqlx::query_as(concat!(
            "UPDATE feed_sources SET language = $2, etag = NULL, last_modified = NULL WHERE id = $1 RETURNING ",
            columns!()
        ))
        .bind(id)
        .bind(tag)
        .fetch_optional(&mut *tx)
        .await?;
        if let (Some(source), Some(tag)) = (&source, tag) {
            // A write like any other: an edit form loaded before it is
            // refused rather than saving the old language back.
            sqlx::query(
                "UPDATE articles SET language = $2, version = version + 1 WHERE feed = $1 AND NOT edited_by_staff",
            )
                .bind(&source.url)
                .bind(tag)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(source)
    })
}

/// Puts a source's articles in a digest section (`None`: in none); an
/// article's own section wins. `None` when there is no such source.
pub async fn set_section(db: &Db, id: i64, section: Option<&str>) -> Result<Option<FeedSource>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(concat!("UPDATE feed_sources SET section = $2 WHERE id = $1 RETURNING ", columns!()))
            .bind(id)
            .bind(section)
            .fetch_optional(pool)
            .await
    })
}

/// Removes a source (its articles stay); `None` when there is none with
/// that id. A poll running for it records nothing.
pub async fn remove(db: &Db, id: i64) -> Result<Option<FeedSource>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(concat!("DELETE FROM feed_sources WHERE id = $1 RETURNING ", columns!()))
            .bind(id)
            .fetch_optional(pool)
            .await
    })
}

/// Sources due at `now` that no one holds, the longest due first.
pub async fn due(db: &Db, now: DateTime<Utc>, limit: i64) -> Result<Vec<i64>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_scalar(
            "SELECT id FROM feed_sources
             WHERE next_poll_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1)
             ORDER BY next_poll_at, id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(pool)
        .await
    })
}

/// Sources not polled since `since` that no one holds at `now`.
pub async fn not_polled_since(db: &Db, since: DateTime<Utc>, now: DateTime<Utc>) -> Result<Vec<i64>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_scalar(
            "SELECT id FROM feed_sources
             WHERE (last_polled_at IS NULL OR last_polled_at < $1) AND (claimed_until IS NULL OR claimed_until <= $2)
             ORDER BY id",
        )
        .bind(since)
        .bind(now)
        .fetch_all(pool)
        .await
    })
}

/// Sources not polled since `since` that someone is polling at `now`.
pub async fn being_polled_not_since(db: &Db, since: DateTime<Utc>, now: DateTime<Utc>) -> Result<i64, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM feed_sources
             WHERE (last_polled_at IS NULL OR last_polled_at < $1) AND claimed_until > $2",
        )
        .bind(since)
        .bind(now)
        .fetch_one(pool)
        .await
    })
}

/// When a poller next has something to do: the earliest due time, or for
/// a source someone holds, the end of their claim if that is later.
pub async fn next_due(db: &Db) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_scalar(
            "SELECT MIN(CASE WHEN claimed_until IS NOT NULL AND claimed_until > next_poll_at
                             THEN claimed_until ELSE next_poll_at END)
             FROM feed_sources",
        )
        .fetch_one(pool)
        .await
    })
}

/// Which sources a claim may take.
#[derive(Debug, Clone, Copy)]
pub enum Want {
    /// Only while it is due at this instant (the periodic poll).
    DueAt(DateTime<Utc>),
    /// Only when it was not polled since this instant: "poll now" (the
    /// request's time) and the poll before a dispatch (the dispatch's).
    NotPolledSince(DateTime<Utc>),
}

/// Takes the claim on source `id` for `holder` until `until`, if no one
/// holds it at `now` and it is wanted; returns the row as claimed.
pub async fn claim(
    db: &Db,
    id: i64,
    holder: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    want: Want,
) -> Result<Option<FeedSource>, sqlx::Error> {
    macro_rules! claim_sql {
        ($wanted:literal) => {
            concat!(
                "UPDATE feed_sources SET claimed_by = $2, claimed_until = $3
                 WHERE id = $1 AND (claimed_until IS NULL OR claimed_until <= $4) AND ",
                $wanted,
                " RETURNING ",
                columns!()
            )
        };
    }
    let (sql, at) = match want {
        Want::DueAt(at) => (claim_sql!("next_poll_at <= $5"), at),
        Want::NotPolledSince(at) => (claim_sql!("(last_polled_at IS NULL OR last_polled_at < $5)"), at),
    };
    with_pool!(db, pool => {
        sqlx::query_as(sql)
            .bind(id)
            .bind(holder)
            .bind(until)
            .bind(now)
            .bind(at)
            .fetch_optional(pool)
            .await
    })
}

/// What a poll found, as [`record`] writes it.
#[derive(Debug, Clone)]
pub enum Outcome<'a> {
    /// The feed was read and saved; the name is the source's from now on.
    Read {
        added: usize,
        updated: usize,
        rejected: usize,
        name: &'a str,
        etag: Option<&'a str>,
        last_modified: Option<&'a str>,
    },
    NotModified,
    Failed {
        error: &'a str,
    },
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Records the outcome of `holder`'s poll of source `id` at `now`, sets
/// the next poll, and gives the claim back. A failure adds one to the
/// failing streak; anything else ends it. Returns false (and writes
/// nothing) when `holder` no longer holds the claim, or the source is gone.
pub async fn record(
    db: &Db,
    id: i64,
    holder: &str,
    now: DateTime<Utc>,
    next_poll_at: DateTime<Utc>,
    outcome: &Outcome<'_>,
) -> Result<bool, sqlx::Error> {
    let rows = with_pool!(db, pool => {
        match outcome {
            Outcome::Read { added, updated, rejected, name, etag, last_modified } => sqlx::query(
                "UPDATE feed_sources SET last_polled_at = $3, last_result = 'ok', last_error = NULL,
                        last_added = $5, last_updated = $6, last_rejected = $7, total_added = total_added + $11,
                        failures = 0, failing_since = NULL, next_poll_at = $4, etag = $8, last_modified = $9,
                        name = $10, claimed_by = NULL, claimed_until = NULL
                 WHERE id = $1 AND claimed_by = $2",
            )
            .bind(id)
            .bind(holder)
            .bind(now)
            .bind(next_poll_at)
            .bind(count(*added))
            .bind(count(*updated))
            .bind(count(*rejected))
            .bind(etag)
            .bind(last_modified)
            .bind(name)
            .bind(i64::from(count(*added)))
            .execute(pool)
            .await?
            .rows_affected(),
            Outcome::NotModified => sqlx::query(
                "UPDATE feed_sources SET last_polled_at = $3, last_result = 'not_modified', last_error = NULL,
                        last_added = 0, last_updated = 0, last_rejected = 0, failures = 0, failing_since = NULL,
                        next_poll_at = $4, claimed_by = NULL, claimed_until = NULL
                 WHERE id = $1 AND claimed_by = $2",
            )
            .bind(id)
            .bind(holder)
            .bind(now)
            .bind(next_poll_at)
            .execute(pool)
            .await?
            .rows_affected(),
            Outcome::Failed { error } => sqlx::query(
                "UPDATE feed_sources SET last_polled_at = $3, last_result = 'failed', last_error = $5,
                        last_added = 0, last_updated = 0, last_rejected = 0, failures = failures + 1,
                        failing_since = COALESCE(failing_since, $3), next_poll_at = $4,
                        claimed_by = NULL, claimed_until = NULL
                 WHERE id = $1 AND claimed_by = $2",
            )
            .bind(id)
            .bind(holder)
            .bind(now)
            .bind(next_poll_at)
            .bind(*error)
            .execute(pool)
            .await?
            .rows_affected(),
        }
    });
    Ok(rows == 1)
}
