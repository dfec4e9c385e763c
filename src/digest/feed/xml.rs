//! Reading an XML feed one event at a time (quick-xml's pull reader over
//! the decoded text): each byte is read once, elements the feed formats do
//! not use are skipped by counting depth, and a field's content is
//! collected as its text and as the markup it was written in.

use std::borrow::Cow;

use quick_xml::escape::{resolve_html5_entity, resolve_xml_entity};
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use super::NotAFeed;
use super::text::shown;

/// The namespaces the feed formats use, by what they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ns {
    /// No namespace: RSS 0.9x and 2.0, and Atom written without one.
    None,
    Atom,
    /// Atom 0.3.
    Atom03,
    /// RSS 1.0, RSS 0.90, and the namespace some RSS 2.0 feeds declare.
    Rss,
    Rdf,
    /// `content:encoded`.
    Content,
    Dc,
    DcTerms,
    Xhtml,
    Itunes,
    Other,
}

impl Ns {
    fn of(uri: &str) -> Self {
        match uri.trim_end_matches(['/', '#']) {
            "http://www.w3.org/2005/Atom" => Self::Atom,
            "http://purl.org/atom/ns" => Self::Atom03,
            "http://purl.org/rss/1.0"
            | "http://my.netscape.com/rdf/simple/0.9"
            | "http://backend.userland.com/rss2" => Self::Rss,
            "http://www.w3.org/1999/02/22-rdf-syntax-ns" => Self::Rdf,
            "http://purl.org/rss/1.0/modules/content" => Self::Content,
            "http://purl.org/dc/elements/1.1" => Self::Dc,
            "http://purl.org/dc/terms" => Self::DcTerms,
            "http://www.w3.org/1999/xhtml" => Self::Xhtml,
            "http://www.itunes.com/dtds/podcast-1.0.dtd" => Self::Itunes,
            _ => Self::Other,
        }
    }
}

/// An element that has just started.
pub struct Element<'a> {
    pub ns: Ns,
    start: BytesStart<'a>,
}

impl Element<'_> {
    /// The name without its prefix.
    pub fn local(&self) -> &str {
        self.start.local_name().into_inner()
    }

    /// The name as written.
    pub fn name(&self) -> &str {
        self.start.name().into_inner()
    }

    /// An attribute's value by its local name (`isPermaLink`, `rdf:about`,
    /// `xml:base`), references decoded.
    pub fn attribute(&self, local: &str) -> Option<String> {
        self.start
            .attributes()
            .with_checks(false)
            .flatten()
            .find_map(|attribute| {
                (attribute.key.local_name().into_inner() == local).then(|| {
                    attribute
                        .normalized_value_with(quick_xml::XmlVersion::Implicit1_0, 1, resolve_entity)
                        .map_or_else(|_| attribute.value.clone().into_owned(), Cow::into_owned)
                })
            })
    }
}

/// What an element held, once read to its end.
pub struct Content<'a> {
    /// Its character data: references decoded once, CDATA as written.
    pub text: String,
    /// Whether any of it was a CDATA section.
    pub cdata: bool,
    /// Whether it had elements inside (markup written as XML, as Atom's
    /// `xhtml` is).
    pub elements: bool,
    /// Everything between its start and end tags, as written.
    pub raw: &'a str,
}

pub struct Xml<'a> {
    reader: NsReader<&'a [u8]>,
    src: &'a str,
    /// The elements entered through [`Xml::root`] and [`Xml::child`] that
    /// have not ended: only the few levels of a feed's structure.
    open: Vec<String>,
}

impl<'a> Xml<'a> {
    pub fn new(src: &'a str) -> Self {
        let mut reader = NsReader::from_str(src);
        let config = reader.config_mut();
        config.expand_empty_elements = true;
        // `AT&T` in a title: a bare ampersand is text, as feed readers take it.
        config.allow_dangling_amp = true;
        Self {
            reader,
            src,
            open: Vec::new(),
        }
    }

