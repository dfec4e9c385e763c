//! An import file's bytes as the CSV reader gets them: UTF-16 files (what
//! spreadsheets save as "Unicode text") decoded to UTF-8, the field
//! delimiter guessed from the first line (a comma, or a semicolon or a tab,
//! as spreadsheets in many locales write), and a watch over quoted fields so
//! that one never closed is reported at the line where it opened, instead of
//! swallowing the rest of the file into one field.

use std::io::{self, Chain, Cursor, Read};

/// How far into a file the first line is looked for.
const SNIFF_BYTES: usize = 64 * 1024;

/// The encodings an import file may be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Utf8,
    Utf16 { big_endian: bool },
}

/// An import file opened for reading: UTF-8 bytes, and the delimiter its
/// first line uses.
pub struct Opened<R> {
    pub bytes: Decoded<R>,
    pub delimiter: u8,
}

/// The file's bytes as UTF-8.
pub enum Decoded<R> {
    Utf8(Chain<Cursor<Vec<u8>>, R>),
    Utf16(Utf16ToUtf8<Chain<Cursor<Vec<u8>>, R>>),
}

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoded::Utf8(inner) => inner.read(buf),
            Decoded::Utf16(inner) => inner.read(buf),
        }
    }
}

/// Reads the start of `input` to learn its encoding and delimiter; nothing
/// read is lost.
pub fn open<R: Read>(mut input: R) -> io::Result<Opened<R>> {
    let mut head = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    while head.len() < SNIFF_BYTES && !first_line_complete(&head) {
        let n = match input.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let encoding = encoding_of(&head);
    let first_line = match encoding {
        Encoding::Utf8 => String::from_utf8_lossy(&head).into_owned(),
        Encoding::Utf16 { big_endian } => utf16_lossy(&head, big_endian),
    };
    let delimiter = delimiter_of(first_line.lines().find(|l| !l.trim().is_empty()).unwrap_or(""));
    let chained = Cursor::new(head).chain(input);
    let bytes = match encoding {
        Encoding::Utf8 => Decoded::Utf8(chained),
        Encoding::Utf16 { big_endian } => Decoded::Utf16(Utf16ToUtf8::new(chained, big_endian)),
    };
    Ok(Opened { bytes, delimiter })
}

/// Whether `head` holds a whole first line in either encoding (a `\n` in
/// UTF-16 is a `\n` byte beside a zero one).
fn first_line_complete(head: &[u8]) -> bool {
    head.contains(&b'\n')
}

/// UTF-16 by its byte order mark, or, without one, by the zero bytes that
/// ASCII text in UTF-16 has in every other place (a header row is ASCII).
fn encoding_of(head: &[u8]) -> Encoding {
    match head {
        [0xFF, 0xFE, ..] => Encoding::Utf16 { big_endian: false },
        [0xFE, 0xFF, ..] => Encoding::Utf16 { big_endian: true },
        [a, 0, b, 0, ..] if *a != 0 && *b != 0 => Encoding::Utf16 { big_endian: false },
        [0, a, 0, b, ..] if *a != 0 && *b != 0 => Encoding::Utf16 { big_endian: true },
        _ => Encoding::Utf8,
    }
}

fn utf16_lossy(bytes: &[u8], big_endian: bool) -> String {
    let units = bytes.chunks_exact(2).map(|pair| unit(pair[0], pair[1], big_endian));
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

fn unit(first: u8, second: u8, big_endian: bool) -> u16 {
    match big_endian {
        true => u16::from_be_bytes([first, second]),
        false => u16::from_le_bytes([first, second]),
    }
}

/// The delimiter a line uses the most outside quotes: a comma, a semicolon
/// or a tab; a comma when it uses none.
fn delimiter_of(line: &str) -> u8 {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for byte in line.bytes() {
        if byte == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(count) = counts.iter_mut().find(|(d, _)| *d == byte) {
            count.1 += 1;
        }
    }
    // The first of the most used, so a tie keeps the comma.
    let most = counts.iter().map(|(_, n)| *n).max().unwrap_or(0);
    counts
        .iter()
        .find(|(_, n)| *n == most && most > 0)
        .map_or(b',', |(d, _)| *d)
}

/// UTF-16 bytes read as UTF-8. A lone surrogate becomes U+FFFD; the byte
/// order mark is dropped.
pub struct Utf16ToUtf8<R> {
    inner: R,
    big_endian: bool,
    /// A byte of a code unit whose other byte has not been read yet.
    odd: Option<u8>,
    /// A high surrogate waiting for its low half.
    high: Option<u16>,
    at_start: bool,
    out: Vec<u8>,
    taken: usize,
}

impl<R> Utf16ToUtf8<R> {
    fn new(inner: R, big_endian: bool) -> Self {
        Self {
            inner,
            big_endian,
            odd: None,
            high: None,
            at_start: true,
            out: Vec::new(),
            taken: 0,
        }
    }

    fn push_char(&mut self, c: char) {
        let mut buf = [0u8; 4];
        self.out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }

    fn push_unit(&mut self, unit: u16) {
        if std::mem::take(&mut self.at_start) && unit == 0xFEFF {
            return;
        }
        match (self.high.take(), unit) {
            (Some(high), 0xDC00..=0xDFFF) => {
                let c = char::decode_utf16([high, unit])
                    .next()
                    .and_then(Result::ok)
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                self.push_char(c);
            }
            (high, unit) => {
                if high.is_some() {
                    self.push_char(char::REPLACEMENT_CHARACTER);
                }
                match unit {
                    0xD800..=0xDBFF => self.high = Some(unit),
                    0xDC00..=0xDFFF => self.push_char(char::REPLACEMENT_CHARACTER),
                    _ => self.push_char(char::from_u32(u32::from(unit)).unwrap_or(char::REPLACEMENT_CHARACTER)),
                }
            }
        }
    }
}

impl<R: Read> Read for Utf16ToUtf8<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.taken == self.out.len() {
            self.out.clear();
            self.taken = 0;
            let mut raw = [0u8; 8192];
            let n = self.inner.read(&mut raw)?;
            if n == 0 {
                // The end: a half unit or a lone high surrogate is a
                // character that cannot be read.
                if self.odd.take().is_some() || self.high.take().is_some() {
                    self.push_char(char::REPLACEMENT_CHARACTER);
                    continue;
                }
                return Ok(0);
            }
            let mut bytes = raw[..n].iter().copied();
            if let Some(first) = self.odd.take() {
                match bytes.next() {
                    Some(second) => self.push_unit(unit(first, second, self.big_endian)),
                    None => self.odd = Some(first),
                }
            }
            let rest: Vec<u8> = bytes.collect();
            let mut pairs = rest.chunks_exact(2);
            for pair in pairs.by_ref() {
                self.push_unit(unit(pair[0], pair[1], self.big_endian));
            }
            if let [last] = pairs.remainder() {
                self.odd = Some(*last);
            }
        }
        let n = buf.len().min(self.out.len() - self.taken);
        buf[..n].copy_from_slice(&self.out[self.taken..self.taken + n]);
        self.taken += n;
        Ok(n)
    }
}

