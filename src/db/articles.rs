//! Article rows. An article from a feed is its entry's id within its feed
//! (its link when the entry has none): no entry of one feed overwrites an
//! article of another, and entries sharing a link stay apart. Articles
//! added by hand have no feed and are one per address. An import never
//! overwrites what staff edited, and saving an unchanged article changes
//! nothing.
//!
//! Feed entries are saved in batches ([`save_batch`]): one transaction, the
//! batch's articles looked up with one statement, the new ones inserted
//! with one more; only changed articles are written one by one.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::db::search_keys::{key_pattern, lowercase_pattern};
use crate::domain::{ArticleTitle, ArticleUrl, SearchKey, SummarySource, fold_for_search};
use crate::i18n::Language;
use crate::with_pool;

/// An article as an import or a form delivers it, already parsed.
#[derive(Debug, Clone)]
pub struct NewArticle {
    pub url: ArticleUrl,
    /// The feed the entry came from, by the address it is read from (a
    /// source's URL, or a file's `file://` URL); `None` for articles added
    /// by hand. An entry's identity is its `guid` within its feed.
    pub feed: Option<String>,
    /// The feed entry's own id; `None` when the entry has none (it is then
    /// known by its link, see [`NewArticle::identity`]) and for articles
    /// added by hand.
    pub guid: Option<String>,
    /// The name the digest shows for where the article came from: the
    /// source's name, else the feed's own title.
    pub source_name: Option<String>,
    pub title: ArticleTitle,
    pub author: Option<String>,
    /// `None` when the source gave no date: the import time is used for a
    /// new article, and an existing one keeps its date.
    pub published_at: Option<DateTime<Utc>>,
    pub body: String,
    pub summary: String,
    pub summary_source: SummarySource,
    /// The language it was published in (its source's, its feed's or its
    /// entry's, or the one staff chose); `None` when unknown.
    pub language: Option<Language>,
}

impl NewArticle {
    /// An article added by hand (the staff form, a plain-text file): it has
    /// no feed, so it is known by its address alone. Its language is
    /// unknown until the caller says it.
    pub fn by_hand(
        url: ArticleUrl,
        title: ArticleTitle,
        author: Option<String>,
        published_at: Option<DateTime<Utc>>,
        body: String,
        summary: String,
        summary_source: SummarySource,
    ) -> Self {
        Self {
            url,
            feed: None,
            guid: None,
            source_name: None,
            title,
            author,
            published_at,
            body,
            summary,
            summary_source,
            language: None,
        }
    }

    /// What the article is known by within its feed: the entry's id, or
    /// its link when it has none. Stored as the row's `guid`.
    pub fn identity(&self) -> &str {
        self.guid.as_deref().unwrap_or(self.url.as_str())
    }

    /// Its title, folded for the staff's search.
    fn search_key(&self) -> SearchKey {
        SearchKey::of_article(self.title.as_str())
    }
}

/// What saving an article did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Added,
    Updated,
    /// Already there, the same.
    Unchanged,
    /// Already there and edited by staff: left as staff made it.
    KeptStaffEdit,
}

/// A row an article may be: its own (found by its identity in its feed),
/// or an unclaimed one it adopts.
#[derive(Debug, sqlx::FromRow)]
struct Existing {
    id: Uuid,
    url: String,
    feed: Option<String>,
    guid: Option<String>,
    source_name: Option<String>,
    title: String,
    author: Option<String>,
    published_at: DateTime<Utc>,
    body: String,
    summary: String,
    summary_source: String,
    language: Option<String>,
    edited_by_staff: bool,
    /// Deleted by staff (and not yet purged): an import leaves it deleted.
    deleted: bool,
}

macro_rules! existing_columns {
    () => {
        "id, url, feed, guid, source_name, title, author, published_at, body, summary, summary_source, language, \
         edited_by_staff, deleted_at IS NOT NULL AS deleted"
    };
}

/// The columns an insert writes, in its order.
macro_rules! insert_articles {
    () => {
        "INSERT INTO articles (id, url, feed, guid, source_name, title, author, published_at, body, summary,
                               summary_source, language, search_key, created_at, updated_at)"
    };
}

/// A row another entry of the same feed already claimed does not conflict:
/// a concurrent import of the same feed (PostgreSQL) added it first.
macro_rules! on_entry_conflict {
    () => {
        " ON CONFLICT (feed, guid) WHERE feed IS NOT NULL DO NOTHING RETURNING id"
    };
}

// SQLite: `?` placeholders only (sqlx looks numbered ones up by a linear
// search, which makes a statement of n parameters O(n²) to bind).
const SQLITE_OWN_ROWS: &str = concat!(
    "SELECT ",
    existing_columns!(),
    " FROM articles WHERE feed = ? AND guid IN"
);
const SQLITE_UNCLAIMED_BY_GUID: &str = concat!(
    "SELECT ",
    existing_columns!(),
    " FROM articles WHERE feed IS NULL AND guid IN"
);
const SQLITE_UNCLAIMED_BY_URL: &str = concat!(
    "SELECT ",
    existing_columns!(),
    " FROM articles WHERE feed IS NULL AND url IN"
);
const SQLITE_INSERT: &str = concat!(insert_articles!(), " VALUES");

