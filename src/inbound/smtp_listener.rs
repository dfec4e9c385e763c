//! The SMTP/LMTP listener (`inbound.smtp_listen`) the operator's MTA hands
//! the bounce domain to.
//!
//! One port speaks both: a client that greets with `LHLO` gets LMTP (RFC
//! 2033: one reply per accepted recipient after the message), one that
//! greets with `EHLO` or `HELO` gets SMTP (RFC 5321). It is the last hop
//! for the bounce domain, not a relay: it takes a recipient only when
//! [`ReturnPaths::read`] knows it (a return path or a reader's unsubscribe
//! address, with a valid MAC or token) or when it is the domain's
//! `postmaster` (RFC 5321 §4.5.1 requires it; such mail is stored and shows
//! in the staff area as unknown). Everything else gets `550 5.1.1`.
//!
//! What it promises a sending MTA: `250` after the message is stored
//! ([`Inbound::accept`]), never before, so an answer lost to a crash makes
//! the MTA try again rather than lose the bounce; `451 4.3.0` when the
//! database cannot take it. What it defends against: a message over
//! `inbound.max_message_bytes` is refused with `552 5.3.4` (by its
//! declared `SIZE`, or counted while reading: the rest is read and
//! discarded, never kept); more than `inbound.max_connections` connections
//! at once get `421` and are closed; every read has a timeout; command
//! lines are cut at [`COMMAND_LINE_MAX`] octets; a client that keeps
//! sending bad commands is disconnected. Outside text (names, addresses)
//! reaches the log escaped ([`crate::terminal::escape`]).

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::{Arrival, Inbound};
use crate::config::InboundSettings;
use crate::domain::InboundSource;
use crate::terminal::escape;

/// The longest command line taken, CRLF included: RFC 5321's 512 octets
/// (§4.5.3.1.4) with room for the parameters of the extensions offered.
pub const COMMAND_LINE_MAX: usize = 1000;
/// Recipients per message (RFC 5321 §4.5.3.1.8's minimum); more get 452.
const MAX_RECIPIENTS: usize = 100;
/// Bad commands a connection may send before it is closed.
const MAX_ERRORS: u32 = 20;
/// How long connections still open at shutdown may take to finish the
/// message they are in (the application waits 30 s for the whole role).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// What the listener allows.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A larger message is refused with 552.
    pub max_message_bytes: usize,
    /// Connections at once; more are greeted with 421 and closed.
    pub max_connections: usize,
    /// Each read (a command, or the next part of a message) must come
    /// within this, or the connection is closed with 421. RFC 5321
    /// §4.5.3.2 asks clients for 5 minutes at most between commands.
    pub read_timeout: Duration,
}

impl Limits {
    pub fn from_settings(settings: &InboundSettings) -> Self {
        Self {
            max_message_bytes: settings.max_message_bytes,
            max_connections: settings.max_connections.max(1),
            ..Self::default()
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 10 * 1024 * 1024,
            max_connections: 20,
            read_timeout: Duration::from_secs(300),
        }
    }
}

pub struct Listener {
    listener: TcpListener,
    inbound: Inbound,
    limits: Limits,
}

