//! The database: one pool for SQLite (the embedded default) or PostgreSQL
//! (scale-out), chosen by the URL. Queries are written once in portable
//! SQL and run on either pool through [`with_pool!`]; the few statements
//! that must differ stand side by side in the file of their concept.

pub mod address_changes;
pub mod api_tokens;
pub mod articles;
pub mod deliveries;
pub mod dispatch_lock;
pub mod feed_imports;
pub mod feed_sources;
pub mod inbound;
pub mod issue_drafts;
pub mod issue_report;
pub mod issues;
pub mod link_clicks;
pub mod new_readers;
pub mod outgoing_mail;
pub mod preferences;
pub mod relay_rate;
pub mod relay_status;
pub mod retention;
pub mod schema;
pub mod search_keys;
pub mod signup_writer;
pub mod staff;
pub mod stats;
pub mod submissions;
pub mod subscriber_admin;
pub mod subscriber_api;
pub mod subscriber_events;
pub mod subscriber_import;
pub mod subscribers;
pub mod test_sends;
pub mod webhooks;
pub mod workers;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::config::{DatabaseSettings, is_secret_parameter, redact};

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool `$db` holds. The body
/// is compiled once per backend, so one query text serves both.
#[macro_export]
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}

/// The lease claim both queues (transactional mail and digest deliveries)
/// use, as `[sqlite, postgres]` statements: due rows, oldest first,
/// `LIMIT $3`, marked `sending` until `$2` with one more attempt. The one
/// difference between the backends: PostgreSQL workers on many machines
/// skip each other's rows; SQLite has a single writer, so there is nothing
/// to skip.
///
/// Rows whose worker's lease ran out are put back by [`requeue_expired_sql!`]
/// first, not matched here: with an `OR` of both cases PostgreSQL could not
/// walk the `(status, next_attempt_at)` index in order and sorted every
/// queued row on each claim (0.7 s a claim with a million queued).
/// `$key` is the key's column list, without parentheses.
/// Binds: `$1` now, `$2` lease end, `$3` limit, `$4` the claiming worker's
/// id (its proof of life, see [`workers`]).
macro_rules! lease_claim_sql {
    ($table:literal, $key:literal, $returning:literal) => {
        [
            lease_claim_sql!(@one $table, $key, $returning, ""),
            lease_claim_sql!(@one $table, $key, $returning, "FOR UPDATE SKIP LOCKED"),
        ]
    };
    (@one $table:literal, $key:literal, $returning:literal, $lock:literal) => {
        concat!(
            "UPDATE ", $table, " SET status = 'sending', locked_until = $2, attempts = attempts + 1, claimed_by = $4",
            " WHERE (", $key,
            ") IN (SELECT ", $key, " FROM ", $table, " WHERE status = 'queued' AND next_attempt_at <= $1",
            " ORDER BY next_attempt_at LIMIT $3 ", $lock, ") ", $returning
        )
    };
}
pub(crate) use lease_claim_sql;

/// Puts rows whose lease ran out by `$1` back in the queue, as they were
/// when claimed; the next claim counts the attempt. The last resort: a dead
/// worker's rows normally go back at once (see [`workers::reap`]); this
/// catches the claims of a worker that proved nothing (a previous release).
macro_rules! requeue_expired_sql {
    ($table:literal) => {
        concat!(
            "UPDATE ",
            $table,
            " SET status = 'queued', locked_until = NULL, claimed_by = NULL",
            " WHERE status = 'sending' AND locked_until <= $1"
        )
    };
}
pub(crate) use requeue_expired_sql;

/// Why the database could not be opened. The messages never hold the
/// URL's secrets: the URL is shown redacted and the driver's own text is
/// scrubbed of them (see [`crate::config::redact`] and [`scrub`]), because
/// these errors are printed and logged.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("database.url `{url}` is not usable: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot create the directory for the SQLite database {path}: {source}")]
    CreateDir { path: String, source: std::io::Error },
    #[error("cannot open the database at {url}: {reason}")]
    Open { url: String, reason: String },
    #[error(transparent)]
    Schema(#[from] schema::SchemaAccessError),
    #[error("cannot fill in the search keys of rows written before them: {0}")]
    SearchKeys(sqlx::Error),
}

impl ConnectError {
    /// The database's schema does not match this binary (behind, ahead and
    /// incompatible, or changed): the operator must migrate or deploy the
    /// matching binary, and a restart alone cannot help.
    pub fn is_schema_refusal(&self) -> bool {
        matches!(self, Self::Schema(schema::SchemaAccessError::Refused(_)))
    }

    /// The URL itself is wrong: no retry can help.
    pub fn is_configuration(&self) -> bool {
        matches!(self, Self::BadUrl { .. })
    }
}

