//! Property tests over the parsers that take input from outside: readers'
//! addresses and names, imported feeds and plain-text articles, and the
//! summary segmenter. None may panic, whatever it is given; what they
//! accept keeps its promises. Case counts are kept small enough for CI
//! (`PROPTEST_CASES=5000 cargo test --test robustness` runs longer).

use gazette::digest::feed::{FeedRules, parse_feed, parse_plain_text};
use gazette::digest::html_text::html_to_text;
use gazette::digest::summary::{lead_summary, sentences};
use gazette::domain::{ArticleUrl, SubscriberEmail, SubscriberName};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(128),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text with the characters that break parsers: markup, entities, quotes,
/// line breaks, NUL and other controls, bidi overrides, astral characters.
fn nasty_text(max: usize) -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        any::<char>().prop_map(String::from),
        Just("<".to_owned()),
        Just(">".to_owned()),
        Just("&amp;".to_owned()),
        Just("&#0;".to_owned()),
        Just("&bogus;".to_owned()),
        Just("]]>".to_owned()),
        Just("<![CDATA[".to_owned()),
        Just("\r\n".to_owned()),
        Just("\0".to_owned()),
        Just("\u{202e}".to_owned()),
        Just("Dr. ".to_owned()),
        Just("U.S. ".to_owned()),
        Just(". ".to_owned()),
        Just("…".to_owned()),
        Just("<script>alert(1)</script>".to_owned()),
        Just("<p>".to_owned()),
        Just("' OR 1=1--".to_owned()),
        "[a-zA-Z ]{1,12}",
    ];
    prop::collection::vec(pieces, 0..max).prop_map(|v| v.concat())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn emails_never_panic_and_what_parses_is_one_clean_line(raw in nasty_text(40)) {
        if let Ok(email) = SubscriberEmail::parse(&raw, Default::default()) {
            prop_assert!(!email.as_str().contains(|c: char| c.is_control() || c.is_whitespace()));
            prop_assert!(email.as_str().len() <= 254);
        }
    }

    #[test]
    fn names_never_panic_and_what_parses_has_no_line_break(raw in nasty_text(40)) {
        if let Ok(name) = SubscriberName::parse(&raw) {
            prop_assert!(!name.as_str().contains(['\r', '\n', '\0']));
        }
    }

    #[test]
    fn sentences_and_summaries_never_panic_and_summaries_fit(text in nasty_text(80), max in 1usize..500) {
        let _ = sentences(&text);
        let summary = lead_summary(&text, max);
        prop_assert!(summary.chars().count() <= max, "{} > {max}", summary.chars().count());
    }

    #[test]
    fn html_to_text_never_panics(html in nasty_text(60)) {
        let text = html_to_text(&html);
        if !html.contains(['<', '&']) {
            prop_assert_eq!(text, html.trim());
        }
    }

    #[test]
    fn arbitrary_bytes_are_never_a_panic_as_a_feed(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_feed(&bytes, None, FeedRules { summary_max: 300, max_body_bytes: 1 << 20 }, chrono::Utc::now());
    }

    #[test]
    fn generated_rss_feeds_import_within_their_promises(
        entries in prop::collection::vec((nasty_text(12), nasty_text(30), "[a-z/.:]{0,30}", any::<bool>()), 0..6),
        summary_max in 40usize..400,
    ) {
        let mut xml = String::from(r#"<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>https://feed.example/</link>"#);
        for (title, body, link, cdata) in &entries {
            let body = if *cdata { format!("<![CDATA[{}]]>", body.replace("]]>", "")) } else { xml_escape(body) };
            xml.push_str(&format!(
                "<item><title>{}</title><link>{}</link><description>{body}</description></item>",
                xml_escape(title),
                xml_escape(link)
            ));
        }
        xml.push_str("</channel></rss>");
        let base = url::Url::parse("https://feed.example/").unwrap();
        let rules = FeedRules { summary_max, max_body_bytes: 1 << 20 };
        if let Ok(parsed) = parse_feed(xml.as_bytes(), Some(&base), rules, chrono::Utc::now()) {
            prop_assert!(parsed.entries.len() <= entries.len());
            for article in parsed.entries.into_iter().flatten() {
                prop_assert!(article.summary.chars().count() <= summary_max);
                prop_assert!(!article.title.as_str().contains(['\r', '\n']));
                let url = article.url.as_str();
                prop_assert!(url.starts_with("http://") || url.starts_with("https://"), "{}", url);
            }
        }
    }

    #[test]
    fn plain_text_articles_never_panic_and_summaries_fit(text in nasty_text(60), summary_max in 40usize..400) {
        let url = ArticleUrl::parse("https://news.example/a").unwrap();
        if let Ok(article) = parse_plain_text(&text, url, None, None, summary_max) {
            prop_assert!(article.summary.chars().count() <= summary_max);
            prop_assert!(!article.body.trim().is_empty());
        }
    }
}
