//! Gazette's own SMTP client and its connection pool.
//!
//! lettre's connection cannot pipeline and dot-stuffs every message byte
//! by byte as it writes it; here a message's pieces come dot-stuffed
//! already (`OutgoingMessage::wire_pieces`) and go out in one write, and
//! with PIPELINING a transaction costs two round trips instead of four.
//! `client` speaks SMTP on one connection, `transaction` sends one message
//! on it, and the pool keeps the connection policy: reuse, a
//! per-connection message limit, RSET after a refused message instead of
//! a new connection, one retry on a fresh connection when a reused one
//! turns out to be dead, and an idle limit.

mod client;
mod transaction;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use self::client::{Client, ClientError, Dial, Reply, Security};
use self::transaction::{Failure, Stage};
use crate::config::{HeloName, SmtpSettings, SmtpTls};
use crate::mail::{OutgoingMessage, SendError};

/// An idle connection older than this is closed rather than reused: many
/// relays drop idle clients after a minute or so.
const IDLE_LIMIT: Duration = Duration::from_secs(30);

/// Why `mail.smtp` gives no relay Gazette can connect to. Each message
/// names the setting and carries its cause, since the process stops with
/// that one line; so the cause is not given again as a `source`.
#[derive(Debug, thiserror::Error)]
pub enum SmtpSetupError {
    #[error("mail.smtp.host: `{host}` is not a name TLS can check: {cause}")]
    Host {
        host: String,
        cause: rustls::pki_types::InvalidDnsNameError,
    },
    #[error("mail.smtp.ca_file: cannot read {}: {cause}", .file.display())]
    CaFileUnreadable { file: PathBuf, cause: io::Error },
    #[error("mail.smtp.ca_file: {} is not a PEM certificate: {why}", .file.display())]
    CaFileNotPem { file: PathBuf, why: String },
    #[error("mail.smtp: cannot set up TLS: {0}")]
    Tls(rustls::Error),
}

/// Connections to one relay, opened on demand and reused.
pub struct SmtpPool {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<(String, String)>,
    hello: String,
    timeout: Duration,
    max_messages_per_connection: u32,
    idle: Mutex<Vec<Connection>>,
}

struct Connection {
    client: Client,
    sent: u32,
    last_used: Instant,
}