/// The tables bulk writes refresh the statistics of.
#[derive(Debug, Clone, Copy)]
pub enum Table {
    Subscribers,
    Deliveries,
}

impl Db {
    /// Opens the database named by the settings. SQLite files (and their
    /// directory) are created when missing.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, ConnectError> {
        let url = settings.url.as_str();
        let bad_url = |source: sqlx::Error| ConnectError::BadUrl {
            url: redact(url),
            reason: scrub(&source.to_string(), url),
        };
        let open = |source: sqlx::Error| ConnectError::Open {
            url: redact(url),
            reason: scrub(&source.to_string(), url),
        };
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(bad_url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            if let Some(dir) = options.get_filename().parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| ConnectError::CreateDir {
                    path: dir.display().to_string(),
                    source,
                })?;
            }
            // SQLite has one writer at a time; a single connection queues
            // writers in the pool (fair, async) instead of in SQLite's busy
            // handler (sleeps of up to 100 ms), and statements are short.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .map_err(open)?;
            Ok(Db::Sqlite(pool))
        } else {
            let options = PgConnectOptions::from_str(url).map_err(bad_url)?;
            let pool = PgPoolOptions::new()
                .max_connections(settings.max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(open)?;
            Ok(Db::Postgres(pool))
        }
    }

    /// Applies the migrations this binary knows and the database lacks
    /// (see [`schema::apply`]), then gives the rows written without a
    /// search key theirs (see [`search_keys::backfill`]).
    pub async fn migrate(&self) -> Result<schema::Compatibility, ConnectError> {
        let compatibility = schema::apply(self).await?;
        search_keys::backfill(self).await.map_err(ConnectError::SearchKeys)?;
        Ok(compatibility)
    }

    /// Refuses a schema this binary cannot run against, without changing
    /// it (see [`schema::check`]).
    pub async fn check_schema(&self) -> Result<schema::Compatibility, ConnectError> {
        Ok(schema::check(self).await?)
    }

    /// Answers whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
    }

    /// The statement of a `[sqlite, postgres]` pair for this database.
    pub fn pick(&self, statements: &[&'static str; 2]) -> &'static str {
        match self {
            Db::Sqlite(_) => statements[0],
            Db::Postgres(_) => statements[1],
        }
    }

    /// Refreshes PostgreSQL's statistics of `table` after a bulk write
    /// changed its size at once, so the next queries are planned for the
    /// table as it is, not as autovacuum last saw it. SQLite keeps no
    /// statistics unless asked. A failure only costs plans: it is logged.
    pub async fn refresh_statistics(&self, table: Table) {
        if let Db::Postgres(pool) = self {
            let statement = match table {
                Table::Subscribers => "ANALYZE subscribers",
                Table::Deliveries => "ANALYZE deliveries",
            };
            if let Err(e) = sqlx::query(statement).execute(pool).await {
                tracing::warn!(error = %e, ?table, "cannot refresh the table's statistics");
            }
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }
}

/// The secrets `url` holds, as written and percent-decoded.
fn secrets(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    if let (Some(scheme_end), Some(at)) = (base.find("://"), base.rfind('@'))
        && at > scheme_end
        && let Some((_, password)) = base[scheme_end + 3..at].split_once(':')
    {
        found.push(password.to_owned());
    }
    for pair in query.split('&') {
        if let Some((name, value)) = pair.split_once('=')
            && is_secret_parameter(name)
        {
            found.push(value.to_owned());
        }
    }
    let decoded: Vec<String> = found
        .iter()
        .filter_map(|s| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        })
        .collect();
    found.extend(decoded);
    found.retain(|s| !s.is_empty());
    // Longest first, so a secret that contains another goes whole.
    found.sort_by_key(|s| std::cmp::Reverse(s.len()));
    found
}

/// `text` (a driver's error message) with every secret of `url` replaced
/// by `***`: drivers may quote the URL or a parameter back.
pub fn scrub(text: &str, url: &str) -> String {
    let mut text = text.to_owned();
    for secret in secrets(url) {
        text = text.replace(&secret, "***");
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn scrub_removes_each_secret_of_the_url_from_a_message() {
        let url = "postgres://u:p%40ss@db/x?password=two%20words";
        let message = "bad: postgres://u:p%40ss@db/x (p@ss, two words, two%20words)";
        let scrubbed = super::scrub(message, url);
        assert!(!scrubbed.contains("p@ss") && !scrubbed.contains("p%40ss"), "{scrubbed}");
        assert!(
            !scrubbed.contains("two words") && !scrubbed.contains("two%20words"),
            "{scrubbed}"
        );
    }
}
