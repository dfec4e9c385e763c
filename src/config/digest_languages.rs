//! `digest.languages`: which articles each language's digest holds. Every
//! rendering puts the articles in its own language first; this says
//! whether the others follow.

use std::fmt;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestLanguages {
    /// `"all"`: every article, those in the reader's language first.
    All,
    /// `"reader"`: only the articles in the reader's language and those
    /// of unknown language.
    Reader,
}

impl DigestLanguages {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "all" => Ok(Self::All),
            "reader" => Ok(Self::Reader),
            _ => Err(format!(
                "`{}` is not a choice here: \"all\" (every article, the reader's language first) or \
                 \"reader\" (only articles in the reader's language or of unknown language)",
                raw.escape_debug()
            )),
        }
    }
}

impl fmt::Display for DigestLanguages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::All => "all",
            Self::Reader => "reader",
        })
    }
}

impl<'de> Deserialize<'de> for DigestLanguages {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        DigestLanguages::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_and_reader_are_the_choices() {
        assert_eq!(DigestLanguages::parse("all"), Ok(DigestLanguages::All));
        assert_eq!(DigestLanguages::parse(" reader "), Ok(DigestLanguages::Reader));
        for bad in ["", "ALL", "readers", "ru", "reader, all"] {
            let error = DigestLanguages::parse(bad).unwrap_err();
            assert!(
                error.contains("\"all\"") && error.contains("\"reader\""),
                "{bad:?}: {error}"
            );
        }
        assert!(DigestLanguages::parse("mine").unwrap_err().starts_with("`mine` is not"));
        assert_eq!(DigestLanguages::Reader.to_string(), "reader");
    }
}
