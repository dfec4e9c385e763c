//! Outside text on a terminal.
//!
//! A feed title or a CSV cell may hold control characters: an ANSI escape
//! sequence recolours, hides or rewrites what an operator sees (and some
//! terminals act on others), a carriage return overwrites the line, a
//! bidirectional override reverses it. Every line the command line prints
//! with outside text in it goes through [`escape`], which shows such
//! characters as visible escapes instead.

use std::borrow::Cow;
use std::fmt::Write;

/// Characters that change how text is displayed rather than adding to it.
fn is_control(c: char) -> bool {
    c.is_control() // C0 (with TAB, LF, CR), DEL and C1
        || matches!(c,
            '\u{061C}'               // Arabic letter mark
            | '\u{200E}' | '\u{200F}' // left-to-right and right-to-left marks
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{2028}' | '\u{2029}' // line and paragraph separators
        )
}

/// `text` with every control character written as a visible escape
/// (`\e` for ESC, `\r`, `\n`, `\t`, otherwise `\u{…}`); unchanged, and not
/// copied, when it has none.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\u{1b}' => out.push_str("\\e"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if is_control(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_left_alone() {
        let text = "Floods in the north — “quoted”, ünïcödé, 東京, emoji 👩‍👩‍👧";
        assert!(matches!(escape(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn ansi_sequences_and_line_controls_become_visible() {
        assert_eq!(escape("\u{1b}[31mred\u{1b}[0m"), "\\e[31mred\\e[0m");
        assert_eq!(escape("ok\rforged"), "ok\\rforged");
        assert_eq!(escape("one\ntwo\tthree"), "one\\ntwo\\tthree");
        assert_eq!(escape("bell\u{7}nul\u{0}del\u{7f}"), "bell\\u{7}nul\\u{0}del\\u{7f}");
    }

    #[test]
    fn c1_controls_and_bidi_overrides_become_visible() {
        // U+009B is the one-byte CSI: as dangerous as ESC [ on some terminals.
        assert_eq!(escape("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(escape("\u{85}next"), "\\u{85}next");
        assert_eq!(escape("abc\u{202e}fdp.exe"), "abc\\u{202e}fdp.exe");
        assert_eq!(escape("\u{2066}x\u{2069}\u{200f}"), "\\u{2066}x\\u{2069}\\u{200f}");
        assert_eq!(escape("a\u{2028}b"), "a\\u{2028}b");
    }

    #[test]
    fn nothing_escaped_holds_a_control_character() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let escaped = escape(&all);
        assert!(!escaped.chars().any(is_control));
    }
}