/// Rows per SQLite insert: 15 parameters each, well under SQLite's 32 766.
const SQLITE_ROWS_PER_INSERT: usize = 1_000;

// PostgreSQL: the keys as arrays. Unclaimed rows are locked, so that two
// imports cannot both adopt one. The entry index leads with guid: with the
// feed first, and no statistics yet on rows just imported, a plan could
// walk the feed's whole part of the index for each batch (saving a
// 50 000-entry feed took 23 s with the plan made on the empty table, 2 s
// with guid first).
const POSTGRES_OWN_ROWS: &str = concat!(
    "SELECT ",
    existing_columns!(),
    " FROM articles WHERE feed = $1 AND guid = ANY($2)"
);
const POSTGRES_UNCLAIMED: &str = concat!(
    "SELECT ",
    existing_columns!(),
    " FROM articles WHERE feed IS NULL AND (guid = ANY($1) OR url = ANY($2)) FOR UPDATE"
);
const POSTGRES_INSERT: &str = concat!(
    insert_articles!(),
    "
     SELECT i.*, $14::timestamptz, $14::timestamptz
     FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                 $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[]) AS i",
    on_entry_conflict!()
);

/// The most a PostgreSQL statement's parameters should hold. sqlx 0.9
/// leaves Nagle's algorithm on for its TCP connections (launchbadge/sqlx
/// issue 4335, fixed after 0.9.0): a message larger than the socket's
/// initial send buffer (16 KiB on Linux) waits for the server's delayed
/// ACK, 40 ms, each time. Measured on a 20 000-entry import over loopback:
/// 0.85 s in 16 KiB statements, 12.6 s in 32 KiB ones (and 7.5 s in one
/// statement per 250 entries).
const POSTGRES_STATEMENT_BYTES: usize = 12 * 1024;

/// `items` in runs whose `size` adds up to at most
/// [`POSTGRES_STATEMENT_BYTES`] (one item at least).
fn postgres_runs<T>(items: &[T], size: impl Fn(&T) -> usize) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let n = rest
            .iter()
            .take_while(|item| {
                bytes += size(item);
                bytes <= POSTGRES_STATEMENT_BYTES
            })
            .count()
            .max(1);
        let (run, tail) = rest.split_at(n);
        rest = tail;
        Some(run)
    })
}

/// What an article adds to an insert's parameters, about.
fn insert_bytes((_, a): &(Uuid, &NewArticle)) -> usize {
    // The title twice: as it is, and folded in its search key.
    let text = [
        a.url.as_str(),
        a.identity(),
        a.title.as_str(),
        a.title.as_str(),
        &a.body,
        &a.summary,
    ];
    let optional = [a.feed.as_deref(), a.source_name.as_deref(), a.author.as_deref()];
    text.iter().map(|t| t.len()).sum::<usize>() + optional.iter().flatten().map(|t| t.len()).sum::<usize>() + 120
}

/// A hand-added article's row: the hand-added one at its address, else
/// the oldest imported one there.
const BY_ADDRESS: &str = concat!(
    "SELECT ",
    existing_columns!(),
    " FROM articles WHERE url = $1 ORDER BY CASE WHEN feed IS NULL THEN 0 ELSE 1 END, created_at, id LIMIT 1"
);

/// Writes an article's content over its row, and makes the row its feed's
/// (a row adopted from before feeds were recorded, or its own). A row
/// staff edited or deleted meanwhile, or that another feed adopted, is
/// left alone.
const UPDATE: &str = "UPDATE articles SET url = $2, feed = $3, guid = $4, source_name = $5, title = $6, author = $7,
                             published_at = $8, body = $9, summary = $10, summary_source = $11, updated_at = $12,
                             language = $14, search_key = $15, version = version + 1
                      WHERE id = $1 AND edited_by_staff = $13 AND (feed IS NULL OR feed = $3)
                        AND deleted_at IS NULL";

/// Makes an unclaimed row the feed's, content unchanged.
const CLAIM: &str = "UPDATE articles SET feed = $2, guid = $3, source_name = $4 WHERE id = $1 AND feed IS NULL";

/// One transaction on either backend.
enum Tx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// `?, ?, …`: `n` placeholders.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

impl Tx {
    /// SQLite: `BEGIN IMMEDIATE`, the write lock from the first lookup, so
    /// that what the lookups found is still so when the batch is written.
    async fn begin(db: &Db) -> Result<Self, sqlx::Error> {
        Ok(match db {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
    }

    /// The rows of `feed` whose identities are among `keys`.
    async fn own_rows(&mut self, feed: &str, keys: &[&str]) -> Result<Vec<Existing>, sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => {
                let sql = format!("{SQLITE_OWN_ROWS} ({})", placeholders(keys.len()));
                let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(feed);
                for key in keys {
                    query = query.bind(*key);
                }
                query.fetch_all(&mut **tx).await
            }
            Tx::Postgres(tx) => {
                let mut rows = Vec::new();
                for run in postgres_runs(keys, |key| key.len() + 8) {
                    let found: Vec<Existing> = sqlx::query_as(POSTGRES_OWN_ROWS)
                        .bind(feed)
                        .bind(run)
                        .fetch_all(&mut **tx)
                        .await?;
                    rows.extend(found);
                }
                Ok(rows)
            }
        }
    }

