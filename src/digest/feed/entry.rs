//! Entries as the three formats give them ([`RawEntry`]), made into
//! articles: the text is converted as each entry is read (so the document's
//! HTML is not all held at once), and what depends on the whole feed (its
//! link, which may come after the entries, and its date) is settled at the
//! end.

use chrono::{DateTime, Duration, Utc};

use super::dates::parse_date;
use super::text::{FieldText, cut_to_size, one_line, shown, title_from_text};
use super::{EntryError, FeedRules, ParsedFeed};
use crate::db::articles::NewArticle;
use crate::digest::html_text::{MarkedText, as_windows_1252_meant};
use crate::digest::summary;
use crate::domain::{ArticleTitle, ArticleUrl, Rejection, SummarySource, Warning};
use crate::i18n::Language;

/// How far ahead of the import an entry's date may be (clocks and time
/// zones differ; a week ahead is a mistake, or a way to stay on top).
const FUTURE_TOLERANCE: Duration = Duration::days(1);

/// What the feed says about itself.
#[derive(Debug, Default)]
pub struct FeedMeta {
    pub title: Option<FieldText>,
    /// Its own address (RSS `<link>`, Atom's alternate link, JSON Feed's
    /// `home_page_url`): relative links resolve against it.
    pub link: Option<String>,
    /// `xml:base` on the document element or channel.
    pub base: Option<String>,
    /// Its own date (RSS `pubDate`/`lastBuildDate`, Atom `updated`).
    pub date: Option<String>,
    /// The language tag it declares (RSS `language`, Atom `xml:lang`, JSON
    /// Feed `language`): its entries' unless they declare their own.
    pub language: Option<String>,
}

/// One entry as read, before it is judged.
#[derive(Debug, Default)]
pub struct RawEntry {
    /// RSS `guid`, RSS 1.0 `rdf:about`, Atom `id`, JSON Feed `id`.
    pub id: Option<String>,
    pub link: Option<String>,
    /// The `guid` when it is a permalink (RSS's default).
    pub permalink: Option<String>,
    /// The entry's `xml:base`.
    pub base: Option<String>,
    pub title: Option<FieldText>,
    /// The feed's own excerpt (RSS `description`, Atom `summary`).
    pub excerpt: Option<FieldText>,
    /// The full text (`content:encoded`, Atom `content`, JSON Feed's).
    pub content: Option<FieldText>,
    pub author: Option<String>,
    pub published: Option<String>,
    pub updated: Option<String>,
    /// The language tag the entry itself declares (Atom `xml:lang`, RSS
    /// `dc:language`, JSON Feed's `language`).
    pub language: Option<String>,
    /// What reading it had to leave out, for a warning.
    pub notes: Vec<String>,
}

impl RawEntry {
    /// Sets `field` unless an earlier element set it: the first wins.
    pub fn first<T>(field: &mut Option<T>, value: Option<T>) {
        if field.is_none() {
            *field = value;
        }
    }
}

/// An entry with its text converted, waiting for the feed's link and date.
struct Prepared {
    id: Option<String>,
    link: Option<String>,
    permalink: Option<String>,
    base: Option<String>,
    title: String,
    body: String,
    summary: String,
    summary_source: SummarySource,
    author: Option<String>,
    date: Dated,
    language: Option<String>,
    notes: Vec<String>,
}

enum Dated {
    At(DateTime<Utc>, String),
    Unreadable(String),
    Missing,
}

/// Collects a feed's entries as they are read.
pub struct Builder {
    rules: FeedRules,
    now: DateTime<Utc>,
    pub meta: FeedMeta,
    entries: Vec<Prepared>,
    warnings: Vec<Warning>,
}

