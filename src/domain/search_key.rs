//! Text as the staff's searches compare it. The database's own case
//! folding is ASCII-only in SQLite (and depends on the locale in
//! PostgreSQL), so a search for "казахстан" found nothing in
//! "КАЗАХСТАН". Folding happens here instead, once, in Rust: each row's
//! searchable text is stored folded (its [`SearchKey`]) by every write
//! that changes it, a query is folded the same way, and the database only
//! looks for one inside the other, which works alike on both backends.
//!
//! The rules, so that what a person types finds what they mean:
//! - case: Unicode lowercase, plus the full case folds lowercase lacks:
//!   German ß and ẞ are "ss" ("straße" ≡ "STRASSE"), Greek final ς is σ;
//! - compatibility forms are their plain letters (ligatures such as "ﬁ",
//!   full-width "Ａ", a non-breaking space);
//! - Turkish: İ (dotted capital) is i, and so is ı (dotless small): a
//!   search cannot tell Turkish text from other text, and "ISTANBUL",
//!   "İstanbul", "istanbul" and "ıstanbul" are all written for one city.
//!   The price is that Turkish words differing only by ı/i match each other;
//! - accents come off Latin and Greek letters ("José" ≡ "jose", "Ελλάδα" ≡
//!   "ελλαδα"), as do ø, ł and đ; æ and œ are "ae" and "oe". Other scripts
//!   keep their marks, which there often make another letter (Cyrillic й is
//!   not и, Devanagari vowel signs are letters), except Russian ё, which is
//!   е: Russian print mostly writes е for it;
//! - invisible characters (soft hyphen, zero-width space) are dropped, and
//!   runs of whitespace are one space.
//!
//! A change to these rules makes the stored keys stale: the release that
//! changes them also empties the column (a migration setting it to NULL),
//! and `gazette migrate` fills it in again (`db::search_keys::backfill`).

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// `text` folded by the rules above: what a search key holds, and what a
/// query is turned into before it is looked for in one.
pub fn fold_for_search(text: &str) -> String {
    let decomposed = text
        .nfkd()
        // Uppercase, then lowercase: Unicode's full case folding, nearly.
        // It makes ß "ss", final ς σ, ı i, and variant lowercase letters
        // (Cyrillic ᲀ, Greek iota subscript) their plain ones.
        .flat_map(char::to_uppercase)
        .flat_map(char::to_lowercase)
        .flat_map(fold_letter)
        // What the folds above made may decompose in turn.
        .nfkd();
    let mut kept = String::with_capacity(text.len());
    // The letter the marks that follow belong to.
    let mut base = ' ';
    for c in decomposed {
        if is_combining_mark(c) {
            if sheds_marks(base) || (base == 'е' && c == '\u{308}') {
                continue;
            }
        } else if is_invisible(c) {
            continue;
        } else {
            base = c;
        }
        kept.push(c);
    }
    let composed: String = kept.nfc().collect();
    composed.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What case folding leaves for a lowercase letter: ß from a capital ẞ
/// (which lowercases to it, while ß uppercases to "SS"), and the Latin
/// letters whose stroke or ligature is no combining mark.
fn fold_letter(c: char) -> impl Iterator<Item = char> {
    let (first, second) = match c {
        'ß' => ('s', Some('s')),
        'æ' => ('a', Some('e')),
        'œ' => ('o', Some('e')),
        'ø' => ('o', None),
        'ł' => ('l', None),
        'đ' => ('d', None),
        other => (other, None),
    };
    std::iter::once(first).chain(second)
}

/// Whether accents on `base` are dropped: a Latin or Greek letter's.
fn sheds_marks(base: char) -> bool {
    matches!(base,
        'a'..='z'
        | '\u{00C0}'..='\u{024F}' // Latin-1 letters, Latin Extended-A and -B
        | '\u{0250}'..='\u{02AF}' // IPA
        | '\u{1D00}'..='\u{1DBF}' // phonetic extensions
        | '\u{1E00}'..='\u{1EFF}' // Latin Extended Additional (Vietnamese)
        | '\u{2C60}'..='\u{2C7F}' // Latin Extended-C
        | '\u{A720}'..='\u{A7FF}' // Latin Extended-D
        | '\u{AB30}'..='\u{AB6F}' // Latin Extended-E
        | '\u{0370}'..='\u{03FF}' // Greek
        | '\u{1F00}'..='\u{1FFF}' // Greek Extended (polytonic)
    )
}

/// Characters that show nothing but split a word for a substring search:
/// a soft hyphen inside a headline's word, a zero-width space, a word
/// joiner, a byte-order mark.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{AD}' | '\u{200B}' | '\u{2060}' | '\u{FEFF}')
}

/// A row's searchable text, folded ([`fold_for_search`]), each field on a
/// line of its own: a folded query never holds a line break (whitespace
/// is one space), so it cannot match across two fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchKey(String);

impl SearchKey {
    /// A reader's: their address and their name.
    pub fn of_reader(email: &str, name: &str) -> Self {
        Self::of(&[email, name])
    }

    /// An erased reader's: nothing (they are never listed again).
    pub fn of_erased_reader() -> Self {
        Self(String::new())
    }

