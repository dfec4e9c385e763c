//! Provider webhooks (Amazon SES through SNS, Postmark, Mailgun): their
//! signatures, and their JSON read into a [`Report`].
//! Issue 15: filled in by the `imap-webhooks` work.

use crate::domain::InboundSource;

use super::report::Report;

/// Reads a provider's stored post (its body as it came).
pub fn report(_source: InboundSource, _body: &[u8]) -> Report {
    Report::unknown(Vec::new())
}