impl Listener {
    /// With the default [`Limits`]; `gazette serve` sets the configured
    /// ones with [`Listener::with_limits`].
    pub fn new(listener: TcpListener, inbound: Inbound) -> Self {
        Self {
            listener,
            inbound,
            limits: Limits::default(),
        }
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Serves until `stopped` turns true. Then it takes no new connection;
    /// open ones are told `421` at their next command, and one in the
    /// middle of a message may finish it (for [`SHUTDOWN_GRACE`]).
    pub async fn run(self, mut stopped: watch::Receiver<bool>) {
        let Self {
            listener,
            inbound,
            limits,
        } = self;
        let listener = match listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(listener))
        {
            Ok(listener) => listener,
            Err(e) => {
                tracing::error!(error = %e, "the inbound mail listener cannot start");
                return;
            }
        };
        let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(%address, max_connections = limits.max_connections,
            max_message_bytes = limits.max_message_bytes, "inbound mail listener (SMTP and LMTP) started");
        let shared = Arc::new(Shared {
            hostname: inbound
                .return_paths()
                .map_or_else(|| "gazette".to_owned(), |p| p.domain().to_owned()),
            inbound,
            limits,
        });
        let permits = Arc::new(Semaphore::new(limits.max_connections));
        let mut sessions = JoinSet::new();
        let for_sessions = stopped.clone();
        loop {
            tokio::select! {
                () = until_stopped(&mut stopped) => break,
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let shared = shared.clone();
                        match permits.clone().try_acquire_owned() {
                            Ok(permit) => {
                                let stopped = for_sessions.clone();
                                sessions.spawn(async move {
                                    shared.serve(stream, peer, stopped).await;
                                    drop(permit);
                                });
                            }
                            Err(_) => {
                                tracing::warn!(%peer, "inbound mail: too many connections; refusing one with 421");
                                sessions.spawn(async move { shared.refuse(stream).await });
                            }
                        }
                    }
                    Err(e) => {
                        // Out of file descriptors, mostly: wait rather than spin.
                        tracing::warn!(error = %e, "inbound mail: cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        drop(listener);
        let finished =
            tokio::time::timeout(SHUTDOWN_GRACE, async { while sessions.join_next().await.is_some() {} }).await;
        if finished.is_err() {
            tracing::warn!(
                connections = sessions.len(),
                "inbound mail: closing connections still open at shutdown"
            );
            sessions.abort_all();
        }
        tracing::info!("inbound mail listener stopped");
    }
}

/// Returns once `stopped` turns true (or its sender is gone).
async fn until_stopped(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

struct Shared {
    inbound: Inbound,
    limits: Limits,
    /// The name in the greeting and replies: the bounce domain.
    hostname: String,
}

impl Shared {
    async fn refuse(&self, mut stream: TcpStream) {
        let reply = format!("421 4.3.2 {} too many connections, try again later\r\n", self.hostname);
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            stream.write_all(reply.as_bytes()).await?;
            stream.shutdown().await
        })
        .await;
    }

    async fn serve(&self, stream: TcpStream, peer: SocketAddr, stopped: watch::Receiver<bool>) {
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let mut session = Session {
            shared: self,
            peer,
            reader: BufReader::new(read),
            writer: write,
            stopped,
            protocol: None,
            transaction: None,
            errors: 0,
        };
        match session.run().await {
            Ok(()) => tracing::debug!(%peer, "inbound mail: connection closed"),
            Err(e) => tracing::debug!(%peer, error = %e, "inbound mail: connection ended"),
        }
    }
}

/// Which protocol the client's greeting chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Smtp,
    Lmtp,
}

/// A message being received: MAIL FROM given, recipients so far.
struct Transaction {
    recipients: Vec<String>,
}

struct Session<'a, R, W> {
    shared: &'a Shared,
    peer: SocketAddr,
    reader: BufReader<R>,
    writer: W,
    stopped: watch::Receiver<bool>,
    protocol: Option<Protocol>,
    transaction: Option<Transaction>,
    errors: u32,
}

/// Why a session ended without a reply of its own.
enum End {
    /// QUIT, the client hung up, or the session said its last word.
    Closed,
}

