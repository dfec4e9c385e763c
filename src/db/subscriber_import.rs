//! The batched writes of a subscriber import. Each batch is one
//! transaction: a failure leaves the batches before it written and nothing
//! of its own.

use chrono::{DateTime, Duration, Utc};

use crate::db::Db;
use crate::db::new_readers::{self, Existing, LinkRules, NewReader, SqliteTransaction};
use crate::domain::{Standing, SubscriberEmail, SubscriberName, Token};
use crate::i18n::Language;

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

    /// An imported reader, ready to be written: as the consent says for a
    /// reader on the list they came from; unsubscribed for one who left
    /// it; asked to confirm, whatever the consent, for one who never
    /// confirmed there.
    pub fn reader(
        self,
        email: &SubscriberEmail,
        name: &SubscriberName,
        language: Language,
        standing: Standing,
    ) -> NewReader {
        let to_confirm = || NewReader::to_confirm(email, name, language, None, self.source(), Token::generate());
        match (standing, self) {
            (Standing::Left, _) => NewReader::left(email, name, language, self.source()),
            (Standing::Unconfirmed, _) | (Standing::Subscribed, Consent::OptIn) => to_confirm(),
            (Standing::Subscribed, Consent::ConfirmedElsewhere) => {
                NewReader::confirmed(email, name, language, self.source())
            }
        }
    }
}

/// What one batch changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    /// New readers written.
    pub added: u64,
    /// Pending readers confirmed ([`Consent::ConfirmedElsewhere`] only).
    pub confirmed: u64,
    /// New readers written unsubscribed (they left the list they came
    /// from); counted in `added` too.
    pub left: u64,
}

const SQLITE_BULK_PRAGMAS: &str = "PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32768";

// SQLite: binds now, now, the source, then the keys in parentheses.
const SQLITE_CONFIRM_PENDING: &str = "UPDATE subscribers SET status = 'confirmed', confirmed_at = ?, signed_up_at = ?,
    signup_source = ?, signup_ip = NULL WHERE status = 'pending' AND email_key IN";

// PostgreSQL: binds `$1` now, `$2` the source, `$3` the keys.
const CONFIRM_PENDING_POSTGRES: &str = "UPDATE subscribers SET status = 'confirmed', confirmed_at = $1,
    signed_up_at = $1, signup_source = $2, signup_ip = NULL
    WHERE status = 'pending' AND email_key = ANY($3::text[])";

/// Writes one batch in one transaction. Readers whose address is already
/// on the list are left as they are (a confirmed reader is never touched,
/// an unsubscribed one never re-subscribed), except that
/// [`Consent::ConfirmedElsewhere`] confirms pending ones the file has as
/// subscribed. New readers are written as a signup writes them (see
/// [`new_readers`]): opt-in ones get a confirmation link (valid for
/// `token_ttl`) and its email; those who left are written unsubscribed.
/// The batch must not hold one address twice.
pub async fn write_batch(
    db: &Db,
    readers: Vec<NewReader>,
    consent: Consent,
    token_ttl: Duration,
    now: DateTime<Utc>,
) -> Result<BatchOutcome, sqlx::Error> {
    if readers.is_empty() {
        return Ok(BatchOutcome::default());
    }
    // A new address has had no email yet: the daily cap cannot apply.
    let rules = LinkRules {
        token_ttl,
        mails_per_day: u32::MAX,
    };
    let source = consent.source();
    let mut outcome = BatchOutcome::default();
    // Written apart, in the same transaction, so the report can say how
    // many were added unsubscribed.
    let (left, staying): (Vec<NewReader>, Vec<NewReader>) = readers.into_iter().partition(NewReader::has_left);
    let confirming: Vec<&str> = staying
        .iter()
        .filter(|r| r.is_confirmed())
        .map(NewReader::email_key)
        .collect();
    match db {
        Db::Sqlite(pool) => {
            // Each multi-row statement keeps a journal of its own, to undo
            // it alone: in memory, not in a temporary file. A larger page
            // cache keeps the random-order indexes (email_key, token_hash)
            // from being re-read on every batch. Both are per connection.
            let mut conn = pool.acquire().await?;
            sqlx::query(SQLITE_BULK_PRAGMAS).execute(&mut *conn).await?;
            let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
            for chunk in confirming.chunks(new_readers::SQLITE_ROWS_PER_STATEMENT) {
                let sql = format!("{SQLITE_CONFIRM_PENDING} ({})", vec!["?"; chunk.len()].join(", "));
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(now).bind(source);
                for key in chunk {
                    query = query.bind(*key);
                }
                outcome.confirmed += query.execute(&mut *tx).await?.rows_affected();
            }
            for (readers, counted) in [(&staying, false), (&left, true)] {
                if readers.is_empty() {
                    continue;
                }
                let added = new_readers::insert_sqlite(
                    &mut tx,
                    readers,
                    Existing::Keep,
                    rules,
                    SqliteTransaction::Callers,
                    now,
                )
                .await?;
                outcome.added += added;
                if counted {
                    outcome.left = added;
                }
            }
            tx.commit().await?;
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            if !confirming.is_empty() {
                // Address order, as the insert: a batch and concurrent
                // signups lock subscribers in one order.
                let mut keys = confirming;
                keys.sort_unstable();
                outcome.confirmed = sqlx::query(CONFIRM_PENDING_POSTGRES)
                    .bind(now)
                    .bind(source)
                    .bind(&keys)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            for (readers, counted) in [(&staying, false), (&left, true)] {
                if readers.is_empty() {
                    continue;
                }
                let added = new_readers::insert_postgres(&mut *tx, readers, Existing::Keep, rules, now).await?;
                outcome.added += added;
                if counted {
                    outcome.left = added;
                }
            }
            tx.commit().await?;
        }
    }
    Ok(outcome)
}
