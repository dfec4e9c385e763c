use std::fmt;

/// An article's canonical address: an absolute http(s) URL without a
/// fragment, so two links to one article compare equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArticleUrl(String);

/// Why a link is not an article's address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArticleUrlError {
    #[error("`{raw}` is not a URL: {error}")]
    NotAUrl { raw: String, error: url::ParseError },
    #[error("`{0}` is not an http(s) address")]
    NotHttp(String),
}

impl ArticleUrl {
    pub fn parse(raw: &str) -> Result<Self, ArticleUrlError> {
        let raw = raw.trim();
        let mut url = url::Url::parse(raw).map_err(|error| ArticleUrlError::NotAUrl {
            raw: raw.to_owned(),
            error,
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ArticleUrlError::NotHttp(raw.to_owned()));
        }
        url.set_fragment(None);
        Ok(Self(url.to_string()))
    }

    /// Resolves a link found in a feed against the feed's base address.
    pub fn resolve(base: Option<&url::Url>, raw: &str) -> Result<Self, ArticleUrlError> {
        match base.map(|b| b.join(raw.trim())) {
            Some(Ok(url)) => Self::parse(url.as_str()),
            _ => Self::parse(raw),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ArticleUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A headline: one line of text, not empty, at most 300 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArticleTitle(String);

/// Why a text is not a headline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArticleTitleError {
    #[error("the title is empty")]
    Empty,
    #[error("the title contains control characters")]
    ControlCharacters,
    #[error("the title is longer than 300 characters ({0})")]
    TooLong(usize),
}

impl ArticleTitle {
    pub fn parse(raw: &str) -> Result<Self, ArticleTitleError> {
        let title = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if title.is_empty() {
            return Err(ArticleTitleError::Empty);
        }
        if title.chars().any(char::is_control) {
            return Err(ArticleTitleError::ControlCharacters);
        }
        let length = title.chars().count();
        if length > 300 {
            return Err(ArticleTitleError::TooLong(length));
        }
        Ok(Self(title))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where an article's summary came from, in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummarySource {
    Staff,
    Feed,
    Generated,
}

impl SummarySource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staff => "staff",
            Self::Feed => "feed",
            Self::Generated => "generated",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_absolute_http_without_fragments() {
        assert_eq!(
            ArticleUrl::parse(" https://example.org/a#top ").unwrap().as_str(),
            "https://example.org/a"
        );
        for bad in [
            "",
            "example.org/a",
            "ftp://example.org/a",
            "javascript:alert(1)",
            "https://",
        ] {
            assert!(ArticleUrl::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn relative_links_resolve_against_the_feed() {
        let base = url::Url::parse("https://news.example.org/feed.xml").unwrap();
        assert_eq!(
            ArticleUrl::resolve(Some(&base), "/2026/11/story").unwrap().as_str(),
            "https://news.example.org/2026/11/story"
        );
        assert!(ArticleUrl::resolve(None, "/2026/11/story").is_err());
    }

    #[test]
    fn titles_are_one_line_of_reasonable_length() {
        assert_eq!(
            ArticleTitle::parse("  Floods\n in  the north ").unwrap().as_str(),
            "Floods in the north"
        );
        assert!(ArticleTitle::parse("   ").is_err());
        assert!(ArticleTitle::parse(&"x".repeat(301)).is_err());
        assert!(ArticleTitle::parse("bell\u{7}").is_err());
    }
}
