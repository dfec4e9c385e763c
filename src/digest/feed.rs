//! One feed document (RSS 0.9x/1.0/2.0, Atom, JSON Feed) or one plain-text
//! article, parsed into articles. Every entry is parsed on its own: a bad
//! entry is rejected with its reason and the rest still import.

use chrono::{DateTime, Utc};

use crate::db::articles::NewArticle;
use crate::digest::html_text::html_to_text;
use crate::digest::summary;
use crate::domain::{ArticleTitle, ArticleTitleError, ArticleUrl, ArticleUrlError, Rejection, SummarySource, Warning};

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
}

/// The document as a whole is not a feed.
#[derive(Debug, thiserror::Error)]
#[error("not a feed that can be read: {0}")]
pub struct NotAFeed(#[from] feed_rs::parser::ParseFeedError);

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
    #[error("the first line must be the title: {0}")]
    FirstLine(ArticleTitleError),
    #[error("there is no body after the title line")]
    NoBody,
}

/// Parses a feed; `Err` only when the document as a whole is unreadable.
pub fn parse_feed(bytes: &[u8], base: Option<&url::Url>, rules: FeedRules) -> Result<ParsedFeed, NotAFeed> {
    let summary_max = rules.summary_max;
    // An entry without an id is known by its link (db::articles): no id of
    // feed-rs's making (a hash of link and title, which a new title changes).
    let feed = feed_rs::parser::Builder::new()
        .id_generator(|_, _, _| String::new())
        .build()
        .parse(bytes)?;
    let feed_title = feed
        .title
        .as_ref()
        .map(|t| html_to_text(&t.content))
        .filter(|t| !t.trim().is_empty());
    // Relative links resolve against the feed's own link, else where it came from.
    let feed_link = feed.links.iter().find_map(|l| url::Url::parse(&l.href).ok());
    let base = feed_link.as_ref().or(base);
    let entries = feed
        .entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let title = entry
                .title
                .as_ref()
                .map(|t| html_to_text(&t.content))
                .unwrap_or_default();
            let name = if title.trim().is_empty() {
                format!("entry {}", i + 1)
            } else {
                format!("entry {} (“{}”)", i + 1, title.trim())
            };
            entry_to_article(entry, &title, base, summary_max).map_err(|reason| Rejection {
                entry: name,
                reason: reason.to_string(),
            })
        })
        .collect();
    Ok(ParsedFeed {
        title: feed_title,
        entries,
        warnings: Vec::new(),
    })
}

fn entry_to_article(
    entry: feed_rs::model::Entry,
    title: &str,
    base: Option<&url::Url>,
    summary_max: usize,
) -> Result<NewArticle, EntryError> {
    let link = entry.links.first().map(|l| l.href.clone()).ok_or(EntryError::NoLink)?;
    let url = ArticleUrl::resolve(base, &link).map_err(EntryError::Link)?;
    let title = ArticleTitle::parse(title).map_err(EntryError::Title)?;
    let excerpt = entry
        .summary
        .as_ref()
        .map(|t| html_to_text(&t.content))
        .unwrap_or_default();
    let content = entry
        .content
        .as_ref()
        .and_then(|c| c.body.as_deref())
        .map(html_to_text)
        .unwrap_or_default();
    let body = if content.trim().is_empty() {
        excerpt.clone()
    } else {
        content
    };
    if body.trim().is_empty() {
        return Err(EntryError::NoText);
    }
    let (summary, summary_source) = choose_summary(&excerpt, &body, summary_max);
    let author = entry
        .authors
        .first()
        .and_then(|a| a.name.as_deref().map(|n| n.trim().to_owned()))
        .filter(|a| !a.is_empty());
    Ok(NewArticle {
        url,
        feed: None,
        guid: Some(entry.id).filter(|id| !id.trim().is_empty()),
        source_name: None,
        title,
        author,
        published_at: entry.published.or(entry.updated),
        body,
        summary,
        summary_source,
    })
}

/// The feed's own excerpt when it says something of its own; a generated
/// lead summary when the excerpt is missing or just the body cut short.
fn choose_summary(excerpt: &str, body: &str, max_chars: usize) -> (String, SummarySource) {
    let stem = excerpt
        .trim()
        .trim_end_matches(['…', '.', ' '])
        .trim_end_matches("[")
        .trim_end();
    let is_cut_body = stem.is_empty() || normalise(body).starts_with(&normalise(stem));
    if is_cut_body {
        (summary::lead_summary(body, max_chars), SummarySource::Generated)
    } else {
        (summary::lead_summary(excerpt, max_chars), SummarySource::Feed)
    }
}

fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
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
    Ok(NewArticle {
        url,
        feed: None,
        guid: None,
        source_name: None,
        title,
        author,
        published_at,
        body,
        summary,
        summary_source: SummarySource::Generated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: FeedRules = FeedRules {
        summary_max: 300,
        max_body_bytes: 1 << 20,
    };

    const FIXTURE: &str = include_str!("../../tests/fixtures/article-tajikistan-multi-vector.txt");

    #[test]
    fn the_fixture_imports_as_plain_text() {
        let url = ArticleUrl::parse("https://eurasianet.org/tajikistan-multi-vector").unwrap();
        let article = parse_plain_text(FIXTURE, url, None, None, 300).unwrap();
        assert_eq!(
            article.title.as_str(),
            "Tajikistan’s “multi-vector” foreign policy is testing the Kremlin’s patience."
        );
        assert!(article.body.starts_with("Tajikistan’s “multi-vector” foreign policy"));
        assert!(
            article
                .summary
                .starts_with("Tajikistan’s “multi-vector” foreign policy is testing the Kremlin’s patience. Russia")
        );
        assert!(!article.summary.contains("Sign up"));
        assert_eq!(article.summary_source, SummarySource::Generated);
    }

    #[test]
    fn a_plain_title_line_is_the_title() {
        let url = ArticleUrl::parse("https://example.org/floods").unwrap();
        let article = parse_plain_text(
            "Floods in the north\n\nThe river rose. Towns emptied.",
            url,
            None,
            None,
            300,
        )
        .unwrap();
        assert_eq!(article.title.as_str(), "Floods in the north");
        assert_eq!(article.body, "The river rose. Towns emptied.");
        let url = ArticleUrl::parse("https://example.org/empty").unwrap();
        assert!(parse_plain_text("Only a title", url, None, None, 300).is_err());
    }

    #[test]
    fn html_becomes_text() {
        let text =
            html_to_text("<p>Floods &amp; storms</p><script>alert(1)</script><p>Second <a href='/x'>para</a></p>");
        assert_eq!(text, "Floods & storms\nSecond para");
    }

    #[test]
    fn a_cut_body_is_not_a_summary_but_an_own_excerpt_is() {
        let body = "The river rose overnight. Towns emptied by morning. Aid arrived at noon.";
        let (summary, source) = choose_summary("The river rose overnight. Towns emp…", body, 300);
        assert_eq!(source, SummarySource::Generated);
        assert_eq!(summary, body);
        let (summary, source) = choose_summary("Floods hit the north; thousands leave.", body, 300);
        assert_eq!(
            (summary.as_str(), source),
            ("Floods hit the north; thousands leave.", SummarySource::Feed)
        );
    }

    /// Old feeds write Windows-1252's curly quotes and dashes as `&#146;`
    /// and the like, which XML decodes to C1 control characters: they
    /// become the characters meant, in titles, excerpts and bodies alike,
    /// and the entry is not refused for a control character.
    #[test]
    fn windows_1252_character_references_become_the_characters_meant() {
        let rss = br#"<?xml version="1.0"?>
<rss version="2.0"><channel><title>Old blog</title><link>https://blog.example.org/</link>
<item><title>It&#146;s &#147;back&#148; &#150; 2003&#153;</title><link>/a</link><guid>a</guid>
<description>&lt;p&gt;Caf&#233; &amp;#147;Tea&amp;#148;&#133; and &#129;nothing&#157; else.&lt;/p&gt;</description></item>
</channel></rss>"#;
        let entries = parse_feed(rss, None, RULES).unwrap().entries;
        let article = entries[0].as_ref().expect("imported, not refused");
        assert_eq!(article.title.as_str(), "It’s “back” – 2003™");
        assert_eq!(article.body, "Café “Tea”… and nothing else.");
        for text in [article.title.as_str(), &article.body, &article.summary] {
            assert!(!text.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)), "{text:?}");
        }
    }

    #[test]
    fn a_feed_with_a_bad_entry_keeps_the_good_ones() {
        let rss = br#"<?xml version="1.0"?>
<rss version="2.0"><channel><title>News</title><link>https://news.example.org/</link>
<item><title>First</title><link>/2026/first</link><guid>a1</guid><description>&lt;p&gt;One. Two.&lt;/p&gt;</description></item>
<item><title>No link here</title><guid>a2</guid><description>Text.</description></item>
</channel></rss>"#;
        let entries = parse_feed(rss, None, RULES).unwrap().entries;
        assert_eq!(entries.len(), 2);
        let first = entries[0].as_ref().unwrap();
        assert_eq!(first.url.as_str(), "https://news.example.org/2026/first");
        assert_eq!(first.body, "One. Two.");
        let rejected = entries[1].as_ref().unwrap_err();
        assert_eq!(rejected.entry, "entry 2 (“No link here”)");
        assert_eq!(rejected.reason, "it has no link");
        assert!(parse_feed(b"<html>not a feed", None, RULES).is_err());
    }
}
