//! Reading a bounce, a complaint, an auto-reply or a reader's mail from
//! its raw bytes (RFC 5322, with RFC 3464 DSNs and RFC 5965 ARF reports).
//! Issue 15: filled in by the `classify` work.

use super::report::Report;

/// Reads one message as it arrived; `envelope_to` are its envelope
/// recipients where the source knows them.
pub fn message(_raw: &[u8], envelope_to: &[String]) -> Report {
    Report::unknown(envelope_to.to_vec())
}
