//! An issue as rendered, from the render to every copy of it: what all its
//! readers share, and the places where each reader's own text goes (their
//! unsubscribe link, their preferences link, and the greeting that names
//! them). The places are recorded when the issue is rendered, so a copy
//! never searches text that holds outside content (an article's link,
//! title or summary can say anything). Who a copy is for decides what
//! stands at those places, and only there: a reader's own links and name,
//! the site's pages that belong to no one, or stand-ins that change
//! nobody's subscription.

use std::borrow::Cow;

/// What stood at the link places in the parts of issues stored before the
/// places were recorded. Only read back, to send and show those issues.
const LEGACY_PLACEHOLDER: &str = "%%UNSUBSCRIBE_URL%%";

/// What of a reader's own stands at a place in a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderPlace {
    /// Their unsubscribe page (and RFC 8058 one-click target).
    Unsubscribe,
    /// Their preferences page.
    Preferences,
    /// The greeting, with their name where it is known
    /// (`i18n::Greeting`).
    Greeting,
}

impl ReaderPlace {
    /// How a place of this kind is written among a stored part's offsets:
    /// an unsubscribe place is a bare offset, as every place was before
    /// preferences links, so rows stored then read back unchanged.
    fn stored_prefix(self) -> &'static str {
        match self {
            Self::Unsubscribe => "",
            Self::Preferences => "p",
            Self::Greeting => "g",
        }
    }
}

impl std::fmt::Display for ReaderPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unsubscribe => "unsubscribe link",
            Self::Preferences => "preferences link",
            Self::Greeting => "greeting",
        })
    }
}

/// What one copy puts at its places, one text per kind, as plain text (the
/// HTML part gets it escaped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderText<'a> {
    pub unsubscribe: &'a str,
    pub preferences: &'a str,
    pub greeting: &'a str,
}

impl<'a> ReaderText<'a> {
    pub fn get(&self, place: ReaderPlace) -> &'a str {
        match place {
            ReaderPlace::Unsubscribe => self.unsubscribe,
            ReaderPlace::Preferences => self.preferences,
            ReaderPlace::Greeting => self.greeting,
        }
    }
}

/// What the staff preview shows at the link places of each part: nothing
/// that changes anyone's subscription, and plain to see as a stand-in.
const PREVIEW_HTML_LINKS: [&str; 2] = ["#unsubscribe", "#preferences"];
const PREVIEW_TEXT_LINKS: [&str; 2] = [
    "(the reader's own unsubscribe link)",
    "(the reader's own preferences link)",
];

/// A rendered issue: its subject, its HTML and text parts with their link
/// places, and how many articles made it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedIssue {
    pub subject: String,
    pub html: LinkedText,
    pub text: LinkedText,
    /// How many of the given articles are in it (the first ones).
    pub articles: usize,
    /// The issue as the site's archive shows it; `None` where it was not
    /// kept (issues stored before, test sends, the sender's reads).
    pub web: Option<WebIssue>,
}

/// An issue as a page of the public site shows it, inside the site's own
/// layout: the lead story's title (the archive lists issues by it) and the
/// stories as an HTML fragment, with nothing of any reader's in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebIssue {
    pub lead_title: String,
    pub stories_html: String,
}

/// One copy of an issue, with its link places filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueCopy<'a> {
    pub subject: Cow<'a, str>,
    pub html: String,
    pub text: String,
}

/// Text as HTML writes it, in an attribute's value or between tags (a
/// link's `&` is `&amp;`).
pub fn html_escape(link: &str) -> Cow<'_, str> {
    if !link.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(link);
    }
    let mut escaped = String::with_capacity(link.len() + 16);
    for c in link.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

impl RenderedIssue {
    /// The copy a reader gets: their own text at its places, and nowhere
    /// else (in the HTML part escaped).
    pub fn reader_copy(&self, links: ReaderText<'_>) -> IssueCopy<'_> {
        let unsubscribe = html_escape(links.unsubscribe);
        let preferences = html_escape(links.preferences);
        let greeting = html_escape(links.greeting);
        self.copy_with(
            links,
            ReaderText {
                unsubscribe: &unsubscribe,
                preferences: &preferences,
                greeting: &greeting,
            },
        )
    }

    /// A reader's copy with the text each part gets written as given: the
    /// caller has escaped and encoded it as the parts are (see
    /// [`Self::encoded`]).
    pub fn copy_with(&self, text: ReaderText<'_>, html: ReaderText<'_>) -> IssueCopy<'_> {
        IssueCopy {
            subject: Cow::Borrowed(&self.subject),
            html: self.html.fill(html),
            text: self.text.fill(text),
        }
    }