    /// Rows of no feed (hand-added, or written before feeds were recorded)
    /// with one of `guids` or at one of `urls`.
    async fn unclaimed_rows(&mut self, guids: &[&str], urls: &[&str]) -> Result<Vec<Existing>, sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => {
                let sql = format!(
                    "{SQLITE_UNCLAIMED_BY_GUID} ({}) UNION ALL {SQLITE_UNCLAIMED_BY_URL} ({})",
                    placeholders(guids.len()),
                    placeholders(urls.len())
                );
                let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
                for key in guids.iter().chain(urls) {
                    query = query.bind(*key);
                }
                query.fetch_all(&mut **tx).await
            }
            Tx::Postgres(tx) => {
                let pairs: Vec<(&str, &str)> = guids.iter().copied().zip(urls.iter().copied()).collect();
                let mut rows = Vec::new();
                for run in postgres_runs(&pairs, |(guid, url)| guid.len() + url.len() + 16) {
                    let (guids, urls): (Vec<&str>, Vec<&str>) = run.iter().copied().unzip();
                    let found: Vec<Existing> = sqlx::query_as(POSTGRES_UNCLAIMED)
                        .bind(guids)
                        .bind(urls)
                        .fetch_all(&mut **tx)
                        .await?;
                    rows.extend(found);
                }
                Ok(rows)
            }
        }
    }

    async fn by_address(&mut self, url: &str) -> Result<Option<Existing>, sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => sqlx::query_as(BY_ADDRESS).bind(url).fetch_optional(&mut **tx).await,
            Tx::Postgres(tx) => sqlx::query_as(BY_ADDRESS).bind(url).fetch_optional(&mut **tx).await,
        }
    }

    /// Inserts the articles under the ids given; returns the ids inserted
    /// (an entry a concurrent import of its feed added first is not).
    async fn insert(&mut self, rows: &[(Uuid, &NewArticle)], now: DateTime<Utc>) -> Result<HashSet<Uuid>, sqlx::Error> {
        let mut inserted = HashSet::with_capacity(rows.len());
        if rows.is_empty() {
            return Ok(inserted);
        }
        match self {
            Tx::Sqlite(tx) => {
                for chunk in rows.chunks(SQLITE_ROWS_PER_INSERT) {
                    let row = format!("({})", placeholders(15));
                    let sql = format!(
                        "{SQLITE_INSERT} {}{}",
                        vec![row.as_str(); chunk.len()].join(", "),
                        on_entry_conflict!()
                    );
                    let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
                    for (id, a) in chunk {
                        query = query
                            .bind(*id)
                            .bind(a.url.as_str())
                            .bind(a.feed.as_deref())
                            .bind(a.feed.as_ref().map(|_| a.identity()))
                            .bind(a.source_name.as_deref())
                            .bind(a.title.as_str())
                            .bind(a.author.as_deref())
                            .bind(a.published_at.unwrap_or(now))
                            .bind(&a.body)
                            .bind(&a.summary)
                            .bind(a.summary_source.as_str())
                            .bind(a.language.map(Language::tag))
                            .bind(a.search_key().into_string())
                            .bind(now)
                            .bind(now);
                    }
                    let ids: Vec<Uuid> = query.fetch_all(&mut **tx).await?;
                    inserted.extend(ids);
                }
            }
            Tx::Postgres(tx) => {
                for chunk in postgres_runs(rows, insert_bytes) {
                    let ids: Vec<Uuid> = sqlx::query_scalar(POSTGRES_INSERT)
                        .bind(chunk.iter().map(|(id, _)| *id).collect::<Vec<_>>())
                        .bind(chunk.iter().map(|(_, a)| a.url.as_str()).collect::<Vec<_>>())
                        .bind(chunk.iter().map(|(_, a)| a.feed.as_deref()).collect::<Vec<_>>())
                        .bind(
                            chunk
                                .iter()
                                .map(|(_, a)| a.feed.as_ref().map(|_| a.identity()))
                                .collect::<Vec<_>>(),
                        )
                        .bind(chunk.iter().map(|(_, a)| a.source_name.as_deref()).collect::<Vec<_>>())
                        .bind(chunk.iter().map(|(_, a)| a.title.as_str()).collect::<Vec<_>>())
                        .bind(chunk.iter().map(|(_, a)| a.author.as_deref()).collect::<Vec<_>>())
                        .bind(
                            chunk
                                .iter()
                                .map(|(_, a)| a.published_at.unwrap_or(now))
                                .collect::<Vec<_>>(),
                        )
                        .bind(chunk.iter().map(|(_, a)| a.body.as_str()).collect::<Vec<_>>())
                        .bind(chunk.iter().map(|(_, a)| a.summary.as_str()).collect::<Vec<_>>())
                        .bind(chunk.iter().map(|(_, a)| a.summary_source.as_str()).collect::<Vec<_>>())
                        .bind(
                            chunk
                                .iter()
                                .map(|(_, a)| a.language.map(Language::tag))
                                .collect::<Vec<_>>(),
                        )
                        .bind(
                            chunk
                                .iter()
                                .map(|(_, a)| a.search_key().into_string())
                                .collect::<Vec<_>>(),
                        )
                        .bind(now)
                        .fetch_all(&mut **tx)
                        .await?;
                    inserted.extend(ids);
                }
            }
        }
        Ok(inserted)
    }

    /// Writes `article` over row `id` as `identity` (feed, guid, source
    /// name); `false` when staff edited the row meanwhile.
    async fn update(
        &mut self,
        id: Uuid,
        article: &NewArticle,
        identity: Identity<'_>,
        published_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        macro_rules! run {
            ($tx:expr) => {
                sqlx::query(UPDATE)
                    .bind(id)
                    .bind(article.url.as_str())
                    .bind(identity.feed)
                    .bind(identity.guid)
                    .bind(identity.source_name)
                    .bind(article.title.as_str())
                    .bind(article.author.as_deref())
                    .bind(published_at)
                    .bind(&article.body)
                    .bind(&article.summary)
                    .bind(article.summary_source.as_str())
                    .bind(now)
                    .bind(false)
                    .bind(article.language.map(Language::tag))
                    .bind(article.search_key().into_string())
                    .execute(&mut **$tx)
                    .await?
                    .rows_affected()
            };
        }
        let changed = match self {
            Tx::Sqlite(tx) => run!(tx),
            Tx::Postgres(tx) => run!(tx),
        };
        Ok(changed == 1)
    }

    /// Makes the unclaimed row `id` the feed's.
    async fn claim(&mut self, id: Uuid, identity: Identity<'_>) -> Result<(), sqlx::Error> {
        macro_rules! run {
            ($tx:expr) => {{
                sqlx::query(CLAIM)
                    .bind(id)
                    .bind(identity.feed)
                    .bind(identity.guid)
                    .bind(identity.source_name)
                    .execute(&mut **$tx)
                    .await?;
            }};
        }
        match self {
            Tx::Sqlite(tx) => run!(tx),
            Tx::Postgres(tx) => run!(tx),
        }
        Ok(())
    }
}

