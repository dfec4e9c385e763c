//! Adding readers to the list: the one write behind a signup on the web
//! form (batched by the signup writer) and a CSV import, on both backends.
//! Each new reader is a subscriber row; one who must still confirm also
//! gets a confirmation token and a queued confirmation email, written by
//! the same statements, so a pending reader is never recorded without the
//! email that lets them confirm.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::domain::{SearchKey, SubscriberEmail, SubscriberName, SubscriberStatus, Token, UnsubscribeToken};
use crate::i18n::Language;

/// A reader to add, with every value their rows get worked out beforehand
/// (ids, the address's key, the hashes), so the writer only binds.
#[derive(Debug, Clone)]
pub struct NewReader {
    id: Uuid,
    email: String,
    email_key: String,
    name: String,
    /// Address and name, folded for the staff's search.
    search_key: SearchKey,
    /// Every mail to them is in it: the signup page's, or the site's for
    /// an import.
    language: Language,
    /// The consent record: where and how they signed up.
    ip: Option<String>,
    source: String,
    /// Used only when the row is new: a reader keeps their unsubscribe link.
    unsubscribe_secret: Vec<u8>,
    /// `None` for a reader who consented elsewhere and is added confirmed,
    /// and for one who left.
    link: Option<ConfirmationLink>,
    /// Imported from a tool they had unsubscribed from (or bounced in):
    /// added unsubscribed, never mailed.
    left: bool,
}

#[derive(Debug, Clone)]
struct ConfirmationLink {
    token: Token,
    token_hash: Vec<u8>,
    mail_id: Uuid,
}

impl NewReader {
    /// A reader who must confirm their address: pending, with a
    /// confirmation link that is emailed to them.
    pub fn to_confirm(
        email: &SubscriberEmail,
        name: &SubscriberName,
        language: Language,
        ip: Option<String>,
        source: &str,
        token: Token,
    ) -> Self {
        let link = ConfirmationLink {
            token_hash: token.hash(),
            token,
            mail_id: Uuid::now_v7(),
        };
        Self::new(email, name, language, ip, source, Some(link))
    }

    /// A reader who consented elsewhere (`subscribers import --confirmed`):
    /// added confirmed, with no link and no email.
    pub fn confirmed(email: &SubscriberEmail, name: &SubscriberName, language: Language, source: &str) -> Self {
        Self::new(email, name, language, None, source, None)
    }

    /// A reader an export says left the list it came from: added
    /// unsubscribed, so they are on record and never mailed.
    pub fn left(email: &SubscriberEmail, name: &SubscriberName, language: Language, source: &str) -> Self {
        Self {
            left: true,
            ..Self::new(email, name, language, None, source, None)
        }
    }

    fn new(
        email: &SubscriberEmail,
        name: &SubscriberName,
        language: Language,
        ip: Option<String>,
        source: &str,
        link: Option<ConfirmationLink>,
    ) -> Self {
        let id = Uuid::now_v7();
        Self {
            id,
            email: email.as_str().to_owned(),
            email_key: email.dedupe_key(),
            name: name.as_str().to_owned(),
            search_key: SearchKey::of_reader(email.as_str(), name.as_str()),
            language,
            ip,
            source: source.to_owned(),
            unsubscribe_secret: UnsubscribeToken::generate(id).secret().to_vec(),
            link,
            left: false,
        }
    }

    pub fn email_key(&self) -> &str {
        &self.email_key
    }

    /// Where the consent record says they signed up.
    pub fn source(&self) -> &str {
        &self.source
    }

    fn status(&self) -> SubscriberStatus {
        match (&self.link, self.left) {
            (Some(_), _) => SubscriberStatus::Pending,
            (None, true) => SubscriberStatus::Unsubscribed,
            (None, false) => SubscriberStatus::Confirmed,
        }
    }

    /// Whether the reader is added confirmed.
    pub fn is_confirmed(&self) -> bool {
        self.status() == SubscriberStatus::Confirmed
    }

    /// Whether the reader is added unsubscribed.
    pub fn has_left(&self) -> bool {
        self.left
    }

    fn confirmed_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.is_confirmed().then_some(now)
    }

    fn unsubscribed_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.left.then_some(now)
    }

    /// Confirmation emails this row counts against the daily cap.
    fn mails_in_window(&self) -> i32 {
        i32::from(self.link.is_some())
    }
}

/// What becomes of a reader whose address is already on the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// A signup: a confirmed reader is left as they are (no enumeration, no
    /// overwriting a confirmed name by a stranger); anyone else is pending
    /// again with the latest consent record and a new link, unless the
    /// address has had its confirmation emails for the day.
    Renew,
    /// An import: left exactly as they are; only new addresses are written.
    Keep,
}

