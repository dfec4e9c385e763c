//! Outgoing email: composing messages from templates, and the transports
//! that carry them (`.eml` files for the embedded default, or SMTP).

mod compose;
mod smtp;
mod transport;

pub use compose::{ComposeError, Composed, Composer, IssueSnapshot};
pub use transport::{Mailer, SendError, is_hard_bounce};