impl<R, W> Session<'_, R, W>
where
    R: tokio::io::AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    async fn run(&mut self) -> io::Result<()> {
        let greeting = format!("220 {} ESMTP Gazette inbound mail\r\n", self.shared.hostname);
        self.reply(&greeting).await?;
        let mut line = Vec::with_capacity(256);
        loop {
            line.clear();
            let read = tokio::select! {
                biased;
                read = tokio::time::timeout(
                    self.shared.limits.read_timeout,
                    read_line(&mut self.reader, &mut line, COMMAND_LINE_MAX),
                ) => Some(read),
                () = until_stopped(&mut self.stopped) => None,
            };
            let read = match read {
                Some(Ok(read)) => read?,
                Some(Err(_)) => {
                    let bye = format!("421 4.4.2 {} timeout, closing\r\n", self.shared.hostname);
                    return self.reply(&bye).await;
                }
                None => {
                    let bye = format!("421 4.3.2 {} shutting down, try again later\r\n", self.shared.hostname);
                    return self.reply(&bye).await;
                }
            };
            if read.consumed == 0 {
                return Ok(());
            }
            let reply = if read.cut {
                Reply::Error("500 5.5.2 Line too long\r\n".into())
            } else {
                match self.command(&line).await? {
                    Ok(reply) => reply,
                    Err(End::Closed) => return Ok(()),
                }
            };
            match reply {
                Reply::Ok(text) => self.reply(&text).await?,
                Reply::Error(text) => {
                    self.reply(&text).await?;
                    self.errors += 1;
                    if self.errors >= MAX_ERRORS {
                        return self.reply("421 4.7.0 Too many errors, closing\r\n").await;
                    }
                }
            }
        }
    }

    async fn reply(&mut self, text: &str) -> io::Result<()> {
        self.writer.write_all(text.as_bytes()).await?;
        self.writer.flush().await
    }

    async fn command(&mut self, line: &[u8]) -> io::Result<Result<Reply, End>> {
        let Ok(line) = std::str::from_utf8(line) else {
            return Ok(Ok(Reply::Error("500 5.5.2 Syntax error\r\n".into())));
        };
        let line = line.trim_end_matches(['\r', '\n']);
        let (verb, argument) = match line.split_once(' ') {
            Some((verb, argument)) => (verb, argument.trim()),
            None => (line, ""),
        };
        let hostname = &self.shared.hostname;
        let reply = match verb.to_ascii_uppercase().as_str() {
            "EHLO" | "HELO" | "LHLO" if argument.is_empty() => {
                Reply::Error("501 5.5.4 A domain is required\r\n".into())
            }
            "LHLO" | "EHLO" => {
                self.protocol = Some(match verb.eq_ignore_ascii_case("LHLO") {
                    true => Protocol::Lmtp,
                    false => Protocol::Smtp,
                });
                self.transaction = None;
                Reply::Ok(format!(
                    "250-{hostname}\r\n250-PIPELINING\r\n250-SIZE {}\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n",
                    self.shared.limits.max_message_bytes
                ))
            }
            "HELO" => {
                self.protocol = Some(Protocol::Smtp);
                self.transaction = None;
                Reply::Ok(format!("250 {hostname}\r\n"))
            }
            "MAIL" => self.mail(argument),
            "RCPT" => self.rcpt(argument),
            "DATA" => return self.data(argument).await,
            "RSET" => {
                self.transaction = None;
                Reply::Ok("250 2.0.0 Ok\r\n".into())
            }
            "NOOP" => Reply::Ok("250 2.0.0 Ok\r\n".into()),
            "QUIT" => {
                let bye = format!("221 2.0.0 {hostname} closing\r\n");
                self.reply(&bye).await?;
                return Ok(Err(End::Closed));
            }
            "VRFY" => Reply::Ok("252 2.5.0 Cannot verify, send the message\r\n".into()),
            "HELP" => Reply::Ok("214 2.0.0 See RFC 5321 and RFC 2033\r\n".into()),
            "STARTTLS" | "AUTH" | "BDAT" | "EXPN" | "ETRN" | "TURN" => {
                Reply::Error("502 5.5.1 Not implemented\r\n".into())
            }
            _ => Reply::Error("500 5.5.2 Unknown command\r\n".into()),
        };
        Ok(Ok(reply))
    }

    fn mail(&mut self, argument: &str) -> Reply {
        if self.protocol.is_none() {
            return Reply::Error("503 5.5.1 Say hello first\r\n".into());
        }
        if self.transaction.is_some() {
            return Reply::Error("503 5.5.1 Nested MAIL command\r\n".into());
        }
        let Some((sender, parameters)) = path_after(argument, "FROM:") else {
            return Reply::Error("501 5.5.4 Syntax: MAIL FROM:<address>\r\n".into());
        };
        for parameter in parameters.split_whitespace() {
            let (key, value) = parameter.split_once('=').unwrap_or((parameter, ""));
            match key.to_ascii_uppercase().as_str() {
                "SIZE" => match value.parse::<u64>() {
                    Ok(size) if size > self.shared.limits.max_message_bytes as u64 => {
                        return Reply::Error("552 5.3.4 Message size exceeds fixed maximum message size\r\n".into());
                    }
                    Ok(_) => {}
                    Err(_) => return Reply::Error("501 5.5.4 Bad SIZE parameter\r\n".into()),
                },
                "BODY" if value.eq_ignore_ascii_case("7BIT") || value.eq_ignore_ascii_case("8BITMIME") => {}
                _ => return Reply::Error("555 5.5.4 Unsupported MAIL parameter\r\n".into()),
            }
        }
        // Bounces come from the null sender `<>`; any sender is fine: what
        // is taken is decided by the recipient.
        tracing::debug!(peer = %self.peer, sender = %escape(sender), "inbound mail: MAIL FROM");
        self.transaction = Some(Transaction { recipients: Vec::new() });
        Reply::Ok("250 2.1.0 Ok\r\n".into())
    }

    fn rcpt(&mut self, argument: &str) -> Reply {
        let Some(transaction) = self.transaction.as_mut() else {
            return Reply::Error("503 5.5.1 MAIL first\r\n".into());
        };
        let Some((recipient, parameters)) = path_after(argument, "TO:") else {
            return Reply::Error("501 5.5.4 Syntax: RCPT TO:<address>\r\n".into());
        };
        if !parameters.is_empty() {
            return Reply::Error("555 5.5.4 Unsupported RCPT parameter\r\n".into());
        }
        if transaction.recipients.len() >= MAX_RECIPIENTS {
            return Reply::Error("452 4.5.3 Too many recipients\r\n".into());
        }
        if !ours(&self.shared.inbound, &self.shared.hostname, recipient) {
            tracing::info!(peer = %self.peer, recipient = %escape(recipient),
                "inbound mail: refused a recipient that is not ours");
            return Reply::Error("550 5.1.1 No such recipient here\r\n".into());
        }
        transaction.recipients.push(recipient.to_owned());
        Reply::Ok("250 2.1.5 Ok\r\n".into())
    }

    async fn data(&mut self, argument: &str) -> io::Result<Result<Reply, End>> {
        if !argument.is_empty() {
            return Ok(Ok(Reply::Error("501 5.5.4 DATA takes no argument\r\n".into())));
        }
        let recipients = match &self.transaction {
            None => return Ok(Ok(Reply::Error("503 5.5.1 MAIL first\r\n".into()))),
            Some(t) if t.recipients.is_empty() => {
                return Ok(Ok(Reply::Error("554 5.5.1 No valid recipients\r\n".into())));
            }
            Some(t) => t.recipients.clone(),
        };
        self.transaction = None;
        self.reply("354 End data with <CR><LF>.<CR><LF>\r\n").await?;
        let limits = self.shared.limits;
        let message = match read_data(&mut self.reader, limits.max_message_bytes, limits.read_timeout).await {
            Ok(message) => message,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                let bye = format!("421 4.4.2 {} timeout, closing\r\n", self.shared.hostname);
                self.reply(&bye).await?;
                return Ok(Err(End::Closed));
            }
            Err(e) => return Err(e),
        };
        let reply = match message {
            None => {
                tracing::info!(peer = %self.peer, limit = limits.max_message_bytes,
                    "inbound mail: refused a message over the size limit");
                "552 5.3.4 Message size exceeds fixed maximum message size\r\n".to_owned()
            }
            Some(raw) => {
                let size = raw.len();
                // An MTA whose 250 got lost sends the same bytes again:
                // stored once, or a soft bounce would count twice.
                let dedupe_key = Some(same_message_key(&recipients, &raw));
                let arrival = Arrival {
                    source: InboundSource::Smtp,
                    dedupe_key,
                    envelope_to: recipients.clone(),
                    raw,
                };
                match self.shared.inbound.accept(arrival).await {
                    Ok(stored) => {
                        let id = stored.id();
                        tracing::info!(peer = %self.peer, inbound_message = %id, size,
                            recipients = %escape(&recipients.join(", ")), "inbound mail: message stored");
                        format!("250 2.0.0 Ok: stored as {id}\r\n")
                    }
                    Err(e) => {
                        tracing::warn!(peer = %self.peer, error = %e,
                            "inbound mail: cannot store a message; the sender will try again");
                        "451 4.3.0 Cannot store the message now, try again later\r\n".to_owned()
                    }
                }
            }
        };
        // LMTP answers once for each recipient taken (RFC 2033 §4.2); the
        // message is stored once for them all, so they share its fate.
        let replies = match self.protocol {
            Some(Protocol::Lmtp) => recipients.len(),
            _ => 1,
        };
        let text = reply.repeat(replies);
        Ok(Ok(match text.starts_with('2') {
            true => Reply::Ok(text),
            false => Reply::Error(text),
        }))
    }
}