/// How confirmation links are issued.
#[derive(Debug, Clone, Copy)]
pub struct LinkRules {
    pub token_ttl: Duration,
    /// Confirmation emails an address may get in 24 hours.
    pub mails_per_day: u32,
}

impl LinkRules {
    fn mail_cap(self) -> i32 {
        i32::try_from(self.mails_per_day).unwrap_or(i32::MAX)
    }
}

/// What [`Existing::Renew`] does to the row already there. The mail window
/// counts an address's confirmation emails over 24 hours: one that began
/// before `$2` (24 hours ago) starts again with this email.
macro_rules! renew_sql {
    () => {
        " ON CONFLICT (email_key) DO UPDATE SET
             status = CASE WHEN subscribers.status = 'confirmed' THEN 'confirmed' ELSE 'pending' END,
             email = CASE WHEN subscribers.status = 'confirmed' THEN subscribers.email ELSE excluded.email END,
             name = CASE WHEN subscribers.status = 'confirmed' THEN subscribers.name ELSE excluded.name END,
             search_key = CASE WHEN subscribers.status = 'confirmed'
                 THEN subscribers.search_key ELSE excluded.search_key END,
             language = CASE WHEN subscribers.status = 'confirmed'
                 THEN subscribers.language ELSE excluded.language END,
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

/// What [`Existing::Keep`] does: nothing.
macro_rules! keep_sql {
    () => {
        " ON CONFLICT (email_key) DO NOTHING"
    };
}

// The three inserts' column lists, shared by both backends' statements.
macro_rules! insert_subscribers {
    () => {
        "INSERT INTO subscribers (id, email, email_key, name, status, signup_ip, signup_source, created_at,
                                  signed_up_at, confirmed_at, mail_window_started_at, mails_in_window,
                                  unsubscribe_secret, language, unsubscribed_at, search_key)"
    };
}
macro_rules! insert_tokens {
    () => {
        "INSERT INTO confirmation_tokens (token_hash, subscriber_id, created_at, expires_at)"
    };
}
macro_rules! insert_mail {
    () => {
        "INSERT INTO outgoing_mail (id, kind, subscriber_id, recipient, recipient_name, token, status, attempts,
                                    next_attempt_at, created_at)"
    };
}

const INSERT_SUBSCRIBERS: &str = insert_subscribers!();
const INSERT_TOKENS: &str = insert_tokens!();
const INSERT_MAIL: &str = insert_mail!();

/// The webhook events of new readers (`subscriber.created`, and
/// `subscriber.confirmed` for one added confirmed), for the endpoints that
/// want them: SQLite, after a `WITH v AS (VALUES (?), …)` of the ids bound,
/// then `?` the time.
const SQLITE_RECORD_CREATED: &str = concat!(
    "INSERT INTO webhook_events (id, kind, at, subscriber_id, email)
     SELECT randomblob(16), k.column1, ?, s.id, s.email
     FROM v CROSS JOIN subscribers s ON s.id = v.column1
     CROSS JOIN (VALUES ('subscriber.created'), ('subscriber.confirmed')) AS k
     WHERE (k.column1 = 'subscriber.created' OR s.status = 'confirmed') AND ",
    crate::db::webhooks::wanted_sql!("k.column1")
);

/// Rows per SQLite statement: 16 parameters each, under SQLite's limit of
/// 32 766 per statement (with the two of [`Existing::Renew`]).
pub const SQLITE_ROWS_PER_STATEMENT: usize = 2_000;

/// Whether a SQLite write opens and commits its own transaction, in the
/// same trip to the database thread as the rows, or runs inside one the
/// caller holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteTransaction {
    /// Each chunk of [`SQLITE_ROWS_PER_STATEMENT`] commits on its own; if
    /// the call fails, the caller must roll back.
    Own,
    Callers,
}

/// `(?, ?, …), (?, ?, …), …`: `rows` groups of `per_row` placeholders.
fn anonymous(rows: usize, per_row: usize) -> String {
    let row = format!("({})", vec!["?"; per_row].join(", "));
    vec![row.as_str(); rows].join(", ")
}

