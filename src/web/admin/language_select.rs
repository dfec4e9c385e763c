//! The language select of the staff forms (an article's language, a
//! source's): the languages there are catalogues for, each under its own
//! name, and what a submitted value says.

use crate::i18n::Language;

/// The value of the select's "another or unknown language" option.
pub const UNKNOWN: &str = "unknown";

/// One option of the select.
pub struct LanguageOption {
    pub tag: &'static str,
    /// The language's own name (`Русский`), marked with its tag in the page.
    pub name: String,
    pub selected: bool,
}

/// An option per language, `chosen` selected.
pub fn options(chosen: Option<Language>) -> Vec<LanguageOption> {
    Language::all()
        .map(|language| LanguageOption {
            tag: language.tag(),
            name: language.own_name(),
            selected: Some(language) == chosen,
        })
        .collect()
}

/// What a submitted select said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chosen {
    /// The field was empty or not sent: the form's default applies.
    Nothing,
    /// "Another or unknown language".
    Unknown,
    Language(Language),
}

impl Chosen {
    /// The language it names, `default` when it names none.
    pub fn or(self, default: Option<Language>) -> Option<Language> {
        match self {
            Self::Nothing => default,
            Self::Unknown => None,
            Self::Language(language) => Some(language),
        }
    }
}

/// A value the select does not offer.
#[derive(Debug, thiserror::Error)]
#[error("“{0}” is not one of the languages offered")]
pub struct NotOffered(String);

/// A select's value: a language's tag exactly as the options write it,
/// [`UNKNOWN`], or nothing.
pub fn parse(raw: &str) -> Result<Chosen, NotOffered> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(Chosen::Nothing);
    }
    if raw == UNKNOWN {
        return Ok(Chosen::Unknown);
    }
    Language::all()
        .find(|language| language.tag() == raw)
        .map(Chosen::Language)
        .ok_or_else(|| NotOffered(raw.chars().take(40).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_offered_values_are_taken() {
        let russian = Language::parse("ru").unwrap();
        assert_eq!(parse("ru").unwrap(), Chosen::Language(russian));
        assert_eq!(parse(" en ").unwrap(), Chosen::Language(Language::ENGLISH));
        assert_eq!(parse("").unwrap(), Chosen::Nothing);
        assert_eq!(parse(UNKNOWN).unwrap(), Chosen::Unknown);
        for bad in ["ru-RU", "RU", "de", "<script>", "Unknown"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Chosen::Nothing.or(Some(russian)), Some(russian));
        assert_eq!(Chosen::Unknown.or(Some(russian)), None);
        assert_eq!(
            Chosen::Language(Language::ENGLISH).or(Some(russian)),
            Some(Language::ENGLISH)
        );
    }

    #[test]
    fn every_language_is_offered_once_under_its_own_name() {
        let russian = Language::parse("ru").unwrap();
        let offered = options(Some(russian));
        assert_eq!(offered.len(), Language::all().count());
        let selected: Vec<&str> = offered.iter().filter(|o| o.selected).map(|o| o.tag).collect();
        assert_eq!(selected, ["ru"]);
        assert!(offered.iter().any(|o| o.name == "Русский"));
        assert!(options(None).iter().all(|o| !o.selected));
    }
}
