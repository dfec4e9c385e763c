//! A week's digest as an email: the subject, and the HTML and text parts
//! rendered once per issue from askama templates into a [`RenderedIssue`].
//! What differs per reader (their unsubscribe and preferences links, and
//! the greeting with their name) goes at places recorded as the parts are
//! rendered, so sending to many readers
//! costs joining segments, not a render, and never a search through text
//! that holds outside content. The same render makes the issue's page for
//! the site's archive ([`WebIssue`]), which has no reader's link at all.

use std::collections::HashMap;

use askama::Template;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use uuid::Uuid;

use crate::config::{SubjectTemplate, SubjectValues};
use crate::domain::{EditorNote, IssueWeek, LinkPlacesError, LinkedText, Marker, ReaderPlace, RenderedIssue, WebIssue};
use crate::i18n::Language;
use crate::links::Links;

/// The templates, read for the places they put the reader's own text.
const HTML_TEMPLATE: &str = include_str!("../../templates/email/digest.html");
const TEXT_TEMPLATE: &str = include_str!("../../templates/email/digest.txt");

/// Gmail clips messages over 102 KB; the HTML part stays under this.
pub const MAX_HTML_BYTES: usize = 100 * 1024;

/// One article as the digest shows it.
#[derive(Debug, Clone)]
pub struct DigestArticle {
    /// Which article it is (staff pages link to it; the digest does not).
    pub id: Uuid,
    pub title: String,
    pub url: String,
    pub author: Option<String>,
    pub published_at: DateTime<Utc>,
    pub summary: String,
    /// Where the story came from (a source's name or its feed's title);
    /// shown first in its line when known.
    pub source_name: Option<String>,
    /// Its section, if it has one: the digest groups stories by it.
    pub section: Option<String>,
}

/// What the digest is made of, besides its articles.
#[derive(Debug, Clone)]
pub struct DigestFrame<'a> {
    pub publication: &'a str,
    /// Where the site's home page and the issue's archive page are.
    pub links: Links,
    pub postal_address: &'a str,
    pub subject_template: &'a SubjectTemplate,
    /// The zone the issue's dates are written in (`schedule.timezone`).
    pub timezone: Tz,
    /// The digest's own words and dates are in it; the stories are as
    /// they were published.
    pub language: Language,
    /// What staff wrote for this issue at the editor's desk.
    pub shape: &'a IssueShape,
    /// With `tracking.clicks = "aggregate"`, the counted link the mail
    /// gives each story's address instead of the address itself; the
    /// site's page of the issue links the stories directly.
    pub counted_links: Option<&'a HashMap<String, String>>,
}

/// What staff wrote for one issue: each part left `None` (or empty) is
/// generated.
#[derive(Debug, Clone, Default)]
pub struct IssueShape {
    /// Instead of `digest.subject`.
    pub subject: Option<String>,
    /// Instead of the lead story's summary.
    pub preheader: Option<String>,
    /// Above the stories, in the mail and on the site.
    pub note: EditorNote,
}

