//! Readers as the JSON API reads and changes them: one by id or address,
//! pages of the list after a cursor, a change of name or language, and a
//! reader added confirmed with the consent note the caller gave. New
//! readers who must confirm go through the signup writer, like the form's.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::db::new_readers::{self, Existing, LinkRules, NewReader, SqliteTransaction};
use crate::db::subscriber_events::{self, EventKind};
use crate::domain::{SubscriberName, SubscriberStatus, WebhookEvent};
use crate::i18n::Language;
use crate::with_pool;

/// A reader as the API shows them. Erased readers are never shown.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiSubscriber {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub status: SubscriberStatus,
    /// As stored; a tag without a catalogue reads as the site's default.
    pub language: String,
    pub signed_up_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "SELECT id, email, name, status, language, signed_up_at, confirmed_at, unsubscribed_at
     FROM subscribers WHERE erased_at IS NULL";

pub async fn find(db: &Db, id: Uuid) -> Result<Option<ApiSubscriber>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{COLUMNS} AND id = $1")))
            .bind(id)
            .fetch_optional(pool)
            .await
    })
}

/// Which readers a page lists.
#[derive(Debug, Clone, Default)]
pub struct PageFilter {
    pub status: Option<SubscriberStatus>,
    /// An address's dedupe key: the reader with that address, if any.
    pub email_key: Option<String>,
}

/// Up to `limit` readers after the id `after`, in id order (ids are UUIDv7,
/// so this is the order they were added in; keyset pagination, so a page
/// never shifts when readers join meanwhile).
pub async fn page(
    db: &Db,
    filter: &PageFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ApiSubscriber>, sqlx::Error> {
    let sql = format!(
        "{COLUMNS} AND ($1 = '' OR status = $1) AND ($2 = '' OR email_key = $2) AND id > $3 ORDER BY id LIMIT $4"
    );
    with_pool!(db, pool => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(filter.status.map(SubscriberStatus::as_str).unwrap_or(""))
            .bind(filter.email_key.as_deref().unwrap_or(""))
            .bind(after.unwrap_or(Uuid::nil()))
            .bind(limit)
            .fetch_all(pool)
            .await
    })
}

/// Changes a reader's name and language, each change recorded as an event
/// in the same transaction; unchanged values write nothing. `None` when
/// there is no such reader (or they were erased).
pub async fn update_details(
    db: &Db,
    id: Uuid,
    name: Option<&SubscriberName>,
    language: Option<Language>,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Option<ApiSubscriber>, sqlx::Error> {
    let detail = format!("through the API ({by})");
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        // A write first: SQLite's write lock and PostgreSQL's row lock.
        let locked = sqlx::query("UPDATE subscribers SET id = id WHERE id = $1 AND erased_at IS NULL")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if locked == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let before: ApiSubscriber = sqlx::query_as(sqlx::AssertSqlSafe(format!("{COLUMNS} AND id = $1")))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let mut events = Vec::new();
        if let Some(name) = name.filter(|n| n.as_str() != before.name) {
            sqlx::query("UPDATE subscribers SET name = $2 WHERE id = $1")
                .bind(id)
                .bind(name.as_str())
                .execute(&mut *tx)
                .await?;
            events.push((EventKind::NameChanged, detail.clone()));
        }
        if let Some(language) = language.filter(|l| l.tag() != before.language) {
            sqlx::query("UPDATE subscribers SET language = $2 WHERE id = $1")
                .bind(id)
                .bind(language.tag())
                .execute(&mut *tx)
                .await?;
            events.push((EventKind::LanguageChanged, format!("{} → {}, {detail}", before.language, language.tag())));
        }
        for (kind, detail) in events {
            sqlx::query(subscriber_events::INSERT)
                .bind(Uuid::now_v7())
                .bind(id)
                .bind(now)
                .bind(kind.as_str())
                .bind(detail)
                .bind(None::<Uuid>)
                .bind(None::<Uuid>)
                .execute(&mut *tx)
                .await?;
        }
        let after: ApiSubscriber = sqlx::query_as(sqlx::AssertSqlSafe(format!("{COLUMNS} AND id = $1")))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(after))
    })
}

