//! Feed HTML as plain text, in one forward pass.
//!
//! Summaries and bodies need the words and where paragraphs break, not a
//! document tree. Building one (html5ever, inside html2text) costs time
//! quadratic in the markup's nesting: each unclosed `<div>` or `<b id=…>`
//! makes the parser walk the stack of open elements, and each attribute of
//! a tag is compared with the tag's earlier ones. 16 000 nested `<div>`s
//! took 1.4 s, 16 000 unclosed `<b id=…>` 11 s (BENCHMARKS.md). This
//! scanner keeps no stack: each byte is looked at a bounded number of
//! times, whatever the markup, and [`convert`] counts those looks so a test
//! can hold it to that.

use quick_xml::escape::resolve_html5_entity;

/// Elements whose content is not text for a reader: skipped up to their
/// end tag (their content is raw text, so no tag inside can end them early).
const SKIPPED: &[&str] = &[
    "script", "style", "iframe", "noembed", "noframes", "noscript", "xmp", "title",
];

/// Elements that start a new line.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tr",
    "ul",
];

/// Elements after which a cell of a table row ends.
const CELLS: &[&str] = &["td", "th"];

/// Layout and page furniture: their text stays in the body but is never a
/// lead paragraph (a summary or a generated title). Each starts a line, so
/// no story text shares a line with them.
const LAYOUT: &[&str] = &[
    "aside",
    "button",
    "caption",
    "fieldset",
    "figcaption",
    "footer",
    "form",
    "header",
    "menu",
    "nav",
    "select",
    "table",
    "textarea",
];

/// The formatting a title may carry: removed from an HTML title, while
/// any other tag-like text in a title stays as written (`Why <script>
/// tags matter` is four words, not one).
const TITLE_FORMATTING: &[&str] = &[
    "a", "abbr", "b", "bdi", "bdo", "big", "br", "cite", "code", "del", "dfn", "em", "font", "i", "ins", "kbd", "mark",
    "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "time", "tt", "u", "var", "wbr",
];

/// The longest entity name looked for (`&CounterClockwiseContourIntegral;`).
const MAX_ENTITY: usize = 40;

/// Text and the work it took.
#[derive(Debug)]
pub struct Conversion {
    pub text: String,
    /// The lines of `text` (counted from 0) that came from layout markup
    /// (tables, navigation, headers and footers, forms, figure captions).
    pub layout_lines: Vec<usize>,
    /// Bytes of input looked at, counting every look (a byte seen twice
    /// counts twice).
    pub looks: usize,
}

/// Text with one paragraph a line, and which lines are layout rather than
/// story.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MarkedText {
    pub text: String,
    /// Lines (counted from 0) that are layout: never a lead paragraph.
    pub layout_lines: Vec<usize>,
}

impl MarkedText {
    /// Text that has no layout of its own (plain text); box-drawing lines
    /// are still told apart by [`MarkedText::story_lines`].
    pub fn plain(text: String) -> Self {
        Self {
            text,
            layout_lines: Vec::new(),
        }
    }

    /// The lines that may be a lead: not empty, not from layout markup,
    /// and not drawn with box-drawing characters (a table in text).
    pub fn story_lines(&self) -> impl Iterator<Item = &str> {
        let mut layout = self.layout_lines.iter().copied().peekable();
        self.text.lines().enumerate().filter_map(move |(i, line)| {
            while layout.next_if(|&l| l < i).is_some() {}
            if layout.next_if_eq(&i).is_some() {
                return None;
            }
            let line = line.trim();
            (!line.is_empty() && !is_drawn(line)).then_some(line)
        })
    }
}

/// Whether a line is drawn rather than written: it has box-drawing
/// characters (U+2500–U+257F), as text tables and rules do.
pub fn is_drawn(line: &str) -> bool {
    line.contains(|c| ('\u{2500}'..='\u{257f}').contains(&c))
}

