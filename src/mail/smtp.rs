//! Gazette's own SMTP connection pool, on lettre's connection type.
//!
//! lettre's pooled transport opens sockets without TCP_NODELAY and writes
//! the end-of-data marker on its own, so every message waits for a delayed
//! ACK (~40 ms): about 700 messages a second with 32 connections. Here each
//! socket is opened by us with TCP_NODELAY and handed to lettre, which keeps
//! its SMTP dialogue (EHLO, STARTTLS, AUTH, dot-stuffing) while we keep the
//! connection policy: reuse, a per-connection message limit, RSET after a
//! refused message instead of a new connection, and one retry on a fresh
//! connection when a reused one turns out to be dead.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

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
    #[error("mail.smtp: cannot set up TLS for {host}: {cause}")]
    Starttls {
        host: String,
        cause: lettre::transport::smtp::Error,
    },
    #[error("mail.smtp: cannot set up TLS: {0}")]
    Tls(rustls::Error),
}

/// Connections to one relay, opened on demand and reused.
pub struct SmtpPool {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
    timeout: Duration,
    max_messages_per_connection: u32,
    idle: Mutex<Vec<Connection>>,
}

enum Security {
    Plain,
    Starttls(TlsParameters),
    Implicit(tokio_rustls::TlsConnector, ServerName<'static>),
}

struct Connection {
    smtp: AsyncSmtpConnection,
    sent: u32,
    last_used: Instant,
}

/// How far a transaction got before it failed: a failure before the message
/// content was written can be retried elsewhere without risking a duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Envelope,
    Content,
}

