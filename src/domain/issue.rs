//! An issue as rendered, from the render to every copy of it: what all its
//! readers share, and the places where each reader's own unsubscribe link
//! goes. The places are recorded when the issue is rendered, so a copy
//! never searches text that holds outside content (an article's link,
//! title or summary can say anything). Who a copy is for decides what
//! stands at those places, and only there: a reader's own link, the
//! archive's unsubscribe page, or a stand-in that unsubscribes nobody.

use std::borrow::Cow;

/// What stood at the link places in the parts of issues stored before the
/// places were recorded. Only read back, to send and show those issues.
const LEGACY_PLACEHOLDER: &str = "%%UNSUBSCRIBE_URL%%";

/// What the staff preview shows at the link places of each part: nothing
/// that unsubscribes anyone, and plain to see as a stand-in.
const PREVIEW_HTML_LINK: &str = "#unsubscribe";
const PREVIEW_TEXT_LINK: &str = "(the reader's own unsubscribe link)";

/// A rendered issue: its subject, its HTML and text parts with their link
/// places, and how many articles made it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedIssue {
    pub subject: String,
    pub html: LinkedText,
    pub text: LinkedText,
    /// How many of the given articles are in it (the first ones).
    pub articles: usize,
}

/// One copy of an issue, with its link places filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueCopy<'a> {
    pub subject: Cow<'a, str>,
    pub html: String,
    pub text: String,
}

impl RenderedIssue {
    /// The copy a reader gets: their own unsubscribe link at each link
    /// place, and nowhere else.
    pub fn reader_copy(&self, unsubscribe_link: &str) -> IssueCopy<'_> {
        IssueCopy {
            subject: Cow::Borrowed(&self.subject),
            html: self.html.fill(unsubscribe_link),
            text: self.text.fill(unsubscribe_link),
        }
    }

    /// A staff member's test copy: marked in its subject, and its link
    /// goes to `nobody_link`, an unsubscribe link that matches no reader.
    pub fn test_copy(&self, nobody_link: &str) -> IssueCopy<'_> {
        IssueCopy {
            subject: Cow::Owned(format!("[Test] {}", self.subject)),
            html: self.html.fill(nobody_link),
            text: self.text.fill(nobody_link),
        }
    }

    /// The issue as staff preview it before it goes out: a stand-in at the
    /// link places.
    pub fn preview(&self) -> IssueCopy<'_> {
        IssueCopy {
            subject: Cow::Borrowed(&self.subject),
            html: self.html.fill(PREVIEW_HTML_LINK),
            text: self.text.fill(PREVIEW_TEXT_LINK),
        }
    }

    /// The HTML part as the public archive shows it: the link places lead
    /// to `unsubscribe_page`, which asks for nothing but belongs to no one.
    pub fn archive_copy(&self, unsubscribe_page: &str) -> String {
        self.html.fill(unsubscribe_page)
    }

    /// The same issue with the text of each part passed through `encode` (a
    /// transfer encoding, applied once per issue). The link places stay
    /// where they were, so a copy of the result needs only its link
    /// encoded the same way.
    pub fn encoded(&self, encode: impl Fn(&str) -> String) -> Self {
        Self {
            subject: self.subject.clone(),
            html: self.html.encoded(&encode),
            text: self.text.encoded(&encode),
            articles: self.articles,
        }
    }
}

/// A rendered part (HTML or text) cut at its link places: `segments` has
/// one more element than there are places, and a copy is the segments
/// joined by its link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedText {
    segments: Vec<String>,
}

/// A part that does not have the link places its template gives it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the template puts the reader's link at {expected} places but {found} were found")]
pub struct LinkPlacesError {
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
    /// Cuts a part rendered with `marker` at the link places. The marker is
    /// fresh and random per render, made after the content was in hand, so
    /// only the template can have put it there; a count other than the
    /// template's `places` is refused rather than guessed at.
    pub fn cut(rendered: &str, marker: &str, places: usize) -> Result<Self, LinkPlacesError> {
        let segments: Vec<String> = rendered.split(marker).map(str::to_owned).collect();
        let found = segments.len() - 1;
        if found != places {
            return Err(LinkPlacesError {
                expected: places,
                found,
            });
        }
        Ok(Self { segments })
    }

    /// A part made of these segments, with a link place between each two.
    pub fn from_segments(segments: Vec<String>) -> Self {
        if segments.is_empty() {
            return Self {
                segments: vec![String::new()],
            };
        }
        Self { segments }
    }

    /// The text around the link places, in order.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The part with `link` at each of its places, and nowhere else. Kept
    /// to this module: a copy is made by one of [`RenderedIssue`]'s
    /// operations, which say who it is for.
    fn fill(&self, link: &str) -> String {
        self.segments.join(link)
    }

    fn encoded(&self, encode: impl Fn(&str) -> String) -> Self {
        Self {
            segments: self.segments.iter().map(|s| encode(s)).collect(),
        }
    }

