//! Atom 1.0 (RFC 4287) and Atom 0.3: `<feed>` holding `<entry>`s, whose
//! text constructs say how they are written (`type="text"`, `"html"`,
//! `"xhtml"`, or in 0.3 a MIME type and a `mode`), and whose content may
//! be base64.

use base64::Engine;

use super::NotAFeed;
use super::entry::{Builder, RawEntry};
use super::text::{FieldText, shown};
use super::xml::{Content, Element, Ns, Xml};

fn is_atom(ns: Ns) -> bool {
    matches!(ns, Ns::Atom | Ns::Atom03 | Ns::None)
}

pub fn read(xml: &mut Xml<'_>, root: Element<'_>, feed: &mut Builder) -> Result<(), NotAFeed> {
    feed.meta.base = root.attribute("base");
    // `xml:lang` on the feed is every entry's language but for an entry
    // that says its own.
    feed.meta.language = root.attribute("lang");
    while let Some(child) = xml.child()? {
        if !is_atom(child.ns) {
            xml.skip()?;
            continue;
        }
        match child.local() {
            "entry" => entry(xml, child, feed)?,
            "title" => {
                let (title, _) = construct(&child, xml.content()?);
                RawEntry::first(&mut feed.meta.title, title);
            }
            "link" => {
                let href = alternate_href(&child);
                xml.skip()?;
                RawEntry::first(&mut feed.meta.link, href);
            }
            "updated" | "modified" => RawEntry::first(&mut feed.meta.date, Some(xml.content()?.text)),
            _ => xml.skip()?,
        }
    }
    Ok(())
}

fn entry(xml: &mut Xml<'_>, element: Element<'_>, feed: &mut Builder) -> Result<(), NotAFeed> {
    let mut entry = RawEntry {
        base: element.attribute("base"),
        language: element.attribute("lang"),
        ..RawEntry::default()
    };
    while let Some(child) = xml.child()? {
        if !is_atom(child.ns) {
            xml.skip()?;
            continue;
        }
        match child.local() {
            "id" => RawEntry::first(&mut entry.id, Some(xml.content()?.text)),
            "title" => {
                let (title, note) = construct(&child, xml.content()?);
                RawEntry::first(&mut entry.title, title);
                entry.notes.extend(note);
            }
            "link" => {
                let href = alternate_href(&child).map(|href| match child.attribute("base") {
                    // The link's own xml:base, relative to the entry's.
                    Some(base) => join_base(entry.base.as_deref(), &base, &href),
                    None => href,
                });
                xml.skip()?;
                RawEntry::first(&mut entry.link, href);
            }
            "summary" => {
                let (summary, note) = construct(&child, xml.content()?);
                RawEntry::first(&mut entry.excerpt, summary);
                entry.notes.extend(note);
            }
            "content" => {
                let (content, note) = construct(&child, xml.content()?);
                RawEntry::first(&mut entry.content, content);
                entry.notes.extend(note);
            }
            "published" | "issued" | "created" => RawEntry::first(&mut entry.published, Some(xml.content()?.text)),
            "updated" | "modified" => RawEntry::first(&mut entry.updated, Some(xml.content()?.text)),
            "author" => {
                let name = person(xml)?;
                RawEntry::first(&mut entry.author, name);
            }
            _ => xml.skip()?,
        }
    }
    feed.entry(entry);
    Ok(())
}

/// An `xml:base` on a link: absolute as it is, or resolved against the
/// entry's (left relative to the feed's when that is relative too).
fn join_base(entry_base: Option<&str>, own: &str, href: &str) -> String {
    let base = match entry_base.and_then(|b| url::Url::parse(b.trim()).ok()) {
        Some(entry_base) => entry_base.join(own.trim()).ok(),
        None => url::Url::parse(own.trim()).ok(),
    };
    match base.and_then(|b| b.join(href.trim()).ok()) {
        Some(url) => url.to_string(),
        None => href.to_owned(),
    }
}

/// The `href` of a link to the page itself (`rel="alternate"`, the default).
fn alternate_href(link: &Element<'_>) -> Option<String> {
    let rel = link.attribute("rel");
    let alternate = rel.as_deref().is_none_or(|r| {
        let r = r.trim();
        r.is_empty() || r == "alternate" || r == "http://www.iana.org/assignments/relation/alternate"
    });
    link.attribute("href").filter(|h| alternate && !h.trim().is_empty())
}

/// A person's `<name>`.
fn person(xml: &mut Xml<'_>) -> Result<Option<String>, NotAFeed> {
    let mut name = None;
    while let Some(child) = xml.child()? {
        if is_atom(child.ns) && child.local() == "name" {
            RawEntry::first(&mut name, Some(xml.content()?.text));
        } else {
            xml.skip()?;
        }
    }
    Ok(name)
}

/// A text construct or content, as text and markup; and a note when its
/// content is not text and was left out.
fn construct(element: &Element<'_>, content: Content<'_>) -> (Option<FieldText>, Option<String>) {
    let kind = element.attribute("type").map(|t| t.trim().to_ascii_lowercase());
    let kind = kind.as_deref().unwrap_or("text");
    let base64 = element
        .attribute("mode")
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("base64"));
    let markup = match kind {
        "html" | "xhtml" | "text/html" | "application/xhtml+xml" => Markup::Html,
        "text" | "" => Markup::Plain,
        t if t.starts_with("text/") => Markup::Plain,
        t if t.ends_with("+xml") || t.ends_with("/xml") => Markup::Html,
        // RFC 4287 §4.1.3.3: any other type is base64.
        _ => Markup::Binary,
    };
    if base64 || markup == Markup::Binary {
        let encoded: String = content.text.split_whitespace().collect();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .filter(|text| !text.chars().any(|c| c.is_control() && !c.is_whitespace()));
        return match (decoded, markup) {
            (Some(text), Markup::Html) => (Some(FieldText::html(text)), None),
            (Some(text), _) => (Some(FieldText::plain(text)), None),
            (None, _) => (
                None,
                Some(format!(
                    "its `{}` is `{}`, not text, and was left out",
                    shown(element.name(), 20),
                    shown(kind, 40)
                )),
            ),
        };
    }
    let field = match (markup, content.elements) {
        // xhtml: the markup as written, inside its wrapping <div>.
        (Markup::Html, true) => FieldText::html(without_wrapper(content.raw)),
        (Markup::Html, false) => FieldText::html(content.text),
        (_, _) => FieldText::plain(content.text),
    };
    (Some(field), None)
}

/// Atom's xhtml is wrapped in one `<div>` (RFC 4287 §3.1.1.3) that is not
/// part of the text: its inside.
fn without_wrapper(raw: &str) -> &str {
    let trimmed = raw.trim();
    let name_end = trimmed
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .unwrap_or(0);
    let name = &trimmed[..name_end];
    let is_div = name
        .strip_prefix('<')
        .is_some_and(|n| n.rsplit(':').next() == Some("div"));
    let inner = is_div
        .then(|| {
            let open_end = trimmed.find('>')? + 1;
            let close = trimmed.rfind("</")?;
            (close >= open_end).then(|| &trimmed[open_end..close])
        })
        .flatten();
    inner.unwrap_or(raw)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Markup {
    Plain,
    Html,
    Binary,
}
