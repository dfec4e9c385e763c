//! Every string a reader sees, in their language: message catalogues in
//! Fluent's format (`templates/locales/{tag}.ftl`, English the source),
//! with each language's plural rules (Russian has one, few, many and
//! other). The build lists the catalogue files, so adding a language is
//! adding one file; nothing here names a language but English, the last
//! resort.
//!
//! A [`Language`] is parsed from outside text (a form field, a cookie, an
//! `Accept-Language` header, a setting, a stored row) and is always one
//! there is a catalogue for.

use std::fmt;
use std::sync::LazyLock;

use chrono::{Datelike, NaiveDate};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

include!(concat!(env!("OUT_DIR"), "/catalogues.rs"));

/// A language Gazette has a catalogue for.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Language(usize);

/// A value for a message's placeable (`{ $name }`).
#[derive(Debug, Clone)]
pub enum Arg<'a> {
    Text(&'a str),
    Number(i64),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(text: &'a str) -> Self {
        Arg::Text(text)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(text: &'a String) -> Self {
        Arg::Text(text)
    }
}

// Templates hand their fields over by reference.
impl<'a> From<&&'a str> for Arg<'a> {
    fn from(text: &&'a str) -> Self {
        Arg::Text(text)
    }
}

impl From<&u32> for Arg<'_> {
    fn from(n: &u32) -> Self {
        Arg::Number(i64::from(*n))
    }
}

impl From<&i64> for Arg<'_> {
    fn from(n: &i64) -> Self {
        Arg::Number(*n)
    }
}

impl From<i64> for Arg<'_> {
    fn from(n: i64) -> Self {
        Arg::Number(n)
    }
}

impl From<u32> for Arg<'_> {
    fn from(n: u32) -> Self {
        Arg::Number(i64::from(n))
    }
}