    /// An article's: its title. Its address is searched as it is stored,
    /// always ASCII (`ArticleUrl`), so lowercase is its whole folding.
    pub fn of_article(title: &str) -> Self {
        Self::of(&[title])
    }

    fn of(fields: &[&str]) -> Self {
        let folded: Vec<String> = fields.iter().map(|field| fold_for_search(field)).collect();
        Self(folded.join("\n"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl AsRef<str> for SearchKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Whether a search for `query` finds `text`.
    fn finds(query: &str, text: &str) -> bool {
        SearchKey::of_article(text).as_str().contains(&fold_for_search(query))
    }

    #[test]
    fn cyrillic_folds_case() {
        for text in ["КАЗАХСТАН", "казахстан", "Казахстан"] {
            assert!(finds("Казахстан", text), "{text}");
            assert!(finds("казахстан", text), "{text}");
        }
        assert!(finds("мария", "Мария Ивановна"));
        assert!(finds("МАРИЯ", "мария"));
        assert_eq!(fold_for_search("ЎЗБЕКИСТОН"), "ўзбекистон");
    }

    #[test]
    fn cyrillic_keeps_short_i_and_folds_yo() {
        assert!(!finds("мои", "мой"), "й is its own letter");
        assert!(finds("мой", "МОЙ"));
        assert!(finds("елка", "Ёлка") && finds("ёлка", "елка"));
        assert_eq!(fold_for_search("Ёлка"), "елка");
    }

    #[test]
    fn turkish_dotted_and_dotless_i_are_i() {
        for text in ["İstanbul", "ISTANBUL", "istanbul", "ıstanbul", "İSTANBUL"] {
            assert_eq!(fold_for_search(text), "istanbul", "{text}");
        }
        // The combining dot of a decomposed İ goes too.
        assert_eq!(fold_for_search("I\u{307}zmir"), "izmir");
        assert!(finds("DİYARBAKIR", "Diyarbakır"));
    }

    #[test]
    fn german_sharp_s_is_ss() {
        for text in ["Straße", "STRASSE", "strasse", "STRAẞE"] {
            assert_eq!(fold_for_search(text), "strasse", "{text}");
        }
        assert!(finds("straße", "Hauptstrasse"));
    }

    #[test]
    fn latin_and_greek_accents_come_off() {
        assert_eq!(fold_for_search("José"), "jose");
        assert_eq!(fold_for_search("JOSÉ"), "jose");
        // A decomposed é (e + combining acute) is the same.
        assert_eq!(fold_for_search("Jose\u{301}"), "jose");
        assert_eq!(fold_for_search("Ærøskøbing Łódź Đặng"), "aeroskobing lodz dang");
        assert_eq!(
            fold_for_search("Nguyễn Çelik Ångström Œuvre"),
            "nguyen celik angstrom oeuvre"
        );
        assert_eq!(fold_for_search("Ελλάδα ΟΔΟΣ"), "ελλαδα οδοσ");
        assert!(finds("οδος", "Η οδός"), "final sigma");
    }

    #[test]
    fn other_scripts_keep_their_marks() {
        assert_eq!(fold_for_search("हिंदी"), "हिंदी");
        assert_eq!(fold_for_search("한국어"), "한국어");
        assert_eq!(fold_for_search("東京"), "東京");
    }

    #[test]
    fn compatibility_forms_invisibles_and_whitespace() {
        assert_eq!(fold_for_search("ﬁnance ＡＢＣ"), "finance abc");
        assert_eq!(fold_for_search("  Ada \t\u{a0} Lovelace \n"), "ada lovelace");
        assert_eq!(
            fold_for_search("Wahl\u{ad}kampf zero\u{200b}width"),
            "wahlkampf zerowidth"
        );
        assert_eq!(fold_for_search(""), "");
        assert_eq!(fold_for_search(" \u{3000} "), "");
    }

    #[test]
    fn wildcard_characters_are_kept_as_they_are() {
        assert_eq!(fold_for_search("50%_off\\"), "50%_off\\");
    }

    #[test]
    fn a_readers_key_holds_address_and_name_on_two_lines() {
        assert_eq!(
            SearchKey::of_reader("Maria.Ivanova@Example.COM", "Мария  Иванова").as_str(),
            "maria.ivanova@example.com\nмария иванова"
        );
        assert_eq!(
            SearchKey::of_reader("ada@example.com", "").as_str(),
            "ada@example.com\n"
        );
        assert_eq!(SearchKey::of_erased_reader().as_str(), "");
        // No query spans the two fields.
        let key = SearchKey::of_reader("ada@example.com", "Lovelace");
        assert!(!key.as_str().contains(&fold_for_search("com lovelace")));
    }

    proptest! {
        #[test]
        fn folding_twice_is_folding_once(text in "\\PC{0,40}") {
            let once = fold_for_search(&text);
            prop_assert_eq!(fold_for_search(&once), once.clone());
            prop_assert!(!once.contains('\n'));
        }

        #[test]
        fn a_text_always_finds_itself_in_any_case(text in "\\PC{1,30}") {
            let key = SearchKey::of_article(&text);
            prop_assert!(key.as_str().contains(&fold_for_search(&text)));
            prop_assert!(key.as_str().contains(&fold_for_search(&text.to_uppercase())));
            prop_assert!(key.as_str().contains(&fold_for_search(&text.to_lowercase())));
        }
    }
}