/// Who a row is: its feed, its identity there, the name it is shown under.
#[derive(Debug, Clone, Copy)]
struct Identity<'a> {
    feed: Option<&'a str>,
    guid: Option<&'a str>,
    source_name: Option<&'a str>,
}

impl<'a> Identity<'a> {
    /// The identity an article from a feed gives its row.
    fn of(article: &'a NewArticle) -> Self {
        Self {
            feed: article.feed.as_deref(),
            guid: article.feed.as_ref().map(|_| article.identity()),
            source_name: article.source_name.as_deref(),
        }
    }

    /// The identity a row already has (a hand-added article saved onto it
    /// leaves it as it is).
    fn kept(row: &'a Existing) -> Self {
        Self {
            feed: row.feed.as_deref(),
            guid: row.guid.as_deref(),
            source_name: row.source_name.as_deref(),
        }
    }
}

/// Which row an article is, when it is already there.
enum Found {
    /// Its own row: its feed's, or the hand-added one at its address.
    Own(Existing),
    /// A row of no feed it takes over: one imported before feeds were
    /// recorded (same guid, or same address when the entry has no id), or
    /// one added by hand at its address.
    Adopted(Existing),
}

/// What to do with one article.
enum Plan {
    Insert,
    Unchanged,
    /// Content the same; the adopted row becomes the feed's.
    Claim(Uuid),
    Update {
        id: Uuid,
        published_at: DateTime<Utc>,
        keep_identity: bool,
    },
    /// Staff edited the row: left as they made it (claimed for the feed
    /// when it came from a feed, never when it was added by hand).
    Kept {
        claim: Option<Uuid>,
    },
}

fn plan(article: &NewArticle, found: Option<&Found>) -> Plan {
    let (row, adopted) = match found {
        None => return Plan::Insert,
        Some(Found::Own(row)) => (row, false),
        Some(Found::Adopted(row)) => (row, true),
    };
    // A row staff deleted stays deleted (restorable from "Recently
    // deleted"): the feed bringing its entry again neither brings it back
    // nor adds a second one.
    if row.edited_by_staff || row.deleted {
        let claim = (adopted && row.guid.is_some()).then_some(row.id);
        return Plan::Kept { claim };
    }
    let published_at = article.published_at.unwrap_or(row.published_at);
    let hand_added = article.feed.is_none();
    let same_content = row.url == article.url.as_str()
        && row.title == article.title.as_str()
        && row.author == article.author
        && row.published_at.timestamp() == published_at.timestamp()
        && row.body == article.body
        && row.summary == article.summary
        && row.summary_source == article.summary_source.as_str()
        && row.language.as_deref() == article.language.map(Language::tag);
    // A feed's new title renames its articles; an adopted row had no name.
    let same_name = hand_added || adopted || row.source_name == article.source_name;
    match (same_content && same_name, adopted) {
        (true, false) => Plan::Unchanged,
        (true, true) => Plan::Claim(row.id),
        (false, _) => Plan::Update {
            id: row.id,
            published_at,
            keep_identity: hand_added,
        },
    }
}

