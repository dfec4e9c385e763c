//! Article rows. An import never overwrites what staff edited, and saving
//! an unchanged article changes nothing.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::domain::{ArticleTitle, ArticleUrl, SummarySource};
use crate::with_pool;

/// An article as an import or a form delivers it, already parsed.
#[derive(Debug, Clone)]
pub struct NewArticle {
    pub url: ArticleUrl,
    /// The feed the entry came from, by the address it is read from (a
    /// source's URL, or a file's `file://` URL); `None` for articles added
    /// by hand. An entry's identity is its `guid` within its feed.
    pub feed: Option<String>,
    /// The feed entry's id; `None` for articles added by hand.
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

#[derive(sqlx::FromRow)]
struct Existing {
    id: Uuid,
    title: String,
    author: Option<String>,
    published_at: DateTime<Utc>,
    body: String,
    summary: String,
    summary_source: String,
    edited_by_staff: bool,
}

macro_rules! select_existing {
    ($where:literal) => {
        concat!(
            "SELECT id, title, author, published_at, body, summary, summary_source, edited_by_staff FROM articles ",
            $where
        )
    };
}

/// Adds or updates one article, found first by feed id, then by URL.
pub async fn save(db: &Db, article: &NewArticle, now: DateTime<Utc>) -> Result<Saved, sqlx::Error> {
    let by_guid: Option<Existing> = match &article.guid {
        Some(guid) => with_pool!(db, pool => {
            sqlx::query_as(select_existing!("WHERE guid = $1")).bind(guid).fetch_optional(pool).await?
        }),
        None => None,
    };
    let existing = match by_guid {
        Some(found) => Some(found),
        None => with_pool!(db, pool => {
            sqlx::query_as(select_existing!("WHERE url = $1"))
                .bind(article.url.as_str())
                .fetch_optional(pool)
                .await?
        }),
    };
    let Some(existing) = existing else {
        with_pool!(db, pool => {
            sqlx::query(
                "INSERT INTO articles (id, url, guid, title, author, published_at, body, summary, summary_source,
                                       created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
            )
            .bind(Uuid::now_v7())
            .bind(article.url.as_str())
            .bind(article.guid.as_deref())
            .bind(article.title.as_str())
            .bind(article.author.as_deref())
            .bind(article.published_at.unwrap_or(now))
            .bind(&article.body)
            .bind(&article.summary)
            .bind(article.summary_source.as_str())
            .bind(now)
            .execute(pool)
            .await?;
        });
        return Ok(Saved::Added);
    };
    if existing.edited_by_staff {
        return Ok(Saved::KeptStaffEdit);
    }
    let published_at = article.published_at.unwrap_or(existing.published_at);
    let unchanged = existing.title == article.title.as_str()
        && existing.author == article.author
        && existing.published_at.timestamp() == published_at.timestamp()
        && existing.body == article.body
        && existing.summary == article.summary
        && existing.summary_source == article.summary_source.as_str();
    if unchanged {
        return Ok(Saved::Unchanged);
    }
    with_pool!(db, pool => {
        sqlx::query(
            "UPDATE articles SET title = $2, author = $3, published_at = $4, body = $5, summary = $6,
                                 summary_source = $7, guid = COALESCE(guid, $8), updated_at = $9
             WHERE id = $1 AND edited_by_staff = $10",
        )
        .bind(existing.id)
        .bind(article.title.as_str())
        .bind(article.author.as_deref())
        .bind(published_at)
        .bind(&article.body)
        .bind(&article.summary)
        .bind(article.summary_source.as_str())
        .bind(article.guid.as_deref())
        .bind(now)
        .bind(false)
        .execute(pool)
        .await?;
    });
    Ok(Saved::Updated)
}

/// An article as a digest lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ListedArticle {
    pub title: String,
    pub url: String,
    pub author: Option<String>,
    pub published_at: DateTime<Utc>,
    pub summary: String,
}

/// Articles published in `[from, to)`, newest first, at most `limit`;
/// articles staff left out of the issue are not among them.
pub async fn published_between(
    db: &Db,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<ListedArticle>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT title, url, author, published_at, summary FROM articles
             WHERE published_at >= $1 AND published_at < $2 AND NOT excluded
             ORDER BY published_at DESC, id DESC
             LIMIT $3",
        )
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(pool)
        .await
    })
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
}

macro_rules! select_staff_article {
    ($rest:literal) => {
        concat!(
            "SELECT id, url, title, author, published_at, body, summary, summary_source, excluded FROM articles ",
            $rest
        )
    };
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern, lowercased.
pub fn like_pattern(query: &str) -> String {
    let mut pattern = String::from("%");
    for c in query.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Articles whose title or address contains `query` (all when empty),
/// newest first.
pub async fn search(db: &Db, query: &str, limit: i64, offset: i64) -> Result<Vec<StaffArticle>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(select_staff_article!(
            "WHERE $1 = '' OR LOWER(title) LIKE $2 ESCAPE '\\' OR LOWER(url) LIKE $2 ESCAPE '\\'
             ORDER BY published_at DESC, id DESC LIMIT $3 OFFSET $4"
        ))
            .bind(query.trim())
            .bind(like_pattern(query))
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await
    })
}

pub async fn find(db: &Db, id: Uuid) -> Result<Option<StaffArticle>, sqlx::Error> {
    with_pool!(db, pool => sqlx::query_as(select_staff_article!("WHERE id = $1")).bind(id).fetch_optional(pool).await)
}

/// What staff can change about an article, parsed.
#[derive(Debug, Clone)]
pub struct ArticleEdit {
    pub title: ArticleTitle,
    pub summary: String,
    pub summary_source: SummarySource,
    pub published_at: DateTime<Utc>,
    pub excluded: bool,
}

/// Saves a staff edit; later imports leave the article as staff made it.
/// `false` when there is no such article.
pub async fn edit(db: &Db, id: Uuid, edit: &ArticleEdit, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let changed = with_pool!(db, pool => {
        sqlx::query(
            "UPDATE articles SET title = $2, summary = $3, summary_source = $4, published_at = $5, excluded = $6,
                                 edited_by_staff = $7, updated_at = $8
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
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(changed == 1)
}

pub async fn delete(db: &Db, id: Uuid) -> Result<bool, sqlx::Error> {
    let deleted = with_pool!(db, pool => {
        sqlx::query("DELETE FROM articles WHERE id = $1").bind(id).execute(pool).await?.rows_affected()
    });
    Ok(deleted == 1)
}
