//! The frame around every staff page.

use actix_session::Session;

use super::session::{self, Staff};
use crate::links::paths;

pub use crate::web::pages::html;

/// The frame of an admin page: the site's name, the staff member (empty on
/// the login page), the CSRF token for the logout button, a message left
/// by the previous action, and the section of the staff area the page is
/// in, whose navigation entry is marked as the current one.
pub struct Chrome {
    pub site: String,
    pub staff: String,
    pub csrf: String,
    pub flash: Option<String>,
    pub section: Option<Section>,
}

impl Chrome {
    pub fn new(site: &str, session: &Session, staff: Option<&Staff>) -> Self {
        Self {
            site: site.to_owned(),
            staff: staff.map(|s| s.email.clone()).unwrap_or_default(),
            csrf: session::csrf_token(session),
            flash: session::take_flash(session),
            section: None,
        }
    }

    /// The frame of a page in `section`.
    pub fn in_section(self, section: Section) -> Self {
        Self {
            section: Some(section),
            ..self
        }
    }

    /// The navigation's entries, in order; the page's own section is the
    /// one marked `aria-current="page"`.
    pub fn nav(&self) -> Vec<NavEntry> {
        Section::ALL
            .into_iter()
            .map(|section| NavEntry {
                href: section.path(),
                name: match section {
                    // The account's entry names whose account it is.
                    Section::Account => self.staff.clone(),
                    _ => section.name().to_owned(),
                },
                title: (section == Section::Account).then(|| section.name()),
                current: self.section == Some(section),
            })
            .collect()
    }
}

/// One entry of the staff area's navigation.
pub struct NavEntry {
    pub href: &'static str,
    pub name: String,
    pub title: Option<&'static str>,
    pub current: bool,
}

/// The parts of the staff area, one per navigation entry. A page deeper in
/// a part (an article's edit page, an issue's progress) is in its part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Dashboard,
    Articles,
    Sources,
    Issues,
    Subscribers,
    Inbound,
    Webhooks,
    ApiTokens,
    Account,
}

impl Section {
    const ALL: [Self; 9] = [
        Self::Dashboard,
        Self::Articles,
        Self::Sources,
        Self::Issues,
        Self::Subscribers,
        Self::Inbound,
        Self::Webhooks,
        Self::ApiTokens,
        Self::Account,
    ];

    fn path(self) -> &'static str {
        match self {
            Self::Dashboard => paths::ADMIN,
            Self::Articles => paths::ADMIN_ARTICLES,
            Self::Sources => paths::ADMIN_SOURCES,
            Self::Issues => paths::ADMIN_ISSUES,
            Self::Subscribers => paths::ADMIN_SUBSCRIBERS,
            Self::Inbound => paths::ADMIN_INBOUND,
            Self::Webhooks => paths::ADMIN_WEBHOOKS,
            Self::ApiTokens => paths::ADMIN_API_TOKENS,
            Self::Account => paths::ADMIN_ACCOUNT,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Dashboard => "Dashboard",
            Self::Articles => "Articles",
            Self::Sources => "Sources",
            Self::Issues => "Issues",
            Self::Subscribers => "Subscribers",
            Self::Inbound => "Inbound",
            Self::Webhooks => "Webhooks",
            Self::ApiTokens => "API tokens",
            Self::Account => "Your account",
        }
    }
}