/// Finds, for each article from a feed, its own row or one it adopts.
/// An article's own row is found by its identity in its feed. Failing that
/// it adopts an unclaimed row: first one with its guid (imported before
/// feeds were recorded), then one at its address that has no guid (added
/// by hand) or, for an entry without an id of its own, any (the previous
/// release's parser gave such entries an id of its making). A row is
/// adopted once.
async fn find_from_feeds(tx: &mut Tx, articles: &[NewArticle], found: &mut [Option<Found>]) -> Result<(), sqlx::Error> {
    let mut by_feed: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, a) in articles.iter().enumerate() {
        if let Some(feed) = a.feed.as_deref() {
            by_feed.entry(feed).or_default().push(i);
        }
    }
    let mut missing = Vec::new();
    for (feed, indexes) in by_feed {
        let keys: Vec<&str> = indexes.iter().map(|&i| articles[i].identity()).collect();
        let mut own: HashMap<String, Existing> = tx
            .own_rows(feed, &keys)
            .await?
            .into_iter()
            .filter_map(|row| Some((row.guid.clone()?, row)))
            .collect();
        for i in indexes {
            match own.remove(articles[i].identity()) {
                Some(row) => found[i] = Some(Found::Own(row)),
                None => missing.push(i),
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let guids: Vec<&str> = missing.iter().map(|&i| articles[i].identity()).collect();
    let urls: Vec<&str> = missing.iter().map(|&i| articles[i].url.as_str()).collect();
    let mut unclaimed: HashMap<Uuid, Existing> = tx
        .unclaimed_rows(&guids, &urls)
        .await?
        .into_iter()
        .map(|row| (row.id, row))
        .collect();
    if unclaimed.is_empty() {
        return Ok(());
    }
    // Oldest first, so that the same rows are adopted whatever the order.
    let mut rows: Vec<&Existing> = unclaimed.values().collect();
    rows.sort_by_key(|row| row.id);
    let mut by_guid: HashMap<String, Uuid> = HashMap::new();
    let mut by_url: HashMap<String, Vec<Uuid>> = HashMap::new();
    for row in rows {
        if let Some(guid) = &row.guid {
            by_guid.entry(guid.clone()).or_insert(row.id);
        }
        by_url.entry(row.url.clone()).or_default().push(row.id);
    }
    let mut still = Vec::new();
    for i in missing {
        match by_guid.get(articles[i].identity()).and_then(|id| unclaimed.remove(id)) {
            Some(row) => found[i] = Some(Found::Adopted(row)),
            None => still.push(i),
        }
    }
    for i in still {
        let article = &articles[i];
        let candidates = by_url.get(article.url.as_str()).map(Vec::as_slice).unwrap_or_default();
        let adoptable = candidates.iter().copied().find(|id| {
            unclaimed
                .get(id)
                .is_some_and(|row| row.guid.is_none() || article.guid.is_none())
        });
        if let Some(row) = adoptable.and_then(|id| unclaimed.remove(&id)) {
            found[i] = Some(Found::Adopted(row));
        }
    }
    Ok(())
}

/// Saves a batch of articles in one transaction and says what became of
/// each, in order. Articles from a feed are found by their identity in it
/// (see [`find_from_feeds`] for rows from before feeds were recorded); a
/// hand-added one by its address. The batch must not hold one feed's
/// identity twice (the importer turns repeats away first).
pub async fn save_batch(db: &Db, articles: &[NewArticle], now: DateTime<Utc>) -> Result<Vec<Saved>, sqlx::Error> {
    if articles.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = Tx::begin(db).await?;
    let mut found: Vec<Option<Found>> = articles.iter().map(|_| None).collect();
    find_from_feeds(&mut tx, articles, &mut found).await?;
    for (i, article) in articles.iter().enumerate() {
        if article.feed.is_none() {
            found[i] = tx.by_address(article.url.as_str()).await?.map(Found::Own);
        }
    }
    let plans: Vec<Plan> = articles
        .iter()
        .zip(&found)
        .map(|(article, found)| plan(article, found.as_ref()))
        .collect();
    let new: Vec<(Uuid, &NewArticle)> = articles
        .iter()
        .zip(&plans)
        .filter(|(_, plan)| matches!(plan, Plan::Insert))
        .map(|(article, _)| (Uuid::now_v7(), article))
        .collect();
    let inserted = tx.insert(&new, now).await?;
    let mut new_ids = new.iter().map(|(id, _)| *id);
    let mut saved = Vec::with_capacity(articles.len());
    for ((article, plan), found) in articles.iter().zip(plans).zip(&found) {
        saved.push(match plan {
            Plan::Insert => match new_ids.next().is_some_and(|id| inserted.contains(&id)) {
                true => Saved::Added,
                false => Saved::Unchanged,
            },
            Plan::Unchanged => Saved::Unchanged,
            Plan::Claim(id) => {
                tx.claim(id, Identity::of(article)).await?;
                Saved::Unchanged
            }
            Plan::Kept { claim } => {
                if let Some(id) = claim {
                    tx.claim(id, Identity::of(article)).await?;
                }
                Saved::KeptStaffEdit
            }
            Plan::Update {
                id,
                published_at,
                keep_identity,
            } => {
                let identity = match (keep_identity, found) {
                    (true, Some(Found::Own(row) | Found::Adopted(row))) => Identity::kept(row),
                    _ => Identity::of(article),
                };
                match tx.update(id, article, identity, published_at, now).await? {
                    true => Saved::Updated,
                    false => Saved::KeptStaffEdit,
                }
            }
        });
    }
    tx.commit().await?;
    Ok(saved)
}

/// Adds or updates one article (see [`save_batch`]).
pub async fn save(db: &Db, article: &NewArticle, now: DateTime<Utc>) -> Result<Saved, sqlx::Error> {
    let saved = save_batch(db, std::slice::from_ref(article), now).await?;
    Ok(saved[0])
}

/// An article as a digest lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ListedArticle {
    pub id: Uuid,
    /// Its section: its own (staff's), else its source's; `None`: none.
    pub section: Option<String>,
    pub title: String,
    pub url: String,
    pub author: Option<String>,
    pub published_at: DateTime<Utc>,
    pub summary: String,
    /// Where it came from, when known (see [`NewArticle::source_name`]).
    pub source_name: Option<String>,
    /// The tag of the language it was published in; `None` when unknown.
    language: Option<String>,
}

impl ListedArticle {
    /// The language it was published in; `None` when unknown (also for a
    /// tag whose catalogue is gone).
    pub fn language(&self) -> Option<Language> {
        self.language.as_deref().and_then(Language::parse)
    }
}

/// Articles published in `[from, to)`, newest first: the newest `limit`
/// in each language (unknown being one), so that each language's digest
/// can have up to `limit` of its own however many others there are.
/// Articles staff left out of the issue are not among them.
pub async fn published_between(
    db: &Db,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<ListedArticle>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT id, title, url, author, published_at, summary, source_name, language, section FROM (
                 SELECT a.id, a.title, a.url, a.author, a.published_at, a.summary, a.source_name, a.language,
                        COALESCE(a.section, s.section) AS section,
                        ROW_NUMBER() OVER (PARTITION BY a.language ORDER BY a.published_at DESC, a.id DESC) AS place
                 FROM articles a LEFT JOIN feed_sources s ON s.url = a.feed
                 WHERE a.published_at >= $1 AND a.published_at < $2 AND NOT a.excluded AND a.deleted_at IS NULL
             ) AS week
             WHERE place <= $3
             ORDER BY published_at DESC, id DESC",
        )
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(pool)
        .await
    })
}

