//! Where composed messages go: `.eml` files (the embedded default, so a
//! fresh checkout works without a mail server) or an SMTP relay.

use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{MailSettings, MailTransportKind, SmtpSettings, SmtpTls};

#[derive(Clone)]
pub enum Mailer {
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
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
}

impl Mailer {
    pub fn from_settings(mail: &MailSettings) -> Result<Self, String> {
        match mail.transport {
            MailTransportKind::File => {
                std::fs::create_dir_all(&mail.outbox_dir)
                    .map_err(|e| format!("mail.outbox_dir: cannot create {}: {e}", mail.outbox_dir.display()))?;
                Ok(Mailer::File(AsyncFileTransport::new(&mail.outbox_dir)))
            }
            MailTransportKind::Smtp => {
                let smtp = &mail.smtp;
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
                    .port(smtp.port)
                    .timeout(Some(Duration::from_secs(smtp.timeout_seconds.max(1))));
                if smtp.tls != SmtpTls::None {
                    let parameters = tls_parameters(smtp)?;
                    builder = builder.tls(match smtp.tls {
                        SmtpTls::Starttls => Tls::Required(parameters),
                        _ => Tls::Wrapper(parameters),
                    });
                }
                if !smtp.username.is_empty() {
                    builder = builder.credentials(Credentials::new(smtp.username.clone(), smtp.password.clone()));
                }
                Ok(Mailer::Smtp(builder.build()))
            }
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

    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        match self {
            Mailer::File(transport) => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| SendError::Transient(format!("cannot write the .eml file: {e}"))),
            Mailer::Smtp(transport) => transport.send(message).await.map(|_| ()).map_err(classify),
        }
    }
}

/// TLS towards the relay: its certificate must match `host` and chain to
/// the public roots, or to the root in `ca_file` when one is given.
fn tls_parameters(smtp: &SmtpSettings) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(smtp.host.clone());
    if !smtp.ca_file.as_os_str().is_empty() {
        let pem = std::fs::read(&smtp.ca_file)
            .map_err(|e| format!("mail.smtp.ca_file: cannot read {}: {e}", smtp.ca_file.display()))?;
        let root = Certificate::from_pem(&pem).map_err(|e| {
            format!(
                "mail.smtp.ca_file: {} is not a PEM certificate: {e}",
                smtp.ca_file.display()
            )
        })?;
        builder = builder.add_root_certificate(root);
    }
    builder
        .build_rustls()
        .map_err(|e| format!("mail.smtp: cannot set up TLS for {}: {e}", smtp.host))
}

/// Sorts an SMTP failure by whether this message can ever be delivered.
/// Authentication failures are 5xx replies but no fault of the message: the
/// relay turned down our credentials, so every message waits (and retries)
/// until the operator fixes them, rather than being given up.
fn classify(error: lettre::transport::smtp::Error) -> SendError {
    let auth_failure = error.status().is_some_and(|code| {
        let code = code.to_string();
        matches!(code.as_str(), "530" | "534" | "535" | "538")
    });
    if auth_failure {
        SendError::Transient(format!(
            "the SMTP relay refused our credentials (check mail.smtp.username and mail.smtp.password): {error}"
        ))
    } else if error.is_permanent() {
        SendError::Permanent(error.to_string())
    } else {
        SendError::Transient(error.to_string())
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
