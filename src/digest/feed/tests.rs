//! The parser against small feeds written from the specifications
//! (`tests/fixtures/feeds/`: RSS 0.91, 0.92, 1.0 and 2.0, Atom 1.0 and 0.3,
//! JSON Feed 1.0 and 1.1, and real-world shapes: a podcast whose episodes
//! share a link, a microblog without titles, an old Windows-1252 blog, the
//! encodings feeds come in), and against inline feeds for each rule.

use super::*;

const RULES: FeedRules = FeedRules {
    summary_max: 300,
    max_body_bytes: 1 << 20,
};

/// The import's time in every test: dates are judged against it.
fn now() -> DateTime<Utc> {
    at("2026-11-30T12:00:00Z")
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc)
}

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!("../../../tests/fixtures/feeds/", $name)).as_slice(),
        )
    };
}

/// What an entry must become.
enum Want {
    Article {
        guid: Option<&'static str>,
        url: &'static str,
        title: &'static str,
        summary: &'static str,
        source: SummarySource,
        published: Option<&'static str>,
    },
    Rejected(&'static str, &'static str),
}

use SummarySource::{Feed as OWN, Generated as LEAD};

fn article(
    guid: Option<&'static str>,
    url: &'static str,
    title: &'static str,
    summary: &'static str,
    source: SummarySource,
    published: Option<&'static str>,
) -> Want {
    Want::Article {
        guid,
        url,
        title,
        summary,
        source,
        published,
    }
}

