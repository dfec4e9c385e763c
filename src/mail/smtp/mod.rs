//! Gazette's own SMTP client and its connection pool.
//!
//! lettre's connection cannot pipeline and dot-stuffs every message byte
//! by byte as it writes it; here a message's pieces come dot-stuffed
//! already (`OutgoingMessage::wire_pieces`) and go out in one write, and
//! with PIPELINING one message costs one write and one round trip: its
//! content goes out with the next message's MAIL, RCPT and DATA.
//! `client` speaks SMTP on one connection, `transaction` holds the steps of
//! one message, `driver` runs one connection as a task fed by a queue, and
//! the pool keeps the connection policy: reuse (a message goes to the least
//! busy connection, a new one opens when each already has a message in
//! flight and one waiting), a per-connection message limit, RSET after a
//! refused message instead of a new connection, one retry on a fresh
//! connection when a reused one turns out to be dead, and an idle limit.

mod client;
mod driver;
mod transaction;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use tokio::sync::oneshot;

use self::client::{Client, ClientError, Dial, Reply, Security};
use self::driver::{Job, Outcome};
use self::transaction::{Failure, Stage};
use crate::config::{HeloName, SmtpSettings, SmtpTls};
use crate::mail::{OutgoingMessage, SendError};

/// A connection idle this long is closed: many relays drop idle clients
/// after a minute or so.
const IDLE_LIMIT: Duration = Duration::from_secs(30);

/// A connection keeps at most this many messages in flight before the pool
/// opens another: one whose content is going out and one whose envelope
/// goes with it.
const PIPELINE_DEPTH: usize = 2;

/// A message handed back untried this often (its connections kept ending
/// before they reached it) is deferred.
const MAX_UNTRIED: u32 = 5;

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
    relay: Arc<Relay>,
    max_messages_per_connection: u32,
    connections: Mutex<Vec<Open>>,
}

/// How to open a connection to the relay (shared with the drivers, which
/// connect in their own task).
struct Relay {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<(String, String)>,
    hello: String,
    timeout: Duration,
}

/// A connection's driver task and the way to feed it.
struct Open {
    handle: driver::Handle,
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for SmtpPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpPool")
            .field("host", &self.relay.host)
            .field("port", &self.relay.port)
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
            relay: Arc::new(Relay {
                host: smtp.host.clone(),
                port: smtp.port,
                security,
                credentials,
                hello: hello_argument(helo),
                timeout: Duration::from_secs(smtp.timeout_seconds.max(1)),
            }),
            max_messages_per_connection: smtp.max_messages_per_connection,
            connections: Mutex::new(Vec::new()),
        })
    }

    /// Sends one message to the envelope's recipients. When a reused
    /// connection turns out dead (or closing, 421) before the content was
    /// written, the message goes out at once on a fresh one.
    pub async fn send(&self, message: &OutgoingMessage) -> Result<(), SendError> {
        let mut fresh_only = false;
        let mut untried = 0;
        loop {
            let (connection, fresh) = match self.joinable().filter(|_| !fresh_only) {
                Some(connection) => (connection, false),
                None => (self.open(), true),
            };
            let (done, outcome) = oneshot::channel();
            let job = Job {
                message: message.clone(),
                done,
            };
            if connection.submit(job).is_err() {
                continue; // it ended just now: pick again
            }
            let (result, broken) = match outcome.await {
                Ok(Outcome::Done(result, broken)) => (result, broken),
                Ok(Outcome::NotConnected(error)) => return Err(error),
                Ok(Outcome::NotTried) | Err(_) => {
                    untried += 1;
                    if untried >= MAX_UNTRIED {
                        return Err(SendError::Transient(format!(
                            "the connections to {}:{} kept closing before this message's turn",
                            self.relay.host, self.relay.port
                        )));
                    }
                    continue;
                }
            };
            match self.outcome(result, broken) {
                Err((error, Some(Stage::Envelope))) if !fresh && !fresh_only => {
                    tracing::debug!(%error, "a reused SMTP connection failed before the content; trying a fresh one");
                    fresh_only = true;
                }
                outcome => return outcome.map_err(|(error, _)| error),
            }
        }
    }

    /// What one message's result means. On failure, the stage at which the
    /// connection itself failed (`None` when the server refused the
    /// message and the connection is fine).
    fn outcome(&self, result: Result<(), Failure>, broken: bool) -> Result<(), (SendError, Option<Stage>)> {
        let Err(failure) = result else { return Ok(()) };
        Err(match failure {
            Failure::TooBig { size, limit } => {
                let error = SendError::Permanent(format!(
                    "the message is {size} octets and {}:{} takes at most {limit} (its SIZE)",
                    self.relay.host, self.relay.port
                ));
                (error, None)
            }
            // 421, or a refusal the connection could not survive: another
            // connection may work.
            Failure::Refused(reply, stage) if broken => (classify(reply), Some(stage)),
            Failure::Refused(reply, _) => (classify(reply), None),
            Failure::Sender(reply) if broken => (sender_refused(reply), Some(Stage::Envelope)),
            Failure::Sender(reply) => (sender_refused(reply), None),
            Failure::Broken(why, stage) => {
                let error = SendError::Transient(format!(
                    "the connection to {}:{} failed: {why}",
                    self.relay.host, self.relay.port
                ));
                (error, Some(stage))
            }
        })
    }

    /// Says goodbye on every connection, once each has finished what it
    /// was given.
    pub async fn close(&self) {
        let open = std::mem::take(&mut *self.connections.lock().expect("pool lock"));
        let tasks: Vec<_> = open
            .into_iter()
            .map(|Open { handle, task }| {
                drop(handle);
                task
            })
            .collect();
        for task in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
    }

    /// The open connection with the most messages in flight below
    /// [`PIPELINE_DEPTH`]: a message that joins one already in flight goes
    /// out with that one's content, where on an idle connection it would
    /// cost a round trip of its own. `None` when each is full (then a new
    /// one is better).
    fn joinable(&self) -> Option<driver::Handle> {
        let mut open = self.connections.lock().expect("pool lock");
        open.retain(|o| !o.handle.is_closed());
        open.iter()
            .map(|o| &o.handle)
            .filter(|h| h.load() < PIPELINE_DEPTH)
            .max_by_key(|h| h.load())
            .cloned()
    }

    /// Starts a new connection's driver, which connects in its own task:
    /// the connection takes messages at once, so senders that arrive while
    /// it connects join it instead of each opening their own.
    fn open(&self) -> driver::Handle {
        let (handle, task) = driver::start(self.relay.clone(), self.max_messages_per_connection, IDLE_LIMIT);
        self.connections.lock().expect("pool lock").push(Open {
            handle: handle.clone(),
            task,
        });
        handle
    }
}

impl Relay {
    async fn connect(&self) -> Result<Client, SendError> {
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
        Ok(client)
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