/// The subject `digest.subject` makes for an issue whose lead story is
/// `lead_title` (staff see it as the default at the editor's desk).
pub fn generated_subject(
    frame: &DigestFrame<'_>,
    week: IssueWeek,
    issued_at: DateTime<Utc>,
    lead_title: &str,
) -> String {
    let date = frame
        .language
        .long_date(issued_at.with_timezone(&frame.timezone).date_naive());
    frame.subject_template.fill(&SubjectValues {
        date: &date,
        lead_title,
        week: &week.to_string(),
        publication: frame.publication,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template: {0}")]
    Template(#[from] askama::Error),
    #[error("{part} part: {source}")]
    LinkPlaces {
        part: &'static str,
        source: LinkPlacesError,
    },
}

/// How many times a template puts the reader's text of kind `place`.
fn link_places(template: &str, place: ReaderPlace) -> usize {
    template.matches(template_field(place)).count()
}

/// The template field each kind of a reader's text is written with. A
/// template that wants the reader's name greets them with
/// `reader_greeting` (the name alone would leave "Dear ," where it is not
/// known).
fn template_field(place: ReaderPlace) -> &'static str {
    match place {
        ReaderPlace::Unsubscribe => "unsubscribe_url",
        ReaderPlace::Preferences => "preferences_url",
        ReaderPlace::Greeting => "reader_greeting",
    }
}

/// A marker no content can hold: 128 random bits, made per render after
/// the articles are in hand. Letters, digits and `-` pass HTML escaping
/// and wrapping unchanged. It is never stored or logged.
fn fresh_marker() -> String {
    let bits: [u8; 16] = rand::random();
    let hex = crate::domain::lower_hex(&bits);
    format!("gazette-link-{hex}")
}

struct ShownArticle {
    title: String,
    title_wrapped: String,
    url: String,
    /// Where the mail links it: its address, or a counted link to it.
    mail_url: String,
    byline: String,
    byline_wrapped: String,
    summary: String,
    summary_wrapped: String,
    /// The section heading that stands before it: at the first story of
    /// each section after the lead.
    section_heading: Option<String>,
    /// The heading's underline in the text part.
    section_rule: String,
}

#[derive(Template)]
#[template(path = "email/digest.html")]
struct DigestHtml<'a> {
    /// The digest's own words, from the catalogues.
    lang: Language,
    subject: &'a str,
    preheader: &'a str,
    publication: &'a str,
    date: &'a str,
    articles: &'a [ShownArticle],
    site_url: &'a str,
    unsubscribe_url: &'a str,
    preferences_url: &'a str,
    reader_greeting: &'a str,
    /// The editor's note as HTML paragraphs, its text escaped
    /// ([`EditorNote::to_html`]); empty when there is none.
    note_html: &'a str,
    archive_url: &'a str,
    postal_address: &'a str,
}

/// How the editor's note's paragraphs look in the mail.
const NOTE_STYLE: &str = "margin:0 0 14px 0;font-size:16px;line-height:1.55;color:#1a1a1a;";

/// The stories as the site shows them, inside its own layout (the page is
/// the archive's, [`crate::web::archive`]).
#[derive(Template)]
#[template(path = "web/issue_stories.html")]
struct StoriesHtml<'a> {
    lang: Language,
    /// As in [`DigestHtml`], without the mail's styles.
    note_html: &'a str,
    articles: &'a [ShownArticle],
}

#[derive(Template)]
#[template(path = "email/digest.txt")]
struct DigestText<'a> {
    publication: &'a str,
    dateline: &'a str,
    rule: &'a str,
    contents_heading: &'a str,
    why_wrapped: &'a str,
    preferences_label: &'a str,
    unsubscribe_label: &'a str,
    web_version_label: &'a str,
    website_label: &'a str,
    articles: &'a [ShownArticle],
    site_url: &'a str,
    unsubscribe_url: &'a str,
    preferences_url: &'a str,
    reader_greeting: &'a str,
    /// The editor's note, paragraphs wrapped; empty when there is none.
    note_text: &'a str,
    archive_url: &'a str,
    postal_address: &'a str,
}

/// Renders the week's issue; `articles` come newest first. When the HTML
/// would pass Gmail's clipping size, the oldest articles are left out until
/// it fits; the rendered issue says how many made it.
pub fn render(
    frame: &DigestFrame<'_>,
    week: IssueWeek,
    issued_at: DateTime<Utc>,
    articles: &[DigestArticle],
) -> Result<RenderedIssue, RenderError> {
    let mut count = articles.len();
    loop {
        let issue = render_exactly(frame, week, issued_at, &articles[..count])?;
        let html_bytes = html_len(&issue);
        if html_bytes < MAX_HTML_BYTES || count <= 1 {
            return Ok(issue);
        }
        // Shrink in proportion, then step down to the exact fit.
        let fitting = count * MAX_HTML_BYTES / html_bytes;
        count = fitting.clamp(1, count - 1);
    }
}

/// The HTML part's size with room for a reader's text at its places: a
/// link, or a greeting with the longest name a reader may give (100
/// graphemes), escaped.
fn html_len(issue: &RenderedIssue) -> usize {
    let room = |place: &ReaderPlace| match place {
        ReaderPlace::Unsubscribe | ReaderPlace::Preferences => 160,
        ReaderPlace::Greeting => 640,
    };
    let segments = issue.html.segments();
    segments.iter().map(String::len).sum::<usize>() + issue.html.places().iter().map(room).sum::<usize>()
}

