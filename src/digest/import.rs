//! Turning outside text into articles: RSS 0.9x/1.0/2.0, Atom and JSON
//! Feed (through `digest::feed`), or one article as plain text (a title line, then
//! the body). Every entry is parsed on its own: a bad entry is rejected with
//! its reason and the rest still import.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::db::Db;
use crate::db::articles::{self, NewArticle, Saved};
use crate::db::feed_sources;
pub use crate::digest::feed::FeedRules;
use crate::digest::feed::{NotAFeed, ParsedFeed, parse_feed, parse_plain_text, starts_like_a_feed};
use crate::digest::fetch::{FetchError, Fetcher};
use crate::domain::{ArticleUrl, ArticleUrlError, ImportReport, Rejection, Warning};

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
    #[error("cannot save {entries}: {error}")]
    Save { entries: String, error: sqlx::Error },
    #[error("cannot read the feed source of `{feed}`: {error}")]
    Source { feed: String, error: sqlx::Error },
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

/// A feed's entries in the language staff declared for the feed source at
/// its address, if it is one: importing a source's feed by hand labels its
/// articles as polling it does.
pub async fn as_its_source_declares(db: &Db, parsed: ParsedFeed, feed: &str) -> Result<ParsedFeed, ImportError> {
    let source = feed_sources::find_by_url(db, feed)
        .await
        .map_err(|error| ImportError::Source {
            feed: feed.to_owned(),
            error,
        })?;
    Ok(match source.and_then(|s| s.declared_language()) {
        Some(language) => parsed.in_language(language),
        None => parsed,
    })
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

/// What an import did, as its summary line says it (the CLI's and the
/// admin import page's): `3 added, 1 updated, 40 unchanged, 0 rejected`,
/// then `, 2 kept as staff edited` and `, 1 without a usable date (given
/// the import time)` when there are any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub rejected: usize,
    pub kept_staff_edit: usize,
    pub dated_at_import: usize,
}

impl From<&ImportReport> for Counts {
    fn from(report: &ImportReport) -> Self {
        Self {
            added: report.added,
            updated: report.updated,
            unchanged: report.unchanged,
            rejected: report.rejected.len(),
            kept_staff_edit: report.kept_staff_edit,
            dated_at_import: report.dated_at_import,
        }
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} added, {} updated, {} unchanged, {} rejected",
            self.added, self.updated, self.unchanged, self.rejected
        )?;
        if self.kept_staff_edit > 0 {
            write!(f, ", {} kept as staff edited", self.kept_staff_edit)?;
        }
        if self.dated_at_import > 0 {
            write!(
                f,
                ", {} without a usable date (given the import time)",
                self.dated_at_import
            )?;
        }
        Ok(())
    }
}

/// Entries saved in one transaction by [`save_all`].
pub const ENTRIES_PER_TRANSACTION: usize = 250;

/// Saves one import's entries, a batch at a time (one transaction each,
/// see [`articles::save_batch`]), and counts what became of them. An entry
/// that repeats an earlier one of the same feed (the same id, or the same
/// link and no id) is turned away with the reason: saving both would
/// overwrite one with the other, on every import.
pub struct Saver<'a> {
    db: &'a Db,
    now: DateTime<Utc>,
    /// Entries handed in so far, rejected ones included (as the parser
    /// numbers them).
    position: usize,
    /// Each identity seen in this import, by feed: the entry that had it.
    seen: HashMap<(Option<String>, String), usize>,
    report: ImportReport,
}

impl<'a> Saver<'a> {
    /// A saver for one feed's entries; its report starts with the feed's
    /// own `warnings` (the parser's), the entries' follow in feed order.
    pub fn new(db: &'a Db, now: DateTime<Utc>, warnings: Vec<Warning>) -> Self {
        Self {
            db,
            now,
            position: 0,
            seen: HashMap::new(),
            report: ImportReport {
                warnings,
                ..ImportReport::default()
            },
        }
    }

