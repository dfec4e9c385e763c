//! Where composed messages go: `.eml` files (the embedded default, so a
//! fresh checkout works without a mail server) or SMTP relays (see
//! [`crate::mail::relays`]).

use std::path::PathBuf;
use std::sync::Arc;

use lettre::{AsyncFileTransport, AsyncTransport, Tokio1Executor};

use crate::config::{MailSettings, MailTransportKind};
use crate::mail::OutgoingMessage;
use crate::mail::relays::Relays;
use crate::mail::smtp::SmtpSetupError;
use crate::metrics::RelayFigures;

#[derive(Clone)]
pub enum Mailer {
    /// `.eml` files in the directory (its identity, for the rate, is its
    /// `file://` path).
    File(AsyncFileTransport<Tokio1Executor>, String),
    Smtp(Arc<Relays>),
}

/// Why a message did not leave, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// A 4xx reply, a dropped connection, a full disk: retry later.
    #[error("{0}")]
    Transient(String),
    /// A 5xx reply: the server will never take this message.
    #[error("{0}")]
    Permanent(String),
    /// The relay could not be reached, or turned us away before this
    /// message's transaction began (no connection, a timeout, 421 at the
    /// greeting): the message itself was not tried, so it may go to
    /// another relay at once, and it costs no attempt.
    #[error("{0}")]
    Unreachable(String),
}

/// Why the mail settings give no transport.
#[derive(Debug, thiserror::Error)]
pub enum MailerSetupError {
    #[error("mail.outbox_dir: cannot create {}: {cause}", .dir.display())]
    Outbox { dir: PathBuf, cause: std::io::Error },
    #[error(transparent)]
    Smtp(#[from] SmtpSetupError),
}

impl Mailer {
    pub fn from_settings(mail: &MailSettings) -> Result<Self, MailerSetupError> {
        match mail.transport {
            MailTransportKind::File => {
                std::fs::create_dir_all(&mail.outbox_dir).map_err(|cause| MailerSetupError::Outbox {
                    dir: mail.outbox_dir.clone(),
                    cause,
                })?;
                let identity = format!("file://{}", mail.outbox_dir.display());
                Ok(Mailer::File(AsyncFileTransport::new(&mail.outbox_dir), identity))
            }
            MailTransportKind::Smtp => Ok(Mailer::Smtp(Arc::new(Relays::new(
                &mail.relay_list(),
                &mail.helo_name,
            )?))),
        }
    }

    /// What [`Mailer::from_settings`] would refuse, without its side
    /// effects (the file transport's directory is not created): for
    /// `gazette config check`.
    pub fn check_settings(mail: &MailSettings) -> Result<(), MailerSetupError> {
        match mail.transport {
            MailTransportKind::File => Ok(()),
            MailTransportKind::Smtp => Relays::new(&mail.relay_list(), &mail.helo_name)
                .map(drop)
                .map_err(MailerSetupError::from),
        }
    }

    /// Where mail goes, for the start-up log line.
    pub fn describe(mail: &MailSettings) -> String {
        match mail.transport {
            MailTransportKind::File => format!("written as .eml files to {}", mail.outbox_dir.display()),
            MailTransportKind::Smtp => Relays::describe(&mail.relay_list()),
        }
    }

    /// Each relay's identity (the key of its rate, shared by every worker
    /// sending to it) and its own rate (`None`: `delivery.rate_per_second`).
    pub fn rates(&self) -> Vec<(String, Option<u32>)> {
        match self {
            Mailer::File(_, identity) => vec![(identity.clone(), None)],
            Mailer::Smtp(relays) => relays.rates(),
        }
    }

    /// The identity of relay number `relay` (as in [`Mailer::rates`]).
    pub fn identity(&self, relay: usize) -> &str {
        match self {
            Mailer::File(_, identity) => identity,
            Mailer::Smtp(relays) => relays.identity(relay),
        }
    }

    /// The relay for the next try of a message that already tried those in
    /// `tried` (see [`Relays::pick`]); `None` when it tried them all.
    pub fn pick(&self, tried: &[usize]) -> Option<usize> {
        match self {
            Mailer::File(..) => (!tried.contains(&0)).then_some(0),
            Mailer::Smtp(relays) => relays.pick(tried),
        }
    }

    /// Sends the message's bytes as they are (a DKIM signature covers
    /// them) through relay number `relay`, from [`Mailer::pick`].
    pub async fn send_via(&self, relay: usize, message: &OutgoingMessage) -> Result<(), SendError> {
        match self {
            Mailer::File(transport, _) => transport
                .send_raw(message.envelope(), &message.bytes())
                .await
                .map(|_| ())
                .map_err(|e| SendError::Transient(format!("cannot write the .eml file: {e}"))),
            Mailer::Smtp(relays) => relays.send_via(relay, message).await,
        }
    }

    /// Each relay's figures since this process started (none for files).
    pub fn relay_figures(&self) -> Vec<RelayFigures> {
        match self {
            Mailer::File(..) => Vec::new(),
            Mailer::Smtp(relays) => relays.figures(),
        }
    }

    /// Closes idle connections politely (at shutdown).
    pub async fn close(&self) {
        if let Mailer::Smtp(relays) = self {
            relays.close().await;
        }
    }
}

/// Whether a permanent SMTP reply says the address itself is dead (a hard
/// bounce), by its enhanced status code (RFC 3463): 5.1.x (bad mailbox or
/// domain) and 5.2.1 (mailbox disabled). Policy refusals (5.7.x) and
/// replies without an enhanced code are the sender's problem, not the
/// reader's, and never count.
pub fn is_hard_bounce(reply: &str) -> bool {
    reply
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ':')
        .any(|word| {
            let mut parts = word.split('.');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some("5"), Some(subject), Some(detail), None)
                    if !subject.is_empty()
                        && subject.bytes().all(|b| b.is_ascii_digit())
                        && !detail.is_empty()
                        && detail.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    subject == "1" || (subject == "2" && detail == "1")
                }
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::is_hard_bounce;

    #[test]
    fn only_dead_addresses_are_hard_bounces() {
        for bounce in [
            "permanent error (550): 5.1.1 <ada@example.com>: Recipient address rejected: User unknown",
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound",
            "550 5.2.1 The email account that you tried to reach is disabled",
            "permanent error (553): 5.1.3 Bad recipient address syntax",
        ] {
            assert!(is_hard_bounce(bounce), "{bounce}");
        }
        for not_bounce in [
            "550 5.7.1 Message rejected as spam",
            "permanent error (554): 5.7.26 Unauthenticated email is not accepted",
            "550 Mailbox unavailable",
            "552 5.2.2 Mailbox full",
            "451 4.1.1 try again later",
            "version 5.1.1.2 of something",
        ] {
            assert!(!is_hard_bounce(not_bounce), "{not_bounce}");
        }
    }
}
