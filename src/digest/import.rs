//! Turning outside text into articles: RSS 0.9x/1.0/2.0, Atom and JSON
//! Feed (through `digest::feed`), or one article as plain text (a title line, then
//! the body). Every entry is parsed on its own: a bad entry is rejected with
//! its reason and the rest still import.

use chrono::{DateTime, Utc};

use crate::db::Db;
use crate::db::articles::{self, NewArticle, Saved};
pub use crate::digest::feed::FeedRules;
use crate::digest::feed::{NotAFeed, ParsedFeed, parse_feed, parse_plain_text, starts_like_a_feed};
use crate::digest::fetch::{FetchError, Fetcher};
use crate::domain::{ArticleUrl, ArticleUrlError, ImportReport, Rejection};

/// Why an import stopped before saving anything more.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("`{address}` is not a usable address: {error}")]
    Address { address: String, error: url::ParseError },
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("cannot read `{path}`: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("parsing the feed stopped: {0}")]
    Stopped(#[from] tokio::task::JoinError),
    /// What a server sent: the parser's reason quotes no more than a short,
    /// escaped piece of the body.
    #[error("`{address}`: {error}")]
    NotAFeedAt { address: String, error: NotAFeed },
    #[error("`{file}`: {error}")]
    Feed { file: String, error: NotAFeed },
    #[error("`{0}` is neither a feed nor UTF-8 text")]
    NotText(String),
    #[error("`{0}` is a plain-text article: give its canonical address with --url")]
    NoUrl(String),
    #[error("--url: {0}")]
    Url(ArticleUrlError),
    #[error("--published: `{0}` is not a date like 2026-11-27T09:00:00Z")]
    Published(String),
    #[error("cannot save {url}: {error}")]
    Save { url: String, error: sqlx::Error },
}

/// What a plain-text article cannot say about itself.
#[derive(Debug, Default, Clone)]
pub struct PlainTextDetails {
    pub url: Option<String>,
    pub author: Option<String>,
    pub published: Option<String>,
}

/// Whether `source` names a web address rather than a file.
pub fn is_web_address(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// A feed's bytes as read, with what identifies the feed and resolves its
/// relative links.
#[derive(Debug)]
pub struct Loaded {
    pub bytes: Vec<u8>,
    /// Where relative links resolve: the address the bytes came from, after
    /// redirects, or the file's `file://` URL.
    pub base: Option<url::Url>,
    /// The feed's identity, what its entries' ids are unique within: the
    /// address as given (a redirect does not make it another feed), or the
    /// file's canonical `file://` URL.
    pub feed: String,
}

/// The bytes of a feed: fetched (under the fetcher's address policy) when
/// `source` is an http(s) URL, read when it is a file.
pub async fn load(source: &str, fetcher: &Fetcher) -> Result<Loaded, ImportError> {
    if is_web_address(source) {
        let url = url::Url::parse(source).map_err(|error| ImportError::Address {
            address: source.to_owned(),
            error,
        })?;
        let fetched = fetcher.fetch(&url).await?;
        return Ok(Loaded {
            bytes: fetched.body,
            base: Some(fetched.url),
            feed: url.to_string(),
        });
    }
    let bytes = std::fs::read(source).map_err(|error| ImportError::Read {
        path: source.to_owned(),
        error,
    })?;
    let base = std::path::Path::new(source)
        .canonicalize()
        .ok()
        .and_then(|p| url::Url::from_file_path(p).ok());
    let feed = base.as_ref().map_or_else(|| source.to_owned(), url::Url::to_string);
    Ok(Loaded { bytes, base, feed })
}

/// The entries of a loaded feed (or the one plain-text article of a file),
/// parsed on a blocking thread: converting a large feed's HTML is work an
/// async thread must not do. A feed's entries are attributed to it
/// ([`ParsedFeed::attribute`]), named by the feed's own title.
pub async fn parse(
    source: &str,
    loaded: Loaded,
    details: &PlainTextDetails,
    rules: FeedRules,
) -> Result<ParsedFeed, ImportError> {
    let source = source.to_owned();
    let details = details.clone();
    tokio::task::spawn_blocking(move || {
        let Loaded { bytes, base, feed } = loaded;
        let parsed = parse_loaded(&source, &bytes, base, &details, rules)?;
        Ok(match parsed {
            Parsed::Feed(parsed) => {
                let title = parsed.title.clone();
                parsed.attribute(&feed, title.as_deref())
            }
            Parsed::PlainText(parsed) => parsed,
        })
    })
    .await?
}

enum Parsed {
    Feed(ParsedFeed),
    PlainText(ParsedFeed),
}

fn parse_loaded(
    source: &str,
    bytes: &[u8],
    base: Option<url::Url>,
    details: &PlainTextDetails,
    rules: FeedRules,
) -> Result<Parsed, ImportError> {
    let markup = starts_like_a_feed(bytes);
    if is_web_address(source) && (markup || details.url.is_none()) {
        return parse_feed(bytes, base.as_ref(), rules, Utc::now())
            .map(Parsed::Feed)
            .map_err(|error| ImportError::NotAFeedAt {
                address: source.to_owned(),
                error,
            });
    }
    if markup {
        return parse_feed(bytes, base.as_ref(), rules, Utc::now())
            .map(Parsed::Feed)
            .map_err(|error| ImportError::Feed {
                file: source.to_owned(),
                error,
            });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| ImportError::NotText(source.to_owned()))?;
    let url = details
        .url
        .as_deref()
        .ok_or_else(|| ImportError::NoUrl(source.to_owned()))?;
    let url = ArticleUrl::parse(url).map_err(ImportError::Url)?;
    let published = match details.published.as_deref() {
        None => None,
        Some(raw) => Some(
            DateTime::parse_from_rfc3339(raw.trim())
                .map_err(|_| ImportError::Published(raw.to_owned()))?
                .with_timezone(&Utc),
        ),
    };
    let author = details
        .author
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned);
    let entry = parse_plain_text(text, url, author, published, rules.summary_max).map_err(|reason| Rejection {
        entry: format!("`{source}`"),
        reason: reason.to_string(),
    });
    Ok(Parsed::PlainText(ParsedFeed {
        title: None,
        entries: vec![entry],
        warnings: Vec::new(),
    }))
}

/// Saves parsed entries; `progress(done, total)` is called after each.
pub async fn save_all(
    db: &Db,
    entries: Vec<Result<NewArticle, Rejection>>,
    mut progress: impl FnMut(usize, usize),
) -> Result<ImportReport, ImportError> {
    let total = entries.len();
    let now = Utc::now();
    let mut report = ImportReport::default();
    for (done, entry) in entries.into_iter().enumerate() {
        match entry {
            Ok(article) => match articles::save(db, &article, now).await {
                Ok(Saved::Added) => report.added += 1,
                Ok(Saved::Updated) => report.updated += 1,
                Ok(Saved::Unchanged) => report.unchanged += 1,
                Ok(Saved::KeptStaffEdit) => report.kept_staff_edit += 1,
                Err(error) => {
                    return Err(ImportError::Save {
                        url: article.url.to_string(),
                        error,
                    });
                }
            },
            Err(rejection) => report.rejected.push(rejection),
        }
        progress(done + 1, total);
    }
    Ok(report)
}

/// Imports a feed (a file or an http(s) URL), or one plain-text article,
/// into the database.
/// `progress(done, total)` is called after each entry.
pub async fn import_file(
    db: &Db,
    source: &str,
    details: &PlainTextDetails,
    fetcher: &Fetcher,
    rules: FeedRules,
    progress: impl FnMut(usize, usize),
) -> Result<ImportReport, ImportError> {
    let loaded = load(source, fetcher).await?;
    let parsed = parse(source, loaded, details, rules).await?;
    let mut report = save_all(db, parsed.entries, progress).await?;
    report.warnings.extend(parsed.warnings);
    Ok(report)
}
