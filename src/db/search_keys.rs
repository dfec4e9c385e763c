//! The stored search keys (`subscribers.search_key`, `articles.search_key`,
//! see [`SearchKey`]): the patterns a staff search matches rows with, and
//! filling in the keys of rows written without one.
//!
//! Every statement that writes a reader's address or name, or an article's
//! title, writes the key in the same statement. Rows written before the
//! keys existed (or by the previous release during a rolling upgrade) have
//! none: [`backfill`] fills them in when migrations are applied (`gazette
//! migrate`, `serve` with `database.migrate_on_start`), and until then a
//! search compares them as searches did before, with the database's
//! `LOWER` ([`lowercase_pattern`]).

use uuid::Uuid;

use crate::db::Db;
use crate::domain::{SearchKey, fold_for_search};

/// `%text%` for `LIKE … ESCAPE '\'`: `%`, `_` and `\` in `text` match
/// themselves, not any text or any character.
fn containing(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// What a stored key must match to contain `query` (folded like the key).
pub fn key_pattern(query: &str) -> String {
    containing(&fold_for_search(query))
}

/// What a row without a key yet must match, with the database's `LOWER`:
/// the comparison searches made before there were keys (which folds only
/// ASCII on SQLite).
pub fn lowercase_pattern(query: &str) -> String {
    containing(&query.trim().to_lowercase())
}

/// Rows one backfill transaction reads and writes (one statement each).
const BATCH: usize = 5_000;

/// How many keys [`backfill`] filled in.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Filled {
    pub readers: u64,
    pub articles: u64,
}

/// Fills in the key of every reader and article that has none, in batches
/// of [`BATCH`] in id order, each in a transaction that holds the rows from
/// the read to the write (so a concurrent change of a name cannot be
/// overwritten by a key made from the old one), logging its progress.
/// Idempotent: a second run finds nothing to do, at the cost of one look
/// at an empty index.
pub async fn backfill(db: &Db) -> Result<Filled, sqlx::Error> {
    Ok(Filled {
        readers: fill(db, Keyed::Readers).await?,
        articles: fill(db, Keyed::Articles).await?,
    })
}

/// The rows without a key after id `$1`, at most `$2`, in id order;
/// `[sqlite, postgres]` (PostgreSQL locks them until the batch commits).
macro_rules! missing_sql {
    ($select:literal) => {
        [
            concat!($select, " WHERE search_key IS NULL AND id > $1 ORDER BY id LIMIT $2"),
            concat!(
                $select,
                " WHERE search_key IS NULL AND id > $1 ORDER BY id LIMIT $2 FOR UPDATE"
            ),
        ]
    };
}

/// The tables with a search key.
#[derive(Debug, Clone, Copy)]
enum Keyed {
    Readers,
    Articles,
}

impl Keyed {
    fn table(self) -> &'static str {
        match self {
            Keyed::Readers => "subscribers",
            Keyed::Articles => "articles",
        }
    }

    fn count_missing(self) -> &'static str {
        match self {
            Keyed::Readers => "SELECT COUNT(*) FROM subscribers WHERE search_key IS NULL",
            Keyed::Articles => "SELECT COUNT(*) FROM articles WHERE search_key IS NULL",
        }
    }

    /// The next rows without a key (see [`missing_sql!`]), as [`Missing`].
    fn missing(self) -> [&'static str; 2] {
        match self {
            Keyed::Readers => missing_sql!("SELECT id, email, name, erased_at IS NOT NULL AS erased FROM subscribers"),
            // An article's key is made of one text.
            Keyed::Articles => missing_sql!("SELECT id, title, '' AS no_name, FALSE AS erased FROM articles"),
        }
    }

    /// Keys `$2` for ids `$1` (PostgreSQL; SQLite's statement is built per
    /// batch size by [`sqlite_store`]).
    fn store_postgres(self) -> &'static str {
        match self {
            Keyed::Readers => {
                "UPDATE subscribers AS t SET search_key = k.search_key
                 FROM UNNEST($1::uuid[], $2::text[]) AS k(id, search_key) WHERE t.id = k.id"
            }
            Keyed::Articles => {
                "UPDATE articles AS t SET search_key = k.search_key
                 FROM UNNEST($1::uuid[], $2::text[]) AS k(id, search_key) WHERE t.id = k.id"
            }
        }
    }

    /// A row's key from what [`Keyed::missing`] read of it.
    fn key(self, (_, first, second, erased): &Missing) -> SearchKey {
        match self {
            Keyed::Readers if *erased => SearchKey::of_erased_reader(),
            Keyed::Readers => SearchKey::of_reader(first, second),
            Keyed::Articles => SearchKey::of_article(first),
        }
    }
}

/// A row without a key: its id, the one or two texts its key is made of,
/// and whether the reader was erased.
type Missing = (Uuid, String, String, bool);

/// `UPDATE … FROM (VALUES (?, ?), …)` for `rows` ids and keys.
fn sqlite_store(keyed: Keyed, rows: usize) -> String {
    let values = vec!["(?, ?)"; rows].join(", ");
    let table = keyed.table();
    format!("UPDATE {table} SET search_key = v.column2 FROM (VALUES {values}) AS v WHERE {table}.id = v.column1")
}

async fn fill(db: &Db, keyed: Keyed) -> Result<u64, sqlx::Error> {
    let table = keyed.table();
    let missing: i64 = crate::with_pool!(db, pool => {
        sqlx::query_scalar(keyed.count_missing()).fetch_one(pool).await?
    });
    if missing == 0 {
        return Ok(0);
    }
    tracing::info!("{table}: filling in the search keys of {missing} rows written before them");
    let limit = i64::try_from(BATCH).unwrap_or(i64::MAX);
    let mut after = Uuid::nil();
    let mut filled: u64 = 0;
    loop {
        let rows: Vec<Missing> = match db {
            Db::Sqlite(pool) => {
                // The write lock first: the batch read is still so when written.
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let rows: Vec<Missing> = sqlx::query_as(keyed.missing()[0])
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await?;
                if !rows.is_empty() {
                    let mut store = sqlx::query(sqlx::AssertSqlSafe(sqlite_store(keyed, rows.len())));
                    for row in &rows {
                        store = store.bind(row.0).bind(keyed.key(row).into_string());
                    }
                    store.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                rows
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let rows: Vec<Missing> = sqlx::query_as(keyed.missing()[1])
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await?;
                if !rows.is_empty() {
                    let ids: Vec<Uuid> = rows.iter().map(|row| row.0).collect();
                    let keys: Vec<String> = rows.iter().map(|row| keyed.key(row).into_string()).collect();
                    sqlx::query(keyed.store_postgres())
                        .bind(ids)
                        .bind(keys)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                rows
            }
        };
        let Some(last) = rows.last() else { break };
        after = last.0;
        filled += rows.len() as u64;
        tracing::info!("{table}: search keys filled in for {filled} of {missing} rows");
        if rows.len() < BATCH {
            break;
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_in_a_query_match_themselves() {
        assert_eq!(key_pattern(" 50%_OFF\\ "), "%50\\%\\_off\\\\%");
        assert_eq!(key_pattern("Straße"), "%strasse%");
        assert_eq!(lowercase_pattern(" Straße_ "), "%straße\\_%");
        assert_eq!(key_pattern(""), "%%");
    }
}