/// Gives an article a section of its own (`None`: its source's, if any).
/// `false` when there is no such article.
pub async fn set_section(db: &Db, id: Uuid, section: Option<&str>, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let done = with_pool!(db, pool => {
        sqlx::query("UPDATE articles SET section = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(section)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(done > 0)
}

/// An article as the admin pages show and edit it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StaffArticle {
    pub id: Uuid,
    pub url: String,
    pub title: String,
    pub author: Option<String>,
    pub published_at: DateTime<Utc>,
    pub body: String,
    pub summary: String,
    pub summary_source: String,
    pub excluded: bool,
    /// The tag of the language it was published in; `None` when unknown.
    language: Option<String>,
    /// Counts the writes to the article: an edit form carries the version
    /// it was loaded at, and a save against a newer one is refused.
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

impl StaffArticle {
    /// The language it was published in; `None` when unknown.
    pub fn language(&self) -> Option<Language> {
        self.language.as_deref().and_then(Language::parse)
    }

    /// The summary's first line (summaries are one line once cleaned, but
    /// a feed's may hold several).
    pub fn summary_first_line(&self) -> &str {
        self.summary.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim()
    }
}

macro_rules! select_staff_article {
    ($rest:literal) => {
        concat!(
            "SELECT id, url, title, author, published_at, body, summary, summary_source, excluded, language, \
             version, updated_at FROM articles ",
            $rest
        )
    };
}

/// Articles whose title (in any case, accents aside: see [`SearchKey`])
/// or address contains `query` (all when empty), newest first. An address
/// is ASCII (`ArticleUrl`): lowercase is all its folding. An article
/// without a key yet (see `db::search_keys`) is compared as before keys.
/// Deleted articles are not among them (see [`recently_deleted`]).
pub async fn search(db: &Db, query: &str, limit: i64, offset: i64) -> Result<Vec<StaffArticle>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(select_staff_article!(
            "WHERE deleted_at IS NULL AND ($1 = '' OR search_key LIKE $2 ESCAPE '\\' OR LOWER(url) LIKE $2 ESCAPE '\\'
                OR (search_key IS NULL AND LOWER(title) LIKE $3 ESCAPE '\\'))
             ORDER BY published_at DESC, id DESC LIMIT $4 OFFSET $5"
        ))
            .bind(fold_for_search(query))
            .bind(key_pattern(query))
            .bind(lowercase_pattern(query))
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await
    })
}

/// The article a hand-added article at `url` is saved onto (see
/// [`save`]): the hand-added one at that address, else the oldest imported
/// one there; a deleted one only when there is no other.
pub async fn at_address(db: &Db, url: &ArticleUrl) -> Result<Option<StaffArticle>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(select_staff_article!(
            "WHERE url = $1
             ORDER BY CASE WHEN deleted_at IS NULL THEN 0 ELSE 1 END, CASE WHEN feed IS NULL THEN 0 ELSE 1 END,
                      created_at, id
             LIMIT 1"
        ))
            .bind(url.as_str())
            .fetch_optional(pool)
            .await
    })
}

/// Up to `limit` articles after the id `after`, in id order (keyset
/// pagination: a page never shifts when articles arrive meanwhile); only
/// those at `url` when it is given.
pub async fn page(
    db: &Db,
    url: Option<&ArticleUrl>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<StaffArticle>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(select_staff_article!(
            "WHERE deleted_at IS NULL AND ($1 = '' OR url = $1) AND id > $2 ORDER BY id LIMIT $3"
        ))
            .bind(url.map_or("", ArticleUrl::as_str))
            .bind(after.unwrap_or(Uuid::nil()))
            .bind(limit)
            .fetch_all(pool)
            .await
    })
}