    /// A staff member's test copy: marked in its subject, and its links
    /// are `nobody`'s, links that match no reader.
    pub fn test_copy(&self, nobody: ReaderText<'_>) -> IssueCopy<'_> {
        IssueCopy {
            subject: Cow::Owned(format!("[Test] {}", self.subject)),
            ..self.reader_copy(nobody)
        }
    }

    /// The issue as staff preview it before it goes out: stand-ins at the
    /// link places, and `greeting` (as a reader without a name gets it).
    pub fn preview(&self, greeting: &str) -> IssueCopy<'_> {
        let [unsubscribe, preferences] = PREVIEW_HTML_LINKS;
        let in_html = html_escape(greeting);
        let html = ReaderText {
            unsubscribe,
            preferences,
            greeting: &in_html,
        };
        let [unsubscribe, preferences] = PREVIEW_TEXT_LINKS;
        let text = ReaderText {
            unsubscribe,
            preferences,
            greeting,
        };
        IssueCopy {
            subject: Cow::Borrowed(&self.subject),
            html: self.html.fill(html),
            text: self.text.fill(text),
        }
    }

    /// The whole HTML part as the public archive shows an issue stored
    /// before [`WebIssue`]s were kept: the link places lead to `pages`,
    /// which ask for nothing but belong to no one.
    pub fn archive_copy(&self, pages: ReaderText<'_>) -> String {
        self.reader_copy(pages).html
    }

    /// The same issue with the text of each part passed through `encode` (a
    /// transfer encoding, applied once per issue). The link places stay
    /// where they were, so a copy of the result needs only its links
    /// encoded the same way.
    pub fn encoded(&self, encode: impl Fn(&str) -> String) -> Self {
        Self {
            subject: self.subject.clone(),
            html: self.html.encoded(&encode),
            text: self.text.encoded(&encode),
            articles: self.articles,
            web: self.web.clone(),
        }
    }
}

/// A rendered part (HTML or text) cut at its reader places: `segments` has
/// one more element than there are places, and a copy is the segments
/// joined by its reader's text, each place's of its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedText {
    segments: Vec<String>,
    places: Vec<ReaderPlace>,
}

/// One kind of link place as a render marks it: `marker` stands at each
/// place, and the template has `expected` of them.
#[derive(Debug, Clone, Copy)]
pub struct Marker<'a> {
    pub text: &'a str,
    pub link: ReaderPlace,
    pub expected: usize,
}

/// A part that does not have the reader places its template gives it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the template puts the reader's {link} at {expected} places but {found} were found")]
pub struct LinkPlacesError {
    pub link: ReaderPlace,
    pub expected: usize,
    pub found: usize,
}

/// A stored part whose link places do not read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoredPartError {
    #[error("link place `{0}` is not an offset")]
    NotAnOffset(String),
    #[error("link place {0} is not in order inside the text")]
    OutOfOrder(usize),
}

