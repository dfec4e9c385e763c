//! Where composed messages go: `.eml` files (the embedded default, so a
//! fresh checkout works without a mail server) or an SMTP relay.

use std::path::PathBuf;
use std::sync::Arc;

use lettre::{AsyncFileTransport, AsyncTransport, Tokio1Executor};

use crate::config::{MailSettings, MailTransportKind, SmtpTls};
use crate::mail::OutgoingMessage;
use crate::mail::smtp::{SmtpPool, SmtpSetupError};

#[derive(Clone)]
pub enum Mailer {
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(Arc<SmtpPool>),
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
                Ok(Mailer::File(AsyncFileTransport::new(&mail.outbox_dir)))
            }
            MailTransportKind::Smtp => Ok(Mailer::Smtp(Arc::new(SmtpPool::new(&mail.smtp, &mail.helo_name)?))),
        }
    }

    /// What [`Mailer::from_settings`] would refuse, without its side
    /// effects (the file transport's directory is not created): for
    /// `gazette config check`.
    pub fn check_settings(mail: &MailSettings) -> Result<(), MailerSetupError> {
        match mail.transport {
            MailTransportKind::File => Ok(()),
            MailTransportKind::Smtp => SmtpPool::new(&mail.smtp, &mail.helo_name)
                .map(drop)
                .map_err(MailerSetupError::from),
        }
    }

    /// Where mail goes, for the start-up log line.
    pub fn describe(mail: &MailSettings) -> String {
        match mail.transport {
            MailTransportKind::File => format!("written as .eml files to {}", mail.outbox_dir.display()),
            MailTransportKind::Smtp => {
                let tls = match mail.smtp.tls {
                    SmtpTls::None => "no TLS",
                    SmtpTls::Starttls => "STARTTLS",
                    SmtpTls::Tls => "TLS",
                };
                format!("sent over SMTP to {}:{} ({tls})", mail.smtp.host, mail.smtp.port)
            }
        }
    }

    /// Sends the message's bytes as they are (a DKIM signature covers them).
    pub async fn send(&self, message: &OutgoingMessage) -> Result<(), SendError> {
        match self {
            Mailer::File(transport) => transport
                .send_raw(message.envelope(), &message.bytes())
                .await
                .map(|_| ())
                .map_err(|e| SendError::Transient(format!("cannot write the .eml file: {e}"))),
            Mailer::Smtp(pool) => {
                crate::metrics::timed_smtp_send(pool.send(message), |e| matches!(e, SendError::Permanent(_))).await
            }
        }
    }

    /// Closes idle connections politely (at shutdown).
    pub async fn close(&self) {
        if let Mailer::Smtp(pool) = self {
            pool.close().await;
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
