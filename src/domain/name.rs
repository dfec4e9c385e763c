use std::fmt;

use unicode_segmentation::UnicodeSegmentation;

/// A reader's name as they gave it, safe to put in a mail header and a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("Please tell us your name.")]
    Empty,
    #[error("That name is too long: please use at most 100 characters.")]
    TooLong,
    #[error("The name contains invisible control characters (such as line breaks); please type it on one line.")]
    ControlCharacters,
}

const MAX_GRAPHEMES: usize = 100;

impl SubscriberName {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        // Line and paragraph separators count too: some mail software treats
        // them as line breaks, and a name ends up in the `To:` header.
        if name
            .chars()
            .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
        {
            return Err(NameError::ControlCharacters);
        }
        if name.graphemes(true).nth(MAX_GRAPHEMES).is_some() {
            return Err(NameError::TooLong);
        }
        Ok(Self(name.to_owned()))
    }

    /// A name the reader may leave out (the signup form's is optional):
    /// empty is no name; anything else must be a name [`Self::parse`] takes.
    pub fn parse_optional(raw: &str) -> Result<Self, NameError> {
        match raw.trim() {
            "" => Ok(Self(String::new())),
            _ => Self::parse(raw),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SubscriberName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for SubscriberName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn trims_and_keeps_unicode_names() {
        assert_eq!(
            SubscriberName::parse("  Ursula Le Guin ").unwrap().as_str(),
            "Ursula Le Guin"
        );
        assert!(SubscriberName::parse("Zoë Ødegård-Nguyễn").is_ok());
        assert!(SubscriberName::parse("李小龍").is_ok());
    }

    #[test]
    fn counts_graphemes_not_bytes() {
        // "é" written as e + combining accent is one grapheme but two chars.
        let hundred = "e\u{301}".repeat(100);
        assert!(SubscriberName::parse(&hundred).is_ok());
        assert_eq!(SubscriberName::parse(&format!("{hundred}x")), Err(NameError::TooLong));
        let family = "👨‍👩‍👧".repeat(100);
        assert!(SubscriberName::parse(&family).is_ok());
    }

    #[test]
    fn rejects_empty_and_control_characters() {
        assert_eq!(SubscriberName::parse(""), Err(NameError::Empty));
        assert_eq!(SubscriberName::parse(" \t "), Err(NameError::Empty));
        for bad in [
            "Eve\r\nBcc: victim@example.com",
            "Eve\nX",
            "Eve\u{0}",
            "Eve\u{7f}",
            "Eve\u{2028}x",
        ] {
            assert_eq!(SubscriberName::parse(bad), Err(NameError::ControlCharacters), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn accepted_names_have_no_control_characters(raw in "\\PC{0,120}|[a-z\\r\\n\\t ]{0,20}") {
            if let Ok(name) = SubscriberName::parse(&raw) {
                prop_assert!(!name.as_str().chars().any(char::is_control));
                prop_assert!(!name.as_str().is_empty());
                prop_assert!(name.as_str().graphemes(true).count() <= 100);
            }
        }
    }
}