struct Case {
    file: (&'static str, &'static [u8]),
    title: &'static str,
    entries: Vec<Want>,
    warnings: Vec<(&'static str, &'static str)>,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            file: fixture!("rss-2.0.xml"),
            title: "Field Notes & Errata",
            entries: vec![
                article(
                    Some("notes-1"),
                    "https://notes.example.org/2026/divs",
                    "Use <div> for layout",
                    "Why a div is not a table.",
                    LEAD,
                    Some("2026-11-26T08:30:00Z"),
                ),
                article(
                    Some("notes-2"),
                    "https://notes.example.org/2026/once",
                    "A &lt; B, decoded once",
                    "Escaped once, read once.",
                    LEAD,
                    Some("2026-11-26T08:00:00Z"),
                ),
                // A CDATA title with markup keeps every word; the permalink
                // guid is the link.
                article(
                    Some("https://notes.example.org/2026/script-tags"),
                    "https://notes.example.org/2026/script-tags",
                    "Why <script> tags matter",
                    "Scripts block rendering.",
                    LEAD,
                    Some("2026-11-25T15:00:00Z"),
                ),
                article(
                    Some("https://notes.example.org/2026/bold"),
                    "https://notes.example.org/2026/bold",
                    "Bold move & more",
                    "A bold move.",
                    LEAD,
                    Some("2026-11-25T11:00:00Z"),
                ),
                Want::Rejected("entry 5 (“Not a permalink”)", "it has no link"),
                article(
                    Some("https://notes.example.org/2026/untitled"),
                    "https://notes.example.org/2026/untitled",
                    "Just shipped the new release of our importer with faster feeds, clearer errors…",
                    "Just shipped the new release of our importer with faster feeds, clearer errors and fewer \
                     surprises. More soon.",
                    LEAD,
                    Some("2026-11-24T12:00:00Z"),
                ),
                article(
                    Some("notes-7"),
                    "https://notes.example.org/2026/when",
                    "A date nobody can read",
                    "The date above is not a date.",
                    LEAD,
                    Some("2026-11-29T18:00:00Z"),
                ),
                article(
                    Some("notes-8"),
                    "https://notes.example.org/2026/undated",
                    "No date at all",
                    "Nothing says when.",
                    LEAD,
                    None,
                ),
                Want::Rejected(
                    "entry 9 (“Scheduled for next year”)",
                    "its date `Fri, 01 Jan 2027 09:00:00 GMT` is more than a day in the future",
                ),
                // Navigation, a drawn table, a caption, an aside, a form and
                // a footer come first; the lead is the first paragraph.
                article(
                    Some("notes-10"),
                    "https://notes.example.org/2026/floods",
                    "Floods in the north",
                    "The river rose overnight. Towns emptied by morning.",
                    LEAD,
                    Some("2026-11-23T07:00:00Z"),
                ),
            ],
            warnings: vec![
                (
                    "entry 6 (“Just shipped the new release of our importer with faster feeds, clearer errors…”)",
                    "it has no title; its title is the start of its text",
                ),
                (
                    "entry 7 (“A date nobody can read”)",
                    "its date `sometime last week` could not be read; it got the feed's date, 2026-11-29T18:00:00+00:00",
                ),
            ],
        },
        Case {
            file: fixture!("rss-0.91.xml"),
            title: "An Old Blog",
            entries: vec![
                article(
                    None,
                    "http://oldblog.example.com/2003/05/back.html",
                    "It’s “back” – again",
                    "Café “Tea”… and “more”.",
                    LEAD,
                    None,
                ),
                article(
                    None,
                    "http://oldblog.example.com/2003/05/second.html",
                    "Second post",
                    "Plain & simple.",
                    LEAD,
                    None,
                ),
            ],
            warnings: vec![],
        },
        Case {
            file: fixture!("rss-0.92.xml"),
            title: "Dave's Scripting News",
            entries: vec![
                article(
                    None,
                    "http://scripting.example.com/2026/11/30/a1",
                    "It's been a busy week. More here.",
                    "It's been a busy week. More here.",
                    LEAD,
                    None,
                ),
                article(
                    None,
                    "http://scripting.example.com/2026/11/enclosures",
                    "Enclosures are here",
                    "A podcast, before podcasts.",
                    LEAD,
                    None,
                ),
            ],
            warnings: vec![(
                "entry 1 (“It's been a busy week. More here.”)",
                "it has no title; its title is the start of its text",
            )],
        },
        Case {
            file: fixture!("rss-1.0.rdf"),
            title: "RDF Site Summary",
            entries: vec![
                article(
                    Some("https://rdf.example.org/2026/markets"),
                    "https://rdf.example.org/2026/markets",
                    "Markets calm",
                    "Prices held steady. Traders waited.",
                    LEAD,
                    Some("2026-11-27T08:00:00Z"),
                ),
                article(
                    Some("https://rdf.example.org/2026/elections"),
                    "https://rdf.example.org/2026/elections",
                    "Elections called",
                    "The vote is in March.",
                    OWN,
                    Some("2026-11-27T00:00:00Z"),
                ),
            ],
            warnings: vec![],
        },
        Case {
            file: fixture!("rss-no-version.xml"),
            title: "No Version",
            entries: vec![article(
                Some("https://noversion.example.org/still-rss"),
                "https://noversion.example.org/still-rss",
                "Still RSS",
                "Read as RSS 2.0.",
                LEAD,
                Some("2026-11-28T10:00:00Z"),
            )],
            warnings: vec![],
        },
        Case {
            file: fixture!("atom-1.0.xml"),
            title: "Atom & Eve",
            entries: vec![
                // type="text": the characters as written; the link
                // resolved against xml:base.
                article(
                    Some("tag:atom.example.org,2026:1"),
                    "https://atom.example.org/blog/2026/divs",
                    "Use <div> for layout",
                    "Tags like <div> are layout, not meaning.",
                    LEAD,
                    Some("2026-11-26T08:30:00Z"),
                ),
                article(
                    Some("tag:atom.example.org,2026:2"),
                    "https://atom.example.org/blog/2026/bold",
                    "Why bold & italic",
                    "First paragraph, short.",
                    LEAD,
                    Some("2026-11-26T08:00:00Z"),
                ),
                article(
                    Some("tag:atom.example.org,2026:3"),
                    "https://atom.example.org/blog/2026/xhtml",
                    "An xhtml title & more",
                    "Markup written as XML, <not> as text.",
                    LEAD,
                    Some("2026-11-25T09:00:00Z"),
                ),
                article(
                    Some("tag:atom.example.org,2026:4"),
                    "https://atom.example.org/blog/2026/encoded",
                    "Encoded body",
                    "The body, encoded in base64.",
                    LEAD,
                    Some("2026-11-24T09:00:00Z"),
                ),
                article(
                    Some("tag:atom.example.org,2026:5"),
                    "https://atom.example.org/blog/2026/picture",
                    "A picture",
                    "A one-pixel image.",
                    LEAD,
                    Some("2026-11-23T09:00:00Z"),
                ),
            ],
            warnings: vec![(
                "entry 5 (“A picture”)",
                "its `content` is `image/png`, not text, and was left out",
            )],
        },
        Case {
            file: fixture!("atom-0.3.xml"),
            title: "Atom Zero Three",
            entries: vec![
                article(
                    Some("tag:old-atom.example.org,2026:1"),
                    "https://old-atom.example.org/2026/base64",
                    "Base64 body",
                    "Decoded from base64.",
                    LEAD,
                    Some("2026-11-25T12:00:00Z"),
                ),
                article(
                    Some("tag:old-atom.example.org,2026:2"),
                    "https://old-atom.example.org/2026/escaped",
                    "Escaped body",
                    "Escaped & read.",
                    LEAD,
                    Some("2026-11-24T12:00:00Z"),
                ),
                article(
                    Some("tag:old-atom.example.org,2026:3"),
                    "https://old-atom.example.org/2026/inline",
                    "Inline body",
                    "Inline XHTML.",
                    LEAD,
                    Some("2026-11-23T12:00:00Z"),
                ),
            ],
            warnings: vec![],
        },
        Case {
            file: fixture!("jsonfeed-1.1.json"),
            title: "JSON & Friends",
            entries: vec![
                article(
                    Some("1"),
                    "https://json.example.org/posts/1",
                    "A numeric id",
                    "One short paragraph.",
                    LEAD,
                    Some("2026-11-26T08:30:00Z"),
                ),
                article(
                    Some("20261127"),
                    "https://json.example.org/posts/2",
                    "Use <div> for layout",
                    "A title in JSON Feed is plain text.",
                    OWN,
                    Some("2026-11-27T06:30:00Z"),
                ),
                article(
                    Some("3"),
                    "https://json.example.org/posts/3",
                    "A post without a title, as microblogs write them: the start of the text becomes…",
                    "A post without a title, as microblogs write them: the start of the text becomes the title.",
                    LEAD,
                    Some("2026-11-28T08:30:00Z"),
                ),
                article(
                    Some("4"),
                    "https://json.example.org/posts/4",
                    "A drawn table",
                    "Rates fell in 2026. Savers noticed.",
                    LEAD,
                    Some("2026-11-28T09:30:00Z"),
                ),
            ],
            warnings: vec![(
                "entry 3 (“A post without a title, as microblogs write them: the start of the text becomes…”)",
                "it has no title; its title is the start of its text",
            )],
        },
        Case {
            file: fixture!("jsonfeed-1.0.json"),
            title: "JSON Feed One",
            entries: vec![article(
                Some("https://json-one.example.org/2026/first"),
                "https://json-one.example.org/2026/first",
                "First",
                "It’s the first.",
                LEAD,
                Some("2026-11-20T15:00:00Z"),
            )],
            warnings: vec![],
        },
        Case {
            file: fixture!("podcast-shared-links.xml"),
            title: "The Weekly Show",
            entries: vec![
                article(
                    Some("show-ep-3"),
                    "https://show.example.org/",
                    "Episode 3: Rivers",
                    "We talk about rivers.",
                    LEAD,
                    Some("2026-11-27T06:00:00Z"),
                ),
                article(
                    Some("show-ep-2"),
                    "https://show.example.org/",
                    "Episode 2: Mountains",
                    "We talk about mountains.",
                    LEAD,
                    Some("2026-11-20T06:00:00Z"),
                ),
                article(
                    Some("show-ep-1"),
                    "https://show.example.org/",
                    "Episode 1: Hello",
                    "The first one.",
                    LEAD,
                    Some("2026-11-13T06:00:00Z"),
                ),
            ],
            warnings: vec![],
        },
        Case {
            file: fixture!("microblog-no-titles.xml"),
            title: "@someone",
            entries: vec![
                article(
                    Some("https://micro.example.org/@someone/1001"),
                    "https://micro.example.org/@someone/1001",
                    "Trying the new bridge across the river today. The view from the middle is worth…",
                    "Trying the new bridge across the river today. The view from the middle is worth the walk, \
                     honestly.",
                    LEAD,
                    Some("2026-11-29T20:15:00Z"),
                ),
                // Short text is still only its first paragraph.
                article(
                    Some("https://micro.example.org/@someone/1000"),
                    "https://micro.example.org/@someone/1000",
                    "Coffee first.",
                    "Coffee first.",
                    LEAD,
                    Some("2026-11-29T09:02:00Z"),
                ),
            ],
            warnings: vec![
                (
                    "entry 1 (“Trying the new bridge across the river today. The view from the middle is worth…”)",
                    "it has no title; its title is the start of its text",
                ),
                (
                    "entry 2 (“Coffee first.”)",
                    "it has no title; its title is the start of its text",
                ),
            ],
        },
        Case {
            file: fixture!("utf-16le-bom.xml"),
            title: "Широкие символы",
            entries: vec![article(
                Some("https://wide.example.org/16"),
                "https://wide.example.org/16",
                "Шестнадцать бит",
                "Текст в UTF-16.",
                LEAD,
                Some("2026-11-26T08:30:00Z"),
            )],
            warnings: vec![],
        },
        Case {
            file: fixture!("utf-16be-declaration.xml"),
            title: "Big end",
            entries: vec![article(
                Some("urn:wide:1"),
                "https://wide.example.org/be",
                "Declared, no mark",
                "UTF-16BE with only its declaration.",
                LEAD,
                Some("2026-11-26T08:30:00Z"),
            )],
            warnings: vec![],
        },
        Case {
            file: fixture!("utf-32le-bom.xml"),
            title: "Широкие символы",
            entries: vec![article(
                Some("https://wide.example.org/32"),
                "https://wide.example.org/32",
                "Тридцать два бита",
                "Текст в UTF-32.",
                LEAD,
                Some("2026-11-26T08:30:00Z"),
            )],
            warnings: vec![],
        },
        Case {
            file: fixture!("windows-1251.xml"),
            title: "Новости",
            entries: vec![article(
                Some("cp1251"),
                "https://news.example.ru/cp1251",
                "Ташкент открывает новый рынок",
                "Узбекистан открыл новый рынок в Ташкенте. Торговцы довольны.",
                LEAD,
                Some("2026-11-26T05:30:00Z"),
            )],
            warnings: vec![],
        },
        Case {
            file: fixture!("koi8-r.xml"),
            title: "Новости",
            entries: vec![article(
                Some("koi8"),
                "https://news.example.ru/koi8",
                "Ташкент открывает новый рынок",
                "Узбекистан открыл новый рынок в Ташкенте. Торговцы довольны.",
                LEAD,
                Some("2026-11-26T05:30:00Z"),
            )],
            warnings: vec![],
        },
        Case {
            file: fixture!("stray-byte.xml"),
            title: "Stray",
            entries: vec![article(
                Some("https://stray.example.org/cafe"),
                "https://stray.example.org/cafe",
                "Caf\u{fffd} society",
                "One byte is not UTF-8; the rest is “fine”.",
                LEAD,
                Some("2026-11-26T08:30:00Z"),
            )],
            warnings: vec![(
                "the feed",
                "it is not all UTF-8: 1 invalid byte sequence was replaced with \u{fffd} (the first on line 3)",
            )],
        },
    ]
}

