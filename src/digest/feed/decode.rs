//! A document's bytes as text: the encoding its byte order mark names, or
//! the one its first bytes and XML declaration imply (XML 1.0, appendix
//! F), else UTF-8. Bytes that are not what the encoding allows become
//! U+FFFD with a warning; the document is still read.

use std::borrow::Cow;

use encoding_rs::Encoding;

use super::NotAFeed;

/// The document as text, and what decoding it had to replace or guess.
pub struct Decoded<'a> {
    pub text: Cow<'a, str>,
    pub warnings: Vec<String>,
}

pub fn decode(bytes: &[u8]) -> Result<Decoded<'_>, NotAFeed> {
    const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";
    let first = |n: usize| bytes.get(..n);
    // UTF-32's marks first: UTF-32LE's starts with UTF-16LE's.
    if first(4) == Some(b"\xff\xfe\0\0") {
        return Ok(utf_32(&bytes[4..], u32::from_le_bytes));
    }
    if first(4) == Some(b"\0\0\xfe\xff") {
        return Ok(utf_32(&bytes[4..], u32::from_be_bytes));
    }
    if first(2) == Some(b"\xff\xfe") {
        return Ok(with(encoding_rs::UTF_16LE, &bytes[2..]));
    }
    if first(2) == Some(b"\xfe\xff") {
        return Ok(with(encoding_rs::UTF_16BE, &bytes[2..]));
    }
    if let Some(rest) = bytes.strip_prefix(UTF8_BOM) {
        return Ok(utf_8(rest));
    }
    // No mark: an XML declaration's first bytes say how wide a character is.
    match first(4) {
        Some(b"\0\0\0<") => return Ok(utf_32(bytes, u32::from_be_bytes)),
        Some(b"<\0\0\0") => return Ok(utf_32(bytes, u32::from_le_bytes)),
        Some(b"\0<\0?") => return Ok(with(encoding_rs::UTF_16BE, bytes)),
        Some(b"<\0?\0") => return Ok(with(encoding_rs::UTF_16LE, bytes)),
        _ => {}
    }
    // ASCII text has no NUL bytes; UTF-16 has one in every other byte.
    if let [a, b, ..] = bytes
        && (*a == 0) != (*b == 0)
    {
        return Err(NotAFeed::Utf16WithoutBom);
    }
    let Some(label) = declared_encoding(bytes) else {
        return Ok(utf_8(bytes));
    };
    match Encoding::for_label(label.as_bytes()) {
        // A declaration saying UTF-16 over bytes that are not is wrong in
        // the usual way: the file was converted and the line kept.
        Some(encoding) if encoding == encoding_rs::UTF_8 || !encoding.is_ascii_compatible() => Ok(utf_8(bytes)),
        Some(encoding) => Ok(with(encoding, bytes)),
        None => {
            let mut decoded = utf_8(bytes);
            decoded.warnings.insert(
                0,
                format!(
                    "its declared encoding `{}` is not one this knows; it was read as UTF-8",
                    super::text::shown(&label, 40)
                ),
            );
            Ok(decoded)
        }
    }
}

/// The `encoding` of an XML declaration at the very start.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = bytes.get(..bytes.len().min(512))?;
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let end = head.windows(2).position(|w| w == b"?>")?;
    let declaration = std::str::from_utf8(&head[..end]).ok()?;
    let after = &declaration[declaration.find("encoding")? + "encoding".len()..];
    let after = after.trim_start().strip_prefix('=')?.trim_start();
    let quote = after.chars().next().filter(|q| matches!(q, '"' | '\''))?;
    let value = &after[1..];
    Some(value[..value.find(quote)?].trim().to_owned())
}

fn utf_8(bytes: &[u8]) -> Decoded<'_> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Decoded {
            text: Cow::Borrowed(text),
            warnings: Vec::new(),
        },
        Err(error) => {
            let invalid = bytes.utf8_chunks().filter(|c| !c.invalid().is_empty()).count();
            let line = line_of(bytes, error.valid_up_to());
            Decoded {
                text: String::from_utf8_lossy(bytes),
                warnings: vec![format!(
                    "it is not all UTF-8: {invalid} invalid byte sequence{} replaced with \u{fffd} (the first on line {line})",
                    if invalid == 1 { " was" } else { "s were" }
                )],
            }
        }
    }
}

fn with<'a>(encoding: &'static Encoding, bytes: &'a [u8]) -> Decoded<'a> {
    let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
    let warnings = if had_errors {
        vec![format!(
            "it is not all {}: what is not was replaced with \u{fffd}",
            encoding.name()
        )]
    } else {
        Vec::new()
    };
    Decoded { text, warnings }
}

fn utf_32(bytes: &[u8], read: fn([u8; 4]) -> u32) -> Decoded<'static> {
    let mut text = String::with_capacity(bytes.len() / 4);
    let mut replaced = !bytes.len().is_multiple_of(4);
    for unit in bytes.chunks_exact(4) {
        let code = read([unit[0], unit[1], unit[2], unit[3]]);
        text.push(char::from_u32(code).unwrap_or_else(|| {
            replaced = true;
            '\u{fffd}'
        }));
    }
    let warnings = if replaced {
        vec!["it is not all UTF-32: what is not was replaced with \u{fffd}".to_owned()]
    } else {
        Vec::new()
    };
    Decoded {
        text: Cow::Owned(text),
        warnings,
    }
}