impl From<usize> for Arg<'_> {
    fn from(n: usize) -> Self {
        Arg::Number(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

/// The catalogues, parsed once. A catalogue that does not parse is a
/// defect of the build (the unit tests below read every one), so it stops
/// the process at first use rather than showing readers message ids.
static BUNDLES: LazyLock<Vec<FluentBundle<FluentResource>>> =
    LazyLock::new(|| CATALOGUES.iter().map(|(tag, text)| bundle(tag, text)).collect());

fn bundle(tag: &str, text: &str) -> FluentBundle<FluentResource> {
    let resource = FluentResource::try_new(text.to_owned())
        .unwrap_or_else(|(_, errors)| panic!("templates/locales/{tag}.ftl does not parse: {errors:?}"));
    let id = tag
        .parse()
        .unwrap_or_else(|e| panic!("templates/locales/{tag}.ftl: {tag} is not a language tag: {e}"));
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // No bidi isolation marks around placeables: every catalogue is
    // written left to right, and the marks would reach subject lines and
    // plain-text mail as invisible characters.
    bundle.set_use_isolating(false);
    bundle
        .add_resource(resource)
        .unwrap_or_else(|errors| panic!("templates/locales/{tag}.ftl: {errors:?}"));
    bundle
}

impl Language {
    /// The source catalogue, and the last resort.
    pub const ENGLISH: Language = Language(0);

    /// Every language there is a catalogue for, English first.
    pub fn all() -> impl Iterator<Item = Language> {
        (0..CATALOGUES.len()).map(Language)
    }

    /// A language tag (`ru`, `ru-RU`, `RU`, `en-GB`) by its primary
    /// subtag; `None` for a language without a catalogue or anything that
    /// is not a tag.
    pub fn parse(tag: &str) -> Option<Language> {
        let primary = tag.trim().split(['-', '_']).next()?;
        if primary.is_empty() || primary.len() > 8 || !primary.chars().all(|c| c.is_ascii_alphabetic()) {
            return None;
        }
        CATALOGUES
            .iter()
            .position(|(known, _)| known.eq_ignore_ascii_case(primary))
            .map(Language)
    }

    /// The best language an `Accept-Language` header (RFC 9110 §12.5.4)
    /// asks for among those there is a catalogue for: highest weight
    /// first, the header's order among equal weights; `q=0` refuses.
    pub fn from_accept_language(header: &str) -> Option<Language> {
        let mut wanted: Vec<(u16, usize, Language)> = header
            .split(',')
            .take(32)
            .enumerate()
            .filter_map(|(order, item)| {
                let mut parts = item.split(';');
                let language = Language::parse(parts.next()?)?;
                let weight = parts
                    .find_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                    .map_or(Some(1000), weight)?;
                (weight > 0).then_some((weight, order, language))
            })
            .collect();
        wanted.sort_by_key(|&(weight, order, _)| (std::cmp::Reverse(weight), order));
        wanted.first().map(|&(_, _, language)| language)
    }

    /// The tag it is stored and written under (`html lang`, the cookie).
    pub fn tag(self) -> &'static str {
        CATALOGUES[self.0].0
    }

    /// The language's own name, for the language switch.
    pub fn own_name(self) -> String {
        self.text("language-name")
    }

    /// Message `id` in this language.
    pub fn text(self, id: &str) -> String {
        self.text_with(id, &[])
    }

    /// Message `id` with one placeable filled in.
    pub fn text1<'a>(self, id: &str, name: &str, value: impl Into<Arg<'a>>) -> String {
        self.text_with(id, &[(name, value.into())])
    }

    /// Message `id` with its placeables filled in. A message missing from
    /// this catalogue comes from English (and is logged); one missing from
    /// English too shows its id.
    pub fn text_with(self, id: &str, args: &[(&str, Arg<'_>)]) -> String {
        let bundles = &*BUNDLES;
        let found = [self.0, Language::ENGLISH.0].into_iter().find_map(|index| {
            bundles[index]
                .get_message(id)
                .and_then(|m| m.value())
                .map(|p| (index, p))
        });
        let Some((index, pattern)) = found else {
            tracing::error!(message = id, "no catalogue has this message");
            return id.to_owned();
        };
        if index != self.0 {
            tracing::warn!(
                message = id,
                language = self.tag(),
                "message missing from the catalogue; English used"
            );
        }
        let mut fluent_args = FluentArgs::with_capacity(args.len());
        for (name, value) in args {
            let value = match value {
                Arg::Text(text) => FluentValue::from(*text),
                Arg::Number(n) => FluentValue::from(*n),
            };
            fluent_args.set(*name, value);
        }
        let mut errors = Vec::new();
        let text = bundles[index].format_pattern(pattern, Some(&fluent_args), &mut errors);
        if !errors.is_empty() {
            tracing::warn!(
                message = id,
                language = self.tag(),
                ?errors,
                "a message did not format cleanly"
            );
        }
        text.into_owned()
    }

    /// A date as the language writes it in running text: `30 November
    /// 2026`, `30 ноября 2026`.
    pub fn long_date(self, date: NaiveDate) -> String {
        let month = self.text(&format!("month-{}", date.month()));
        self.text_with(
            "date-long",
            &[
                ("day", Arg::Number(i64::from(date.day()))),
                ("month", Arg::Text(&month)),
                ("year", Arg::Number(i64::from(date.year()))),
            ],
        )
    }
}

/// The digest's greeting in one language, made once per issue and
/// language: the words for a reader whose name is not known
/// (`digest-greeting`), and the words around a known name
/// (`digest-greeting-named`), so a reader's greeting is joined, not
/// formatted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    nameless: String,
    before_name: String,
    after_name: String,
}

impl Greeting {
    /// The greeting for a reader called `name` (empty: no name known).
    pub fn for_name(&self, name: &str) -> String {
        let name = name.trim();
        if name.is_empty() {
            return self.nameless.clone();
        }
        [self.before_name.as_str(), name, self.after_name.as_str()].concat()
    }

    /// The greeting for a reader whose name is not known.
    pub fn nameless(&self) -> &str {
        &self.nameless
    }
}

impl Language {
    /// This language's [`Greeting`].
    pub fn greeting(self) -> Greeting {
        // Stands for the name while the message is formatted: a character
        // no catalogue writes, so the text splits around it exactly.
        const NAME: &str = "\u{FFFF}";
        let named = self.text1("digest-greeting-named", "name", NAME);
        let (before_name, after_name) = match named.split_once(NAME) {
            Some((before, after)) => (before.to_owned(), after.to_owned()),
            // A translation that leaves the name out greets everyone alike.
            None => (named, String::new()),
        };
        Greeting {
            nameless: self.text("digest-greeting"),
            before_name,
            after_name,
        }
    }
}

/// A setting's value (`site.default_language`): refused, naming the
/// catalogues there are, when there is no catalogue for it.
impl<'de> serde::Deserialize<'de> for Language {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Language::parse(&raw).ok_or_else(|| {
            let known: Vec<&str> = CATALOGUES.iter().map(|(tag, _)| *tag).collect();
            serde::de::Error::custom(format!(
                "{raw:?} is not a language Gazette has a catalogue for ({})",
                known.join(", ")
            ))
        })
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

impl fmt::Debug for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Language({})", self.tag())
    }
}