#[test]
fn every_fixture_feed_imports_as_its_specification_means() {
    for case in cases() {
        let (name, bytes) = case.file;
        let parsed = parse_feed(bytes, None, RULES, now()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed.title.as_deref(), Some(case.title), "{name}");
        assert_eq!(
            parsed.entries.len(),
            case.entries.len(),
            "{name}: {:#?}",
            parsed.entries
        );
        for (i, (got, want)) in parsed.entries.iter().zip(&case.entries).enumerate() {
            let place = format!("{name}, entry {}", i + 1);
            match (got, want) {
                (
                    Ok(got),
                    Want::Article {
                        guid,
                        url,
                        title,
                        summary,
                        source,
                        published,
                    },
                ) => {
                    assert_eq!(got.guid.as_deref(), *guid, "{place}: guid");
                    assert_eq!(got.url.as_str(), *url, "{place}: url");
                    assert_eq!(got.title.as_str(), *title, "{place}: title");
                    assert_eq!(got.summary, *summary, "{place}: summary");
                    assert_eq!(got.summary_source, *source, "{place}: summary source");
                    assert_eq!(got.published_at, published.map(at), "{place}: published");
                    for text in [got.title.as_str(), &got.summary, &got.body] {
                        assert!(
                            !text.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)),
                            "{place}: {text:?}"
                        );
                    }
                    assert!(!got.summary.contains(['│', '┌', '─']), "{place}: {:?}", got.summary);
                }
                (Err(got), Want::Rejected(entry, reason)) => {
                    assert_eq!((got.entry.as_str(), got.reason.as_str()), (*entry, *reason), "{place}");
                }
                (got, _) => panic!("{place}: {got:?}"),
            }
        }
        let warnings: Vec<(&str, &str)> = parsed
            .warnings
            .iter()
            .map(|w| (w.entry.as_str(), w.message.as_str()))
            .collect();
        assert_eq!(warnings, case.warnings, "{name}");
    }
}