    /// How the part is stored: the segments one after the other, and the
    /// byte offsets of the link places in that text (comma-separated).
    pub fn to_stored(&self) -> (String, String) {
        let mut text = String::with_capacity(self.segments.iter().map(String::len).sum());
        let mut offsets = Vec::with_capacity(self.segments.len() - 1);
        for (i, segment) in self.segments.iter().enumerate() {
            if i > 0 {
                offsets.push(text.len().to_string());
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
        let mut start = 0;
        for raw in links.split(',').filter(|o| !o.is_empty()) {
            let offset: usize = raw.parse().map_err(|_| StoredPartError::NotAnOffset(raw.to_owned()))?;
            if offset < start || offset > text.len() || !text.is_char_boundary(offset) {
                return Err(StoredPartError::OutOfOrder(offset));
            }
            segments.push(text[start..offset].to_owned());
            start = offset;
        }
        segments.push(text[start..].to_owned());
        Ok(Self { segments })
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
        Self { segments }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(html: LinkedText, text: LinkedText) -> RenderedIssue {
        RenderedIssue {
            subject: "This week".into(),
            html,
            text,
            articles: 1,
        }
    }

    #[test]
    fn a_part_is_cut_only_at_the_marker_and_filled_only_there() {
        let part = LinkedText::cut(
            "<a href=\"https://evil.example/r?u=%%UNSUBSCRIBE_URL%%\">x</a> <a href=\"M1\">Unsubscribe</a>",
            "M1",
            1,
        )
        .unwrap();
        assert_eq!(
            part.fill("LINK"),
            "<a href=\"https://evil.example/r?u=%%UNSUBSCRIBE_URL%%\">x</a> <a href=\"LINK\">Unsubscribe</a>"
        );
        assert_eq!(
            LinkedText::cut("M1 and M1", "M1", 1),
            Err(LinkPlacesError { expected: 1, found: 2 })
        );
        assert_eq!(
            LinkedText::cut("nothing", "M1", 1),
            Err(LinkPlacesError { expected: 1, found: 0 })
        );
    }

    #[test]
    fn stored_parts_read_back_the_same_and_bad_offsets_are_refused() {
        for segments in [
            vec!["Hello ".to_owned(), " — Ünïcödé".to_owned(), String::new()],
            vec!["only text %%UNSUBSCRIBE_URL%%".to_owned()],
            vec![String::new(), String::new()],
        ] {
            let part = LinkedText::from_segments(segments);
            let (text, links) = part.to_stored();
            assert_eq!(LinkedText::from_stored(text, Some(&links)).unwrap(), part);
        }
        for bad in ["x", "3,1", "99", "1"] {
            assert!(LinkedText::from_stored("Üb".into(), Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_legacy_part_links_only_at_its_last_placeholder() {
        let text = "Read: https://evil.example/r?u=%%UNSUBSCRIBE_URL%%\n--\nUnsubscribe: %%UNSUBSCRIBE_URL%%\nArchive";
        let part = LinkedText::from_stored(text.into(), None).unwrap();
        assert_eq!(
            part.fill("LINK"),
            "Read: https://evil.example/r?u=%%UNSUBSCRIBE_URL%%\n--\nUnsubscribe: LINK\nArchive"
        );
        let none = LinkedText::from_stored("no link".into(), None).unwrap();
        assert_eq!(none.segments().len(), 1);
    }

    #[test]
    fn each_copy_puts_its_own_link_at_the_places_and_nowhere_else() {
        let part = |s: &str| LinkedText::from_segments(s.split("{LINK}").map(str::to_owned).collect());
        let issue = issue(
            part("<a href=\"%%UNSUBSCRIBE_URL%%\">x</a><a href=\"{LINK}\">Unsubscribe</a>"),
            part("x %%UNSUBSCRIBE_URL%%\nUnsubscribe: {LINK}\n"),
        );
        let reader = issue.reader_copy("https://s/u?token=abc");
        assert_eq!(reader.subject, "This week");
        assert_eq!(
            reader.html,
            "<a href=\"%%UNSUBSCRIBE_URL%%\">x</a><a href=\"https://s/u?token=abc\">Unsubscribe</a>"
        );
        assert_eq!(
            reader.text,
            "x %%UNSUBSCRIBE_URL%%\nUnsubscribe: https://s/u?token=abc\n"
        );
        let test = issue.test_copy("https://s/u?token=nobody");
        assert_eq!(test.subject, "[Test] This week");
        assert_eq!(
            test.text,
            "x %%UNSUBSCRIBE_URL%%\nUnsubscribe: https://s/u?token=nobody\n"
        );
        let preview = issue.preview();
        assert_eq!(preview.html.matches("#unsubscribe").count(), 1);
        assert!(
            preview
                .text
                .ends_with("Unsubscribe: (the reader's own unsubscribe link)\n")
        );
        assert_eq!(
            issue.archive_copy("/unsubscribe"),
            "<a href=\"%%UNSUBSCRIBE_URL%%\">x</a><a href=\"/unsubscribe\">Unsubscribe</a>"
        );
        let encoded = issue.encoded(|s| s.to_uppercase());
        let shouted = encoded.reader_copy("link");
        assert_eq!(shouted.text, "X %%UNSUBSCRIBE_URL%%\nUNSUBSCRIBE: link\n");
    }
}