/// SQLite: writes `readers` (at most one per address), one script per
/// chunk; returns how many subscriber rows were written (with
/// [`Existing::Keep`], the new readers).
///
/// Anonymous `?` parameters only: sqlx looks up the name of every numbered
/// one (`$7`) with a linear search in SQLite, which makes a statement of n
/// parameters cost O(n²) to bind. Readers with a link get their token and
/// email from the rows the insert left pending and under the daily cap:
/// found by address when a signup renews a reader, by the new id when
/// existing readers are kept (their id is not the one bound).
pub(crate) async fn insert_sqlite(
    conn: &mut sqlx::SqliteConnection,
    readers: &[NewReader],
    existing: Existing,
    rules: LinkRules,
    transaction: SqliteTransaction,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let window_start = now - Duration::hours(24);
    let expires_at = now + rules.token_ttl;
    let (conflict, join) = match existing {
        Existing::Renew => (renew_sql!().replace("$2", "?"), "s.email_key = v.column1"),
        Existing::Keep => (keep_sql!().to_owned(), "s.id = v.column2"),
    };
    let mut written = 0;
    for chunk in readers.chunks(SQLITE_ROWS_PER_STATEMENT) {
        let links: Vec<(&NewReader, &ConfirmationLink)> =
            chunk.iter().filter_map(|r| r.link.as_ref().map(|l| (r, l))).collect();
        let mut sql = String::new();
        if transaction == SqliteTransaction::Own {
            sql.push_str("BEGIN IMMEDIATE;\n");
        }
        sql.push_str(&format!(
            "{INSERT_SUBSCRIBERS} VALUES {}{conflict};\nSELECT changes();\n",
            anonymous(chunk.len(), 16)
        ));
        // The rows written, not renewed, have the id bound here.
        sql.push_str(&format!(
            "WITH v AS (VALUES {}) {SQLITE_RECORD_CREATED};\n",
            anonymous(chunk.len(), 1)
        ));
        if !links.is_empty() {
            // CROSS JOIN keeps the chunk's rows as the outer loop and `+`
            // keeps the status index out of it: without statistics SQLite
            // may otherwise start from every pending reader on the list,
            // which makes an opt-in import quadratic in the list's size.
            let pending =
                format!("CROSS JOIN subscribers s ON {join} WHERE +s.status = 'pending' AND s.mails_in_window <= ?");
            sql.push_str(&format!(
                "{INSERT_TOKENS} SELECT v.column3, s.id, ?, ? FROM (VALUES {}) AS v {pending};\n\
                 {INSERT_MAIL} SELECT v.column3, 'confirmation', s.id, s.email, s.name, v.column4, 'queued', 0, ?, ?
                 FROM (VALUES {}) AS v {pending};\n",
                anonymous(links.len(), 3),
                anonymous(links.len(), 4),
            ));
        }
        if transaction == SqliteTransaction::Own {
            sql.push_str("COMMIT;");
        }
        let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            query = query
                .bind(r.id)
                .bind(&r.email)
                .bind(&r.email_key)
                .bind(&r.name)
                .bind(r.status())
                .bind(r.ip.as_deref())
                .bind(&r.source)
                .bind(now)
                .bind(now)
                .bind(r.confirmed_at(now))
                .bind(now)
                .bind(r.mails_in_window())
                .bind(&r.unsubscribe_secret)
                .bind(r.language.tag())
                .bind(r.unsubscribed_at(now))
                .bind(r.search_key.as_str());
        }
        if existing == Existing::Renew {
            query = query.bind(window_start).bind(window_start);
        }
        for r in chunk {
            query = query.bind(r.id);
        }
        query = query.bind(now);
        if !links.is_empty() {
            query = query.bind(now).bind(expires_at);
            for (r, link) in &links {
                query = query.bind(&r.email_key).bind(r.id).bind(&link.token_hash);
            }
            query = query.bind(rules.mail_cap()).bind(now).bind(now);
            for (r, link) in &links {
                query = query
                    .bind(&r.email_key)
                    .bind(r.id)
                    .bind(link.mail_id)
                    .bind(link.token.as_str());
            }
            query = query.bind(rules.mail_cap());
        }
        // `fetch_all`, not `fetch_one`: the statements after the count
        // must run too.
        let changes: Vec<i64> = query.fetch_all(&mut *conn).await?;
        written += changes.first().copied().map_or(0, |n| u64::try_from(n).unwrap_or(0));
    }
    Ok(written)
}

