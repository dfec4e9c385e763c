//! Outgoing email: composing messages from templates, and the transports
//! that carry them (`.eml` files for the embedded default, or SMTP).

mod compose;
mod dkim;
mod smtp;
mod transport;

pub use compose::{ComposeError, Composed, Composer, OutgoingMessage, PreparedIssue};
pub use dkim::{DkimSigner, SIGNED_HEADERS as DKIM_SIGNED_HEADERS};
pub use transport::{Mailer, SendError, is_hard_bounce};