/// Feed HTML as plain text: tags, comments and scripts gone, entities
/// decoded, whitespace collapsed, one line per paragraph, no empty lines.
///
/// Text with neither tags nor entities is not HTML (a JSON Feed's
/// `content_text`, a plain title): it keeps its own line breaks.
pub fn html_to_text(html: &str) -> String {
    html_to_marked_text(html).text
}

/// [`html_to_text`], with the lines that came from layout markup marked.
pub fn html_to_marked_text(html: &str) -> MarkedText {
    // Before the conversion too: 0x85 (…) is Unicode white space, and would
    // be collapsed away with the spaces around it.
    let html = without_c1(html);
    let (text, layout_lines) = if html.contains(['<', '&']) {
        let done = convert(&html);
        (done.text, done.layout_lines)
    } else {
        (html.trim().to_owned(), Vec::new())
    };
    // And after: the conversion decodes `&#146;` written as HTML.
    MarkedText {
        text: as_windows_1252_meant(text),
        layout_lines,
    }
}

/// A title written in HTML as one line of text: entities decoded once, the
/// formatting tags a headline carries (`<b>`, `<em>`, `<a href>`, `<br>`, …)
/// removed, and anything else tag-like kept as written. A title is never
/// run through script or style skipping: `Why <script> tags matter` keeps
/// its four words.
pub fn html_title_to_text(html: &str) -> String {
    let html = without_c1(html);
    let mut scan = Scanner::new(&html, Mode::Title);
    scan.run();
    as_windows_1252_meant(scan.out.text)
}

fn without_c1(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(is_c1) {
        std::borrow::Cow::Owned(as_windows_1252_meant(text.to_owned()))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Text with the C1 control characters (U+0080–U+009F) replaced by what old
/// feeds meant by them: a `&#146;` (or a raw 0x92 that a Windows-1252 page
/// pasted into UTF-8) is the Windows-1252 ’, as HTML's own numeric
/// character references are read (WHATWG HTML, "numeric character reference
/// end state"). The five codes Windows-1252 leaves unassigned are dropped:
/// no C1 control is ever stored, and a title holding one would be refused.
pub fn as_windows_1252_meant(text: String) -> String {
    if !text.chars().any(is_c1) {
        return text;
    }
    text.chars()
        .filter_map(|c| if is_c1(c) { windows_1252(c) } else { Some(c) })
        .collect()
}

fn is_c1(c: char) -> bool {
    ('\u{80}'..='\u{9f}').contains(&c)
}

/// The character Windows-1252 puts at a C1 code point, if any.
fn windows_1252(c: char) -> Option<char> {
    const TABLE: [Option<char>; 32] = [
        Some('€'),
        None,
        Some('‚'),
        Some('ƒ'),
        Some('„'),
        Some('…'),
        Some('†'),
        Some('‡'),
        Some('ˆ'),
        Some('‰'),
        Some('Š'),
        Some('‹'),
        Some('Œ'),
        None,
        Some('Ž'),
        None,
        None,
        Some('‘'),
        Some('’'),
        Some('“'),
        Some('”'),
        Some('•'),
        Some('–'),
        Some('—'),
        Some('˜'),
        Some('™'),
        Some('š'),
        Some('›'),
        Some('œ'),
        None,
        Some('ž'),
        Some('Ÿ'),
    ];
    TABLE[(c as usize) - 0x80]
}

pub fn convert(html: &str) -> Conversion {
    convert_as(html, Mode::Body)
}

/// [`html_title_to_text`]'s conversion, with the work it took.
pub fn convert_title(html: &str) -> Conversion {
    convert_as(html, Mode::Title)
}

fn convert_as(html: &str, mode: Mode) -> Conversion {
    let mut scan = Scanner::new(html, mode);
    scan.run();
    let looks = scan.looks;
    let (text, layout_lines) = scan.out.finish();
    Conversion {
        text,
        layout_lines,
        looks,
    }
}

/// What the markup is: a body (paragraphs, scripts, layout) or a title
/// (one line, only formatting tags are markup).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Body,
    Title,
}

struct Scanner<'a> {
    src: &'a [u8],
    html: &'a str,
    mode: Mode,
    pos: usize,
    looks: usize,
    /// How many layout elements are open (without a stack: an unclosed
    /// `<table>` keeps the rest out of the lead, which is the safe side).
    layout_depth: usize,
    out: Output,
}