/// Where the CSV reader is in the quoting of a field, followed byte by
/// byte the way it reads them: a `"` opens a quoted field only at the start
/// of a field, `""` inside one is a quote, and a `"` followed by anything
/// else closes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    FieldStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

/// Follows the quoting of every byte read, to say at the end whether a
/// quoted field was left open and on which line it opened.
#[derive(Debug, Clone)]
pub struct QuoteWatch {
    delimiter: u8,
    state: Quoting,
    line: u64,
    opened_on: u64,
}

impl QuoteWatch {
    pub fn new(delimiter: u8) -> Self {
        Self {
            delimiter,
            state: Quoting::FieldStart,
            line: 1,
            opened_on: 0,
        }
    }

    pub fn feed(&mut self, byte: u8) {
        use Quoting::*;
        self.state = match (self.state, byte) {
            (Quoted, b'"') => QuoteInQuoted,
            (Quoted, _) => Quoted,
            (QuoteInQuoted, b'"') => Quoted,
            (FieldStart, b'"') => {
                self.opened_on = self.line;
                Quoted
            }
            (_, b'\n') => FieldStart,
            (_, b) if b == self.delimiter => FieldStart,
            (FieldStart | Unquoted | QuoteInQuoted, _) => Unquoted,
        };
        if byte == b'\n' {
            self.line += 1;
        }
    }