impl Builder {
    pub fn new(rules: FeedRules, now: DateTime<Utc>) -> Self {
        Self {
            rules,
            now,
            meta: FeedMeta::default(),
            entries: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Something about the document as a whole.
    pub fn warn(&mut self, message: String) {
        self.warnings.push(Warning {
            entry: "the feed".to_owned(),
            message,
        });
    }

    pub fn entry(&mut self, raw: RawEntry) {
        let prepared = prepare(raw, self.rules);
        self.entries.push(prepared);
    }

    /// The articles, with links resolved against the feed's base and dates
    /// settled; `document` is where the feed was read from.
    pub fn finish(self, document: Option<&url::Url>) -> ParsedFeed {
        let Builder {
            now,
            meta,
            entries,
            mut warnings,
            ..
        } = self;
        let join = |base: Option<&url::Url>, raw: &str| match base {
            Some(base) => base.join(raw.trim()).ok(),
            None => url::Url::parse(raw.trim()).ok(),
        };
        let feed_base = meta.base.as_deref().and_then(|b| join(document, b));
        let feed_link = meta
            .link
            .as_deref()
            .and_then(|l| join(feed_base.as_ref().or(document), l))
            .filter(|u| matches!(u.scheme(), "http" | "https"));
        let base = feed_base.or(feed_link).or_else(|| document.cloned());
        let feed_date = meta
            .date
            .as_deref()
            .and_then(parse_date)
            .filter(|d| *d <= now + FUTURE_TOLERANCE);
        let title = meta.title.map(|t| t.title()).filter(|t| !t.is_empty());
        let feed = Settling {
            base: base.as_ref(),
            date: feed_date,
            language: meta.language.as_deref(),
            now,
        };
        let entries = entries
            .into_iter()
            .enumerate()
            .map(|(i, entry)| {
                let name = entry_name(i, &entry.title);
                let article = settle(entry, &feed, &name, &mut warnings);
                article.map_err(|reason| Rejection {
                    entry: name,
                    reason: reason.to_string(),
                })
            })
            .collect();
        ParsedFeed {
            title,
            entries,
            warnings,
        }
    }
}

/// "entry 3 (“Its title”)": the entry's place, and its title made safe to
/// print and short.
fn entry_name(index: usize, title: &str) -> String {
    if title.is_empty() {
        format!("entry {}", index + 1)
    } else {
        format!("entry {} (“{}”)", index + 1, shown(title, 80))
    }
}

fn prepare(raw: RawEntry, rules: FeedRules) -> Prepared {
    let mut notes = raw.notes;
    let excerpt = raw.excerpt.map(|e| e.text()).unwrap_or_default();
    let content = raw.content.map(|c| c.text()).filter(|c| !c.text.trim().is_empty());
    let mut body = content.unwrap_or_else(|| excerpt.clone());
    let (summary, summary_source) = choose_summary(&excerpt, &body, rules.summary_max);
    let mut title = raw.title.map(|t| t.title()).unwrap_or_default();
    if title.is_empty()
        && let Some(generated) = title_from_text(&body)
    {
        title = generated;
        notes.push("it has no title; its title is the start of its text".to_owned());
    }
    if let Some(cut) = cut_to_size(&body, rules.max_body_bytes) {
        notes.push(format!(
            "its text was {} bytes, over the limit of {}; it was cut to {} at a paragraph boundary",
            body.text.len(),
            rules.max_body_bytes,
            cut.text.len()
        ));
        body = cut;
    }
    let dates = [raw.published, raw.updated];
    let given = || dates.iter().flatten().map(|d| d.trim()).filter(|d| !d.is_empty());
    let date = match given().find_map(|raw| parse_date(raw).map(|at| (at, raw))) {
        Some((at, raw)) => Dated::At(at, raw.to_owned()),
        None => match given().next() {
            Some(raw) => Dated::Unreadable(raw.to_owned()),
            None => Dated::Missing,
        },
    };
    Prepared {
        id: raw
            .id
            .map(|id| as_windows_1252_meant(id.trim().to_owned()))
            .filter(|id| !id.is_empty()),
        link: raw.link.filter(|l| !l.trim().is_empty()),
        permalink: raw.permalink,
        base: raw.base,
        title,
        body: body.text,
        summary,
        summary_source,
        author: raw
            .author
            .map(|a| one_line(&as_windows_1252_meant(a)))
            .filter(|a| !a.is_empty()),
        date,
        language: raw.language,
        notes,
    }
}

/// What the whole feed gives each entry as it is settled.
struct Settling<'a> {
    /// Where the entries' relative links resolve.
    base: Option<&'a url::Url>,
    /// The feed's own date, for an entry whose date cannot be read.
    date: Option<DateTime<Utc>>,
    /// The feed's language tag, for an entry that declares none.
    language: Option<&'a str>,
    now: DateTime<Utc>,
}

/// The language an entry was published in: the tag it declares, else the
/// feed's (`ru-RU` is Russian). A tag naming a language Gazette has no
/// catalogue for, or no tag at all, is an unknown language: never guessed.
fn language_of(entry: Option<&str>, feed: Option<&str>) -> Option<Language> {
    fn declared(tag: Option<&str>) -> Option<&str> {
        tag.map(str::trim).filter(|t| !t.is_empty())
    }
    declared(entry).or(declared(feed)).and_then(Language::parse)
}

fn settle(
    entry: Prepared,
    feed: &Settling<'_>,
    name: &str,
    warnings: &mut Vec<Warning>,
) -> Result<NewArticle, EntryError> {
    let base = match entry.base.as_deref() {
        Some(own) => feed
            .base
            .and_then(|b| b.join(own.trim()).ok())
            .or_else(|| url::Url::parse(own.trim()).ok()),
        None => feed.base.cloned(),
    };
    let url = match (&entry.link, &entry.permalink) {
        (Some(link), _) => ArticleUrl::resolve(base.as_ref(), link).map_err(EntryError::Link)?,
        // A permalink guid is an address of its own: never resolved.
        (None, Some(guid)) => ArticleUrl::parse(guid).map_err(|_| EntryError::NoLink)?,
        (None, None) => return Err(EntryError::NoLink),
    };
    let title = ArticleTitle::parse(&entry.title).map_err(EntryError::Title)?;
    if entry.body.trim().is_empty() {
        return Err(EntryError::NoText);
    }
    let mut warn = |message: String| {
        warnings.push(Warning {
            entry: name.to_owned(),
            message,
        })
    };
    let published_at = match entry.date {
        Dated::At(at, raw) if at > feed.now + FUTURE_TOLERANCE => return Err(EntryError::Future(shown(&raw, 60))),
        Dated::At(at, _) => Some(at),
        Dated::Unreadable(raw) => {
            let raw = shown(&raw, 60);
            match feed.date {
                Some(date) => {
                    warn(format!(
                        "its date `{raw}` could not be read; it got the feed's date, {}",
                        date.to_rfc3339()
                    ));
                    Some(date)
                }
                // The saver names the new articles that get the import time.
                None => {
                    warn(format!("its date `{raw}` could not be read"));
                    None
                }
            }
        }
        Dated::Missing => None,
    };
    for note in entry.notes {
        warn(note);
    }
    let language = language_of(entry.language.as_deref(), feed.language);
    Ok(NewArticle {
        url,
        feed: None,
        guid: entry.id,
        source_name: None,
        title,
        author: entry.author,
        published_at,
        body: entry.body,
        summary: entry.summary,
        summary_source: entry.summary_source,
        language,
    })
}

/// The feed's own excerpt when it says something of its own; the body's
/// lead when the excerpt is missing or just the body cut short. Either way
/// the lead paragraph only, without layout.
pub fn choose_summary(excerpt: &MarkedText, body: &MarkedText, max_chars: usize) -> (String, SummarySource) {
    let stem = excerpt
        .text
        .trim()
        .trim_end_matches(['…', '.', ' '])
        .trim_end_matches("[")
        .trim_end();
    let story = body.story_lines().flat_map(str::split_whitespace);
    if !stem.is_empty() && !starts_with_words(story, stem) {
        let own = summary::lead_of(excerpt.story_lines(), max_chars);
        if !own.is_empty() {
            return (own, SummarySource::Feed);
        }
    }
    (
        summary::lead_of(body.story_lines(), max_chars),
        SummarySource::Generated,
    )
}

/// Whether `words` start with the words of `stem`, its last word perhaps
/// cut short ("Towns emp…").
fn starts_with_words<'a>(mut words: impl Iterator<Item = &'a str>, stem: &str) -> bool {
    let mut stem_words = stem.split_whitespace().peekable();
    while let Some(word) = stem_words.next() {
        let Some(next) = words.next() else {
            return false;
        };
        let last = stem_words.peek().is_none();
        if !(next == word || (last && next.starts_with(word))) {
            return false;
        }
    }
    true
}