impl<'a> Scanner<'a> {
    fn new(html: &'a str, mode: Mode) -> Self {
        Self {
            src: html.as_bytes(),
            html,
            mode,
            pos: 0,
            looks: 0,
            layout_depth: 0,
            out: Output::default(),
        }
    }

    fn peek(&mut self, at: usize) -> Option<u8> {
        let byte = self.src.get(at).copied();
        if byte.is_some() {
            self.looks += 1;
        }
        byte
    }

    /// The position of the first `needle` at or after `from`, or the end.
    fn find(&mut self, from: usize, needle: &[u8]) -> Option<usize> {
        let hay = &self.src[from.min(self.src.len())..];
        let found = hay.windows(needle.len()).position(|w| w == needle);
        self.looks += found.map_or(hay.len(), |i| i + needle.len());
        found.map(|i| from + i)
    }

    fn run(&mut self) {
        while self.pos < self.src.len() {
            let next = self.src[self.pos..].iter().position(|&b| b == b'<' || b == b'&');
            let end = next.map_or(self.src.len(), |i| self.pos + i);
            self.looks += end - self.pos + usize::from(next.is_some());
            self.out.text(&self.html[self.pos..end]);
            self.pos = end;
            match self.src.get(end) {
                Some(b'<') => self.markup(),
                Some(b'&') => self.entity(),
                _ => {}
            }
        }
    }

