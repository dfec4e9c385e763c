//! One feed document (RSS 0.90/0.91/0.92/1.0/2.0, Atom 1.0 and 0.3, JSON
//! Feed 1.0/1.1) or one plain-text article, parsed into articles. Every
//! entry is parsed on its own: a bad entry is rejected with its reason and
//! the rest still import; what the parser had to guess or leave out is a
//! warning for that entry.
//!
//! The reading is our own, on quick-xml's pull reader and serde_json, so
//! that what the formats say is kept: RSS `isPermaLink`, CDATA against
//! escaped text, Atom's `type` and base64 content, each entry's dates as
//! written. It streams: each byte of the document is read once, each
//! entry's text is converted as soon as the entry ends, and nothing is
//! concatenated over the whole document.

mod atom;
mod dates;
mod decode;
mod entry;
mod json;
mod rss;
pub mod text;
mod xml;

use chrono::{DateTime, Utc};

use crate::db::articles::NewArticle;
use crate::digest::summary;
use crate::domain::{ArticleTitle, ArticleTitleError, ArticleUrl, ArticleUrlError, Rejection, SummarySource, Warning};
use crate::i18n::Language;

pub use dates::parse_date;
use entry::Builder;
use text::shown;

/// What the parser needs to know from the settings.
#[derive(Debug, Clone, Copy)]
pub struct FeedRules {
    /// `digest.summary_max_chars`.
    pub summary_max: usize,
    /// `feeds.max_body_bytes`: a longer body is cut at a paragraph boundary.
    pub max_body_bytes: usize,
}

impl FeedRules {
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        Self {
            summary_max: settings.digest.summary_max_chars,
            max_body_bytes: settings.feeds.max_body_bytes,
        }
    }
}

/// A feed document, parsed: its own title and its entries, each an article
/// or the reason it is not one.
#[derive(Debug, Default)]
pub struct ParsedFeed {
    pub title: Option<String>,
    pub entries: Vec<Result<NewArticle, Rejection>>,
    pub warnings: Vec<Warning>,
}

impl ParsedFeed {
    /// Marks every entry as coming from `feed` (its identity: entries' ids
    /// are unique within it), shown under `name`.
    pub fn attribute(mut self, feed: &str, name: Option<&str>) -> Self {
        for article in self.entries.iter_mut().flatten() {
            article.feed = Some(feed.to_owned());
            article.source_name = name.map(str::to_owned);
        }
        self
    }

    /// Marks every entry as written in `language`, whatever the feed says:
    /// the language staff declared for the source.
    pub fn in_language(mut self, language: Language) -> Self {
        for article in self.entries.iter_mut().flatten() {
            article.language = Some(language);
        }
        self
    }
}

/// The document as a whole is not a feed, in words a person can act on.
/// A message quotes at most a short, escaped piece of the document, so it
/// can be shown whatever the document holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAFeed {
    #[error("not a feed that can be read: it is empty")]
    Empty,
    #[error("not a feed that can be read: UTF-16 without a byte order mark (save it with one, or as UTF-8)")]
    Utf16WithoutBom,
    #[error("not a feed that can be read: not RSS, Atom or JSON Feed ({0})")]
    Other(String),
    #[error("not a feed that can be read: the XML is malformed at line {line}: {message}")]
    Xml { line: usize, message: String },
    #[error("not a feed that can be read: the JSON is malformed: {message}")]
    Json { message: String },
}

/// Why an entry (or a plain-text article) cannot become an article; its
/// words are the reason staff see beside the rejected entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("it has no link")]
    NoLink,
    #[error("its link is unusable: {0}")]
    Link(ArticleUrlError),
    #[error("its title is unusable: {0}")]
    Title(ArticleTitleError),
    #[error("it has neither content nor a description")]
    NoText,
    #[error("its date `{0}` is more than a day in the future")]
    Future(String),
    #[error("the first line must be the title: {0}")]
    FirstLine(ArticleTitleError),
    #[error("there is no body after the title line")]
    NoBody,
}

/// Whether a document starts as a feed does (markup or JSON, in any of
/// the encodings [`parse_feed`] reads, or UTF-16 it will name as such)
/// rather than as a plain-text article.
pub fn starts_like_a_feed(bytes: &[u8]) -> bool {
    const WIDE_MARKS: [&[u8]; 4] = [b"\xff\xfe", b"\xfe\xff", b"\0\0\xfe\xff", b"\0\0\0<"];
    if WIDE_MARKS.iter().any(|mark| bytes.starts_with(mark)) {
        return true;
    }
    if let [a, b, ..] = bytes
        && (*a == 0) != (*b == 0)
    {
        return true;
    }
    let without_bom = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let first = without_bom.iter().copied().find(|b| !b.is_ascii_whitespace());
    matches!(first, Some(b'<' | b'{'))
}

/// Parses a feed; `Err` only when the document as a whole is unreadable.
/// `base` is where the document came from (relative links resolve against
/// the feed's own link first); `now` is the import's time, against which
/// entries dated in the future are judged.
pub fn parse_feed(
    bytes: &[u8],
    base: Option<&url::Url>,
    rules: FeedRules,
    now: DateTime<Utc>,
) -> Result<ParsedFeed, NotAFeed> {
    let decoded = decode::decode(bytes)?;
    let text = decoded.text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    let mut feed = Builder::new(rules, now);
    for warning in decoded.warnings {
        feed.warn(warning);
    }
    match text.chars().next() {
        None => return Err(NotAFeed::Empty),
        Some('{' | '[') => json::read(text, &mut feed)?,
        Some('<') => {
            let mut reader = xml::Xml::new(text);
            let root = reader.root()?;
            match (root.ns, root.local()) {
                (xml::Ns::None | xml::Ns::Rss, "rss") | (xml::Ns::Rdf, "RDF") => {
                    rss::read(&mut reader, root, &mut feed)?
                }
                (xml::Ns::Atom | xml::Ns::Atom03 | xml::Ns::None, "feed") => atom::read(&mut reader, root, &mut feed)?,
                _ => {
                    return Err(NotAFeed::Other(format!(
                        "the root element is `<{}>`",
                        shown(root.name(), 40)
                    )));
                }
            }
        }
        Some(_) => {
            let start: String = text.chars().take(24).collect();
            return Err(NotAFeed::Other(format!(
                "it starts with `{}`",
                shown(start.trim_end(), 24)
            )));
        }
    }
    Ok(feed.finish(base))
}

/// One article as plain text: the first line is the title, the rest the
/// body. A first line of several sentences (a standfirst, as in many
/// copied articles) gives its first sentence as the title and stays the
/// body's lead.
pub fn parse_plain_text(
    text: &str,
    url: ArticleUrl,
    author: Option<String>,
    published_at: Option<DateTime<Utc>>,
    summary_max: usize,
) -> Result<NewArticle, EntryError> {
    let text = text.trim_start_matches('\u{feff}').trim();
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let lead_sentences = summary::sentences(first);
    let (title, body) = if lead_sentences.len() > 1 {
        (lead_sentences[0].clone(), text.to_owned())
    } else {
        (first.trim().to_owned(), rest.trim().to_owned())
    };
    let title = ArticleTitle::parse(&title).map_err(EntryError::FirstLine)?;
    if body.trim().is_empty() {
        return Err(EntryError::NoBody);
    }
    let summary = summary::lead_summary(&body, summary_max);
    Ok(NewArticle::by_hand(
        url,
        title,
        author,
        published_at,
        body,
        summary,
        SummarySource::Generated,
    ))
}

#[cfg(test)]
mod tests;
