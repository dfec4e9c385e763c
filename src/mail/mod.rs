//! Outgoing email: composing messages from templates, and the transports
//! that carry them (`.eml` files for the embedded default, or SMTP relays).

mod compose;
mod dkim;
mod message;
mod relays;
mod smtp;
mod transport;
pub mod verp;

pub use compose::{ComposeError, Composed, Composer, PreparedIssue};
pub use dkim::{DkimSetupError, DkimSigner, KeyError, SIGNED_HEADERS as DKIM_SIGNED_HEADERS};
pub use message::{OutgoingMessage, Piece};
pub use smtp::SmtpSetupError;
pub use transport::{Mailer, MailerSetupError, SendError, is_hard_bounce};