    /// At `&`: a character reference, or a literal `&`.
    fn entity(&mut self) {
        let start = self.pos + 1;
        let mut end = start;
        while end - start < MAX_ENTITY {
            match self.peek(end) {
                Some(b) if b.is_ascii_alphanumeric() || (b == b'#' && end == start) => end += 1,
                _ => break,
            }
        }
        let name = &self.html[start..end];
        let terminated = self.peek(end) == Some(b';');
        let decoded = if let Some(number) = name.strip_prefix('#') {
            let (digits, radix) = match number.strip_prefix(['x', 'X']) {
                Some(hex) => (hex, 16),
                None => (number, 10),
            };
            let valid = !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix));
            valid.then(|| {
                u32::from_str_radix(digits, radix)
                    .ok()
                    .and_then(char::from_u32)
                    .filter(|&c| c != '\0')
                    .unwrap_or('\u{FFFD}')
                    .to_string()
            })
        } else if terminated {
            resolve_html5_entity(name).map(str::to_owned)
        } else {
            // The few references browsers still read without a semicolon.
            match name {
                "amp" => Some("&".into()),
                "lt" => Some("<".into()),
                "gt" => Some(">".into()),
                "quot" => Some("\"".into()),
                "nbsp" => Some("\u{a0}".into()),
                _ => None,
            }
        };
        match decoded {
            Some(text) => {
                self.out.text(&text);
                self.pos = end + usize::from(terminated);
            }
            None => {
                self.out.text("&");
                self.pos = start;
            }
        }
    }

    /// At `<`: a tag, a comment, a declaration, CDATA, or a literal `<`.
    fn markup(&mut self) {
        if self.mode == Mode::Title {
            return self.title_markup();
        }
        let at = self.pos;
        match self.peek(at + 1) {
            Some(b'!') => {
                if self.src[at..].starts_with(b"<!--") {
                    self.looks += 4;
                    self.pos = self.find(at + 4, b"-->").map_or(self.src.len(), |i| i + 3);
                } else if self.src[at..].starts_with(b"<![CDATA[") {
                    self.looks += 9;
                    let end = self.find(at + 9, b"]]>");
                    let text_end = end.unwrap_or(self.src.len());
                    self.out.text(&self.html[at + 9..text_end]);
                    self.pos = end.map_or(text_end, |i| i + 3);
                } else {
                    self.pos = self.find(at + 2, b">").map_or(self.src.len(), |i| i + 1);
                }
            }
            Some(b'?') => self.pos = self.find(at + 2, b">").map_or(self.src.len(), |i| i + 1),
            Some(b'/') => match self.peek(at + 2) {
                Some(b) if b.is_ascii_alphabetic() => self.tag(at + 2, true),
                _ => self.pos = self.find(at + 2, b">").map_or(self.src.len(), |i| i + 1),
            },
            Some(b) if b.is_ascii_alphabetic() => self.tag(at + 1, false),
            _ => {
                self.out.text("<");
                self.pos = at + 1;
            }
        }
    }

    /// At `<` in a title: a formatting tag is dropped (`<br>` is a space);
    /// anything else is text. The tag ends at its `>` (outside quotes), and
    /// no tag holds a `<`, so each byte is looked at no more than twice.
    fn title_markup(&mut self) {
        let at = self.pos;
        let closing = self.peek(at + 1) == Some(b'/');
        let name_start = at + 1 + usize::from(closing);
        let mut i = name_start;
        while self.peek(i).is_some_and(|b| b.is_ascii_alphanumeric() || b == b':') {
            i += 1;
        }
        let name = local_name(&self.html[name_start..i]);
        let formatting = TITLE_FORMATTING.contains(&name.as_str())
            && matches!(self.peek(i), Some(b'>' | b'/') | Some(b' ' | b'\t' | b'\n' | b'\r'));
        let end = if formatting {
            let (mut j, mut quote, mut after_equals) = (i, None, false);
            loop {
                match (quote, self.peek(j)) {
                    (_, Some(b'<') | None) => break None,
                    (Some(q), Some(b)) if b == q => quote = None,
                    (Some(_), Some(_)) => {}
                    (None, Some(b'>')) => break Some(j),
                    (None, Some(b @ (b'"' | b'\''))) if after_equals => quote = Some(b),
                    (None, Some(b)) => {
                        if !b.is_ascii_whitespace() {
                            after_equals = b == b'=';
                        }
                    }
                }
                j += 1;
            }
        } else {
            None
        };
        match end {
            Some(end) => {
                if name == "br" {
                    self.out.text(" ");
                }
                self.pos = end + 1;
            }
            None => {
                self.out.text("<");
                self.pos = at + 1;
            }
        }
    }

    /// A tag whose name starts at `name_start`: read to its `>` (quoted
    /// attribute values may hold one), then act on its name.
    fn tag(&mut self, name_start: usize, closing: bool) {
        let mut i = name_start;
        while let Some(b) = self.peek(i) {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b':' {
                i += 1;
            } else {
                break;
            }
        }
        // `<xhtml:p>` is a `<p>`.
        let name = local_name(&self.html[name_start..i]);
        let mut quote = None;
        let mut after_equals = false;
        let end = loop {
            let Some(b) = self.peek(i) else { break None };
            match (quote, b) {
                (Some(q), _) if b == q => quote = None,
                (Some(_), _) => {}
                (None, b'>') => break Some(i),
                (None, b'"' | b'\'') if after_equals => quote = Some(b),
                _ => {}
            }
            if quote.is_none() && !b.is_ascii_whitespace() {
                after_equals = b == b'=';
            }
            i += 1;
        };
        // A tag the input ends inside of is dropped, as browsers do.
        let Some(end) = end else {
            self.pos = self.src.len();
            return;
        };
        self.pos = end + 1;
        let name = name.as_str();
        let self_closing = end > name_start && self.src[end - 1] == b'/';
        if BLOCKS.contains(&name) || LAYOUT.contains(&name) {
            self.out.line_break();
        } else if CELLS.contains(&name) && closing {
            self.out.text(" ");
        }
        if LAYOUT.contains(&name) && !self_closing {
            self.layout_depth = if closing {
                self.layout_depth.saturating_sub(1)
            } else {
                self.layout_depth + 1
            };
            self.out.in_layout = self.layout_depth > 0;
        }
        if !closing && SKIPPED.contains(&name) {
            self.skip_raw_text(name);
        }
    }

    /// Past the content of a raw-text element, to after its end tag.
    fn skip_raw_text(&mut self, name: &str) {
        let mut from = self.pos;
        loop {
            let Some(lt) = self.find(from, b"</") else {
                self.pos = self.src.len();
                return;
            };
            let name_end = lt + 2 + name.len();
            let candidate = self.src.get(lt + 2..name_end);
            self.looks += name.len();
            if candidate.is_some_and(|c| c.eq_ignore_ascii_case(name.as_bytes()))
                && !self.src.get(name_end).is_some_and(u8::is_ascii_alphanumeric)
            {
                self.pos = self.find(name_end, b">").map_or(self.src.len(), |i| i + 1);
                return;
            }
            from = lt + 2;
        }
    }
}

