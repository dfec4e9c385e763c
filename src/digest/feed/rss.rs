//! RSS 0.90, 0.91, 0.92, 1.0 (RDF) and 2.0: `<rss>` (with or without a
//! `version`) around a `<channel>` holding `<item>`s, or `<rdf:RDF>` with
//! the items beside the channel.

use super::NotAFeed;
use super::entry::{Builder, RawEntry};
use super::text::FieldText;
use super::xml::{Content, Element, Ns, Xml};

/// RSS's own elements: without a namespace (0.9x, 2.0) or in RSS 1.0's.
fn is_rss(ns: Ns) -> bool {
    matches!(ns, Ns::None | Ns::Rss)
}

pub fn read(xml: &mut Xml<'_>, root: Element<'_>, feed: &mut Builder) -> Result<(), NotAFeed> {
    RawEntry::first(&mut feed.meta.base, root.attribute("base"));
    while let Some(child) = xml.child()? {
        match (child.ns, child.local()) {
            (ns, "channel") if is_rss(ns) => channel(xml, child, feed)?,
            (ns, "item") if is_rss(ns) => item(xml, child, feed)?,
            _ => xml.skip()?,
        }
    }
    Ok(())
}

fn channel(xml: &mut Xml<'_>, channel: Element<'_>, feed: &mut Builder) -> Result<(), NotAFeed> {
    RawEntry::first(&mut feed.meta.base, channel.attribute("base"));
    while let Some(child) = xml.child()? {
        match (child.ns, child.local()) {
            (ns, "item") if is_rss(ns) => item(xml, child, feed)?,
            (ns, "title") if is_rss(ns) => {
                let title = title(xml.content()?);
                RawEntry::first(&mut feed.meta.title, Some(title));
            }
            (ns, "link") if is_rss(ns) => {
                let link = xml.content()?.text.trim().to_owned();
                RawEntry::first(&mut feed.meta.link, Some(link).filter(|l| !l.is_empty()));
            }
            (ns, "pubDate" | "lastBuildDate") if is_rss(ns) => {
                RawEntry::first(&mut feed.meta.date, Some(xml.content()?.text));
            }
            (Ns::Dc, "date") => RawEntry::first(&mut feed.meta.date, Some(xml.content()?.text)),
            (ns, "language") if is_rss(ns) || ns == Ns::Dc => {
                RawEntry::first(&mut feed.meta.language, Some(xml.content()?.text));
            }
            _ => xml.skip()?,
        }
    }
    Ok(())
}

fn item(xml: &mut Xml<'_>, item: Element<'_>, feed: &mut Builder) -> Result<(), NotAFeed> {
    let mut entry = RawEntry {
        // RSS 1.0 names an item by its `rdf:about`.
        id: item.attribute("about"),
        base: item.attribute("base"),
        ..RawEntry::default()
    };
    let mut atom_link = None;
    let mut itunes_summary = None;
    let mut itunes_author = None;
    while let Some(child) = xml.child()? {
        match (child.ns, child.local()) {
            (ns, "title") if is_rss(ns) => RawEntry::first(&mut entry.title, Some(title(xml.content()?))),
            (ns, "link") if is_rss(ns) => {
                let link = xml.content()?.text.trim().to_owned();
                RawEntry::first(&mut entry.link, Some(link).filter(|l| !l.is_empty()));
            }
            (ns, "guid") if is_rss(ns) => {
                // A guid is a permalink unless it says otherwise (RSS 2.0).
                let permalink = child
                    .attribute("isPermaLink")
                    .is_none_or(|p| p.trim().eq_ignore_ascii_case("true"));
                let guid = xml.content()?.text.trim().to_owned();
                if !guid.is_empty() {
                    if permalink {
                        RawEntry::first(&mut entry.permalink, Some(guid.clone()));
                    }
                    // A guid comes before RSS 1.0's rdf:about.
                    entry.id = Some(guid);
                }
            }
            (ns, "description") if is_rss(ns) => RawEntry::first(&mut entry.excerpt, Some(html(xml.content()?))),
            (Ns::Content, "encoded") => RawEntry::first(&mut entry.content, Some(html(xml.content()?))),
            (Ns::Xhtml, "body" | "div") => {
                let raw = xml.content()?.raw.to_owned();
                RawEntry::first(&mut entry.content, Some(FieldText::html(raw)));
            }
            (ns, "pubDate") if is_rss(ns) => RawEntry::first(&mut entry.published, Some(xml.content()?.text)),
            (Ns::Dc, "date") | (Ns::DcTerms, "issued" | "created" | "date") => {
                RawEntry::first(&mut entry.published, Some(xml.content()?.text));
            }
            (Ns::DcTerms, "modified") => RawEntry::first(&mut entry.updated, Some(xml.content()?.text)),
            (Ns::Dc, "creator") => RawEntry::first(&mut entry.author, Some(xml.content()?.text)),
            (Ns::Dc, "language") => RawEntry::first(&mut entry.language, Some(xml.content()?.text)),
            (ns, "author") if is_rss(ns) => {
                let author = xml.content()?.text;
                RawEntry::first(&mut entry.author, Some(name_of_address(&author)));
            }
            (Ns::Itunes, "author") => itunes_author = Some(xml.content()?.text),
            (Ns::Itunes, "summary") => itunes_summary = Some(html(xml.content()?)),
            (Ns::Atom, "link") => {
                let alternate = child.attribute("rel").is_none_or(|r| r.trim() == "alternate");
                let href = child.attribute("href");
                xml.skip()?;
                if alternate {
                    RawEntry::first(&mut atom_link, href);
                }
            }
            _ => xml.skip()?,
        }
    }
    RawEntry::first(&mut entry.link, atom_link);
    RawEntry::first(&mut entry.excerpt, itunes_summary);
    RawEntry::first(&mut entry.author, itunes_author);
    feed.entry(entry);
    Ok(())
}

/// An RSS title is plain text (`Use &lt;div&gt;` is about a `<div>`),
/// unless it is HTML in a CDATA section, or written as markup.
fn title(content: Content<'_>) -> FieldText {
    if content.elements {
        FieldText::html(content.raw)
    } else if content.cdata && looks_like_html(&content.text) {
        FieldText::html(content.text)
    } else {
        FieldText::plain(content.text)
    }
}

/// RSS descriptions are HTML, escaped or in CDATA, or (against the
/// specification, but written) as unescaped markup.
fn html(content: Content<'_>) -> FieldText {
    if content.elements {
        FieldText::html(content.raw)
    } else {
        FieldText::html(content.text)
    }
}

/// Whether text has a tag (`<b>`, `</i>`) or a character reference in it.
fn looks_like_html(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.windows(2).any(|w| match w {
        [b'<', next] => next.is_ascii_alphabetic() || *next == b'/',
        [b'&', next] => next.is_ascii_alphabetic() || *next == b'#',
        _ => false,
    })
}

/// RSS 2.0's `<author>` is an address with the name in parentheses
/// (`editor@example.org (Ann Editor)`): the name, when it has one.
fn name_of_address(author: &str) -> String {
    let author = author.trim();
    match (author.find('('), author.rfind(')')) {
        (Some(open), Some(close)) if open < close && author[..open].contains('@') => {
            author[open + 1..close].trim().to_owned()
        }
        _ => author.to_owned(),
    }
}
