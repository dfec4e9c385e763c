//! Polling an IMAP mailbox (`inbound.imap_url`) for the bounce domain's
//! mail.
//!
//! A small client of our own over tokio (and tokio-rustls for `imaps://`)
//! rather than `async-imap`: the poller needs eight commands (LOGIN,
//! CREATE, SELECT, UID SEARCH, UID FETCH, UID MOVE or COPY/STORE/EXPUNGE,
//! IDLE, LOGOUT), and owning the reader lets every read have a timeout and
//! every literal a size cap, which a general client does not promise.
//!
//! Each message is fetched with `BODY.PEEK[]` (so a failure leaves it
//! unseen), handed to [`Inbound::accept`] with the dedupe key
//! `imap:{mailbox}:{UIDVALIDITY}:{UID}`, and only then moved to
//! `imap_done_folder` (or deleted). A crash between the two leaves the
//! message in the mailbox; the next poll stores nothing (the key is known)
//! and just moves it.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::config::InboundSettings;
use crate::db::inbound::Stored;
use crate::domain::InboundSource;

use super::{Arrival, Inbound};

/// Every read but IDLE's waits at most this long.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// A server line (outside literals) longer than this ends the session.
const MAX_LINE: usize = 64 * 1024;
/// Messages handled per pass, so a huge mailbox does not hold one
/// connection's SEARCH result in memory at once.
const BATCH: usize = 500;

/// Where the mailbox is, read from `inbound.imap_url`.
#[derive(Clone)]
pub struct Mailbox {
    tls: bool,
    host: String,
    port: u16,
    user: String,
    password: String,
    mailbox: String,
}

impl std::fmt::Debug for Mailbox {
    // The password is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}@{}:{}/{}",
            if self.tls { "imaps" } else { "imap" },
            self.user,
            self.host,
            self.port,
            self.mailbox
        )
    }
}