/// A tag's name without its namespace prefix, in lower case.
fn local_name(name: &str) -> String {
    name.rsplit(':').next().unwrap_or(name).to_ascii_lowercase()
}

/// Text as it is built: whitespace runs become one space, breaks become
/// line ends, and no line starts or ends with a space.
#[derive(Default)]
struct Output {
    text: String,
    pending_space: bool,
    pending_break: bool,
    /// Whether text written now is inside layout markup.
    in_layout: bool,
    /// The line being written, and whether any of it was layout.
    line: usize,
    line_is_layout: bool,
    layout_lines: Vec<usize>,
}

impl Output {
    fn text(&mut self, text: &str) {
        for c in text.chars() {
            // The non-breaking space stays: it keeps "10 km" together.
            if c.is_whitespace() && c != '\u{a0}' {
                self.pending_space = true;
                continue;
            }
            if !self.text.is_empty() {
                if self.pending_break {
                    self.end_line();
                    self.text.push('\n');
                } else if self.pending_space {
                    self.text.push(' ');
                }
            }
            self.pending_break = false;
            self.pending_space = false;
            self.line_is_layout |= self.in_layout;
            self.text.push(c);
        }
    }

    fn end_line(&mut self) {
        if self.line_is_layout {
            self.layout_lines.push(self.line);
        }
        self.line += 1;
        self.line_is_layout = false;
    }

    fn line_break(&mut self) {
        self.pending_break = true;
    }