/// A reply, and whether it counts as the client's error.
enum Reply {
    Ok(String),
    Error(String),
}

/// Whether mail for `recipient` is taken: an address [`ReturnPaths::read`]
/// knows, or the bounce domain's postmaster (bare `<postmaster>` too).
///
/// [`ReturnPaths::read`]: crate::mail::verp::ReturnPaths::read
fn ours(inbound: &Inbound, hostname: &str, recipient: &str) -> bool {
    let Some(paths) = inbound.return_paths() else {
        return false;
    };
    if recipient.eq_ignore_ascii_case("postmaster") {
        return true;
    }
    if let Some((local, domain)) = recipient.rsplit_once('@')
        && local.eq_ignore_ascii_case("postmaster")
        && domain.eq_ignore_ascii_case(hostname)
    {
        return true;
    }
    paths.read(recipient).is_some()
}

/// Reads `FROM:<path> params` (or `TO:`): the address inside the angle
/// brackets, without a source route (`<@relay:user@host>`, RFC 5321
/// §4.1.2), and what follows. `None` when it is not of that form or the
/// address holds spaces or control characters.
fn path_after<'a>(argument: &'a str, keyword: &str) -> Option<(&'a str, &'a str)> {
    let head = argument.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = argument[keyword.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let (path, parameters) = rest.split_once('>')?;
    let address = match path.starts_with('@') {
        true => path.split_once(':')?.1,
        false => path,
    };
    if address.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<') {
        return None;
    }
    Some((address, parameters.trim()))
}