/// Why one transaction failed.
enum Failure {
    /// The server answered with a refusal; the connection is still usable.
    Reply(lettre::transport::smtp::Error, Stage),
    /// The server refused our sender address (MAIL FROM): no reader's
    /// fault, so never a bounce, and retried until the operator fixes it.
    Sender(lettre::transport::smtp::Error),
    /// The connection broke or timed out; it cannot be reused.
    Connection(String, Stage),
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
        let security = match smtp.tls {
            SmtpTls::None => Security::Plain,
            SmtpTls::Starttls => Security::Starttls(lettre_tls(smtp)?),
            SmtpTls::Tls => {
                let server_name = ServerName::try_from(smtp.host.clone()).map_err(|cause| SmtpSetupError::Host {
                    host: smtp.host.clone(),
                    cause,
                })?;
                Security::Implicit(rustls_connector(smtp)?, server_name)
            }
        };
        let credentials =
            (!smtp.username.is_empty()).then(|| Credentials::new(smtp.username.clone(), smtp.password.clone()));
        Ok(Self {
            host: smtp.host.clone(),
            port: smtp.port,
            security,
            credentials,
            hello: client_id(helo),
            timeout: Duration::from_secs(smtp.timeout_seconds.max(1)),
            max_messages_per_connection: smtp.max_messages_per_connection,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Sends one message to the envelope's recipients. When a reused
    /// connection turns out dead (or closing, 421) before the content was
    /// written, the message goes out at once on a fresh one.
    pub async fn send(&self, message: &OutgoingMessage) -> Result<(), SendError> {
        let (envelope, message) = (message.envelope(), &message.bytes());
        let (connection, reused) = match self.take_idle() {
            Some(connection) => (connection, true),
            None => (self.connect().await?, false),
        };
        match self.attempt(connection, envelope, message).await {
            Err((error, Some(Stage::Envelope))) if reused => {
                tracing::debug!(%error, "a reused SMTP connection failed before the content; trying a fresh one");
                let fresh = self.connect().await?;
                self.attempt(fresh, envelope, message).await.map_err(|(error, _)| error)
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
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<(), (SendError, Option<Stage>)> {
        let failure = match self.transact(&mut connection, envelope, message).await {
            Ok(()) => {
                self.give_back(connection).await;
                return Ok(());
            }
            Err(failure) => failure,
        };
        Err(match failure {
            // 421: the server is closing this connection (often its own
            // message-per-connection limit); another may work.
            Failure::Reply(e, stage) if is_closing(&e) => {
                connection.smtp.abort().await;
                (classify(e), Some(stage))
            }
            Failure::Reply(e, _) => {
                self.reset(connection).await;
                (classify(e), None)
            }
            Failure::Sender(e) => {
                self.reset(connection).await;
                (sender_refused(e), None)
            }
            Failure::Connection(why, stage) => {
                connection.smtp.abort().await;
                let error =
                    SendError::Transient(format!("the connection to {}:{} failed: {why}", self.host, self.port));
                (error, Some(stage))
            }
        })
    }

    /// Says goodbye on every idle connection.
    pub async fn close(&self) {
        let idle = std::mem::take(&mut *self.idle.lock().expect("pool lock"));
        for mut connection in idle {
            let _ = tokio::time::timeout(Duration::from_secs(1), connection.smtp.quit()).await;
        }
    }

    fn take_idle(&self) -> Option<Connection> {
        let mut idle = self.idle.lock().expect("pool lock");
        while let Some(connection) = idle.pop() {
            if connection.last_used.elapsed() < IDLE_LIMIT && !connection.smtp.has_broken() {
                return Some(connection);
            }
            // Too old to trust; dropping it closes the socket.
        }
        None
    }

    async fn give_back(&self, mut connection: Connection) {
        connection.sent += 1;
        connection.last_used = Instant::now();
        let limit = self.max_messages_per_connection;
        if limit > 0 && connection.sent >= limit {
            let _ = tokio::time::timeout(self.timeout, connection.smtp.quit()).await;
            return;
        }
        self.idle.lock().expect("pool lock").push(connection);
    }

    /// After a refused message the connection is fine, once RSET clears the
    /// half-finished transaction.
    async fn reset(&self, mut connection: Connection) {
        match tokio::time::timeout(self.timeout, connection.smtp.command(Rset)).await {
            Ok(Ok(_)) => {
                connection.last_used = Instant::now();
                self.idle.lock().expect("pool lock").push(connection);
            }
            _ => connection.smtp.abort().await,
        }
    }

    async fn connect(&self) -> Result<Connection, SendError> {
        let unreachable =
            |why: String| SendError::Unreachable(format!("cannot connect to {}:{}: {why}", self.host, self.port));
        let smtp = tokio::time::timeout(self.timeout, self.open())
            .await
            .map_err(|_| unreachable(format!("no answer within {} s", self.timeout.as_secs())))?
            .map_err(|e| match e {
                OpenError::Io(e) => unreachable(e.to_string()),
                OpenError::Smtp(e) if e.status().is_some() => {
                    let error = classify(e);
                    // A relay that turns us away at the door is not the
                    // message's fault: try again later, whatever the code.
                    SendError::Unreachable(error.to_string())
                }
                OpenError::Smtp(e) => unreachable(e.to_string()),
            })?;
        Ok(Connection {
            smtp,
            sent: 0,
            last_used: Instant::now(),
        })
    }

    async fn open(&self) -> Result<AsyncSmtpConnection, OpenError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
        tcp.set_nodelay(true)?;
        let stream: Box<dyn AsyncTokioStream> = match &self.security {
            Security::Implicit(connector, name) => Box::new(TlsStream(connector.connect(name.clone(), tcp).await?)),
            _ => Box::new(tcp),
        };
        let mut smtp = AsyncSmtpConnection::connect_with_transport(stream, &self.hello).await?;
        if let Security::Starttls(parameters) = &self.security {
            smtp.starttls(parameters.clone(), &self.hello).await?;
        }
        if let Some(credentials) = &self.credentials {
            smtp.auth(&[Mechanism::Plain, Mechanism::Login], credentials).await?;
        }
        Ok(smtp)
    }

    /// MAIL, RCPT, DATA and the content, each bounded by the timeout.
    async fn transact(&self, connection: &mut Connection, envelope: &Envelope, message: &[u8]) -> Result<(), Failure> {
        let smtp = &mut connection.smtp;
        let mut parameters = Vec::new();
        let non_ascii = envelope
            .from()
            .into_iter()
            .chain(envelope.to())
            .any(|a: &lettre::Address| !AsRef::<str>::as_ref(a).is_ascii());
        if non_ascii && smtp.server_info().supports_feature(Extension::SmtpUtfEight) {
            parameters.push(MailParameter::SmtpUtfEight);
        }
        if !message.is_ascii() && smtp.server_info().supports_feature(Extension::EightBitMime) {
            parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let timeout = self.timeout;
        let step = |stage: Stage| {
            move |result: Result<Result<_, lettre::transport::smtp::Error>, tokio::time::error::Elapsed>| match result {
                Err(_) => Err(Failure::Connection(
                    format!("no answer within {} s", timeout.as_secs()),
                    stage,
                )),
                Ok(Err(e)) if e.status().is_some() => Err(Failure::Reply(e, stage)),
                Ok(Err(e)) => Err(Failure::Connection(e.to_string(), stage)),
                Ok(Ok(response)) => Ok(response),
            }
        };
        let envelope_stage = step(Stage::Envelope);
        envelope_stage(
            tokio::time::timeout(timeout, smtp.command(Mail::new(envelope.from().cloned(), parameters))).await,
        )
        .map_err(|failure| match failure {
            Failure::Reply(e, _) if !is_closing(&e) => Failure::Sender(e),
            other => other,
        })?;
        for recipient in envelope.to() {
            envelope_stage(tokio::time::timeout(timeout, smtp.command(Rcpt::new(recipient.clone(), vec![]))).await)?;
        }
        envelope_stage(tokio::time::timeout(timeout, smtp.command(Data)).await)?;
        step(Stage::Content)(tokio::time::timeout(timeout, smtp.message(message)).await)?;
        Ok(())
    }
}

/// The EHLO argument lettre writes: the name, or `[192.0.2.1]`,
/// `[IPv6:2001:db8::1]`.
fn client_id(helo: &HeloName) -> ClientId {
    match helo {
        // lettre's default: the machine's host name (127.0.0.1 without one).
        HeloName::MachineName => ClientId::default(),
        HeloName::Host(name) => ClientId::Domain(name.clone()),
        HeloName::Ipv4(ip) => ClientId::Ipv4(*ip),
        HeloName::Ipv6(ip) => ClientId::Ipv6(*ip),
    }
}

enum OpenError {
    Io(io::Error),
    Smtp(lettre::transport::smtp::Error),
}

impl From<io::Error> for OpenError {
    fn from(e: io::Error) -> Self {
        OpenError::Io(e)
    }
}

impl From<lettre::transport::smtp::Error> for OpenError {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        OpenError::Smtp(e)
    }
}

fn sender_refused(error: lettre::transport::smtp::Error) -> SendError {
    SendError::Transient(format!(
        "the SMTP relay refused our sender address (check mail.from and the relay's settings): {error}"
    ))
}

fn is_closing(error: &lettre::transport::smtp::Error) -> bool {
    error.status().is_some_and(|code| code.to_string() == "421")
}

/// Sorts an SMTP refusal by whether this message can ever be delivered.
/// Authentication failures are 5xx replies but no fault of the message: the
/// relay turned down our credentials, so every message waits (and retries)
/// until the operator fixes them, rather than being given up.
pub(crate) fn classify(error: lettre::transport::smtp::Error) -> SendError {
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

/// STARTTLS parameters for lettre: the certificate must match `host`.
fn lettre_tls(smtp: &SmtpSettings) -> Result<TlsParameters, SmtpSetupError> {
    let mut builder = TlsParameters::builder(smtp.host.clone());
    if let Some(pem) = extra_root(smtp)? {
        builder = builder.add_root_certificate(Certificate::from_pem(&pem).map_err(|e| not_pem(smtp, e))?);
    }
    builder.build_rustls().map_err(|cause| SmtpSetupError::Starttls {
        host: smtp.host.clone(),
        cause,
    })
}

/// Implicit TLS is set up by us, so the socket under it is ours too.
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

/// A TLS session over our own socket, in the shape lettre takes.
#[derive(Debug)]
struct TlsStream(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for TlsStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