    fn finish(mut self) -> (String, Vec<usize>) {
        if !self.text.is_empty() {
            self.end_line();
        }
        (self.text, self.layout_lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_entities_scripts_and_comments() {
        assert_eq!(
            html_to_text("<p>Floods &amp; storms</p><script>alert('</p>')</script><p>Second <a href='/x'>para</a></p>"),
            "Floods & storms\nSecond para"
        );
        assert_eq!(
            html_to_text("<!-- a <p> comment -->One&nbsp;km &#8212; &#x2014; &mdash; &hellip;<br/>Two"),
            "One\u{a0}km — — — …\nTwo"
        );
        assert_eq!(
            html_to_text("a < b && c > d; &unknown; &#xZZ;"),
            "a < b && c > d; &unknown; &#xZZ;"
        );
        assert_eq!(html_to_text("<![CDATA[x <y>]]> z"), "x <y> z");
        assert_eq!(
            html_to_text("<style>p { color: red }</style><p title='a > b'>Text</p>"),
            "Text"
        );
        assert_eq!(html_to_text("<ul><li>One</li><li>Two</li></ul>"), "One\nTwo");
        assert_eq!(html_to_text("<p>   spaced \n\n  out  </p>  "), "spaced out");
        assert_eq!(html_to_text("<table><tr><td>a</td><td>b</td></tr></table>"), "a b");
        assert_eq!(html_to_text("Cut off <a href=\"x"), "Cut off");
        assert_eq!(html_to_text("Un<SCRIPT>x</scriptx></SCRIPT>seen"), "Unseen");
    }

    #[test]
    fn layout_lines_are_marked() {
        let marked = html_to_marked_text(
            "<header>Site</header><p>Lead.</p><table><tr><td>a</td><td>b</td></tr></table>\
             <p>Middle.</p><nav>Home</nav><figure><img><figcaption>Caption</figcaption></figure>\
             <p>End.</p><form><button>Go</button></form><footer>(c)</footer>",
        );
        assert_eq!(marked.text, "Site\nLead.\na b\nMiddle.\nHome\nCaption\nEnd.\nGo\n(c)");
        assert_eq!(marked.layout_lines, [0, 2, 4, 5, 7, 8]);
        assert_eq!(marked.story_lines().collect::<Vec<_>>(), ["Lead.", "Middle.", "End."]);
        let drawn = MarkedText::plain("┌─┐\nText\n│x│".into());
        assert_eq!(drawn.story_lines().collect::<Vec<_>>(), ["Text"]);
        // A self-closing layout tag opens nothing.
        let marked = html_to_marked_text("<nav/><p>Story.</p>");
        assert_eq!(marked.story_lines().collect::<Vec<_>>(), ["Story."]);
        // Namespaced XHTML is read by its local names.
        let marked = html_to_marked_text("<x:p>One</x:p><x:table><x:tr><x:td>t</x:td></x:tr></x:table><x:p>Two</x:p>");
        assert_eq!(marked.story_lines().collect::<Vec<_>>(), ["One", "Two"]);
    }

    #[test]
    fn an_html_title_loses_only_its_formatting() {
        let table = [
            ("Why <script> tags matter", "Why <script> tags matter"),
            (
                "<b>Bold</b>, <i>italic</i> &amp; <a href='/x' title='a > b'>linked</a>",
                "Bold, italic & linked",
            ),
            ("Line<br>break<br/>here", "Line break here"),
            ("<style>x</style> and <table> stay", "<style>x</style> and <table> stay"),
            ("a < b > c", "a < b > c"),
            ("<b class=\"x\"", "<b class=\"x\""),
            ("&lt;div&gt; &amp;amp; &#146;", "<div> &amp; ’"),
            ("<!-- note --> text", "<!-- note --> text"),
            ("<xhtml:em>ns</xhtml:em> tag", "ns tag"),
        ];
        for (html, text) in table {
            assert_eq!(html_title_to_text(html), text, "{html}");
        }
    }

    /// The property the quadratic parser lacked: the work is a bounded
    /// multiple of the input's length whatever its shape, so any feed up to
    /// the size cap converts in time proportional to its size.
    #[test]
    fn the_work_is_linear_in_the_input_whatever_the_markup() {
        let n = 100_000;
        let shapes: Vec<(&str, String)> = vec![
            ("nested unclosed divs", format!("{}deep", "<div>".repeat(n))),
            (
                "unclosed formatting with attributes",
                (0..n).map(|i| format!("<b id=x{i}>t")).collect(),
            ),
            ("one tag with many attributes", format!("<p {}>x</p>", "a=1 ".repeat(n))),
            ("unclosed quotes", "<p title=\"".repeat(n)),
            ("lone angles", "<".repeat(n)),
            (
                "unterminated entities",
                "&abcdefghijklmnopqrstuvwxyzabcdefghijklmnopq".repeat(n / 10),
            ),
            ("script that never ends", format!("<script>{}", "</scrip".repeat(n))),
            ("comments that never end", "<!-- -".repeat(n)),
            ("plain text", "word ".repeat(n)),
        ];
        let title_shapes = vec![
            ("formatting tags that never end", "<b ".repeat(n)),
            ("formatting tags", "<b>x</b>".repeat(n)),
            ("other tags", "<script>".repeat(n)),
            ("a long name", format!("<{}", "b".repeat(n))),
        ];
        for (shape, html) in shapes.iter().chain(&title_shapes) {
            for (mode, done) in [("body", convert(html)), ("title", convert_title(html))] {
                assert!(
                    done.looks <= 3 * html.len() + 16,
                    "{shape} as a {mode}: {} looks for {} bytes",
                    done.looks,
                    html.len()
                );
            }
        }
        assert_eq!(convert(&format!("{}deep", "<div>".repeat(n))).text, "deep");
    }
}