    /// The document element, after the prolog.
    pub fn root(&mut self) -> Result<Element<'a>, NotAFeed> {
        loop {
            match self.event()? {
                (ns, Event::Start(start)) => return Ok(self.enter(ns, start)),
                (_, Event::Text(text)) if text.trim().is_empty() => {}
                (_, Event::Text(text)) => {
                    return Err(NotAFeed::Other(format!(
                        "it starts with the text `{}`, not an element",
                        shown(text.trim(), 24)
                    )));
                }
                (_, Event::Eof) => return Err(NotAFeed::Other("there is no element in it".into())),
                (_, Event::End(_)) => return Err(self.malformed("it ends an element before any starts".into())),
                _ => {}
            }
        }
    }

    /// The next element inside the current one, or `None` at its end.
    pub fn child(&mut self) -> Result<Option<Element<'a>>, NotAFeed> {
        loop {
            match self.event()? {
                (ns, Event::Start(start)) => return Ok(Some(self.enter(ns, start))),
                (_, Event::End(_)) => {
                    self.open.pop();
                    return Ok(None);
                }
                (_, Event::Eof) => return Err(self.ends_early()),
                _ => {}
            }
        }
    }

    /// Past the rest of the element just entered.
    pub fn skip(&mut self) -> Result<(), NotAFeed> {
        let mut depth = 0usize;
        loop {
            match self.event()?.1 {
                Event::Start(_) => depth += 1,
                Event::End(_) if depth == 0 => {
                    self.open.pop();
                    return Ok(());
                }
                Event::End(_) => depth -= 1,
                Event::Eof => return Err(self.ends_early()),
                _ => {}
            }
        }
    }

    /// The rest of the element just entered, read to its end.
    pub fn content(&mut self) -> Result<Content<'a>, NotAFeed> {
        let inner_start = self.position();
        let mut content = Content {
            text: String::new(),
            cdata: false,
            elements: false,
            raw: "",
        };
        let mut depth = 0usize;
        loop {
            match self.event()?.1 {
                Event::Text(text) => content.text.push_str(&text.xml10_content()),
                Event::CData(cdata) => {
                    content.cdata = true;
                    content.text.push_str(&cdata.xml10_content());
                }
                Event::GeneralRef(reference) => push_reference(&mut content.text, &reference),
                Event::Start(_) => {
                    content.elements = true;
                    depth += 1;
                }
                Event::End(_) if depth == 0 => {
                    let end = self.position();
                    let inner_end = self.src[..end].rfind("</").unwrap_or(end).max(inner_start);
                    content.raw = &self.src[inner_start..inner_end];
                    self.open.pop();
                    return Ok(content);
                }
                Event::End(_) => depth -= 1,
                Event::Eof => return Err(self.ends_early()),
                _ => {}
            }
        }
    }

    fn enter(&mut self, ns: Ns, start: BytesStart<'a>) -> Element<'a> {
        self.open.push(shown(start.name().into_inner(), 40));
        Element { ns, start }
    }

    fn position(&self) -> usize {
        usize::try_from(self.reader.buffer_position())
            .unwrap_or(usize::MAX)
            .min(self.src.len())
    }

    fn event(&mut self) -> Result<(Ns, Event<'a>), NotAFeed> {
        match self.reader.read_resolved_event() {
            Ok((ResolveResult::Bound(uri), event)) => Ok((Ns::of(uri.into_inner()), event)),
            Ok((ResolveResult::Unbound, event)) => Ok((Ns::None, event)),
            Ok((ResolveResult::Unknown(_), event)) => Ok((Ns::Other, event)),
            Err(error) => Err(self.malformed(error.to_string())),
        }
    }

    fn ends_early(&self) -> NotAFeed {
        let what = match self.open.last() {
            Some(name) => format!("it ends before `</{name}>`"),
            None => "it ends early".to_owned(),
        };
        self.malformed_at(self.src.len(), what)
    }

    fn malformed(&self, message: String) -> NotAFeed {
        let at = usize::try_from(self.reader.error_position()).unwrap_or(0);
        self.malformed_at(at, message)
    }

    fn malformed_at(&self, at: usize, message: String) -> NotAFeed {
        let at = at.min(self.src.len());
        let line = 1 + self.src.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
        NotAFeed::Xml {
            line,
            message: shown(&message, 120),
        }
    }
}

/// A reference in text: XML's five and numeric ones, and the HTML names
/// (`&nbsp;`, `&eacute;`) feeds use without declaring them; one this does
/// not know stays as written.
fn push_reference(text: &mut String, reference: &BytesRef<'_>) {
    let name: &str = reference;
    if reference.is_char_ref() {
        match reference.resolve_char_ref() {
            Ok(Some(c)) => text.push(c),
            _ => {
                let number = name.trim_start_matches('#');
                let code = match number.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => number.parse().ok(),
                };
                match code {
                    // `&#0;` and references past Unicode are no character.
                    Some(code) => text.push(char::from_u32(code).filter(|&c| c != '\0').unwrap_or('\u{fffd}')),
                    None => {
                        text.push('&');
                        text.push_str(name);
                        text.push(';');
                    }
                }
            }
        }
    } else if let Some(value) = resolve_entity(name) {
        text.push_str(value);
    } else {
        text.push('&');
        text.push_str(name);
        text.push(';');
    }
}

fn resolve_entity(name: &str) -> Option<&'static str> {
    resolve_xml_entity(name).or_else(|| resolve_html5_entity(name))
}
