/// The name of a digest section ("World", "Business"), as staff write it:
/// one line, trimmed, at most [`MAX_SECTION_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionName(String);

pub const MAX_SECTION_CHARS: usize = 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SectionNameError {
    #[error("A section name is at most {MAX_SECTION_CHARS} characters; “{0}…” is longer.")]
    TooLong(String),
    #[error("A section name is one line without control characters.")]
    ControlCharacters,
}

impl SectionName {
    /// `None` for an empty name: no section.
    pub fn parse(raw: &str) -> Result<Option<Self>, SectionNameError> {
        let name = raw.trim();
        if name
            .chars()
            .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
        {
            return Err(SectionNameError::ControlCharacters);
        }
        if name.chars().count() > MAX_SECTION_CHARS {
            return Err(SectionNameError::TooLong(name.chars().take(20).collect()));
        }
        Ok((!name.is_empty()).then(|| Self(name.split_whitespace().collect::<Vec<_>>().join(" "))))
    }

    /// Names separated by commas or lines, each parsed, duplicates (in any
    /// case) dropped.
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, SectionNameError> {
        let mut names: Vec<Self> = Vec::new();
        for part in raw.split([',', '\n']) {
            if let Some(name) = Self::parse(part.trim_end_matches('\r'))?
                && !names.iter().any(|n| n.0.to_lowercase() == name.0.to_lowercase())
            {
                names.push(name);
            }
        }
        Ok(names)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_trimmed_line_and_lists_drop_repeats() {
        assert_eq!(
            SectionName::parse("  World   news ").unwrap().unwrap().as_str(),
            "World news"
        );
        assert_eq!(SectionName::parse("  ").unwrap(), None);
        assert!(SectionName::parse("a\u{7}").is_err());
        assert!(SectionName::parse(&"x".repeat(61)).is_err());
        let list = SectionName::parse_list("World, Business\r\nworld\n\nМир").unwrap();
        let names: Vec<&str> = list.iter().map(SectionName::as_str).collect();
        assert_eq!(names, ["World", "Business", "Мир"]);
    }
}