/// What one [`read_line`] read.
#[derive(Debug, Clone, Copy)]
struct LineRead {
    /// Octets taken from the connection (0: it was closed).
    consumed: usize,
    /// The line was longer than the limit: the rest of it was read and
    /// dropped.
    cut: bool,
    /// It ended with CRLF (kept or not).
    crlf: bool,
}

/// Reads through the next LF, keeping at most `limit` octets of the line
/// in `line` (appended); a longer line is read to its end but not kept, so
/// a client can make it use no more memory than that.
async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R, line: &mut Vec<u8>, limit: usize) -> io::Result<LineRead> {
    let start = line.len();
    let mut read = LineRead {
        consumed: 0,
        cut: false,
        crlf: false,
    };
    let mut last = None;
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            return Ok(read);
        }
        let (chunk, ended) = match buffer.iter().position(|&b| b == b'\n') {
            Some(i) => (&buffer[..=i], true),
            None => (buffer, false),
        };
        let room = limit.saturating_sub(line.len() - start);
        if chunk.len() > room {
            line.extend_from_slice(&chunk[..room]);
            read.cut = true;
        } else {
            line.extend_from_slice(chunk);
        }
        let n = chunk.len();
        let before_lf = match n {
            1 => last,
            _ => Some(chunk[n - 2]),
        };
        last = chunk.last().copied();
        reader.consume(n);
        read.consumed += n;
        if ended {
            read.crlf = before_lf == Some(b'\r');
            return Ok(read);
        }
    }
}

/// Reads a message after DATA's 354 through the line `.` (CRLF before and
/// after it: a `.` after a bare LF does not end it, so no message can be
/// smuggled past the end), undoing dot-stuffing. `Ok(None)` when it is
/// larger than `max` octets: the rest is read and dropped, never kept.
/// A read that takes longer than `timeout` is an error of kind `TimedOut`;
/// a connection closed before the end, `UnexpectedEof`.
async fn read_data<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
    timeout: Duration,
) -> io::Result<Option<Vec<u8>>> {
    let mut message = Vec::with_capacity(max.min(64 * 1024));
    let mut over = false;
    let mut line = Vec::with_capacity(1024);
    // The message so far ends with CRLF (or is empty): where `.` may end it.
    let mut after_crlf = true;
    loop {
        line.clear();
        // One more than the room: a stuffed line that fits once unstuffed.
        let room = match over {
            true => 0,
            false => max - message.len(),
        };
        let limit = (room + 1).max(3);
        let read = tokio::time::timeout(timeout, read_line(reader, &mut line, limit))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no data within the timeout"))??;
        if read.consumed == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed in the middle of a message",
            ));
        }
        if !read.cut && after_crlf && line == b".\r\n" {
            return Ok((!over).then_some(message));
        }
        after_crlf = read.crlf;
        if over {
            continue;
        }
        let text = match line.first() {
            Some(b'.') if !read.cut => &line[1..],
            _ => &line[..],
        };
        if read.cut || text.len() > room {
            over = true;
            message = Vec::new();
            continue;
        }
        message.extend_from_slice(text);
    }
}