/// PostgreSQL: the whole batch in one statement (one round trip, atomic):
/// the readers arrive as arrays, and data-modifying CTEs write the three
/// tables. `$2` is used by [`Existing::Renew`] only. Rows go in address
/// order, so concurrent batches lock subscribers in one order and cannot
/// deadlock.
macro_rules! insert_postgres_sql {
    ($($conflict:tt)*) => {
        concat!(
            "WITH input AS (
                SELECT * FROM UNNEST($5::uuid[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                                     $11::bytea[], $12::text[], $13::timestamptz[], $14::int4[], $15::bytea[],
                                     $16::uuid[], $17::text[], $18::text[], $19::timestamptz[], $20::text[])
                    AS i(id, email, email_key, name, ip, source, unsubscribe_secret, status, confirmed_at,
                         mails_in_window, token_hash, mail_id, token, language, unsubscribed_at, search_key)
            ), subscriber AS (",
            insert_subscribers!(),
            "
                SELECT id, email, email_key, name, status, ip, source, $1, $1, confirmed_at, $1, mails_in_window,
                       unsubscribe_secret, language, unsubscribed_at, search_key
                FROM input ORDER BY email_key",
            $($conflict)*,
            " RETURNING id, email_key, email, name, status, mails_in_window
            ), hook AS (
                INSERT INTO webhook_events (id, kind, at, subscriber_id, email)
                SELECT gen_random_uuid(), k.kind, $1, s.id, s.email
                FROM subscriber s JOIN input i ON i.id = s.id
                CROSS JOIN (VALUES ('subscriber.created'), ('subscriber.confirmed')) AS k(kind)
                WHERE (k.kind = 'subscriber.created' OR s.status = 'confirmed') AND ",
            crate::db::webhooks::wanted_sql!("k.kind"),
            "
            ), token AS (",
            insert_tokens!(),
            "
                SELECT i.token_hash, s.id, $1, $3 FROM subscriber s JOIN input i USING (email_key)
                WHERE i.token_hash IS NOT NULL AND s.status = 'pending' AND s.mails_in_window <= $4
                RETURNING token_hash, subscriber_id
            ), mail AS (",
            insert_mail!(),
            "
                SELECT i.mail_id, 'confirmation', s.id, s.email, s.name, i.token, 'queued', 0, $1, $1
                FROM token t JOIN input i USING (token_hash) JOIN subscriber s ON s.id = t.subscriber_id
            )
            SELECT COUNT(*) FROM subscriber"
        )
    };
}

const INSERT_KEEP_POSTGRES: &str = insert_postgres_sql!(keep_sql!());
const INSERT_RENEW_POSTGRES: &str = insert_postgres_sql!(renew_sql!());

/// PostgreSQL: writes `readers` (at most one per address: `ON CONFLICT`
/// cannot touch a row twice in one statement); returns how many subscriber
/// rows were written (with [`Existing::Keep`], the new readers).
pub(crate) async fn insert_postgres<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    readers: &[NewReader],
    existing: Existing,
    rules: LinkRules,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let mut sorted: Vec<&NewReader> = readers.iter().collect();
    sorted.sort_by(|a, b| a.email_key.cmp(&b.email_key));
    let sql = match existing {
        Existing::Renew => INSERT_RENEW_POSTGRES,
        Existing::Keep => INSERT_KEEP_POSTGRES,
    };
    let links = || sorted.iter().map(|r| r.link.as_ref());
    let written: i64 = sqlx::query_scalar(sql)
        .bind(now)
        .bind(now - Duration::hours(24))
        .bind(now + rules.token_ttl)
        .bind(rules.mail_cap())
        .bind(sorted.iter().map(|r| r.id).collect::<Vec<_>>())
        .bind(sorted.iter().map(|r| r.email.as_str()).collect::<Vec<_>>())
        .bind(sorted.iter().map(|r| r.email_key.as_str()).collect::<Vec<_>>())
        .bind(sorted.iter().map(|r| r.name.as_str()).collect::<Vec<_>>())
        .bind(sorted.iter().map(|r| r.ip.as_deref()).collect::<Vec<_>>())
        .bind(sorted.iter().map(|r| r.source.as_str()).collect::<Vec<_>>())
        .bind(
            sorted
                .iter()
                .map(|r| r.unsubscribe_secret.as_slice())
                .collect::<Vec<_>>(),
        )
        .bind(sorted.iter().map(|r| r.status()).collect::<Vec<_>>())
        .bind(sorted.iter().map(|r| r.confirmed_at(now)).collect::<Vec<_>>())
        .bind(sorted.iter().map(|r| r.mails_in_window()).collect::<Vec<_>>())
        .bind(links().map(|l| l.map(|l| l.token_hash.as_slice())).collect::<Vec<_>>())
        .bind(links().map(|l| l.map(|l| l.mail_id)).collect::<Vec<_>>())
        .bind(links().map(|l| l.map(|l| l.token.as_str())).collect::<Vec<_>>())
        .bind(sorted.iter().map(|r| r.language.tag()).collect::<Vec<_>>())
        .bind(sorted.iter().map(|r| r.unsubscribed_at(now)).collect::<Vec<_>>())
        .bind(sorted.iter().map(|r| r.search_key.as_str()).collect::<Vec<_>>())
        .fetch_one(executor)
        .await?;
    Ok(u64::try_from(written).unwrap_or(0))
}