fn render_exactly(
    frame: &DigestFrame<'_>,
    week: IssueWeek,
    issued_at: DateTime<Utc>,
    articles: &[DigestArticle],
) -> Result<RenderedIssue, RenderError> {
    let unsubscribe_marker = fresh_marker();
    let preferences_marker = fresh_marker();
    let greeting_marker = fresh_marker();
    let lang = frame.language;
    let date = lang.long_date(issued_at.with_timezone(&frame.timezone).date_naive());
    let lead_title = articles.first().map(|a| a.title.as_str()).unwrap_or_default();
    let subject = match &frame.shape.subject {
        Some(subject) => subject.clone(),
        None => generated_subject(frame, week, issued_at, lead_title),
    };
    let note_html = frame.shape.note.to_html(NOTE_STYLE);
    let note_text = frame
        .shape
        .note
        .to_text()
        .iter()
        .map(|paragraph| wrap(paragraph, 72))
        .collect::<Vec<_>>()
        .join("\n\n");
    let shown: Vec<ShownArticle> = articles
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let heading = match (i, &a.section) {
                (0, _) | (_, None) => None,
                (_, Some(section)) if i > 1 && articles[i - 1].section.as_ref() == Some(section) => None,
                (_, Some(section)) => Some(section.clone()),
            };
            let date = lang.long_date(a.published_at.with_timezone(&frame.timezone).date_naive());
            let line = byline(a, &date);
            ShownArticle {
                title: a.title.clone(),
                title_wrapped: wrap(&a.title, 72),
                url: a.url.clone(),
                mail_url: frame
                    .counted_links
                    .and_then(|counted| counted.get(&a.url))
                    .unwrap_or(&a.url)
                    .clone(),
                byline_wrapped: wrap(&line, 72),
                byline: line,
                summary: a.summary.clone(),
                summary_wrapped: wrap(&a.summary, 72),
                section_rule: heading
                    .as_ref()
                    .map(|h| "-".repeat(h.chars().count()))
                    .unwrap_or_default(),
                section_heading: heading,
            }
        })
        .collect();
    let preheader = match &frame.shape.preheader {
        Some(preheader) => preheader.clone(),
        None => preheader(articles),
    };
    let archive_url = frame.links.archive_issue(week);
    let html = DigestHtml {
        lang,
        subject: &subject,
        preheader: &preheader,
        publication: frame.publication,
        date: &date,
        articles: &shown,
        site_url: frame.links.home(),
        unsubscribe_url: &unsubscribe_marker,
        preferences_url: &preferences_marker,
        reader_greeting: &greeting_marker,
        note_html: &note_html,
        archive_url: &archive_url,
        postal_address: frame.postal_address,
    }
    .render()?;
    let text = DigestText {
        publication: frame.publication,
        dateline: &lang.text1("digest-dateline", "date", date.as_str()),
        rule: &"=".repeat(frame.publication.chars().count()),
        contents_heading: &lang.text("digest-contents"),
        why_wrapped: &wrap(&lang.text1("digest-why", "publication", frame.publication), 72),
        preferences_label: &lang.text("digest-preferences"),
        unsubscribe_label: &lang.text("digest-unsubscribe"),
        web_version_label: &lang.text("digest-web-version"),
        website_label: &lang.text1("digest-website", "publication", frame.publication),
        articles: &shown,
        site_url: frame.links.home(),
        unsubscribe_url: &unsubscribe_marker,
        preferences_url: &preferences_marker,
        reader_greeting: &greeting_marker,
        note_text: &note_text,
        archive_url: &archive_url,
        postal_address: frame.postal_address,
    }
    .render()?;
    let cut = |part: &'static str, rendered: &str, template: &str| {
        let markers = [
            (unsubscribe_marker.as_str(), ReaderPlace::Unsubscribe),
            (preferences_marker.as_str(), ReaderPlace::Preferences),
            (greeting_marker.as_str(), ReaderPlace::Greeting),
        ]
        .map(|(text, link)| Marker {
            text,
            link,
            expected: link_places(template, link),
        });
        LinkedText::cut(rendered, &markers).map_err(|source| RenderError::LinkPlaces { part, source })
    };
    let stories_html = StoriesHtml {
        lang,
        note_html: &frame.shape.note.to_html(""),
        articles: &shown,
    }
    .render()?;
    Ok(RenderedIssue {
        subject,
        html: cut("HTML", &html, HTML_TEMPLATE)?,
        text: cut("text", &text, TEXT_TEMPLATE)?,
        articles: articles.len(),
        web: Some(WebIssue {
            lead_title: lead_title.to_owned(),
            stories_html,
        }),
    })
}

/// A story's line under its title: where it came from, who wrote it and
/// when, each left out when unknown ("Eurasianet · Ada Lovelace · 27
/// November 2026").
fn byline(article: &DigestArticle, date: &str) -> String {
    // Outside text: one line, whatever spacing it came with.
    let known = |s: &Option<String>| {
        s.as_deref()
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|s| !s.is_empty())
    };
    [
        known(&article.source_name),
        known(&article.author),
        Some(date.to_owned()),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" · ")
}