/// Names a message by its envelope recipients and bytes: the same
/// message delivered again gets the same key.
fn same_message_key(recipients: &[String], raw: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for recipient in recipients {
        hash.update(recipient.as_bytes());
        hash.update(b"\n");
    }
    hash.update(raw);
    let digest = hash.finalize();
    let hex = crate::domain::lower_hex(&digest);
    format!("smtp:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn data(input: &[u8], max: usize) -> io::Result<Option<Vec<u8>>> {
        let mut reader = BufReader::with_capacity(7, input);
        read_data(&mut reader, max, Duration::from_secs(5)).await
    }

    #[tokio::test]
    async fn a_message_ends_at_crlf_dot_crlf_and_is_unstuffed() {
        let got = data(b"Subject: x\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n", 1000)
            .await
            .unwrap();
        assert_eq!(got.unwrap(), b"Subject: x\r\n\r\n.dot\r\nbody\r\n");
        assert_eq!(data(b".\r\n", 10).await.unwrap().unwrap(), b"");
    }

    #[tokio::test]
    async fn a_dot_after_a_bare_lf_does_not_end_the_message() {
        let got = data(b"a\n.\r\nMAIL FROM:<x@y>\r\n.\r\n", 1000).await.unwrap().unwrap();
        assert_eq!(got, b"a\n\r\nMAIL FROM:<x@y>\r\n");
    }

    #[tokio::test]
    async fn a_message_over_the_limit_is_read_to_its_end_and_dropped() {
        let mut input = b"x: y\r\n\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'a', 5000));
        input.extend_from_slice(b"\r\nmore\r\n.\r\nNOOP\r\n");
        let mut reader = BufReader::with_capacity(64, &input[..]);
        assert_eq!(read_data(&mut reader, 100, Duration::from_secs(5)).await.unwrap(), None);
        let mut rest = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut reader, &mut rest)
            .await
            .unwrap();
        assert_eq!(rest, "NOOP\r\n", "the rest of the message was consumed, nothing more");
        // Exactly the limit fits, one more does not.
        assert_eq!(data(b"..abc\r\n.\r\n", 6).await.unwrap().unwrap(), b".abc\r\n");
        assert_eq!(data(b"abcde\r\n.\r\n", 6).await.unwrap(), None);
        // A line cut short still ends with its CRLF: the `.` after it ends the message.
        assert_eq!(data(b"abcdefgh\r\n.\r\n", 3).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_connection_closed_mid_message_is_an_error() {
        let e = data(b"Subject: x\r\n", 1000).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn a_long_command_line_is_cut_and_read_to_its_end() {
        let mut input = vec![b'A'; 5000];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        let mut reader = BufReader::with_capacity(16, &input[..]);
        let mut line = Vec::new();
        let read = read_line(&mut reader, &mut line, COMMAND_LINE_MAX).await.unwrap();
        assert!(read.cut);
        assert_eq!((read.consumed, line.len()), (5002, COMMAND_LINE_MAX));
        line.clear();
        let read = read_line(&mut reader, &mut line, COMMAND_LINE_MAX).await.unwrap();
        assert!(!read.cut);
        assert_eq!(line, b"NOOP\r\n");
    }

    #[test]
    fn paths_are_read_from_mail_and_rcpt_arguments() {
        assert_eq!(path_after("FROM:<>", "FROM:"), Some(("", "")));
        assert_eq!(
            path_after("from: <a@b.example> SIZE=10 BODY=8BITMIME", "FROM:"),
            Some(("a@b.example", "SIZE=10 BODY=8BITMIME"))
        );
        assert_eq!(
            path_after("TO:<@relay.example:u@h.example>", "TO:"),
            Some(("u@h.example", ""))
        );
        assert_eq!(path_after("TO:u@h.example", "TO:"), None);
        assert_eq!(path_after("TO:<u @h>", "TO:"), None);
        assert_eq!(path_after("TO:<u\u{1b}[31m@h>", "TO:"), None);
        assert_eq!(path_after("FROM:<a@b>", "TO:"), None);
    }
}