/// `q=0.8` as thousandths; `None` for a weight RFC 9110 does not allow.
fn weight(raw: &str) -> Option<u16> {
    let raw = raw.trim();
    let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
    if fraction.len() > 3 || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use fluent_bundle::FluentResource;
    use fluent_syntax::ast::Entry;

    use super::*;

    fn message_ids(text: &str) -> BTreeSet<String> {
        let resource = FluentResource::try_new(text.to_owned()).expect("the catalogue parses");
        resource
            .entries()
            .filter_map(|entry| match entry {
                Entry::Message(message) => Some(message.id.name.to_owned()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_greeting_names_the_reader_where_the_name_is_known_in_each_language() {
        let english = Language::ENGLISH.greeting();
        assert_eq!(english.for_name("Ada Lovelace"), "Dear Ada Lovelace,");
        assert_eq!(english.for_name("  "), "Dear reader,");
        assert_eq!(english.nameless(), "Dear reader,");
        let russian = Language::parse("ru").unwrap().greeting();
        assert_eq!(russian.for_name("Мария"), "Здравствуйте, Мария!");
        assert_eq!(russian.for_name(""), "Здравствуйте!");
        // A name is text, not a message: nothing in it is formatted.
        assert_eq!(english.for_name("{ $name }"), "Dear { $name },");
    }

    #[test]
    fn every_catalogue_parses_and_has_exactly_the_source_catalogues_messages() {
        let source = message_ids(CATALOGUES[0].1);
        assert!(source.contains("language-name"));
        for (tag, text) in CATALOGUES {
            let ids = message_ids(text);
            let missing: Vec<_> = source.difference(&ids).collect();
            let extra: Vec<_> = ids.difference(&source).collect();
            assert!(missing.is_empty(), "{tag}.ftl lacks {missing:?}");
            assert!(extra.is_empty(), "{tag}.ftl has messages English lacks: {extra:?}");
        }
    }

    /// The names after every `$` in a catalogue.
    fn placeables(text: &str) -> BTreeSet<String> {
        text.split('$')
            .skip(1)
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                    .collect::<String>()
            })
            .filter(|name| !name.is_empty())
            .collect()
    }

    #[test]
    fn every_message_formats_without_errors_in_every_language() {
        for language in Language::all() {
            let bundle = &BUNDLES[language.0];
            for id in message_ids(CATALOGUES[language.0].1) {
                let message = bundle.get_message(&id).unwrap();
                let Some(pattern) = message.value() else { continue };
                // Every placeable the catalogue names: numbers where a
                // count, a day or a year goes, text elsewhere.
                let mut args = FluentArgs::new();
                for name in placeables(CATALOGUES[language.0].1) {
                    match name.as_str() {
                        "count" | "day" | "year" => args.set(name, FluentValue::from(3)),
                        _ => args.set(name, FluentValue::from("x")),
                    }
                }
                let mut errors = Vec::new();
                bundle.format_pattern(pattern, Some(&args), &mut errors);
                assert!(errors.is_empty(), "{language}: {id}: {errors:?}");
            }
        }
    }

    #[test]
    fn tags_parse_by_their_primary_subtag() {
        assert_eq!(Language::parse("en"), Some(Language::ENGLISH));
        assert_eq!(Language::parse("EN-gb"), Some(Language::ENGLISH));
        let russian = Language::parse("ru-RU").expect("a Russian catalogue");
        assert_eq!(russian.tag(), "ru");
        assert_eq!(Language::parse("ru_RU"), Some(russian));
        for junk in ["", "-", "x\u{1b}", "de", "русский", "en<script>", "aaaaaaaaa"] {
            assert_eq!(Language::parse(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn accept_language_picks_the_heaviest_known_language() {
        let russian = Language::parse("ru").unwrap();
        let pick = Language::from_accept_language;
        assert_eq!(pick("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7"), Some(russian));
        assert_eq!(pick("de-DE, en;q=0.5, ru;q=0.8"), Some(russian));
        assert_eq!(
            pick("en;q=0.5, ru;q=0.5"),
            Some(Language::ENGLISH),
            "the header's order among equals"
        );
        assert_eq!(pick("ru;q=0, en;q=0.1"), Some(Language::ENGLISH));
        assert_eq!(pick("ru;q=0"), None);
        assert_eq!(pick("de, fr"), None);
        assert_eq!(pick("*"), None);
        assert_eq!(pick("ru;q=2"), None, "a weight above 1 is not a weight");
        assert_eq!(pick(""), None);
    }

    #[test]
    fn russian_counts_use_russian_plural_forms() {
        let russian = Language::parse("ru").unwrap();
        let articles = |n: i64| russian.text1("article-count", "count", n);
        assert_eq!(articles(1), "1 статья");
        assert_eq!(articles(3), "3 статьи");
        assert_eq!(articles(5), "5 статей");
        assert_eq!(articles(21), "21 статья");
        assert_eq!(articles(12), "12 статей");
        assert_eq!(Language::ENGLISH.text1("article-count", "count", 1_i64), "1 article");
        assert_eq!(Language::ENGLISH.text1("article-count", "count", 5_i64), "5 articles");
    }

    #[test]
    fn dates_are_written_with_the_languages_month_names() {
        let date = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        assert_eq!(Language::ENGLISH.long_date(date), "30 November 2026");
        assert_eq!(Language::parse("ru").unwrap().long_date(date), "30 ноября 2026");
    }

    #[test]
    fn a_missing_message_falls_back_to_english_then_its_id() {
        assert_eq!(Language::ENGLISH.text("no-such-message"), "no-such-message");
    }
}
