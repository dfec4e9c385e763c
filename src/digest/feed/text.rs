//! A feed field's text as the feed meant it: plain text keeps its
//! characters, HTML becomes text; titles are one line; a body is cut to
//! size at a paragraph boundary. And outside text made safe to name in a
//! message.

use crate::digest::html_text::{MarkedText, as_windows_1252_meant, html_title_to_text, html_to_marked_text, is_drawn};
use crate::digest::summary;

/// The longest title taken from an entry's text when it has none of its own.
pub const GENERATED_TITLE_CHARS: usize = 80;

/// How a field's text is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    /// Characters as they are: `<div>` is five characters of text.
    Plain,
    /// HTML: tags are markup and entities are decoded (a second time,
    /// after the XML's own decoding: that is what escaped HTML means).
    Html,
}

/// A field as the document gave it, decoded once from its XML or JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldText {
    pub markup: Markup,
    pub value: String,
}

impl FieldText {
    pub fn plain(value: impl Into<String>) -> Self {
        Self {
            markup: Markup::Plain,
            value: value.into(),
        }
    }

    pub fn html(value: impl Into<String>) -> Self {
        Self {
            markup: Markup::Html,
            value: value.into(),
        }
    }

    /// As a title. Its whitespace is collapsed when it becomes an
    /// `ArticleTitle`; until then a plain title keeps its control
    /// characters, so that a title refused for them is shown as it was.
    pub fn title(&self) -> String {
        match self.markup {
            Markup::Plain => as_windows_1252_meant(self.value.trim().to_owned()),
            Markup::Html => html_title_to_text(&self.value),
        }
    }

    /// As text of one paragraph a line, with its layout marked.
    pub fn text(&self) -> MarkedText {
        match self.markup {
            Markup::Plain => MarkedText::plain(plain_to_text(&self.value)),
            Markup::Html => html_to_marked_text(&self.value),
        }
    }
}

/// Whitespace runs as single spaces, trimmed.
pub fn one_line(text: &str) -> String {
    let mut line = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    line
}

/// Plain text as one paragraph a line: paragraphs are separated by blank
/// lines when the text has any (its single line breaks are wrapping), else
/// each line is one. Whitespace inside a paragraph is collapsed; the
/// characters are kept.
pub fn plain_to_text(text: &str) -> String {
    let text = as_windows_1252_meant(text.replace("\r\n", "\n").replace('\r', "\n"));
    let blank_line_separated = text
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .any(|l| l.trim().is_empty());
    let mut out = String::with_capacity(text.len());
    let mut push = |paragraph: &str| {
        if paragraph.trim().is_empty() {
            return;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&one_line(paragraph));
    };
    if blank_line_separated {
        let mut paragraph = String::new();
        for line in text.lines() {
            if line.trim().is_empty() {
                push(&paragraph);
                paragraph.clear();
            } else if is_drawn(line) {
                // A text table's rows stay rows.
                push(&paragraph);
                paragraph.clear();
                push(line);
            } else {
                paragraph.push_str(line);
                paragraph.push(' ');
            }
        }
        push(&paragraph);
    } else {
        text.lines().for_each(push);
    }
    out
}

/// A title for an entry that has none: the start of its first story
/// paragraph, cut at a word boundary.
pub fn title_from_text(text: &MarkedText) -> Option<String> {
    let lead = summary::lead_paragraph(text.story_lines()).or_else(|| text.story_lines().next())?;
    Some(summary::cut_at_word(lead, GENERATED_TITLE_CHARS))
}

/// `text` cut to at most `max_bytes` at the last paragraph boundary that
/// fits (or, when the first paragraph alone is longer, at a word boundary,
/// ended with "…"). `None` when it fits already.
pub fn cut_to_size(text: &MarkedText, max_bytes: usize) -> Option<MarkedText> {
    if text.text.len() <= max_bytes {
        return None;
    }
    let fits = floor_char_boundary(&text.text, max_bytes);
    let cut = match text.text[..fits].rfind('\n') {
        Some(end) if end > 0 => text.text[..end].to_owned(),
        _ => {
            let room = floor_char_boundary(&text.text, max_bytes.saturating_sub('…'.len_utf8()));
            let head = &text.text[..room];
            let end = head.rfind(char::is_whitespace).unwrap_or(room);
            format!("{}…", head[..end].trim_end())
        }
    };
    let lines = cut.lines().count();
    let layout_lines = text.layout_lines.iter().copied().filter(|&l| l < lines).collect();
    Some(MarkedText {
        text: cut,
        layout_lines,
    })
}

fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Outside text as it may appear in a message: control characters (and
/// the invisible ones that reorder or break a line) written as visible
/// escapes (`\e`, `\r`, `\n`, `\t`, `\u{…}`), and no more than
/// `max_chars` of it, in the terminal's notation ([`crate::terminal::escape`]),
/// so escaping the message again on a terminal leaves it as it is.
pub fn shown(text: &str, max_chars: usize) -> String {
    let cut: String = text.chars().take(max_chars).collect();
    let more = if cut.len() < text.len() { "…" } else { "" };
    format!("{}{more}", crate::terminal::escape(&cut))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_keeps_its_characters_and_html_becomes_text() {
        let table = [
            (FieldText::plain("Use <div> for layout"), "Use <div> for layout"),
            (FieldText::plain("A &lt; B"), "A &lt; B"),
            (FieldText::plain("  Two words  "), "Two words"),
            (
                FieldText::plain("It\u{92}s \u{93}back\u{94} \u{96} 2003"),
                "It’s “back” – 2003",
            ),
            (FieldText::html("Why <script> tags matter"), "Why <script> tags matter"),
            (FieldText::html("<b>Bold</b> <em>move</em>"), "Bold move"),
            (FieldText::html("Tom &amp; Jerry<br/>again"), "Tom & Jerry again"),
            (FieldText::html("Use &lt;div&gt; for layout"), "Use <div> for layout"),
            (FieldText::html("<a href=\"/x\">Linked</a> title"), "Linked title"),
            (FieldText::html("x <style>y</style> z"), "x <style>y</style> z"),
            (FieldText::html("It&#146;s"), "It’s"),
        ];
        for (field, title) in table {
            assert_eq!(field.title(), title, "{field:?}");
        }
    }

    #[test]
    fn plain_paragraphs_are_blank_line_separated_or_lines() {
        assert_eq!(
            plain_to_text("One wrapped\nline.\n\nSecond   one.\r\n\r\n\r\nThird."),
            "One wrapped line.\nSecond one.\nThird."
        );
        assert_eq!(plain_to_text("\n\nOne.\nTwo.\n"), "One.\nTwo.");
        assert_eq!(
            plain_to_text("┌──┐\n│ab│\n└──┘\n\nText\nwrapped."),
            "┌──┐\n│ab│\n└──┘\nText wrapped."
        );
    }

    #[test]
    fn a_generated_title_is_the_start_of_the_lead_cut_at_a_word() {
        let text = MarkedText::plain("Short post.".into());
        assert_eq!(title_from_text(&text).as_deref(), Some("Short post."));
        let long = "Just shipped the new release of our tool with faster imports, better errors and a lot more";
        let title = title_from_text(&MarkedText::plain(long.into())).unwrap();
        assert_eq!(
            title,
            "Just shipped the new release of our tool with faster imports, better errors and…"
        );
        assert!(title.chars().count() <= GENERATED_TITLE_CHARS);
        assert_eq!(title_from_text(&MarkedText::plain(String::new())), None);
    }

    #[test]
    fn a_long_body_is_cut_at_a_paragraph_boundary() {
        let text = MarkedText {
            text: "First paragraph.\nSecond paragraph.\nThird.".into(),
            layout_lines: vec![1, 2],
        };
        let cut = cut_to_size(&text, 30).unwrap();
        assert_eq!(cut.text, "First paragraph.");
        assert_eq!(cut.layout_lines, Vec::<usize>::new());
        assert!(cut_to_size(&text, 1000).is_none());
        let one = MarkedText::plain("aé ".repeat(20));
        let cut = cut_to_size(&one, 20).unwrap();
        assert!(cut.text.len() <= 20 && cut.text.ends_with('…'), "{:?}", cut.text);
    }

    #[test]
    fn shown_text_has_no_raw_controls_and_is_short() {
        assert_eq!(shown("\u{1b}[2Jx\ry", 100), "\\e[2Jx\\ry");
        assert_eq!(shown("a\u{202e}b\u{85}", 100), "a\\u{202e}b\\u{85}");
        assert_eq!(shown("abcdef", 3), "abc…");
    }
}
