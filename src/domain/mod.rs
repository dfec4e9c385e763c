//! Domain types. Raw input becomes one of the parsed ones (an address, a
//! name, a token, a week) at the edge of the system, and code that holds
//! one never needs to check it again; the others are what the roles pass
//! each other: an issue as rendered, what an import did.

// First: its `stored_as_text!` also serves the modules after it.
#[macro_use]
mod status;
mod api_token;
mod article;
mod article_import;
mod editor_note;
mod email;
mod issue;
mod name;
mod password;
mod search_key;
mod section;
mod token;
mod webhook;
mod week;

pub use api_token::{ApiScope, ApiToken, ApiTokenName, ApiTokenNameError};
pub use article::{ArticleTitle, ArticleTitleError, ArticleUrl, ArticleUrlError, SummarySource};
pub use article_import::{ImportReport, Rejection, Warning};
pub use editor_note::{EditorNote, EditorNoteError, MAX_NOTE_CHARS};
pub use email::{AddressPolicy, EmailError, SubscriberEmail};
pub use issue::{
    IssueCopy, LinkPlacesError, LinkedText, Marker, ReaderPlace, ReaderText, RenderedIssue, StoredPartError, WebIssue,
    html_escape,
};
pub use name::{NameError, SubscriberName};
pub use password::{MIN_PASSWORD_CHARS, PasswordError, StaffPassword};
pub use search_key::{SearchKey, fold_for_search};
pub use section::{MAX_SECTION_CHARS, SectionName, SectionNameError};
pub use status::{
    DeliveryStatus, FeedImportStatus, InboundKind, InboundSource, InboundStatus, IssueState, IssueStatus, MailKind,
    Standing, SubscriberStatus,
};
pub use token::{Token, UnsubscribeToken, lower_hex};
pub use webhook::{WebhookDeliveryStatus, WebhookEndpointStatus, WebhookEvent, WebhookOutcome, WebhookSecret};
pub use week::IssueWeek;
