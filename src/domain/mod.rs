//! Parsed domain types. Raw input becomes one of these at the edge of the
//! system; code that holds one never needs to check it again.

mod article;
mod email;
mod name;
mod password;
mod status;
mod token;
mod week;

pub use article::{ArticleTitle, ArticleTitleError, ArticleUrl, ArticleUrlError, SummarySource};
pub use email::{AddressPolicy, EmailError, SubscriberEmail};
pub use name::{NameError, SubscriberName};
pub use password::{MIN_PASSWORD_CHARS, PasswordError, StaffPassword};
pub use status::{DeliveryStatus, FeedImportStatus, IssueState, IssueStatus, MailKind, SubscriberStatus};
pub use token::{Token, UnsubscribeToken};
pub use week::IssueWeek;