impl fmt::Debug for SmtpPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpPool")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl SmtpPool {
    /// A pool for the relay in `smtp`, greeting it (EHLO, and again after
    /// STARTTLS) as `helo`.
    pub fn new(smtp: &SmtpSettings, helo: &HeloName) -> Result<Self, SmtpSetupError> {
        let tls = || -> Result<_, SmtpSetupError> {
            let server_name = ServerName::try_from(smtp.host.clone()).map_err(|cause| SmtpSetupError::Host {
                host: smtp.host.clone(),
                cause,
            })?;
            Ok((rustls_connector(smtp)?, server_name))
        };
        let security = match smtp.tls {
            SmtpTls::None => Security::Plain,
            SmtpTls::Starttls => {
                let (connector, name) = tls()?;
                Security::Starttls(connector, name)
            }
            SmtpTls::Tls => {
                let (connector, name) = tls()?;
                Security::Implicit(connector, name)
            }
        };
        let credentials = (!smtp.username.is_empty()).then(|| (smtp.username.clone(), smtp.password.clone()));
        Ok(Self {
            host: smtp.host.clone(),
            port: smtp.port,
            security,
            credentials,
            hello: hello_argument(helo),
            timeout: Duration::from_secs(smtp.timeout_seconds.max(1)),
            max_messages_per_connection: smtp.max_messages_per_connection,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Sends one message to the envelope's recipients. When a reused
    /// connection turns out dead (or closing, 421) before the content was
    /// written, the message goes out at once on a fresh one.
    pub async fn send(&self, message: &OutgoingMessage) -> Result<(), SendError> {
        let (connection, reused) = match self.take_idle() {
            Some(connection) => (connection, true),
            None => (self.connect().await?, false),
        };
        match self.attempt(connection, message).await {
            Err((error, Some(Stage::Envelope))) if reused => {
                tracing::debug!(%error, "a reused SMTP connection failed before the content; trying a fresh one");
                let fresh = self.connect().await?;
                self.attempt(fresh, message).await.map_err(|(error, _)| error)
            }
            outcome => outcome.map_err(|(error, _)| error),
        }
    }

    /// One transaction on `connection`, which goes back to the pool if it
    /// is still good. On failure, the stage at which the connection itself
    /// failed (`None` when the server refused the message and the
    /// connection is fine).
    async fn attempt(
        &self,
        mut connection: Connection,
        message: &OutgoingMessage,
    ) -> Result<(), (SendError, Option<Stage>)> {
        let failure = match transaction::send(&mut connection.client, message).await {
            Ok(()) => {
                self.give_back(connection, true).await;
                return Ok(());
            }
            Err(failure) => failure,
        };
        let broken = connection.client.is_broken();
        Err(match failure {
            Failure::TooBig { size, limit } => {
                // Nothing was sent: the connection is as it was.
                self.give_back(connection, false).await;
                let error = SendError::Permanent(format!(
                    "the message is {size} octets and {}:{} takes at most {limit} (its SIZE)",
                    self.host, self.port
                ));
                (error, None)
            }
            // 421, or a refusal the connection could not survive: another
            // connection may work.
            Failure::Refused(reply, stage) if broken => (classify(reply), Some(stage)),
            Failure::Refused(reply, _) => {
                self.reset(connection).await;
                (classify(reply), None)
            }
            Failure::Sender(reply) if broken => (sender_refused(reply), Some(Stage::Envelope)),
            Failure::Sender(reply) => {
                self.reset(connection).await;
                (sender_refused(reply), None)
            }
            Failure::Broken(why, stage) => {
                let error =
                    SendError::Transient(format!("the connection to {}:{} failed: {why}", self.host, self.port));
                (error, Some(stage))
            }
        })
    }

    /// Says goodbye on every idle connection.
    pub async fn close(&self) {
        let idle = std::mem::take(&mut *self.idle.lock().expect("pool lock"));
        for connection in idle {
            let _ = tokio::time::timeout(Duration::from_secs(1), connection.client.quit()).await;
        }
    }

    fn take_idle(&self) -> Option<Connection> {
        let mut idle = self.idle.lock().expect("pool lock");
        while let Some(connection) = idle.pop() {
            if connection.last_used.elapsed() < IDLE_LIMIT && !connection.client.is_broken() {
                return Some(connection);
            }
            // Too old to trust; dropping it closes the socket.
        }
        None
    }

    /// Keeps `connection` for the next message, or says goodbye once it
    /// carried `max_messages_per_connection`. `sent`: it carried one more.
    async fn give_back(&self, mut connection: Connection, sent: bool) {
        connection.sent += u32::from(sent);
        connection.last_used = Instant::now();
        let limit = self.max_messages_per_connection;
        if limit > 0 && connection.sent >= limit {
            connection.client.quit().await;
            return;
        }
        self.idle.lock().expect("pool lock").push(connection);
    }

    /// After a refused message the connection is fine, once RSET clears the
    /// half-finished transaction.
    async fn reset(&self, mut connection: Connection) {
        let client = &mut connection.client;
        let reset = match client.command("RSET").await {
            Ok(()) => client.read_reply().await.is_ok_and(|reply| reply.is_success()),
            Err(_) => false,
        };
        if reset {
            connection.last_used = Instant::now();
            self.idle.lock().expect("pool lock").push(connection);
        }
    }

    async fn connect(&self) -> Result<Connection, SendError> {
        let dial = Dial {
            host: &self.host,
            port: self.port,
            security: &self.security,
            hello: &self.hello,
            credentials: self.credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
            timeout: self.timeout,
        };
        let unreachable =
            |why: String| SendError::Unreachable(format!("cannot connect to {}:{}: {why}", self.host, self.port));
        let client = tokio::time::timeout(self.timeout, Client::connect(&dial))
            .await
            .map_err(|_| unreachable(format!("no answer within {} s", self.timeout.as_secs())))?
            .map_err(|e| match e {
                // A relay that turns us away at the door is not the
                // message's fault: try again later, whatever the code.
                ClientError::Reply(reply) => SendError::Unreachable(classify(reply).to_string()),
                other => unreachable(other.to_string()),
            })?;
        Ok(Connection {
            client,
            sent: 0,
            last_used: Instant::now(),
        })
    }
}

/// The EHLO argument: the name, or `[192.0.2.1]`, `[IPv6:2001:db8::1]`.
fn hello_argument(helo: &HeloName) -> String {
    match helo {
        // As before Gazette spoke SMTP itself: lettre's idea of the
        // machine's host name (127.0.0.1 without one).
        HeloName::MachineName => lettre::transport::smtp::extension::ClientId::default().to_string(),
        HeloName::Host(name) => name.clone(),
        HeloName::Ipv4(ip) => format!("[{ip}]"),
        HeloName::Ipv6(ip) => format!("[IPv6:{ip}]"),
    }
}

fn sender_refused(reply: Reply) -> SendError {
    SendError::Transient(format!(
        "the SMTP relay refused our sender address (check mail.from and the relay's settings): {reply}"
    ))
}

/// Sorts an SMTP refusal by whether this message can ever be delivered.
/// Authentication failures are 5xx replies but no fault of the message: the
/// relay turned down our credentials, so every message waits (and retries)
/// until the operator fixes them, rather than being given up.
fn classify(reply: Reply) -> SendError {
    if matches!(reply.code, 530 | 534 | 535 | 538) {
        SendError::Transient(format!(
            "the SMTP relay refused our credentials (check mail.smtp.username and mail.smtp.password): {reply}"
        ))
    } else if reply.is_permanent() {
        SendError::Permanent(reply.to_string())
    } else {
        SendError::Transient(reply.to_string())
    }
}

/// The roots a relay's certificate may chain to: the public ones, plus the
/// one in `ca_file` when given.
fn extra_root(smtp: &SmtpSettings) -> Result<Option<Vec<u8>>, SmtpSetupError> {
    if smtp.ca_file.as_os_str().is_empty() {
        return Ok(None);
    }
    std::fs::read(&smtp.ca_file)
        .map(Some)
        .map_err(|cause| SmtpSetupError::CaFileUnreadable {
            file: smtp.ca_file.clone(),
            cause,
        })
}

fn not_pem(smtp: &SmtpSettings, why: impl fmt::Display) -> SmtpSetupError {
    SmtpSetupError::CaFileNotPem {
        file: smtp.ca_file.clone(),
        why: why.to_string(),
    }
}

/// The TLS set-up for STARTTLS and implicit TLS alike: the relay's
/// certificate must chain to a public root or to `ca_file`.
fn rustls_connector(smtp: &SmtpSettings) -> Result<tokio_rustls::TlsConnector, SmtpSetupError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = extra_root(smtp)? {
        let mut found = false;
        for certificate in CertificateDer::pem_slice_iter(&pem) {
            let certificate = certificate.map_err(|e| not_pem(smtp, e))?;
            roots.add(certificate).map_err(|e| not_pem(smtp, e))?;
            found = true;
        }
        if !found {
            return Err(not_pem(smtp, "no certificate in it"));
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(SmtpSetupError::Tls)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}