/// Puts an article in the next issue (`excluded` false) or leaves it out.
/// Nothing else changes: a later import of the article still updates it.
/// `false` when there is no such article (or it is deleted).
pub async fn include_or_exclude(db: &Db, id: Uuid, excluded: bool, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let changed = with_pool!(db, pool => {
        sqlx::query(
            "UPDATE articles SET excluded = $2, updated_at = $3, version = version + 1
             WHERE id = $1 AND deleted_at IS NULL",
        )
            .bind(id)
            .bind(excluded)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(changed == 1)
}

/// The article, unless it is deleted.
pub async fn find(db: &Db, id: Uuid) -> Result<Option<StaffArticle>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(select_staff_article!("WHERE id = $1 AND deleted_at IS NULL"))
            .bind(id)
            .fetch_optional(pool)
            .await
    })
}

/// Those of `ids` that exist and are not deleted, in the order given.
pub async fn find_many(db: &Db, ids: &[Uuid]) -> Result<Vec<StaffArticle>, sqlx::Error> {
    let mut found: Vec<StaffArticle> = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(a) = find(db, *id).await?
            && !found.iter().any(|f| f.id == a.id)
        {
            found.push(a);
        }
    }
    Ok(found)
}

/// What staff can change about an article, parsed.
#[derive(Debug, Clone)]
pub struct ArticleEdit {
    pub title: ArticleTitle,
    pub summary: String,
    pub summary_source: SummarySource,
    pub published_at: DateTime<Utc>,
    pub excluded: bool,
    /// `None`: an unknown language (or one Gazette has no catalogue for).
    pub language: Option<Language>,
}

/// What a staff edit came to.
#[derive(Debug)]
pub enum Edited {
    Saved,
    /// No such article, or it was deleted.
    Missing,
    /// The article was written since the version the edit was made
    /// against: nothing changed; here it is as it is now.
    Conflict(Box<StaffArticle>),
}

/// One transaction that locks what it reads: `BEGIN IMMEDIATE` on SQLite
/// (the write lock from the start), `FOR UPDATE` on PostgreSQL, spelled
/// `$lock` in the statements.
macro_rules! with_locking_tx {
    ($db:expr, $tx:ident, $lock:ident => $body:expr) => {
        match $db {
            Db::Sqlite(pool) => {
                #[allow(unused_mut)]
                let mut $tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let $lock = "";
                $body
            }
            Db::Postgres(pool) => {
                #[allow(unused_mut)]
                let mut $tx = pool.begin().await?;
                let $lock = " FOR UPDATE";
                $body
            }
        }
    };
}

/// The summary an article had before it was replaced.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SummaryVersion {
    pub id: Uuid,
    pub summary: String,
    pub summary_source: String,
    pub replaced_at: DateTime<Utc>,
    pub replaced_by: String,
}

/// The live (not deleted) article `$id`, locked until `$tx` ends (`$lock`
/// as [`with_locking_tx`] sets it): what a staff change reads first.
macro_rules! live_article_locked {
    ($tx:ident, $lock:ident, $id:expr) => {
        sqlx::query_as::<_, StaffArticle>(sqlx::AssertSqlSafe(format!(
            "{}{}",
            select_staff_article!("WHERE id = $1 AND deleted_at IS NULL"),
            $lock
        )))
        .bind($id)
        .fetch_optional(&mut *$tx)
    };
}

/// Keeps the summary `$current` has among its article's versions, as
/// replaced by `$by` at `$now`: a summary is never overwritten unkept.
macro_rules! keep_summary {
    ($tx:ident, $current:expr, $by:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO summary_versions (id, article_id, summary, summary_source, replaced_at, replaced_by)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::now_v7())
        .bind($current.id)
        .bind(&$current.summary)
        .bind(&$current.summary_source)
        .bind($now)
        .bind($by)
        .execute(&mut *$tx)
    };
}

/// Saves a staff edit made against `expected` version of the article
/// (`None`: an older form without one, saved whatever the version); later
/// imports leave the article as staff made it. A summary it replaces is
/// kept among the article's [`summary_versions`], as replaced by `by`.
pub async fn edit(
    db: &Db,
    id: Uuid,
    expected: Option<i64>,
    edit: &ArticleEdit,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Edited, sqlx::Error> {
    with_locking_tx!(db, tx, lock => {
        let current = live_article_locked!(tx, lock, id).await?;
        let Some(current) = current else {
            return Ok(Edited::Missing);
        };
        if expected.is_some_and(|v| v != current.version) {
            return Ok(Edited::Conflict(Box::new(current)));
        }
        if current.summary != edit.summary {
            keep_summary!(tx, &current, by, now).await?;
        }
        sqlx::query(
            "UPDATE articles SET title = $2, summary = $3, summary_source = $4, published_at = $5, excluded = $6,
                                 edited_by_staff = $7, updated_at = $8, language = $9, search_key = $10,
                                 version = version + 1
             WHERE id = $1",
        )
        .bind(id)
        .bind(edit.title.as_str())
        .bind(&edit.summary)
        .bind(edit.summary_source.as_str())
        .bind(edit.published_at)
        .bind(edit.excluded)
        .bind(true)
        .bind(now)
        .bind(edit.language.map(Language::tag))
        .bind(SearchKey::of_article(edit.title.as_str()).into_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Edited::Saved)
    })
}

/// The summaries the article had before, newest first.
pub async fn summary_versions(db: &Db, article: Uuid) -> Result<Vec<SummaryVersion>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT id, summary, summary_source, replaced_at, replaced_by FROM summary_versions
             WHERE article_id = $1 ORDER BY replaced_at DESC, id DESC",
        )
        .bind(article)
        .fetch_all(pool)
        .await
    })
}