/// The line mail programs show after the subject: the lead story's
/// summary, cut at 140 characters (the template pads it with invisible
/// characters so no program pulls in the text after it).
fn preheader(articles: &[DigestArticle]) -> String {
    let lead = articles.first().map(|a| a.summary.trim()).unwrap_or_default();
    match lead.char_indices().nth(140) {
        Some((cut, _)) => format!("{}…", lead[..cut].trim_end()),
        None => lead.to_owned(),
    }
}

/// Wraps text at `width` columns on word boundaries; a word longer than
/// the width (a URL) stands on its own line unbroken.
pub fn wrap(text: &str, width: usize) -> String {
    let mut lines = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BaseUrl;
    use crate::domain::ReaderText;
    use chrono::TimeZone;

    const LINKS: ReaderText<'static> = ReaderText {
        unsubscribe: "READER-LINK",
        preferences: "READER-PREFERENCES",
        greeting: "READER-GREETING",
    };

    fn frame() -> DigestFrame<'static> {
        DigestFrame {
            publication: "The Weekly",
            links: Links::new(BaseUrl::parse("https://news.example.org").unwrap()),
            postal_address: "1 Press Lane, Dushanbe",
            subject_template: Box::leak(Box::new(
                SubjectTemplate::parse("Weekly digest — {date}: {lead_title}").unwrap(),
            )),
            timezone: Tz::UTC,
            language: Language::ENGLISH,
            shape: Box::leak(Box::default()),
            counted_links: None,
        }
    }

    fn article(title: &str, summary: &str) -> DigestArticle {
        DigestArticle {
            id: Uuid::new_v4(),
            title: title.into(),
            url: format!("https://news.example.org/{}", title.len()),
            author: Some("Konstantin Parshin".into()),
            published_at: Utc.with_ymd_and_hms(2026, 11, 26, 8, 0, 0).unwrap(),
            summary: summary.into(),
            source_name: None,
            section: None,
        }
    }

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap()
    }

    #[test]
    fn the_subject_and_both_parts_carry_the_articles() {
        let articles = [
            article(
                "Tajikistan tests the Kremlin",
                "Dushanbe's “multi-vector” policy & Moscow.",
            ),
            article("Floods in the north", "The river rose overnight."),
        ];
        let digest = render(&frame(), IssueWeek::of(at(), Tz::UTC), at(), &articles).unwrap();
        assert_eq!(
            digest.subject,
            "Weekly digest — 28 November 2026: Tajikistan tests the Kremlin"
        );
        let copy = digest.reader_copy(LINKS);
        let html = &copy.html;
        assert!(html.contains(r#"<html lang="en">"#) && html.contains(r#"name="color-scheme""#));
        // The preheader is the lead summary, padded so mail programs show
        // nothing after it.
        assert!(
            html.contains("display:none")
                && html.contains("Dushanbe&#39;s “multi-vector” policy &#38; Moscow.&#847;&zwnj;&nbsp;"),
            "{html}"
        );
        // The masthead outranks the date line.
        assert!(
            html.contains("font-size:30px;line-height:1.15;font-weight:bold;color:#1a1a1a;\">The Weekly</td>"),
            "{html}"
        );
        assert!(html.contains(">This week, 28 November 2026</p>"), "{html}");
        assert!(!html.contains("In this issue"), "two stories need no contents");
        assert!(html.contains("@media (prefers-color-scheme: dark)"));
        assert!(html.contains("<h2") && html.contains(r#"href="https://news.example.org/28""#));
        assert!(
            html.contains("Dushanbe&#39;s") || html.contains("Dushanbe&#x27;s"),
            "escaped: {html}"
        );
        assert!(html.contains("Konstantin Parshin · 26 November 2026"));
        assert!(
            html.contains(
                r#"<a class="muted" href="READER-PREFERENCES" style="color:#555555;">Manage your subscription</a> · <a class="muted" href="READER-LINK" style="color:#555555;">Unsubscribe</a>"#
            )
                && html.contains(r#"href="https://news.example.org/archive/2026-W48" style="color:#555555;">Read this issue on the web</a>"#),
            "{html}"
        );
        assert!(
            html.contains(">The Weekly on the web</a>"),
            "the site's link says where it goes: {html}"
        );
        assert!(html.contains("font-size:14px"), "a readable footer");
        assert!(html.contains("1 Press Lane, Dushanbe"));
        let text = &copy.text;
        assert!(text.contains("1. Tajikistan tests the Kremlin\n"), "{text}");
        assert!(text.contains("[1] https://news.example.org/28\n"), "{text}");
        assert!(text.contains("\n-- \n"), "the signature separator: {text}");
        assert!(
            text.contains("Dushanbe's “multi-vector” policy & Moscow."),
            "not escaped in text: {text}"
        );
        assert!(text.contains("Manage your subscription: READER-PREFERENCES\nUnsubscribe: READER-LINK\n"));
        // The greeting stands under the date line, where a reader's own
        // text goes (`Composer::digest` fills it with their name).
        assert!(
            html.contains(">This week, 28 November 2026</p>\n<p class=\"ink\""),
            "{html}"
        );
        assert!(html.contains(">READER-GREETING</p>"), "{html}");
        assert!(
            text.contains("This week, 28 November 2026\n\nREADER-GREETING\n"),
            "{text}"
        );
        let places = [
            ReaderPlace::Greeting,
            ReaderPlace::Preferences,
            ReaderPlace::Unsubscribe,
        ];
        assert_eq!((digest.html.places(), digest.text.places()), (&places[..], &places[..]));
        // The site's page of the issue: the stories, escaped, and nothing
        // of a reader's.
        let web = digest.web.as_ref().unwrap();
        assert_eq!(web.lead_title, "Tajikistan tests the Kremlin");
        assert!(
            web.stories_html.contains(
                r#"<h2 id="story-1"><a href="https://news.example.org/28">Tajikistan tests the Kremlin</a></h2>"#
            ),
            "{}",
            web.stories_html
        );
        assert!(
            web.stories_html
                .contains("Dushanbe&#39;s “multi-vector” policy &#38; Moscow.")
        );
        assert!(!web.stories_html.contains("In this issue"));
        assert!(!web.stories_html.contains("gazette-link-") && !web.stories_html.contains("unsubscribe"));
    }

    #[test]
    fn more_than_four_stories_get_contents_in_both_parts() {
        let articles: Vec<DigestArticle> = (1..=5)
            .map(|i| article(&format!("Story number {i}{}", "x".repeat(i)), "Summary."))
            .collect();
        let digest = render(&frame(), IssueWeek::of(at(), Tz::UTC), at(), &articles).unwrap();
        let copy = digest.reader_copy(LINKS);
        assert!(copy.html.contains(">In this issue</h2>"), "{}", copy.html);
        assert!(copy.html.contains(r##"href="#story-5""##) && copy.html.contains(r#"id="story-5""#));
        assert!(
            copy.text.contains("In this issue\n1. Story number 1x\n"),
            "{}",
            copy.text
        );
        assert!(copy.text.contains("\n5. Story number 5xxxxx\n"), "{}", copy.text);
        let web = digest.web.unwrap().stories_html;
        assert!(
            web.contains(r##"<li><a href="#story-5">Story number 5xxxxx</a></li>"##),
            "{web}"
        );
        assert!(web.contains(r#"<h2 id="contents-heading">In this issue</h2>"#), "{web}");
    }

    #[test]
    fn each_story_names_its_source_when_known_in_both_parts() {
        let mut named = article("Talks resume", "Talks resume in Dushanbe.");
        named.source_name = Some("Eurasianet".into());
        let mut anonymous = article("Floods in the north", "The river rose.");
        anonymous.source_name = Some("Rock & Roll <Weekly>".into());
        anonymous.author = None;
        let unnamed = article("Markets calm", "Prices held.");
        let digest = render(
            &frame(),
            IssueWeek::of(at(), Tz::UTC),
            at(),
            &[named, anonymous, unnamed],
        )
        .unwrap();
        let copy = digest.reader_copy(LINKS);
        let (html, text) = (copy.html, copy.text);
        for part in [&html, &text] {
            assert!(
                part.contains("Eurasianet · Konstantin Parshin · 26 November 2026"),
                "{part}"
            );
        }
        // No author: the source and the date; no source: as before.
        assert!(
            html.contains(">Rock &#38; Roll &#60;Weekly&#62; · 26 November 2026<")
                || html.contains(">Rock &amp; Roll &lt;Weekly&gt; · 26 November 2026<"),
            "escaped: {html}"
        );
        assert!(text.contains("\nRock & Roll <Weekly> · 26 November 2026\n"), "{text}");
        assert!(html.contains(">Konstantin Parshin · 26 November 2026<"), "{html}");
        assert!(text.contains("\nKonstantin Parshin · 26 November 2026\n"), "{text}");
    }

    #[test]
    fn a_full_issue_stays_under_gmails_clipping_size_and_text_is_wrapped() {
        let summary = "A long summary sentence that goes on for a while to fill the space. ".repeat(4);
        let ten: Vec<DigestArticle> = (0..10).map(|i| article(&format!("Story {i}"), &summary)).collect();
        assert_eq!(
            render(&frame(), IssueWeek::of(at(), Tz::UTC), at(), &ten)
                .unwrap()
                .articles,
            10,
            "a normal issue is whole"
        );
        let articles: Vec<DigestArticle> = (0..100)
            .map(|i| article(&format!("Story {i} {}", "word ".repeat(50)), &summary))
            .collect();
        let digest = render(&frame(), IssueWeek::of(at(), Tz::UTC), at(), &articles).unwrap();
        assert!(html_len(&digest) < MAX_HTML_BYTES, "{} bytes", html_len(&digest));
        let copy = digest.reader_copy(LINKS);
        let (html, text) = (copy.html, copy.text);
        assert!(
            digest.articles > 10 && digest.articles < 100,
            "{} articles",
            digest.articles
        );
        assert!(
            html.contains("Story 0 ") && !html.contains("Story 99 "),
            "the newest stay"
        );
        for line in text.lines().filter(|l| !l.contains("https://")) {
            assert!(line.chars().count() <= 76, "{line:?}");
        }
    }

    #[test]
    fn template_looking_text_in_an_article_never_becomes_a_link_place() {
        let hostile = "%%UNSUBSCRIBE_URL%% {{ unsubscribe_url }} gazette-link-00000000000000000000000000000000";
        let mut evil = article(&format!("Title {hostile}"), &format!("Summary {hostile}"));
        evil.url = "https://evil.example/r?u=%%UNSUBSCRIBE_URL%%".into();
        let digest = render(&frame(), IssueWeek::of(at(), Tz::UTC), at(), &[evil]).unwrap();
        let copy = digest.reader_copy(LINKS);
        for (part, filled) in [("html", copy.html), ("text", copy.text)] {
            assert_eq!(filled.matches("READER-LINK").count(), 1, "{part}: {filled}");
            assert_eq!(filled.matches("READER-PREFERENCES").count(), 1, "{part}: {filled}");
            assert!(
                filled.contains("https://evil.example/r?u=%%UNSUBSCRIBE_URL%%"),
                "{part}"
            );
            assert!(
                filled.contains("Summary %%UNSUBSCRIBE_URL%% {{ unsubscribe_url }}"),
                "{part}"
            );
        }
        for template in [HTML_TEMPLATE, TEXT_TEMPLATE] {
            assert_eq!(link_places(template, ReaderPlace::Unsubscribe), 1);
            assert_eq!(link_places(template, ReaderPlace::Preferences), 1);
        }
        let web = digest.web.unwrap().stories_html;
        assert!(
            web.contains("Summary %%UNSUBSCRIBE_URL%% {{ unsubscribe_url }}"),
            "{web}"
        );
    }

    #[test]
    fn the_issue_date_is_the_day_in_the_schedules_zone() {
        // Monday 07:00 in Tokyo is Sunday 22:00 in UTC.
        let sunday_utc = Utc.with_ymd_and_hms(2026, 11, 29, 22, 0, 0).unwrap();
        let tokyo = DigestFrame {
            timezone: chrono_tz::Asia::Tokyo,
            ..frame()
        };
        let week = IssueWeek::of(sunday_utc, chrono_tz::Asia::Tokyo);
        let digest = render(&tokyo, week, sunday_utc, &[article("Floods", "The river rose.")]).unwrap();
        assert_eq!(digest.subject, "Weekly digest — 30 November 2026: Floods");
        assert!(
            digest
                .reader_copy(LINKS)
                .html
                .contains("https://news.example.org/archive/2026-W49")
        );
    }

    #[test]
    fn wrap_breaks_on_words_and_keeps_long_words_whole() {
        assert_eq!(wrap("one two three four", 9), "one two\nthree\nfour");
        assert_eq!(
            wrap("see https://example.org/a/very/long/path now", 10),
            "see\nhttps://example.org/a/very/long/path\nnow"
        );
    }
}
