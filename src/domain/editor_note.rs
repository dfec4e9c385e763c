//! The editor's note above an issue's stories, written at the editor's desk
//! in a small, forgiving subset of Markdown: paragraphs apart by a blank
//! line, `*emphasis*`, `**strong emphasis**` and `[a link](https://…)`.
//! It is parsed into paragraphs of plain text runs, so the HTML part, the
//! text part and the archive are written from the same parsed note, each
//! escaping as it needs; nothing the editor types becomes markup by itself.

use std::fmt::Write;

use super::issue::html_escape;

/// The most characters a note may have: a few paragraphs, not an article.
pub const MAX_NOTE_CHARS: usize = 2000;

/// A run of a paragraph.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Run {
    Text(String),
    Emphasis(String),
    Strong(String),
    Link { text: String, url: String },
}

/// An editor's note as parsed; empty when there is none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EditorNote {
    paragraphs: Vec<Vec<Run>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditorNoteError {
    #[error("The note is too long: please keep it to {MAX_NOTE_CHARS} characters (it has {0}).")]
    TooLong(usize),
    #[error("The note contains invisible control characters; please retype the part you pasted.")]
    ControlCharacters,
    #[error("The link “{0}” is not a web address: links must start with https:// or http://.")]
    NotAWebAddress(String),
}

impl EditorNote {
    pub fn parse(raw: &str) -> Result<Self, EditorNoteError> {
        let chars = raw.chars().count();
        if chars > MAX_NOTE_CHARS {
            return Err(EditorNoteError::TooLong(chars));
        }
        if raw
            .chars()
            .any(|c| (c.is_control() && !matches!(c, '\n' | '\r' | '\t')) || matches!(c, '\u{2028}' | '\u{2029}'))
        {
            return Err(EditorNoteError::ControlCharacters);
        }
        let text = raw.replace("\r\n", "\n").replace('\r', "\n");
        let mut paragraphs = Vec::new();
        let mut current: Vec<&str> = Vec::new();
        for line in text.split('\n').chain(std::iter::once("")) {
            if line.trim().is_empty() {
                if !current.is_empty() {
                    // Inside a paragraph, any spacing is one space.
                    let joined = current.join(" ").split_whitespace().collect::<Vec<_>>().join(" ");
                    paragraphs.push(runs(&joined)?);
                    current.clear();
                }
            } else {
                current.push(line);
            }
        }
        Ok(Self { paragraphs })
    }

    pub fn is_empty(&self) -> bool {
        self.paragraphs.is_empty()
    }

    /// The note as HTML paragraphs, every run's text escaped; `style` is
    /// put on each `<p>` (mail programs want inline styles).
    pub fn to_html(&self, style: &str) -> String {
        let mut html = String::new();
        for paragraph in &self.paragraphs {
            if style.is_empty() {
                html.push_str("<p>");
            } else {
                let _ = write!(html, "<p style=\"{}\">", html_escape(style));
            }
            for run in paragraph {
                match run {
                    Run::Text(text) => html.push_str(&html_escape(text)),
                    Run::Emphasis(text) => {
                        let _ = write!(html, "<em>{}</em>", html_escape(text));
                    }
                    Run::Strong(text) => {
                        let _ = write!(html, "<strong>{}</strong>", html_escape(text));
                    }
                    Run::Link { text, url } => {
                        let _ = write!(html, "<a href=\"{}\">{}</a>", html_escape(url), html_escape(text));
                    }
                }
            }
            html.push_str("</p>\n");
        }
        html
    }

    /// The note as plain text: paragraphs apart by a blank line, emphasis
    /// between asterisks, a link's address after its words.
    pub fn to_text(&self) -> Vec<String> {
        self.paragraphs
            .iter()
            .map(|paragraph| {
                paragraph
                    .iter()
                    .map(|run| match run {
                        Run::Text(text) => text.clone(),
                        Run::Emphasis(text) => format!("*{text}*"),
                        Run::Strong(text) => format!("**{text}**"),
                        Run::Link { text, url } => format!("{text} <{url}>"),
                    })
                    .collect::<String>()
            })
            .collect()
    }
}