impl Mailbox {
    /// `imap://` or `imaps://user@host[:port]/MAILBOX` (INBOX when no path).
    pub fn parse(raw: &str, password: String) -> Result<Self, String> {
        let url = url::Url::parse(raw.trim()).map_err(|e| format!("inbound.imap_url: {e}"))?;
        let tls = match url.scheme() {
            "imap" => false,
            "imaps" => true,
            other => {
                return Err(format!(
                    "inbound.imap_url: the scheme is {other:?}; use imap:// or imaps://"
                ));
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("inbound.imap_url: no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let user = percent_decoded(url.username())?;
        if user.is_empty() {
            return Err("inbound.imap_url: no user (imaps://USER@host/INBOX)".into());
        }
        let mailbox = percent_decoded(url.path().trim_start_matches('/'))?;
        let mailbox = if mailbox.is_empty() {
            "INBOX".to_owned()
        } else {
            mailbox
        };
        for (what, value) in [("user", &user), ("mailbox", &mailbox), ("password", &password)] {
            if value.chars().any(|c| c.is_control()) {
                return Err(format!("inbound.imap_url: the {what} has a control character"));
            }
        }
        Ok(Self {
            tls,
            host,
            port: url.port().unwrap_or(if tls { 993 } else { 143 }),
            user,
            password,
            mailbox,
        })
    }
}

pub struct Poller {
    inbound: Inbound,
    mailbox: Mailbox,
    done_folder: String,
    poll: Duration,
    max_message_bytes: usize,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl Poller {
    /// `None` when `inbound.imap_url` is empty.
    pub fn from_settings(settings: &InboundSettings, inbound: Inbound) -> Result<Option<Self>, String> {
        if settings.imap_url.trim().is_empty() {
            return Ok(None);
        }
        let password = read_secret(&settings.imap_password_file, "inbound.imap_password_file")?;
        let mailbox = Mailbox::parse(&settings.imap_url, password)?;
        let tls = match mailbox.tls {
            true => Some(connector(&settings.imap_ca_file)?),
            false => None,
        };
        Ok(Some(Self {
            inbound,
            mailbox,
            done_folder: settings.imap_done_folder.trim().to_owned(),
            poll: Duration::from_secs(settings.imap_poll_seconds.max(1)),
            max_message_bytes: settings.max_message_bytes,
            tls,
        }))
    }

    /// Polls until `stopped` turns true: one session at a time, a new one
    /// after `imap_poll_seconds` when the last one failed.
    pub async fn run(self, mut stopped: watch::Receiver<bool>) {
        let mut skipped = HashSet::new();
        while !*stopped.borrow() {
            let mut watching = stopped.clone();
            let session = self.session(&mut watching, &mut skipped);
            let result = tokio::select! {
                r = session => r,
                _ = stopped.wait_for(|s| *s) => return,
            };
            if let Err(e) = result {
                tracing::warn!(mailbox = ?self.mailbox, error = %e, "the IMAP mailbox could not be read; trying again later");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.poll) => {}
                _ = stopped.wait_for(|s| *s) => return,
            }
        }
    }

    /// One connection: log in, select, then drain the mailbox, wait (IDLE
    /// where offered, else the poll interval) and drain again, until the
    /// server or `stopped` ends it.
    async fn session(
        &self,
        stopped: &mut watch::Receiver<bool>,
        skipped: &mut HashSet<(u32, u32)>,
    ) -> Result<(), ImapError> {
        let tcp = tokio::time::timeout(
            READ_TIMEOUT,
            TcpStream::connect((self.mailbox.host.as_str(), self.mailbox.port)),
        )
        .await
        .map_err(|_| ImapError::Timeout)??;
        let stream: Box<dyn Stream> = match &self.tls {
            Some(connector) => {
                let name = ServerName::try_from(self.mailbox.host.clone())
                    .map_err(|_| ImapError::Protocol("the host is not a TLS server name".into()))?;
                Box::new(
                    tokio::time::timeout(READ_TIMEOUT, connector.connect(name, tcp))
                        .await
                        .map_err(|_| ImapError::Timeout)??,
                )
            }
            None => Box::new(tcp),
        };
        let mut c = Connection::new(stream, self.max_message_bytes);
        let greeting = c.read_response(READ_TIMEOUT).await?;
        if !greeting.line.starts_with(b"* OK") && !greeting.line.starts_with(b"* PREAUTH") {
            return Err(ImapError::Protocol(format!("greeting: {}", printable(&greeting.line))));
        }
        let login = format!(
            "LOGIN {} {}",
            quoted(&self.mailbox.user),
            quoted(&self.mailbox.password)
        );
        c.command_secret(&login).await?;
        let capabilities = c.capabilities().await?;
        let has = |name: &str| capabilities.iter().any(|c| c.eq_ignore_ascii_case(name));
        let (idle, moves, uidplus) = (has("IDLE"), has("MOVE"), has("UIDPLUS"));
        if !self.done_folder.is_empty() {
            // NO [ALREADYEXISTS] is the usual answer after the first time.
            let _ = c.command(&format!("CREATE {}", quoted(&self.done_folder))).await?;
        }
        let selected = c
            .command(&format!("SELECT {}", quoted(&self.mailbox.mailbox)))
            .await?
            .ok()?;
        let uidvalidity = selected
            .iter()
            .find_map(|r| response_code_number(&r.line, b"UIDVALIDITY"))
            .ok_or_else(|| ImapError::Protocol("SELECT gave no UIDVALIDITY".into()))?;
        let ways = Disposal { moves, uidplus };
        loop {
            self.drain(&mut c, uidvalidity, ways, skipped).await?;
            if *stopped.borrow() {
                let _ = c.command("LOGOUT").await;
                return Ok(());
            }
            if idle {
                c.idle(self.poll, stopped).await?;
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(self.poll) => {}
                    _ = stopped.wait_for(|s| *s) => {}
                }
                // Keeps the session alive and lets the server report new mail.
                c.command("NOOP").await?.ok()?;
            }
        }
    }

    /// Stores and moves every message in the selected mailbox.
    async fn drain(
        &self,
        c: &mut Connection,
        uidvalidity: u32,
        ways: Disposal,
        skipped: &mut HashSet<(u32, u32)>,
    ) -> Result<(), ImapError> {
        loop {
            let found = c.command("UID SEARCH ALL").await?.ok()?;
            let mut uids: Vec<u32> = found
                .iter()
                .filter_map(|r| r.line.strip_prefix(b"* SEARCH"))
                .flat_map(|rest| {
                    String::from_utf8_lossy(rest)
                        .split_ascii_whitespace()
                        .filter_map(|n| n.parse().ok())
                        .collect::<Vec<u32>>()
                })
                .filter(|uid| !skipped.contains(&(uidvalidity, *uid)))
                .collect();
            uids.sort_unstable();
            if uids.is_empty() {
                return Ok(());
            }
            uids.truncate(BATCH);
            for uid in uids {
                self.handle(c, uidvalidity, uid, ways, skipped).await?;
            }
        }
    }

    async fn handle(
        &self,
        c: &mut Connection,
        uidvalidity: u32,
        uid: u32,
        ways: Disposal,
        skipped: &mut HashSet<(u32, u32)>,
    ) -> Result<(), ImapError> {
        let sized = c.command(&format!("UID FETCH {uid} (RFC822.SIZE)")).await?.ok()?;
        let Some(size) = sized.iter().find_map(|r| fetch_number(&r.line, b"RFC822.SIZE")) else {
            // Expunged by someone else since the SEARCH.
            return Ok(());
        };
        if size as usize > self.max_message_bytes {
            tracing::warn!(mailbox = ?self.mailbox, uid, size, limit = self.max_message_bytes,
                "an IMAP message is over inbound.max_message_bytes; it is left in the mailbox");
            skipped.insert((uidvalidity, uid));
            return Ok(());
        }
        let fetched = c.command(&format!("UID FETCH {uid} (BODY.PEEK[])")).await?.ok()?;
        let Some(raw) = fetched
            .into_iter()
            .find(|r| r.line.starts_with(b"* "))
            .and_then(|r| r.literals.into_iter().next())
        else {
            return Ok(());
        };
        let key = format!("imap:{}:{uidvalidity}:{uid}", self.mailbox.mailbox);
        let stored = self
            .inbound
            .accept(Arrival {
                source: InboundSource::Imap,
                dedupe_key: Some(key),
                envelope_to: Vec::new(),
                raw,
            })
            .await
            .map_err(ImapError::Database)?;
        if let Stored::Duplicate(id) = stored {
            tracing::info!(inbound_message = %id, uid, "an IMAP message was stored before (a crash before it was moved); moving it");
        }
        self.dispose(c, uid, ways).await
    }

    /// Moves the message to the done folder, or deletes it.
    async fn dispose(&self, c: &mut Connection, uid: u32, ways: Disposal) -> Result<(), ImapError> {
        if !self.done_folder.is_empty() {
            let folder = quoted(&self.done_folder);
            if ways.moves {
                return c.command(&format!("UID MOVE {uid} {folder}")).await?.ok().map(drop);
            }
            c.command(&format!("UID COPY {uid} {folder}")).await?.ok()?;
        }
        c.command(&format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"))
            .await?
            .ok()?;
        // Without UIDPLUS, EXPUNGE also removes others' \Deleted messages:
        // in a mailbox kept for Gazette, that is what they were marked for.
        let expunge = if ways.uidplus {
            format!("UID EXPUNGE {uid}")
        } else {
            "EXPUNGE".into()
        };
        c.command(&expunge).await?.ok().map(drop)
    }
}

#[derive(Debug, Clone, Copy)]
struct Disposal {
    moves: bool,
    uidplus: bool,
}

/// A URL part with its `%XX` escapes decoded (a user `a%40b` is `a@b`).
fn percent_decoded(part: &str) -> Result<String, String> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(byte.ok_or("inbound.imap_url: a bad %-escape")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "inbound.imap_url: not UTF-8 after decoding".to_owned())
}

fn read_secret(file: &Path, key: &str) -> Result<String, String> {
    if file.as_os_str().is_empty() {
        return Err(format!("{key} is empty"));
    }
    let text = std::fs::read_to_string(file).map_err(|e| format!("{key}: cannot read {}: {e}", file.display()))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

/// Public roots, plus the certificates in `ca_file` (a private CA).
fn connector(ca_file: &Path) -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if !ca_file.as_os_str().is_empty() {
        let pem = std::fs::read(ca_file)
            .map_err(|e| format!("inbound.imap_ca_file: cannot read {}: {e}", ca_file.display()))?;
        let mut found = false;
        for certificate in CertificateDer::pem_slice_iter(&pem) {
            let certificate = certificate.map_err(|e| format!("inbound.imap_ca_file: {e}"))?;
            roots
                .add(certificate)
                .map_err(|e| format!("inbound.imap_ca_file: {e}"))?;
            found = true;
        }
        if !found {
            return Err(format!("inbound.imap_ca_file: no certificate in {}", ca_file.display()));
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[derive(Debug, thiserror::Error)]
enum ImapError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the server did not answer in time")]
    Timeout,
    #[error("the server closed the connection")]
    Closed,
    #[error("{0}")]
    Protocol(String),
    #[error("{command} failed: {answer}")]
    Refused { command: String, answer: String },
    #[error("storing a message: {0}")]
    Database(sqlx::Error),
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One server response: its text with each `{n}` literal's bytes taken
/// out into `literals`, in order.
#[derive(Debug, Default)]
struct Response {
    line: Vec<u8>,
    literals: Vec<Vec<u8>>,
}

/// A command's untagged responses and its tagged answer.
struct Answer {
    command: String,
    untagged: Vec<Response>,
    tagged: Vec<u8>,
}

impl Answer {
    fn is_ok(&self) -> bool {
        self.tagged.starts_with(b"OK")
    }

    fn ok(self) -> Result<Vec<Response>, ImapError> {
        match self.is_ok() {
            true => Ok(self.untagged),
            false => Err(ImapError::Refused {
                command: self.command,
                answer: printable(&self.tagged),
            }),
        }
    }
}

struct Connection {
    stream: BufReader<Box<dyn Stream>>,
    next_tag: u32,
    /// The largest literal accepted: a message up to the size limit, plus room.
    max_literal: usize,
}

impl Connection {
    fn new(stream: Box<dyn Stream>, max_message_bytes: usize) -> Self {
        Self {
            stream: BufReader::new(stream),
            next_tag: 0,
            max_literal: max_message_bytes.saturating_add(64 * 1024),
        }
    }

    async fn command(&mut self, command: &str) -> Result<Answer, ImapError> {
        self.send(command, command).await
    }

    /// Sends a command carrying a secret; errors name only its verb.
    async fn command_secret(&mut self, command: &str) -> Result<Vec<Response>, ImapError> {
        let verb = command.split(' ').next().unwrap_or_default();
        self.send(command, verb).await?.ok()
    }

    async fn send(&mut self, command: &str, shown: &str) -> Result<Answer, ImapError> {
        self.next_tag += 1;
        let tag = format!("g{}", self.next_tag);
        let line = format!("{tag} {command}\r\n");
        self.stream.get_mut().write_all(line.as_bytes()).await?;
        self.stream.get_mut().flush().await?;
        let mut untagged = Vec::new();
        loop {
            let response = self.read_response(READ_TIMEOUT).await?;
            if let Some(rest) = response
                .line
                .strip_prefix(tag.as_bytes())
                .and_then(|r| r.strip_prefix(b" "))
            {
                return Ok(Answer {
                    command: shown.to_owned(),
                    untagged,
                    tagged: rest.to_vec(),
                });
            }
            if response.line.starts_with(b"* BYE") {
                return Err(ImapError::Closed);
            }
            untagged.push(response);
        }
    }

    async fn capabilities(&mut self) -> Result<Vec<String>, ImapError> {
        let answer = self.command("CAPABILITY").await?.ok()?;
        Ok(answer
            .iter()
            .filter_map(|r| r.line.strip_prefix(b"* CAPABILITY "))
            .flat_map(|rest| {
                String::from_utf8_lossy(rest)
                    .split_ascii_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect())
    }

    /// Waits in IDLE until the server reports new mail (`EXISTS`), `limit`
    /// passes or `stopped` turns true, then ends the IDLE.
    async fn idle(&mut self, limit: Duration, stopped: &mut watch::Receiver<bool>) -> Result<(), ImapError> {
        self.next_tag += 1;
        let tag = format!("g{}", self.next_tag);
        self.stream
            .get_mut()
            .write_all(format!("{tag} IDLE\r\n").as_bytes())
            .await?;
        self.stream.get_mut().flush().await?;
        let started = self.read_response(READ_TIMEOUT).await?;
        if !started.line.starts_with(b"+") {
            return Err(ImapError::Refused {
                command: "IDLE".into(),
                answer: printable(&started.line),
            });
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || *stopped.borrow() {
                break;
            }
            // A read cut short by the select may lose a partly read line;
            // IDLE's lines are short and arrive whole, and the DONE below
            // is answered by the tagged line we look for anyway.
            let next = tokio::select! {
                r = self.read_response(left) => r,
                _ = stopped.wait_for(|s| *s) => break,
            };
            match next {
                Ok(r) if r.line.ends_with(b"EXISTS") => break,
                Ok(r) if r.line.starts_with(b"* BYE") => return Err(ImapError::Closed),
                Ok(_) => {}
                Err(ImapError::Timeout) => break,
                Err(e) => return Err(e),
            }
        }
        self.stream.get_mut().write_all(b"DONE\r\n").await?;
        self.stream.get_mut().flush().await?;
        loop {
            let r = self.read_response(READ_TIMEOUT).await?;
            if let Some(rest) = r.line.strip_prefix(tag.as_bytes()) {
                return match rest.starts_with(b" OK") {
                    true => Ok(()),
                    false => Err(ImapError::Refused {
                        command: "IDLE".into(),
                        answer: printable(rest),
                    }),
                };
            }
        }
    }

    /// One response: a line, and where it ends in `{n}`, the `n` bytes
    /// after it and the rest of the line after them, and so on.
    async fn read_response(&mut self, limit: Duration) -> Result<Response, ImapError> {
        tokio::time::timeout(limit, self.read_response_now())
            .await
            .map_err(|_| ImapError::Timeout)?
    }

    async fn read_response_now(&mut self) -> Result<Response, ImapError> {
        let mut response = Response::default();
        loop {
            let mut line = Vec::new();
            let n = (&mut self.stream)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)
                .await?;
            if n == 0 {
                return Err(ImapError::Closed);
            }
            if !line.ends_with(b"\n") {
                return Err(ImapError::Protocol("a line over 64 KiB or cut short".into()));
            }
            line.truncate(line.len() - 1);
            if line.ends_with(b"\r") {
                line.pop();
            }
            match literal_length(&line) {
                Some(size) => {
                    if size > self.max_literal {
                        return Err(ImapError::Protocol(format!("a literal of {size} bytes")));
                    }
                    let mut data = vec![0; size];
                    self.stream.read_exact(&mut data).await?;
                    response.line.extend_from_slice(&line);
                    response.literals.push(data);
                }
                None => {
                    response.line.extend_from_slice(&line);
                    return Ok(response);
                }
            }
        }
    }
}

/// `n` when the line ends in `{n}` (a literal follows).
fn literal_length(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&inner[open + 1..]).ok()?.parse().ok()
}

/// The number in a response code: `* OK [UIDVALIDITY 3857529045] …`.
fn response_code_number(line: &[u8], code: &[u8]) -> Option<u32> {
    let text = String::from_utf8_lossy(line);
    let code = std::str::from_utf8(code).ok()?;
    let start = text.find(&format!("[{code} "))? + code.len() + 2;
    text[start..].split(']').next()?.trim().parse().ok()
}

/// A FETCH item's number: `* 3 FETCH (UID 7 RFC822.SIZE 1234)`.
fn fetch_number(line: &[u8], item: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(line);
    if !text.contains(" FETCH ") {
        return None;
    }
    let item = std::str::from_utf8(item).ok()?;
    let mut words = text.split(|c: char| c.is_ascii_whitespace() || c == '(' || c == ')');
    words.find(|w| w.eq_ignore_ascii_case(item))?;
    words.next()?.parse().ok()
}

/// An IMAP quoted string (control characters were refused earlier).
fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A server's words for a log: control characters escaped.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        .escape_debug()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mailbox_url_names_the_server_user_and_folder() {
        let m = Mailbox::parse(
            "imaps://bounces%40example.org@mail.example.org/Bounces%20In",
            "pw".into(),
        )
        .unwrap();
        assert_eq!(
            (m.tls, m.host.as_str(), m.port, m.user.as_str(), m.mailbox.as_str()),
            (true, "mail.example.org", 993, "bounces@example.org", "Bounces In")
        );
        let m = Mailbox::parse("imap://b@127.0.0.1:1143", "pw".into()).unwrap();
        assert_eq!((m.tls, m.port, m.mailbox.as_str()), (false, 1143, "INBOX"));
        assert!(Mailbox::parse("pop3://b@host/INBOX", "pw".into()).is_err());
        assert!(Mailbox::parse("imap://host/INBOX", "pw".into()).is_err());
        assert!(!format!("{m:?}").contains("pw"));
    }

    #[test]
    fn responses_are_read_for_their_numbers_and_literals() {
        assert_eq!(literal_length(b"* 1 FETCH (UID 4 BODY[] {42}"), Some(42));
        assert_eq!(literal_length(b"* OK done"), None);
        assert_eq!(
            response_code_number(b"* OK [UIDVALIDITY 1796067421] UIDs valid", b"UIDVALIDITY"),
            Some(1_796_067_421)
        );
        assert_eq!(
            fetch_number(b"* 2 FETCH (UID 9 RFC822.SIZE 1234)", b"RFC822.SIZE"),
            Some(1234)
        );
        assert_eq!(
            fetch_number(b"* 2 FETCH (RFC822.SIZE 77 UID 9)", b"RFC822.SIZE"),
            Some(77)
        );
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