/// Confirms a pending reader with this address, the consent being given
/// elsewhere (`$3` the key).
const CONFIRM_PENDING: &str = "UPDATE subscribers SET status = 'confirmed', confirmed_at = $1, signed_up_at = $1,
    signup_source = $2, signup_ip = NULL WHERE status = 'pending' AND email_key = $3";

/// `subscriber.confirmed` for the reader with address key `$4`, once
/// [`CONFIRM_PENDING`] confirmed them (`$1` id, `$2` the event's word, `$3` at).
const RECORD_CONFIRMED: &str = concat!(
    "INSERT INTO webhook_events (id, kind, at, subscriber_id, email)
     SELECT $1, $2, $3, s.id, s.email FROM subscribers s WHERE s.email_key = $4 AND s.status = 'confirmed' AND ",
    crate::db::webhooks::wanted_sql!("$2")
);

/// The consent note, as an event of the reader with this address when
/// they are confirmed (`$2` the key).
const RECORD_CONSENT: &str =
    "INSERT INTO subscriber_events (id, subscriber_id, at, kind, detail, inbound_message_id, issue_id)
    SELECT $1, id, $3, $4, $5, NULL, NULL FROM subscribers WHERE email_key = $2 AND status = 'confirmed'";

/// Adds a reader who consented elsewhere (`reader` made with
/// [`NewReader::confirmed`]) as an import with `--confirmed` does (a new
/// address is added confirmed, a pending one is confirmed, anyone else is
/// left as they are), and records `note` in the history of the reader
/// who is then confirmed: all in one transaction.
pub async fn add_confirmed(db: &Db, reader: &NewReader, note: &str, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    // No link is made for a confirmed reader: the rules never apply.
    let rules = LinkRules {
        token_ttl: Duration::zero(),
        mails_per_day: 0,
    };
    let source = reader.source();
    let event = Uuid::now_v7();
    let consent = EventKind::ConsentRecorded.as_str();
    match db {
        Db::Sqlite(pool) => {
            let mut conn = pool.acquire().await?;
            let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
            let confirmed = sqlx::query(CONFIRM_PENDING)
                .bind(now)
                .bind(source)
                .bind(reader.email_key())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if confirmed == 1 {
                sqlx::query(RECORD_CONFIRMED)
                    .bind(Uuid::now_v7())
                    .bind(WebhookEvent::SubscriberConfirmed.as_str())
                    .bind(now)
                    .bind(reader.email_key())
                    .execute(&mut *tx)
                    .await?;
            }
            new_readers::insert_sqlite(
                &mut tx,
                std::slice::from_ref(reader),
                Existing::Keep,
                rules,
                SqliteTransaction::Callers,
                now,
            )
            .await?;
            sqlx::query(RECORD_CONSENT)
                .bind(event)
                .bind(reader.email_key())
                .bind(now)
                .bind(consent)
                .bind(note)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            let confirmed = sqlx::query(CONFIRM_PENDING)
                .bind(now)
                .bind(source)
                .bind(reader.email_key())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if confirmed == 1 {
                sqlx::query(RECORD_CONFIRMED)
                    .bind(Uuid::now_v7())
                    .bind(WebhookEvent::SubscriberConfirmed.as_str())
                    .bind(now)
                    .bind(reader.email_key())
                    .execute(&mut *tx)
                    .await?;
            }
            new_readers::insert_postgres(&mut *tx, std::slice::from_ref(reader), Existing::Keep, rules, now).await?;
            sqlx::query(RECORD_CONSENT)
                .bind(event)
                .bind(reader.email_key())
                .bind(now)
                .bind(consent)
                .bind(note)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }
    }
}