    /// Saves the next entries of the import in one transaction.
    pub async fn save(&mut self, entries: Vec<Result<NewArticle, Rejection>>) -> Result<(), ImportError> {
        let first = self.position + 1;
        let mut batch = Vec::with_capacity(entries.len());
        let mut numbers = Vec::with_capacity(entries.len());
        for entry in entries {
            self.position += 1;
            let article = match entry {
                Ok(article) => article,
                Err(rejection) => {
                    self.report.rejected.push(rejection);
                    continue;
                }
            };
            let key = (article.feed.clone(), article.identity().to_owned());
            if let Some(earlier) = self.seen.get(&key) {
                let same = match article.guid {
                    Some(_) => "the same id",
                    None => "the same link, and no id",
                };
                self.report.rejected.push(Rejection {
                    entry: entry_name(self.position, &article),
                    reason: format!("it repeats entry {earlier} ({same})"),
                });
                continue;
            }
            self.seen.insert(key, self.position);
            batch.push(article);
            numbers.push(self.position);
        }
        let saved = articles::save_batch(self.db, &batch, self.now)
            .await
            .map_err(|error| ImportError::Save {
                entries: match self.position {
                    last if last == first => format!("entry {first}"),
                    last => format!("entries {first} to {last}"),
                },
                error,
            })?;
        for ((article, saved), number) in batch.iter().zip(saved).zip(numbers) {
            match saved {
                Saved::Added => self.report.added += 1,
                Saved::Updated => self.report.updated += 1,
                Saved::Unchanged => self.report.unchanged += 1,
                Saved::KeptStaffEdit => self.report.kept_staff_edit += 1,
            }
            if saved == Saved::Added && article.published_at.is_none() {
                self.report.dated_at_import += 1;
                self.report.warnings.push(Warning {
                    entry: entry_name(number, article),
                    message: format!(
                        "no usable date: dated with the import time, {}",
                        self.now.format("%Y-%m-%d %H:%M UTC")
                    ),
                });
            }
        }
        Ok(())
    }

    /// What the import did.
    pub fn report(self) -> ImportReport {
        self.report
    }
}

/// An entry as the import report names it, like the parser names the
/// entries it rejects: `entry 3 (“Its title”)`.
fn entry_name(number: usize, article: &NewArticle) -> String {
    format!("entry {number} (“{}”)", article.title.as_str())
}

/// Saves a parsed feed's entries, [`ENTRIES_PER_TRANSACTION`] at a time;
/// `progress(done, total)` is called for each entry once it is saved.
pub async fn save_all(
    db: &Db,
    parsed: ParsedFeed,
    mut progress: impl FnMut(usize, usize),
) -> Result<ImportReport, ImportError> {
    let total = parsed.entries.len();
    let mut saver = Saver::new(db, Utc::now(), parsed.warnings);
    let mut entries = parsed.entries.into_iter();
    let mut done = 0;
    loop {
        let batch: Vec<_> = entries.by_ref().take(ENTRIES_PER_TRANSACTION).collect();
        if batch.is_empty() {
            break;
        }
        let size = batch.len();
        saver.save(batch).await?;
        for _ in 0..size {
            done += 1;
            progress(done, total);
        }
    }
    Ok(saver.report())
}

/// Imports a feed (a file or an http(s) URL), or one plain-text article,
/// into the database.
/// `progress(done, total)` is called for each entry once it is saved.
pub async fn import_file(
    db: &Db,
    source: &str,
    details: &PlainTextDetails,
    fetcher: &Fetcher,
    rules: FeedRules,
    progress: impl FnMut(usize, usize),
) -> Result<ImportReport, ImportError> {
    let started = std::time::Instant::now();
    let loaded = load(source, fetcher).await?;
    let feed = loaded.feed.clone();
    let parsed = parse(source, loaded, details, rules).await?;
    let parsed = as_its_source_declares(db, parsed, &feed).await?;
    let entries = parsed.entries.len();
    let seconds = started.elapsed().as_secs_f64();
    tracing::debug!(feed = %source, entries, seconds, "feed parsed");
    let started = std::time::Instant::now();
    let report = save_all(db, parsed, progress).await?;
    let seconds = started.elapsed().as_secs_f64();
    tracing::debug!(feed = %source, entries, seconds, "entries saved");
    Ok(report)
}