/// Each broken document is refused as a whole, with a reason a person can
/// act on that quotes no more than a short piece of it.
#[test]
fn what_is_not_a_feed_is_named() {
    let cases = [
        (
            fixture!("broken/web-page.html"),
            "not a feed that can be read: not RSS, Atom or JSON Feed (the root element is `<html>`)",
        ),
        (
            fixture!("broken/opml.xml"),
            "not a feed that can be read: not RSS, Atom or JSON Feed (the root element is `<opml>`)",
        ),
        (
            fixture!("broken/utf-16-no-mark.xml"),
            "not a feed that can be read: UTF-16 without a byte order mark (save it with one, or as UTF-8)",
        ),
        (
            fixture!("broken/mismatched.xml"),
            "not a feed that can be read: the XML is malformed at line 5: ill-formed document: expected `</title>`, \
             but `</description>` was found",
        ),
        (
            fixture!("broken/truncated.xml"),
            "not a feed that can be read: the XML is malformed at line 1: it ends before `</title>`",
        ),
        (
            fixture!("broken/not-a-json-feed.json"),
            "not a feed that can be read: not RSS, Atom or JSON Feed (JSON without a JSON Feed `version` or `items`)",
        ),
        (
            fixture!("broken/malformed.json"),
            "not a feed that can be read: the JSON is malformed: trailing comma at line 1 column 70",
        ),
        (fixture!("broken/empty.xml"), "not a feed that can be read: it is empty"),
    ];
    for ((name, bytes), message) in cases {
        let error = parse_feed(bytes, None, RULES, now()).expect_err(name);
        assert_eq!(error.to_string(), message, "{name}");
    }
    let inline: [(&[u8], &str); 5] = [
        (
            b"Just some words, not a feed at all",
            "not a feed that can be read: not RSS, Atom or JSON Feed (it starts with `Just some words, not a f`)",
        ),
        (
            b"<\x1b[2Jhtml><body>x</body></html>",
            "not a feed that can be read: not RSS, Atom or JSON Feed (the root element is `<\\e[2Jhtml>`)",
        ),
        (
            b"<!DOCTYPE html>\n<HTML><body>",
            "not a feed that can be read: not RSS, Atom or JSON Feed (the root element is `<HTML>`)",
        ),
        (
            b"[1, 2, 3]",
            "not a feed that can be read: not RSS, Atom or JSON Feed (JSON, but not a JSON Feed object)",
        ),
        (
            b"<?xml version=\"1.0\"?>\n<rss>\n<channel>\n</rss>",
            "not a feed that can be read: the XML is malformed at line 4: ill-formed document: expected `</channel>`, \
             but `</rss>` was found",
        ),
    ];
    for (bytes, start) in inline {
        let message = parse_feed(bytes, None, RULES, now()).unwrap_err().to_string();
        assert!(message.starts_with(start), "{message}");
        assert!(!message.chars().any(char::is_control), "{message:?}");
    }
    // However long the document, the message quotes a short piece.
    let long_name = format!("<{}>", "x".repeat(10_000));
    let message = parse_feed(long_name.as_bytes(), None, RULES, now())
        .unwrap_err()
        .to_string();
    assert!(message.len() < 200, "{message}");
}