    /// The line a quoted field that is still open began on.
    pub fn open_since(&self) -> Option<u64> {
        (self.state == Quoting::Quoted).then_some(self.opened_on)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8]) -> (String, u8) {
        let mut opened = open(input).unwrap();
        let mut text = String::new();
        opened.bytes.read_to_string(&mut text).unwrap();
        (text, opened.delimiter)
    }

    fn utf16(text: &str, big_endian: bool, mark: bool) -> Vec<u8> {
        let mark = mark.then_some(0xFEFF_u16);
        mark.into_iter()
            .chain(text.encode_utf16())
            .flat_map(|u| match big_endian {
                true => u.to_be_bytes(),
                false => u.to_le_bytes(),
            })
            .collect()
    }

    #[test]
    fn utf16_files_read_as_utf8_with_or_without_a_mark_in_either_order() {
        let text = "Email Address\tFirst Name\nзоя@example.com\tЗоя 🦊\n";
        for (big_endian, mark) in [(false, true), (true, true), (false, false), (true, false)] {
            let (read, delimiter) = read_all(&utf16(text, big_endian, mark));
            assert_eq!(read, text, "big endian {big_endian}, mark {mark}");
            assert_eq!(delimiter, b'\t');
        }
    }

    #[test]
    fn utf16_split_anywhere_still_decodes_and_lone_surrogates_are_replaced() {
        let text = "a,b\n🦊 Zoë,x\n".repeat(3000);
        let bytes = utf16(&text, false, true);
        // A reader that hands out 3 bytes at a time splits units and pairs.
        struct Trickle(Vec<u8>, usize);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(3).min(self.0.len() - self.1);
                buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
                self.1 += n;
                Ok(n)
            }
        }
        let mut read = String::new();
        open(Trickle(bytes, 0))
            .unwrap()
            .bytes
            .read_to_string(&mut read)
            .unwrap();
        assert_eq!(read, text);
        let lone = [0x41, 0x00, 0x00, 0xD8, 0x42, 0x00];
        let mut read = String::new();
        Utf16ToUtf8::new(&lone[..], false).read_to_string(&mut read).unwrap();
        assert_eq!(read, "A\u{FFFD}B");
    }

    #[test]
    fn the_delimiter_is_the_one_the_first_line_uses_outside_quotes() {
        for (line, expected) in [
            ("email,name", b','),
            ("email;name;status", b';'),
            ("email\tname", b'\t'),
            ("\"last, first\";email", b';'),
            ("email", b','),
            ("", b','),
            ("a,b;c", b','),
        ] {
            assert_eq!(delimiter_of(line), expected, "{line:?}");
        }
        let (_, delimiter) = read_all(b"\n\nemail;name\nada@example.com;Ada\n");
        assert_eq!(delimiter, b';', "blank lines first");
    }

    #[test]
    fn an_unclosed_quote_is_found_with_the_line_it_opened_on() {
        let watch = |text: &str| {
            let mut watch = QuoteWatch::new(b',');
            text.bytes().for_each(|b| watch.feed(b));
            watch.open_since()
        };
        assert_eq!(watch("a,b\n\"c\",\"d\"\"e\"\n"), None);
        assert_eq!(watch("a,O\"Brien\nb,c\n"), None, "a quote inside a field opens nothing");
        assert_eq!(watch("a,b\nc,\"two\nlines\"\n"), None);
        assert_eq!(watch("a,b\nc,d\ne,\"never\nclosed\n"), Some(3));
        assert_eq!(watch("\"x\"y,\"z\n"), Some(1));
    }
}