fn line_of(bytes: &[u8], at: usize) -> usize {
    1 + bytes[..at.min(bytes.len())].iter().filter(|&&b| b == b'\n').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf_16(text: &str, big_endian: bool, mark: bool) -> Vec<u8> {
        let mut bytes = Vec::new();
        for unit in std::iter::once(0xfeff).filter(|_| mark).chain(text.encode_utf16()) {
            bytes.extend(if big_endian {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            });
        }
        bytes
    }

    fn utf_32(text: &str, big_endian: bool, mark: bool) -> Vec<u8> {
        let mut bytes = Vec::new();
        for c in std::iter::once('\u{feff}').filter(|_| mark).chain(text.chars()) {
            let c = c as u32;
            bytes.extend(if big_endian { c.to_be_bytes() } else { c.to_le_bytes() });
        }
        bytes
    }

    #[test]
    fn each_encoding_a_feed_may_come_in() {
        let declared = r#"<?xml version="1.0" encoding="UTF-16"?><rss>Ёж “x”</rss>"#;
        let bare = "<rss>Ёж “x”</rss>";
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("UTF-8", bare.as_bytes().to_vec(), bare),
            (
                "UTF-8 with a mark",
                [b"\xef\xbb\xbf".as_slice(), bare.as_bytes()].concat(),
                bare,
            ),
            ("UTF-16LE with a mark", utf_16(bare, false, true), bare),
            ("UTF-16BE with a mark", utf_16(bare, true, true), bare),
            ("UTF-16LE with a declaration", utf_16(declared, false, false), declared),
            ("UTF-16BE with a declaration", utf_16(declared, true, false), declared),
            ("UTF-32LE with a mark", utf_32(bare, false, true), bare),
            ("UTF-32BE with a mark", utf_32(bare, true, true), bare),
            ("UTF-32LE with a declaration", utf_32(declared, false, false), declared),
            ("UTF-32BE with a declaration", utf_32(declared, true, false), declared),
            (
                "windows-1252",
                b"<?xml version=\"1.0\" encoding=\"windows-1252\"?><rss>It\x92s \x93x\x94</rss>".to_vec(),
                "<?xml version=\"1.0\" encoding=\"windows-1252\"?><rss>It’s “x”</rss>",
            ),
            (
                "ISO-8859-1 (read as Windows-1252, as browsers do)",
                b"<?xml version='1.0' encoding='ISO-8859-1'?><rss>Caf\xe9 \x96</rss>".to_vec(),
                "<?xml version='1.0' encoding='ISO-8859-1'?><rss>Café –</rss>",
            ),
            (
                "KOI8-R",
                b"<?xml version=\"1.0\" encoding=\"koi8-r\"?><rss>\xf0\xd2\xc9\xd7\xc5\xd4</rss>".to_vec(),
                "<?xml version=\"1.0\" encoding=\"koi8-r\"?><rss>Привет</rss>",
            ),
            (
                "windows-1251",
                b"<?xml version=\"1.0\" encoding=\"windows-1251\"?><rss>\xcf\xf0\xe8\xe2\xe5\xf2</rss>".to_vec(),
                "<?xml version=\"1.0\" encoding=\"windows-1251\"?><rss>Привет</rss>",
            ),
            (
                "UTF-16 declared over UTF-8 bytes",
                declared.as_bytes().to_vec(),
                declared,
            ),
        ];
        for (name, bytes, expected) in cases {
            let decoded = decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(decoded.text, expected, "{name}");
            assert_eq!(decoded.warnings, Vec::<String>::new(), "{name}");
        }
    }

    #[test]
    fn utf_16_without_a_mark_or_declaration_is_named() {
        for big_endian in [false, true] {
            let bytes = utf_16("<rss version=\"2.0\"></rss>", big_endian, false);
            assert!(matches!(decode(&bytes), Err(NotAFeed::Utf16WithoutBom)));
        }
        let json = utf_16("{\"items\": []}", false, false);
        assert!(matches!(decode(&json), Err(NotAFeed::Utf16WithoutBom)));
    }

    #[test]
    fn a_stray_byte_is_replaced_with_a_warning() {
        let decoded = decode(b"<rss>\n<title>Caf\xe9</title></rss>").unwrap();
        assert_eq!(decoded.text, "<rss>\n<title>Caf\u{fffd}</title></rss>");
        assert_eq!(
            decoded.warnings,
            ["it is not all UTF-8: 1 invalid byte sequence was replaced with \u{fffd} (the first on line 2)"]
        );
        let unknown = decode(b"<?xml version=\"1.0\" encoding=\"x-\x1b[31m\"?><rss/>").unwrap();
        assert_eq!(
            unknown.warnings,
            ["its declared encoding `x-\\e[31m` is not one this knows; it was read as UTF-8"]
        );
    }
}
