//! Domain types. Raw input becomes one of the parsed ones (an address, a
//! name, a token, a week) at the edge of the system, and code that holds
//! one never needs to check it again; the others are what the roles pass
//! each other: an issue as rendered, what an import did.

mod article;
mod article_import;
mod email;
mod issue;
mod name;
mod password;
mod token;
mod week;

pub use article::{ArticleTitle, ArticleUrl, SummarySource};
pub use article_import::{ImportReport, Rejection};
pub use email::{AddressPolicy, EmailError, SubscriberEmail};
pub use issue::{IssueCopy, LinkPlacesError, LinkedText, RenderedIssue, StoredPartError};
pub use name::{NameError, SubscriberName};
pub use password::{MIN_PASSWORD_CHARS, StaffPassword};
pub use token::{Token, UnsubscribeToken};
pub use week::IssueWeek;

/// A reader's state in the subscription life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriberStatus {
    Pending,
    Confirmed,
    Unsubscribed,
    Bounced,
}

impl SubscriberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Unsubscribed => "unsubscribed",
            Self::Bounced => "bounced",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending" => Self::Pending,
            "confirmed" => Self::Confirmed,
            "unsubscribed" => Self::Unsubscribed,
            "bounced" => Self::Bounced,
            _ => return None,
        })
    }
}