/// The runs of one paragraph (its spacing already made single spaces). A
/// marker without its closing half is text as typed.
fn runs(paragraph: &str) -> Result<Vec<Run>, EditorNoteError> {
    let mut runs = Vec::new();
    let mut text = String::new();
    let mut rest = paragraph;
    let flush = |text: &mut String, runs: &mut Vec<Run>| {
        if !text.is_empty() {
            runs.push(Run::Text(std::mem::take(text)));
        }
    };
    while let Some(c) = rest.chars().next() {
        if let Some((inner, after)) = enclosed(rest, "**", "**") {
            flush(&mut text, &mut runs);
            runs.push(Run::Strong(inner.to_owned()));
            rest = after;
        } else if let Some((inner, after)) = enclosed(rest, "*", "*") {
            flush(&mut text, &mut runs);
            runs.push(Run::Emphasis(inner.to_owned()));
            rest = after;
        } else if let Some((words, after)) = enclosed(rest, "[", "](")
            && let Some((url, after)) = after.split_once(')')
        {
            let url = url.trim();
            if !is_web_address(url) {
                return Err(EditorNoteError::NotAWebAddress(url.chars().take(80).collect()));
            }
            flush(&mut text, &mut runs);
            runs.push(Run::Link {
                text: words.to_owned(),
                url: url.to_owned(),
            });
            rest = after;
        } else {
            text.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    flush(&mut text, &mut runs);
    Ok(runs)
}

/// `rest` opens with `open` and has `close` after a non-blank inner text:
/// the inner text and what follows `close`.
fn enclosed<'a>(rest: &'a str, open: &str, close: &str) -> Option<(&'a str, &'a str)> {
    let after_open = rest.strip_prefix(open)?;
    let end = after_open.find(close)?;
    let inner = &after_open[..end];
    (!inner.trim().is_empty() && inner.trim() == inner).then(|| (inner, &after_open[end + close.len()..]))
}

fn is_web_address(url: &str) -> bool {
    url::Url::parse(url)
        .ok()
        .is_some_and(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some_and(|h| !h.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_emphasis_and_links_are_read_and_everything_else_is_text() {
        let note = EditorNote::parse(
            "Welcome to our *first* issue.\nIt is **long**.\r\n\r\n\n  Read [our story](https://news.example.org/a?b=1&c=2)   \
             <script>alert(1)</script> & 2*3 = 6, a * b, **unclosed",
        )
        .unwrap();
        assert_eq!(
            note.to_html(""),
            "<p>Welcome to our <em>first</em> issue. It is <strong>long</strong>.</p>\n\
             <p>Read <a href=\"https://news.example.org/a?b=1&amp;c=2\">our story</a> \
             &lt;script&gt;alert(1)&lt;/script&gt; &amp; 2*3 = 6, a * b, **unclosed</p>\n"
        );
        assert_eq!(
            note.to_text(),
            [
                "Welcome to our *first* issue. It is **long**.",
                "Read our story <https://news.example.org/a?b=1&c=2> <script>alert(1)</script> & 2*3 = 6, a * b, **unclosed",
            ]
        );
        assert_eq!(
            EditorNote::parse("x").unwrap().to_html("margin:0 \"a\""),
            "<p style=\"margin:0 &quot;a&quot;\">x</p>\n"
        );
    }

    #[test]
    fn an_empty_note_is_none_and_bad_ones_are_refused_with_the_reason() {
        assert!(EditorNote::parse(" \n\n \r\n").unwrap().is_empty());
        assert_eq!(
            EditorNote::parse("[x](javascript:alert(1))"),
            Err(EditorNoteError::NotAWebAddress("javascript:alert(1".into()))
        );
        assert!(matches!(
            EditorNote::parse("[x](mailto:a@example.org)"),
            Err(EditorNoteError::NotAWebAddress(_))
        ));
        assert_eq!(EditorNote::parse("bell \u{7}"), Err(EditorNoteError::ControlCharacters));
        assert_eq!(
            EditorNote::parse(&"я".repeat(MAX_NOTE_CHARS + 1)),
            Err(EditorNoteError::TooLong(MAX_NOTE_CHARS + 1))
        );
        assert!(EditorNote::parse(&"я".repeat(MAX_NOTE_CHARS)).is_ok());
        // Not a link: text as typed.
        assert_eq!(EditorNote::parse("[x] (y)").unwrap().to_text(), ["[x] (y)"]);
    }
}