/// Makes an earlier summary the article's again; the one it replaces
/// takes its place among the versions, so a restore can be undone too.
/// `false` when the article (not deleted) has no such version.
pub async fn restore_summary(
    db: &Db,
    article: Uuid,
    version: Uuid,
    by: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    with_locking_tx!(db, tx, lock => {
        let current = live_article_locked!(tx, lock, article).await?;
        let old: Option<SummaryVersion> = sqlx::query_as(
            "SELECT id, summary, summary_source, replaced_at, replaced_by FROM summary_versions
             WHERE id = $1 AND article_id = $2",
        )
        .bind(version)
        .bind(article)
        .fetch_optional(&mut *tx)
        .await?;
        let (Some(current), Some(old)) = (current, old) else {
            return Ok(false);
        };
        sqlx::query("DELETE FROM summary_versions WHERE id = $1")
            .bind(old.id)
            .execute(&mut *tx)
            .await?;
        keep_summary!(tx, &current, by, now).await?;
        sqlx::query(
            "UPDATE articles SET summary = $2, summary_source = $3, edited_by_staff = $4, updated_at = $5,
                                 version = version + 1
             WHERE id = $1",
        )
        .bind(article)
        .bind(&old.summary)
        .bind(&old.summary_source)
        .bind(true)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    })
}

/// Puts the articles in or out of the issue; returns how many changed.
pub async fn set_excluded(db: &Db, ids: &[Uuid], excluded: bool, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let mut changed = 0;
    for id in ids {
        changed += with_pool!(db, pool => {
            sqlx::query(
                "UPDATE articles SET excluded = $2, edited_by_staff = $3, updated_at = $4, version = version + 1
                 WHERE id = $1 AND excluded <> $2 AND deleted_at IS NULL",
            )
            .bind(id)
            .bind(excluded)
            .bind(true)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
    }
    Ok(changed)
}

/// Deletes the article softly: it is hidden everywhere (lists, search, the
/// issue) and restorable until retention purges it. `false` when there is
/// no such article, or it was deleted already.
pub async fn delete(db: &Db, id: Uuid, by: &str, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let deleted = with_pool!(db, pool => {
        sqlx::query(
            "UPDATE articles SET deleted_at = $2, deleted_by = $3, updated_at = $2, version = version + 1
             WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .bind(by)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(deleted == 1)
}

/// Brings a deleted article back as it was. `false` when there is no
/// deleted article `id` (never deleted, restored already, or purged).
pub async fn restore(db: &Db, id: Uuid, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let restored = with_pool!(db, pool => {
        sqlx::query(
            "UPDATE articles SET deleted_at = NULL, deleted_by = NULL, updated_at = $2, version = version + 1
             WHERE id = $1 AND deleted_at IS NOT NULL",
        )
        .bind(id)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(restored == 1)
}

/// A deleted article, as "Recently deleted" lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeletedArticle {
    pub id: Uuid,
    pub title: String,
    pub url: String,
    pub deleted_at: DateTime<Utc>,
    pub deleted_by: Option<String>,
}

/// Deleted articles not yet purged, most recently deleted first.
pub async fn recently_deleted(db: &Db, limit: i64) -> Result<Vec<DeletedArticle>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT id, title, url, deleted_at, deleted_by FROM articles WHERE deleted_at IS NOT NULL
             ORDER BY deleted_at DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(pool)
        .await
    })
}

/// How many deleted articles wait to be restored or purged.
pub async fn count_deleted(db: &Db) -> Result<i64, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM articles WHERE deleted_at IS NOT NULL").fetch_one(pool).await
    })
}

/// Whether an article at `url` (added by hand or from a feed) is deleted
/// and not yet purged.
pub async fn deleted_at_address(db: &Db, url: &str) -> Result<bool, sqlx::Error> {
    let found: i64 = with_pool!(db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM articles WHERE url = $1 AND deleted_at IS NOT NULL")
            .bind(url)
            .fetch_one(pool)
            .await?
    });
    Ok(found > 0)
}

/// How the issue being drafted stands towards an article.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DraftState {
    /// Published within the draft's window and not left out.
    In,
    /// Left out by staff.
    Excluded,
    /// Published before the draft's window (or after now): another week's.
    NotThisWeek,
}

impl DraftState {
    /// The state of an article published at `published_at`, for a draft
    /// collecting articles published in `[since, now)`.
    pub fn of(article: &StaffArticle, since: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        if article.excluded {
            DraftState::Excluded
        } else if article.published_at >= since && article.published_at < now {
            DraftState::In
        } else {
            DraftState::NotThisWeek
        }
    }
}
