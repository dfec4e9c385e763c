//! Where composed messages go: `.eml` files (the embedded default, so a
//! fresh checkout works without a mail server) or an SMTP relay.

use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{MailSettings, MailTransportKind, SmtpTls};

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
                let builder = match smtp.tls {
                    SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
                    SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
                        .map_err(|e| format!("mail.smtp.host: {e}"))?,
                    SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
                        .map_err(|e| format!("mail.smtp.host: {e}"))?,
                };
                let mut builder = builder
                    .port(smtp.port)
                    .timeout(Some(Duration::from_secs(smtp.timeout_seconds.max(1))));
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
            Mailer::Smtp(transport) => transport.send(message).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    SendError::Permanent(e.to_string())
                } else {
                    SendError::Transient(e.to_string())
                }
            }),
        }
    }
}
