//! A rendered part of an issue and the places in it where each reader's own
//! unsubscribe link goes. The places are recorded when the issue is
//! rendered, so filling them in never searches text that holds outside
//! content (an article's link, title or summary can say anything).

use std::fmt;

/// What stood at the link places in the parts of issues stored before the
/// places were recorded. Only read back, to send and show those issues.
const LEGACY_PLACEHOLDER: &str = "%%UNSUBSCRIBE_URL%%";

/// A rendered part (HTML or text) cut at its link places: `segments` has
/// one more element than there are places, and a reader's copy is the
/// segments joined by their link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedText {
    segments: Vec<String>,
}

/// A part that does not have the link places its template gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPlacesError {
    pub expected: usize,
    pub found: usize,
}

impl fmt::Display for LinkPlacesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the template puts the reader's link at {} places but {} were found",
            self.expected, self.found
        )
    }
}

impl std::error::Error for LinkPlacesError {}

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

    /// The part with `link` at each of its places, and nowhere else.
    pub fn fill(&self, link: &str) -> String {
        self.segments.join(link)
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
    pub fn from_stored(text: String, links: Option<&str>) -> Result<Self, String> {
        let Some(links) = links else {
            return Ok(Self::from_legacy(&text));
        };
        let mut segments = Vec::new();
        let mut start = 0;
        for raw in links.split(',').filter(|o| !o.is_empty()) {
            let offset: usize = raw
                .parse()
                .map_err(|_| format!("link place `{raw}` is not an offset"))?;
            if offset < start || offset > text.len() || !text.is_char_boundary(offset) {
                return Err(format!("link place {offset} is not in order inside the text"));
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
}