impl LinkedText {
    /// Cuts a part rendered with `markers` at the link places. Each marker
    /// is fresh and random per render, made after the content was in hand,
    /// so only the template can have put it there; a count other than the
    /// template's is refused rather than guessed at.
    pub fn cut(rendered: &str, markers: &[Marker<'_>]) -> Result<Self, LinkPlacesError> {
        let mut segments = Vec::new();
        let mut places = Vec::new();
        let mut rest = rendered;
        loop {
            let next = markers
                .iter()
                .filter_map(|marker| rest.find(marker.text).map(|at| (at, marker)))
                .min_by_key(|(at, _)| *at);
            let Some((at, marker)) = next else { break };
            segments.push(rest[..at].to_owned());
            places.push(marker.link);
            rest = &rest[at + marker.text.len()..];
        }
        segments.push(rest.to_owned());
        for marker in markers {
            let found = places.iter().filter(|link| **link == marker.link).count();
            if found != marker.expected {
                return Err(LinkPlacesError {
                    link: marker.link,
                    expected: marker.expected,
                    found,
                });
            }
        }
        Ok(Self { segments, places })
    }

    /// A part made of these segments, with an unsubscribe place between
    /// each two (the shape of every part before preferences links).
    pub fn from_segments(segments: Vec<String>) -> Self {
        let places = vec![ReaderPlace::Unsubscribe; segments.len().saturating_sub(1)];
        Self::with_places(segments, places)
    }

    /// A part made of these segments with `places` between them, in order;
    /// places beyond one fewer than the segments are dropped, and missing
    /// ones are unsubscribe places.
    pub fn with_places(mut segments: Vec<String>, mut places: Vec<ReaderPlace>) -> Self {
        if segments.is_empty() {
            segments.push(String::new());
        }
        places.resize(segments.len() - 1, ReaderPlace::Unsubscribe);
        Self { segments, places }
    }

    /// The text around the link places, in order.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// What stands between each two segments, in order.
    pub fn places(&self) -> &[ReaderPlace] {
        &self.places
    }

    /// The part with `links` at its places, each of its kind, and nowhere
    /// else. Kept to this module: a copy is made by one of
    /// [`RenderedIssue`]'s operations, which say who it is for.
    fn fill(&self, links: ReaderText<'_>) -> String {
        let mut filled = String::with_capacity(self.segments.iter().map(String::len).sum::<usize>() + 200);
        for (i, segment) in self.segments.iter().enumerate() {
            if i > 0 {
                filled.push_str(links.get(self.places[i - 1]));
            }
            filled.push_str(segment);
        }
        filled
    }

    fn encoded(&self, encode: impl Fn(&str) -> String) -> Self {
        Self {
            segments: self.segments.iter().map(|s| encode(s)).collect(),
            places: self.places.clone(),
        }
    }

    /// How the part is stored: the segments one after the other, and the
    /// reader places in that text, comma-separated: a byte offset, after a
    /// `p` for a preferences place and a `g` for a greeting.
    pub fn to_stored(&self) -> (String, String) {
        let mut text = String::with_capacity(self.segments.iter().map(String::len).sum());
        let mut offsets = Vec::with_capacity(self.places.len());
        for (i, segment) in self.segments.iter().enumerate() {
            if i > 0 {
                offsets.push(format!("{}{}", self.places[i - 1].stored_prefix(), text.len()));
            }
            text.push_str(segment);
        }
        (text, offsets.join(","))
    }

    /// Reads a stored part back. `links` is `None` for a part stored before
    /// link places were recorded: see [`LinkedText::from_legacy`].
    pub fn from_stored(text: String, links: Option<&str>) -> Result<Self, StoredPartError> {
        let Some(links) = links else {
            return Ok(Self::from_legacy(&text));
        };
        let mut segments = Vec::new();
        let mut places = Vec::new();
        let mut start = 0;
        for raw in links.split(',').filter(|o| !o.is_empty()) {
            let (link, digits) = [ReaderPlace::Preferences, ReaderPlace::Greeting]
                .into_iter()
                .find_map(|place| raw.strip_prefix(place.stored_prefix()).map(|digits| (place, digits)))
                .unwrap_or((ReaderPlace::Unsubscribe, raw));
            let offset: usize = digits
                .parse()
                .map_err(|_| StoredPartError::NotAnOffset(raw.to_owned()))?;
            if offset < start || offset > text.len() || !text.is_char_boundary(offset) {
                return Err(StoredPartError::OutOfOrder(offset));
            }
            segments.push(text[start..offset].to_owned());
            places.push(link);
            start = offset;
        }
        segments.push(text[start..].to_owned());
        Ok(Self { segments, places })
    }

    /// A part stored with the old placeholder at its link place. The
    /// digest templates put that placeholder once per part, in the footer,
    /// after every article; what follows it is the operator's own text (the
    /// archive address and the postal address). So the last occurrence is
    /// the template's, and any earlier one came from an article: it stays
    /// the literal placeholder text, never a reader's link.
    fn from_legacy(text: &str) -> Self {
        let segments = match text.rsplit_once(LEGACY_PLACEHOLDER) {
            Some((before, after)) => vec![before.to_owned(), after.to_owned()],
            None => vec![text.to_owned()],
        };
        Self::from_segments(segments)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINKS: ReaderText<'static> = ReaderText {
        unsubscribe: "U-LINK",
        preferences: "P-LINK",
        greeting: "Dear <Ann & Bob>,",
    };

    fn issue(html: LinkedText, text: LinkedText) -> RenderedIssue {
        RenderedIssue {
            subject: "This week".into(),
            html,
            text,
            articles: 1,
            web: None,
        }
    }

    fn markers(unsubscribe: usize, preferences: usize) -> [Marker<'static>; 3] {
        markers_with_greeting(unsubscribe, preferences, 0)
    }

    fn markers_with_greeting(unsubscribe: usize, preferences: usize, greeting: usize) -> [Marker<'static>; 3] {
        [
            Marker {
                text: "M1",
                link: ReaderPlace::Unsubscribe,
                expected: unsubscribe,
            },
            Marker {
                text: "M2",
                link: ReaderPlace::Preferences,
                expected: preferences,
            },
            Marker {
                text: "M3",
                link: ReaderPlace::Greeting,
                expected: greeting,
            },
        ]
    }

    #[test]
    fn a_part_is_cut_only_at_the_markers_and_filled_only_there_each_with_its_own_link() {
        let part = LinkedText::cut(
            "<a href=\"https://evil.example/r?u=%%UNSUBSCRIBE_URL%%\">x</a> <a href=\"M2\">Preferences</a> \
             <a href=\"M1\">Unsubscribe</a>",
            &markers(1, 1),
        )
        .unwrap();
        assert_eq!(part.places(), [ReaderPlace::Preferences, ReaderPlace::Unsubscribe]);
        assert_eq!(
            part.fill(LINKS),
            "<a href=\"https://evil.example/r?u=%%UNSUBSCRIBE_URL%%\">x</a> <a href=\"P-LINK\">Preferences</a> \
             <a href=\"U-LINK\">Unsubscribe</a>"
        );
        assert_eq!(
            LinkedText::cut("M1 and M1 M2", &markers(1, 1)),
            Err(LinkPlacesError {
                link: ReaderPlace::Unsubscribe,
                expected: 1,
                found: 2
            })
        );
        assert_eq!(
            LinkedText::cut("M1 nothing else", &markers(1, 1)),
            Err(LinkPlacesError {
                link: ReaderPlace::Preferences,
                expected: 1,
                found: 0
            })
        );
    }

    #[test]
    fn stored_parts_read_back_the_same_and_bad_offsets_are_refused() {
        for (segments, places) in [
            (
                vec!["Hello ".to_owned(), " — Ünïcödé".to_owned(), String::new()],
                vec![ReaderPlace::Preferences, ReaderPlace::Unsubscribe],
            ),
            (vec!["only text %%UNSUBSCRIBE_URL%%".to_owned()], vec![]),
            (vec![String::new(), String::new()], vec![ReaderPlace::Preferences]),
            (
                vec!["<p>".to_owned(), "</p>Ü".to_owned(), "!".to_owned()],
                vec![ReaderPlace::Greeting, ReaderPlace::Unsubscribe],
            ),
        ] {
            let part = LinkedText::with_places(segments, places);
            let (text, links) = part.to_stored();
            assert_eq!(LinkedText::from_stored(text, Some(&links)).unwrap(), part);
        }
        for bad in ["x", "3,1", "99", "1", "p", "q1", "p99", "1,p0", "g", "gp0", "g99"] {
            assert!(LinkedText::from_stored("Üb".into(), Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_link_with_a_query_is_escaped_in_the_html_part_only() {
        let part = |s: &str| LinkedText::cut(s, &markers(1, 0)).unwrap();
        let issue = issue(part("<a href=\"M1\">x</a>"), part("Leave: M1\n"));
        let copy = issue.reader_copy(ReaderText {
            unsubscribe: "https://s/u?token=a&issue=2026-W48",
            preferences: "https://s/p?token=a",
            greeting: "",
        });
        assert_eq!(copy.html, "<a href=\"https://s/u?token=a&amp;issue=2026-W48\">x</a>");
        assert_eq!(copy.text, "Leave: https://s/u?token=a&issue=2026-W48\n");
        assert_eq!(html_escape("a\"b'c<d>"), "a&quot;b&#39;c&lt;d&gt;");
    }

    #[test]
    fn a_part_stored_before_preferences_links_has_unsubscribe_places_only() {
        let part = LinkedText::from_stored("Leave: . Or here: .".into(), Some("7,18")).unwrap();
        assert_eq!(part.places(), [ReaderPlace::Unsubscribe, ReaderPlace::Unsubscribe]);
        assert_eq!(part.fill(LINKS), "Leave: U-LINK. Or here: U-LINK.");
    }

    #[test]
    fn a_legacy_part_links_only_at_its_last_placeholder() {
        let text = "Read: https://evil.example/r?u=%%UNSUBSCRIBE_URL%%\n--\nUnsubscribe: %%UNSUBSCRIBE_URL%%\nArchive";
        let part = LinkedText::from_stored(text.into(), None).unwrap();
        assert_eq!(
            part.fill(LINKS),
            "Read: https://evil.example/r?u=%%UNSUBSCRIBE_URL%%\n--\nUnsubscribe: U-LINK\nArchive"
        );
        let none = LinkedText::from_stored("no link".into(), None).unwrap();
        assert_eq!(none.segments().len(), 1);
    }

    #[test]
    fn each_copy_puts_its_own_text_at_the_places_and_nowhere_else() {
        let part = |s: &str| {
            let marked = s.replace("{U}", "M1").replace("{P}", "M2").replace("{G}", "M3");
            LinkedText::cut(&marked, &markers_with_greeting(1, 1, 1)).unwrap()
        };
        let issue = issue(
            part(
                "<p>{G}</p><a href=\"%%UNSUBSCRIBE_URL%%\">x</a><a href=\"{P}\">Preferences</a><a href=\"{U}\">Unsubscribe</a>",
            ),
            part("{G}\nx %%UNSUBSCRIBE_URL%%\nPreferences: {P}\nUnsubscribe: {U}\n"),
        );
        let reader = issue.reader_copy(ReaderText {
            unsubscribe: "https://s/u?token=abc",
            preferences: "https://s/p?token=abc",
            greeting: "Dear <b>Ann</b> & \"Bob\",",
        });
        assert_eq!(reader.subject, "This week");
        assert_eq!(
            reader.html,
            "<p>Dear &lt;b&gt;Ann&lt;/b&gt; &amp; &quot;Bob&quot;,</p><a href=\"%%UNSUBSCRIBE_URL%%\">x</a>\
             <a href=\"https://s/p?token=abc\">Preferences</a><a href=\"https://s/u?token=abc\">Unsubscribe</a>"
        );
        assert_eq!(
            reader.text,
            "Dear <b>Ann</b> & \"Bob\",\nx %%UNSUBSCRIBE_URL%%\nPreferences: https://s/p?token=abc\n\
             Unsubscribe: https://s/u?token=abc\n"
        );
        let test = issue.test_copy(ReaderText {
            unsubscribe: "https://s/u?token=nobody",
            preferences: "https://s/p?token=nobody",
            greeting: "Hello,",
        });
        assert_eq!(test.subject, "[Test] This week");
        assert_eq!(
            test.text,
            "Hello,\nx %%UNSUBSCRIBE_URL%%\nPreferences: https://s/p?token=nobody\n\
             Unsubscribe: https://s/u?token=nobody\n"
        );
        let preview = issue.preview("Dear reader & friend,");
        assert!(preview.html.starts_with("<p>Dear reader &amp; friend,</p>"));
        assert_eq!(preview.html.matches("#unsubscribe").count(), 1);
        assert_eq!(preview.html.matches("#preferences").count(), 1);
        assert!(preview.text.starts_with("Dear reader & friend,\n"));
        assert!(preview.text.ends_with(
            "Preferences: (the reader's own preferences link)\nUnsubscribe: (the reader's own unsubscribe link)\n"
        ));
        assert_eq!(
            issue.archive_copy(ReaderText {
                unsubscribe: "/unsubscribe",
                preferences: "/preferences",
                greeting: "Hello,",
            }),
            "<p>Hello,</p><a href=\"%%UNSUBSCRIBE_URL%%\">x</a><a href=\"/preferences\">Preferences</a>\
             <a href=\"/unsubscribe\">Unsubscribe</a>"
        );
        let encoded = issue.encoded(|s| s.to_uppercase());
        let shouted = encoded.reader_copy(LINKS);
        assert_eq!(
            shouted.text,
            "Dear <Ann & Bob>,\nX %%UNSUBSCRIBE_URL%%\nPREFERENCES: P-LINK\nUNSUBSCRIBE: U-LINK\n"
        );
    }
}