fn rss_item(item: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>https://t.example.org/</link>{item}</channel></rss>"#
    )
    .into_bytes()
}

fn only_entry(feed: &[u8]) -> Result<NewArticle, Rejection> {
    let mut parsed = parse_feed(feed, None, RULES, now()).unwrap();
    assert_eq!(parsed.entries.len(), 1);
    parsed.entries.remove(0)
}

/// Plain-text titles keep their characters, decoded once; HTML titles lose
/// only their formatting tags; no C1 control character is left.
#[test]
fn titles_are_the_text_the_feed_meant() {
    let rss = |title: &str| {
        rss_item(&format!(
            "<item><title>{title}</title><link>/a</link><description>x</description></item>"
        ))
    };
    let atom = |title: &str| {
        format!(
            r#"<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>1</id><link href="https://t.example.org/a"/>{title}<summary>x</summary></entry></feed>"#
        )
        .into_bytes()
    };
    let table: Vec<(Vec<u8>, &str)> = vec![
        (rss("Use &lt;div&gt; for layout"), "Use <div> for layout"),
        (rss("A &amp;lt; B"), "A &lt; B"),
        (rss("AT&amp;T &amp; friends"), "AT&T & friends"),
        (rss("AT&T, a bare ampersand"), "AT&T, a bare ampersand"),
        (rss("<![CDATA[Why <script> tags matter]]>"), "Why <script> tags matter"),
        (rss("<![CDATA[<em>Emphasis</em> &amp; <a href='/x'>links</a>]]>"), "Emphasis & links"),
        (rss("<![CDATA[Plain in CDATA: 3 < 4]]>"), "Plain in CDATA: 3 < 4"),
        (rss("Unescaped <b>markup</b> &amp; co"), "Unescaped markup & co"),
        (rss("It&#146;s &#147;back&#148; &#150; 2003&#153;"), "It’s “back” – 2003™"),
        (rss("Caf&eacute; &nbsp;society"), "Café society"),
        (rss("&#x201C;Hex&#X201D;"), "“Hex”"),
        (atom(r#"<title type="text">Use &lt;div&gt; for layout</title>"#), "Use <div> for layout"),
        (atom(r#"<title>A &amp;lt; B</title>"#), "A &lt; B"),
        (atom(r#"<title type="html">Use &amp;lt;div&amp;gt; for layout</title>"#), "Use <div> for layout"),
        (atom(r#"<title type="html">&lt;b&gt;Bold&lt;/b&gt; &amp;amp; brave</title>"#), "Bold & brave"),
        (atom(r#"<title type="html">Why &lt;script&gt; tags matter</title>"#), "Why <script> tags matter"),
        (atom(r#"<title type="html">It&amp;#146;s</title>"#), "It’s"),
        (atom(r#"<title type="text">It&#146;s</title>"#), "It’s"),
        (
            atom(r#"<title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">Why <b>xhtml</b> &lt;script&gt;</div></title>"#),
            "Why xhtml <script>",
        ),
        (
            br#"{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1", "url": "https://t.example.org/a", "title": "Use <div> &amp; \u0092", "content_text": "x"}]}"#.to_vec(),
            "Use <div> &amp; ’",
        ),
    ];
    for (feed, title) in table {
        let article = only_entry(&feed).unwrap_or_else(|r| panic!("{}: {r:?}", String::from_utf8_lossy(&feed)));
        assert_eq!(article.title.as_str(), title, "{}", String::from_utf8_lossy(&feed));
    }
}

/// The summary is the lead paragraph: never layout, never two paragraphs
/// run together, also when the text is short; the feed's own excerpt the
/// same.
#[test]
fn the_summary_is_the_lead_paragraph_without_layout() {
    let table = [
        ("<p>One.</p><p>Two.</p>", "One."),
        ("One line only", "One line only"),
        (
            "<table><tr><th>Year</th><th>Rate</th></tr><tr><td>2026</td><td>4%</td></tr></table><p>Rates fell.</p>",
            "Rates fell.",
        ),
        (
            "<nav><ul><li>Home</li><li>World</li></ul></nav><p>The story.</p>",
            "The story.",
        ),
        (
            "<header><h1>Site</h1></header><p>The story.</p><footer>(c)</footer>",
            "The story.",
        ),
        ("<aside>Read this too</aside><p>The story.</p>", "The story."),
        (
            "<form><label>Email</label><input></form><p>The story.</p>",
            "The story.",
        ),
        (
            "<figure><img src=x><figcaption>A caption.</figcaption></figure><p>The story.</p>",
            "The story.",
        ),
        ("<pre>┌────┐\n│ hi │\n└────┘</pre><p>The story.</p>", "The story."),
        (
            "<p>By Ann Reporter</p><p>Sign up for our newsletter.</p><p>The story.</p>",
            "The story.",
        ),
        ("<table><tr><td>cell</td></tr><p>After a table never closed.</p>", ""),
        (
            "<p>A first sentence that is long enough. And a second one that also fits. Then a third one \
             that is too long for a summary of one hundred characters.</p><p>Next.</p>",
            "A first sentence that is long enough. And a second one that also fits.",
        ),
    ];
    let rules = FeedRules {
        summary_max: 100,
        ..RULES
    };
    for (html, summary) in table {
        let escaped = html.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        let feed = rss_item(&format!(
            "<item><title>T</title><link>/a</link><description>{escaped}</description></item>"
        ));
        let mut parsed = parse_feed(&feed, None, rules, now()).unwrap();
        let article = parsed.entries.remove(0).unwrap();
        assert_eq!(article.summary, summary, "{html}");
        assert!(article.summary.chars().count() <= 100);
    }
    // The feed's own excerpt, when it is its own, gives its own lead.
    let feed = rss_item(
        "<item><title>T</title><link>/a</link><description>&lt;p&gt;Own lead.&lt;/p&gt;&lt;p&gt;More.&lt;/p&gt;</description>\
         <content:encoded xmlns:content=\"http://purl.org/rss/1.0/modules/content/\">&lt;p&gt;The body.&lt;/p&gt;</content:encoded></item>",
    );
    let article = only_entry(&feed).unwrap();
    assert_eq!(
        (article.summary.as_str(), article.summary_source),
        ("Own lead.", SummarySource::Feed)
    );
}

/// RSS `<guid>` is a permalink unless `isPermaLink="false"`; a permalink
/// serves as the link when there is none; `<link>` wins when both are
/// there.
#[test]
fn a_permalink_guid_is_the_link_when_there_is_none() {
    let table = [
        ("<guid>https://t.example.org/p</guid>", Ok("https://t.example.org/p")),
        (
            "<guid isPermaLink=\"true\">https://t.example.org/p</guid>",
            Ok("https://t.example.org/p"),
        ),
        (
            "<guid isPermaLink=\"false\">https://t.example.org/p</guid>",
            Err("it has no link"),
        ),
        ("<guid>p-17</guid>", Err("it has no link")),
        (
            "<guid>https://t.example.org/p</guid><link>/other</link>",
            Ok("https://t.example.org/other"),
        ),
        (
            "<link>  </link><guid>https://t.example.org/p</guid>",
            Ok("https://t.example.org/p"),
        ),
    ];
    for (xml, want) in table {
        let entry = only_entry(&rss_item(&format!(
            "<item><title>T</title>{xml}<description>x</description></item>"
        )));
        let got = entry.as_ref().map(|a| a.url.as_str()).map_err(|r| r.reason.as_str());
        assert_eq!(got, want, "{xml}");
    }
}

/// Dates: per entry, what could not be read is named and the entry gets
/// the feed's date or the import time, visibly; a date more than a day
/// ahead refuses the entry.
#[test]
fn each_entry_date_is_read_or_reported() {
    let feed = |channel_date: &str, item_date: &str| {
        rss_item(&format!(
            "{channel_date}<item><title>T</title><link>/a</link>{item_date}<description>x</description></item>"
        ))
    };
    let table = [
        (
            "",
            "<pubDate>Thu, 26 Nov 2026 08:30:00 EST</pubDate>",
            Ok(Some("2026-11-26T13:30:00Z")),
            None,
        ),
        (
            "",
            "<pubDate>2026-11-26 08:30</pubDate>",
            Ok(Some("2026-11-26T08:30:00Z")),
            None,
        ),
        (
            "",
            "<dc:date xmlns:dc=\"http://purl.org/dc/elements/1.1/\">2026-11-26T08:30:00+01:00</dc:date>",
            Ok(Some("2026-11-26T07:30:00Z")),
            None,
        ),
        (
            "<pubDate>Sun, 29 Nov 2026 18:00:00 GMT</pubDate>",
            "<pubDate>yesterday-ish</pubDate>",
            Ok(Some("2026-11-29T18:00:00Z")),
            Some("its date `yesterday-ish` could not be read; it got the feed's date, 2026-11-29T18:00:00+00:00"),
        ),
        (
            "",
            "<pubDate>yesterday-ish</pubDate>",
            Ok(None),
            Some("its date `yesterday-ish` could not be read"),
        ),
        (
            "",
            "<pubDate>\u{1b}[31mred</pubDate>",
            Ok(None),
            Some("its date `\\e[31mred` could not be read"),
        ),
        ("<pubDate>Sun, 29 Nov 2026 18:00:00 GMT</pubDate>", "", Ok(None), None),
        (
            "",
            "<pubDate>Tue, 01 Dec 2026 11:00:00 GMT</pubDate>",
            Ok(Some("2026-12-01T11:00:00Z")),
            None,
        ),
        (
            "",
            "<pubDate>Tue, 01 Dec 2026 13:00:00 GMT</pubDate>",
            Err("its date `Tue, 01 Dec 2026 13:00:00 GMT` is more than a day in the future"),
            None,
        ),
    ];
    for (channel_date, item_date, want, warning) in table {
        let parsed = parse_feed(&feed(channel_date, item_date), None, RULES, now()).unwrap();
        let got = parsed.entries[0]
            .as_ref()
            .map(|a| a.published_at)
            .map_err(|r| r.reason.as_str());
        assert_eq!(got, want.map(|w| w.map(at)), "{item_date}");
        let warnings: Vec<&str> = parsed.warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(warnings, Vec::from_iter(warning), "{item_date}");
    }
}

/// A body over `max_body_bytes` of text is cut at a paragraph boundary,
/// with a warning; the summary is still the lead.
#[test]
fn a_long_body_is_cut_at_a_paragraph() {
    let paragraphs: String = (0..50)
        .map(|i| format!("&lt;p&gt;Paragraph {i} says a few words.&lt;/p&gt;"))
        .collect();
    let feed = rss_item(&format!(
        "<item><title>T</title><link>/a</link><description>{paragraphs}</description></item>"
    ));
    let rules = FeedRules {
        max_body_bytes: 100,
        ..RULES
    };
    let parsed = parse_feed(&feed, None, rules, now()).unwrap();
    let article = parsed.entries[0].as_ref().unwrap();
    assert_eq!(
        article.body,
        "Paragraph 0 says a few words.\nParagraph 1 says a few words.\nParagraph 2 says a few words."
    );
    assert_eq!(article.summary, "Paragraph 0 says a few words.");
    assert_eq!(
        parsed.warnings[0].message,
        "its text was 1539 bytes, over the limit of 100; it was cut to 89 at a paragraph boundary"
    );
}

/// A rejected entry's title is named with its control characters escaped.
#[test]
fn a_rejected_title_is_named_safely() {
    let feed = rss_item(
        "<item><title>\u{1b}[2J\u{1b}[31mPwned\u{1b}[0m\rOK \u{202e}gpj.exe</title><description>x</description></item>",
    );
    let rejection = only_entry(&feed).unwrap_err();
    // XML reads a carriage return as a line end.
    assert_eq!(
        rejection.entry,
        "entry 1 (“\\e[2J\\e[31mPwned\\e[0m\\nOK \\u{202e}gpj.exe”)"
    );
    assert_eq!(rejection.reason, "it has no link");
    let long = rss_item(&format!(
        "<item><title>{}</title><description>x</description></item>",
        "word ".repeat(100)
    ));
    let rejection = only_entry(&long).unwrap_err();
    assert!(rejection.entry.chars().count() < 100, "{}", rejection.entry);
}

/// Relative links resolve against xml:base, else the feed's own link, else
/// where the document came from.
#[test]
fn relative_links_resolve_against_the_nearest_base() {
    let document = url::Url::parse("https://files.example.org/feeds/feed.xml").unwrap();
    let table: [(&str, &str); 4] = [
        (
            r#"<rss version="2.0"><channel><link>https://site.example.org/blog/</link><item><title>T</title><link>post</link><description>x</description></item></channel></rss>"#,
            "https://site.example.org/blog/post",
        ),
        (
            r#"<rss version="2.0"><channel><item><title>T</title><link>post</link><description>x</description></item></channel></rss>"#,
            "https://files.example.org/feeds/post",
        ),
        (
            r#"<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://base.example.org/a/"><link href="https://site.example.org/"/><entry xml:base="b/"><id>1</id><link href="c"/><summary>x</summary><title>T</title></entry></feed>"#,
            "https://base.example.org/a/b/c",
        ),
        (
            r#"<feed xmlns="http://www.w3.org/2005/Atom"><link href="/home/"/><entry><id>1</id><link href="c"/><summary>x</summary><title>T</title></entry></feed>"#,
            "https://files.example.org/home/c",
        ),
    ];
    for (feed, url) in table {
        let parsed = parse_feed(feed.as_bytes(), Some(&document), RULES, now()).unwrap();
        assert_eq!(parsed.entries[0].as_ref().unwrap().url.as_str(), url, "{feed}");
    }
}

/// Elements of other vocabularies (Media RSS, iTunes) that share a name
/// with RSS's are not read as RSS's.
#[test]
fn other_namespaces_do_not_stand_in_for_rss() {
    let feed = rss_item(
        r#"<item xmlns:media="http://search.yahoo.com/mrss/"><media:content url="https://cdn.example.org/x.jpg"><media:title>Not the title</media:title><media:description>Not the text</media:description></media:content><title>The title</title><link>/a</link><description>The text.</description></item>"#,
    );
    let article = only_entry(&feed).unwrap();
    assert_eq!(
        (article.title.as_str(), article.body.as_str()),
        ("The title", "The text.")
    );
}

const FIXTURE: &str = include_str!("../../../tests/fixtures/article-tajikistan-multi-vector.txt");

#[test]
fn the_fixture_imports_as_plain_text() {
    let url = ArticleUrl::parse("https://eurasianet.org/tajikistan-multi-vector").unwrap();
    let article = parse_plain_text(FIXTURE, url, None, None, 300).unwrap();
    assert_eq!(
        article.title.as_str(),
        "Tajikistan’s “multi-vector” foreign policy is testing the Kremlin’s patience."
    );
    assert!(article.body.starts_with("Tajikistan’s “multi-vector” foreign policy"));
    assert!(
        article
            .summary
            .starts_with("Tajikistan’s “multi-vector” foreign policy is testing the Kremlin’s patience. Russia")
    );
    assert!(!article.summary.contains("Sign up"));
    assert_eq!(article.summary_source, SummarySource::Generated);
}

#[test]
fn a_plain_title_line_is_the_title() {
    let url = ArticleUrl::parse("https://example.org/floods").unwrap();
    let article = parse_plain_text(
        "Floods in the north\n\nThe river rose. Towns emptied.",
        url,
        None,
        None,
        300,
    )
    .unwrap();
    assert_eq!(article.title.as_str(), "Floods in the north");
    assert_eq!(article.body, "The river rose. Towns emptied.");
    let url = ArticleUrl::parse("https://example.org/empty").unwrap();
    assert!(parse_plain_text("Only a title", url, None, None, 300).is_err());
}

/// A file is read as a feed when it starts as one does in any encoding the
/// parser reads (so a UTF-16 feed from a file is not taken for a
/// plain-text article), and as a plain-text article otherwise.
#[test]
fn what_starts_like_a_feed() {
    let utf_16 = |text: &str| text.encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>();
    let table: [(Vec<u8>, bool); 8] = [
        (b"<rss>".to_vec(), true),
        (b"\xef\xbb\xbf  \n{\"items\": []}".to_vec(), true),
        ([&b"\xff\xfe"[..], &utf_16("<rss>")].concat(), true),
        (utf_16("<rss>"), true),
        (b"\0\0\xfe\xff\0\0\0<".to_vec(), true),
        (b"Floods in the north\n\nThe river rose.".to_vec(), false),
        ("Ташкент открывает рынок\n\nТекст.".as_bytes().to_vec(), false),
        (Vec::new(), false),
    ];
    for (bytes, feed) in table {
        assert_eq!(starts_like_a_feed(&bytes), feed, "{bytes:?}");
    }
}

/// The languages of a feed's articles, in order, by tag (`-` for unknown).
fn languages(feed: &[u8]) -> Vec<&'static str> {
    let tags: Vec<&str> = parse_feed(feed, None, RULES, now())
        .unwrap()
        .entries
        .into_iter()
        .flatten()
        .map(|article| article.language.map_or("-", Language::tag))
        .collect();
    assert!(!tags.is_empty(), "articles to look at");
    tags
}

/// An entry's language is the one it declares, else its feed's, parsed by
/// the primary subtag; a language without a catalogue, or none declared,
/// is unknown, never guessed from the text.
#[test]
fn each_entry_is_in_the_language_it_or_its_feed_declares() {
    let (_, rss_2) = fixture!("rss-2.0.xml");
    assert!(languages(rss_2).iter().all(|tag| *tag == "en"));
    let (_, rss_091) = fixture!("rss-0.91.xml");
    assert!(languages(rss_091).iter().all(|tag| *tag == "en"), "en-us");
    let (_, atom) = fixture!("atom-1.0.xml");
    assert!(languages(atom).iter().all(|tag| *tag == "-"), "no declaration");

    let item = |own: &str| format!("<item><title>T</title><link>/{own}</link><description>x</description>{own}</item>");
    let rss = format!(
        "<rss version=\"2.0\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><channel><title>T</title>\
         <link>https://t.example.org/</link>{}{}{}<language>ru-RU</language></channel></rss>",
        item(""),
        item("<dc:language>en</dc:language>"),
        item("<dc:language>de</dc:language>")
    );
    assert_eq!(
        languages(rss.as_bytes()),
        ["ru", "en", "-"],
        "a channel's language after its items"
    );
    let rdf = "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" xmlns=\"http://purl.org/rss/1.0/\" \
               xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><channel><title>T</title><dc:language>RU</dc:language>\
               </channel><item><title>T</title><link>https://t.example.org/a</link><description>x</description>\
               </item></rdf:RDF>";
    assert_eq!(languages(rdf.as_bytes()), ["ru"]);

    let entry = |lang: &str, n: u32| {
        format!(
            "<entry{lang}><id>{n}</id><title>T</title><link href=\"https://t.example.org/{n}\"/><summary>x</summary></entry>"
        )
    };
    let atom = format!(
        "<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"ru\"><title>T</title>{}{}{}{}</feed>",
        entry("", 1),
        entry(" xml:lang=\"en-GB\"", 2),
        entry(" xml:lang=\"de\"", 3),
        entry(" xml:lang=\"\"", 4)
    );
    assert_eq!(languages(atom.as_bytes()), ["ru", "en", "-", "ru"]);

    let json = r#"{"version": "https://jsonfeed.org/version/1.1", "title": "T", "items": [
        {"id": "1", "url": "https://t.example.org/1", "content_text": "x"},
        {"id": "2", "url": "https://t.example.org/2", "content_text": "x", "language": "en-US"},
        {"id": "3", "url": "https://t.example.org/3", "content_text": "x", "language": "x<script>"}
    ], "language": "ru"}"#;
    assert_eq!(languages(json.as_bytes()), ["ru", "en", "-"]);
    let undeclared = r#"{"version": "https://jsonfeed.org/version/1", "title": "T", "items": [
        {"id": "1", "url": "https://t.example.org/1", "content_text": "x", "language": 7}]}"#;
    assert_eq!(languages(undeclared.as_bytes()), ["-"]);
}

/// A source's declared language is every entry's, whatever the feed says.
#[test]
fn a_declared_language_wins_over_the_feeds() {
    let (_, rss_2) = fixture!("rss-2.0.xml");
    let russian = Language::parse("ru").unwrap();
    let parsed = parse_feed(rss_2, None, RULES, now()).unwrap().in_language(russian);
    assert!(
        parsed
            .entries
            .iter()
            .flatten()
            .all(|article| article.language == Some(russian))
    );
    assert!(parsed.entries.iter().flatten().count() > 0);
}
