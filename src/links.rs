//! Every address Gazette prints: the absolute URLs that go into mail, feeds
//! and pages (built on `server.base_url`), and the site paths the staff
//! area redirects to. Nothing else writes a route path by hand, so a route
//! that moves changes here and in the route table, nowhere else.

use uuid::Uuid;

use crate::config::BaseUrl;
use crate::domain::{IssueWeek, UnsubscribeToken};

/// The public site's absolute URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    base: BaseUrl,
}

impl Links {
    pub fn new(base: BaseUrl) -> Self {
        Self { base }
    }

    /// The site's home page (the signup form), without a trailing slash.
    pub fn home(&self) -> &str {
        self.base.as_str()
    }

    /// The page a new reader confirms their subscription on. Confirmation
    /// tokens are URL-safe base64, so they go in as they are.
    pub fn confirm(&self, token: &str) -> String {
        format!("{}/subscriptions/confirm?token={token}", self.base)
    }

    /// A reader's own unsubscribe page (and RFC 8058 one-click target).
    pub fn unsubscribe(&self, token: &UnsubscribeToken) -> String {
        format!("{}{}?token={}", self.base, paths::UNSUBSCRIBE, token.as_string())
    }

    /// A reader's unsubscribe link in their copy of the issue of `week`:
    /// the issue is named so the reader's history (and the issue's
    /// figures) can say which issue they left from. It names nothing
    /// secret; the token alone decides whose link it is.
    pub fn unsubscribe_from(&self, token: &UnsubscribeToken, week: IssueWeek) -> String {
        format!(
            "{}{}?token={}&issue={week}",
            self.base,
            paths::UNSUBSCRIBE,
            token.as_string()
        )
    }

    /// A reader's own preferences page: the same secret as their
    /// unsubscribe link, which already lets its holder leave.
    pub fn preferences(&self, token: &UnsubscribeToken) -> String {
        format!("{}{}?token={}", self.base, paths::PREFERENCES, token.as_string())
    }

    /// The page a reader confirms a new address on, mailed to that
    /// address. The token is a confirmation token (URL-safe base64).
    pub fn confirm_address(&self, token: &str) -> String {
        format!("{}{}?token={token}", self.base, paths::PREFERENCES_ADDRESS)
    }

    /// Where a staff test copy's own links lead: a page that says it was
    /// a test, and belongs to no reader.
    pub fn test_send(&self) -> String {
        format!("{}{}", self.base, paths::TEST_SEND)
    }

    pub fn archive(&self) -> String {
        format!("{}{}", self.base, paths::ARCHIVE)
    }

    pub fn archive_issue(&self, week: IssueWeek) -> String {
        format!("{}{}", self.base, paths::archive_issue(week))
    }

    pub fn archive_feed(&self) -> String {
        format!("{}{}", self.base, paths::ARCHIVE_FEED)
    }

    /// A story link of `week`'s issue that counts its clicks (`position`
    /// numbers the issue's story links from 1): the same for every reader.
    pub fn counted_click(&self, week: IssueWeek, position: usize) -> String {
        format!("{}{}/{week}/{position}", self.base, paths::CLICK)
    }
}

/// Paths within the site, for redirects and for links between pages.
pub mod paths {
    use super::*;

    pub const HOME: &str = "/";
    pub const UNSUBSCRIBE: &str = "/unsubscribe";
    pub const PREFERENCES: &str = "/preferences";
    pub const PREFERENCES_ADDRESS: &str = "/preferences/address";
    pub const TEST_SEND: &str = "/test-send";
    pub const ARCHIVE: &str = "/archive";
    pub const ARCHIVE_FEED: &str = "/archive/feed.xml";
    /// Counted story links: `/c/{week}/{position}`.
    pub const CLICK: &str = "/c";
    pub const ADMIN: &str = "/admin";
    pub const ADMIN_LOGIN: &str = "/admin/login";
    pub const ADMIN_ACCOUNT: &str = "/admin/account";
    pub const ADMIN_ARTICLES: &str = "/admin/articles";
    pub const ADMIN_ISSUES: &str = "/admin/issues";
    pub const ADMIN_SOURCES: &str = "/admin/sources";
    pub const ADMIN_SUBSCRIBERS: &str = "/admin/subscribers";
    pub const ADMIN_INBOUND: &str = "/admin/inbound";
    pub const ADMIN_WEBHOOKS: &str = "/admin/webhooks";
    pub const ADMIN_API_TOKENS: &str = "/admin/api-tokens";

    pub fn archive_issue(week: IssueWeek) -> String {
        format!("{ARCHIVE}/{week}")
    }

    pub fn admin_issue(week: IssueWeek) -> String {
        format!("{ADMIN_ISSUES}/{week}")
    }

    pub fn admin_article(id: Uuid) -> String {
        format!("{ADMIN_ARTICLES}/{id}")
    }

    pub fn admin_article_import(id: Uuid) -> String {
        format!("{ADMIN_ARTICLES}/imports/{id}")
    }

    pub fn admin_subscriber(id: Uuid) -> String {
        format!("{ADMIN_SUBSCRIBERS}/{id}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_the_base_url_and_the_route() {
        let links = Links::new(BaseUrl::parse("https://news.example.org/").unwrap());
        let week = IssueWeek::parse("2026-W48").unwrap();
        assert_eq!(links.home(), "https://news.example.org");
        assert_eq!(
            links.confirm("abc_-1"),
            "https://news.example.org/subscriptions/confirm?token=abc_-1"
        );
        assert_eq!(links.archive_issue(week), "https://news.example.org/archive/2026-W48");
        assert_eq!(links.archive_feed(), "https://news.example.org/archive/feed.xml");
        let token = UnsubscribeToken::generate(Uuid::nil());
        assert_eq!(
            links.unsubscribe(&token),
            format!("https://news.example.org/unsubscribe?token={}", token.as_string())
        );
        assert_eq!(
            links.preferences(&token),
            format!("https://news.example.org/preferences?token={}", token.as_string())
        );
        assert_eq!(
            links.confirm_address("abc_-1"),
            "https://news.example.org/preferences/address?token=abc_-1"
        );
        assert_eq!(links.test_send(), "https://news.example.org/test-send");
        assert_eq!(paths::admin_issue(week), "/admin/issues/2026-W48");
    }
}
