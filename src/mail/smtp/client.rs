//! One SMTP connection, spoken by Gazette itself: the greeting, EHLO and
//! the extensions it lists, STARTTLS or TLS from the first byte, AUTH PLAIN
//! or LOGIN, and replies (multi-line, with enhanced status codes). The
//! transaction on top of it is in `transaction.rs`.
//!
//! Every read and write is bounded by the relay's timeout, and a client
//! that saw its connection fail (an I/O error, a timeout, the end of the
//! stream, a 421) marks itself broken so that it is never reused.

use std::fmt;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// More than any honest reply (an EHLO list is a few hundred octets): a
/// relay that sends an endless reply is cut off rather than filling memory.
const REPLY_LIMIT: usize = 64 * 1024;

/// At most this many buffers go to one gathering write (Linux's IOV_MAX).
const MAX_SLICES: usize = 1024;

/// A server's reply: its code and its lines of text, with control
/// characters escaped (the text is the relay's, and may reach a log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Reply {
    pub code: u16,
    lines: Vec<String>,
}

impl Reply {
    /// A 2xx reply.
    pub fn is_success(&self) -> bool {
        self.code / 100 == 2
    }

    /// A 5xx reply: trying the same again cannot help.
    pub fn is_permanent(&self) -> bool {
        self.code / 100 == 5
    }

    /// 421: the server is closing the connection.
    pub fn is_closing(&self) -> bool {
        self.code == 421
    }

    /// The enhanced status code (RFC 3463) that begins the reply's text,
    /// such as `5.3.4`, if there is one.
    pub fn enhanced(&self) -> Option<(u8, u16, u16)> {
        let word = self.lines.first()?.split_whitespace().next()?;
        let mut parts = word.split('.');
        let class = parts.next()?.parse().ok().filter(|c| matches!(c, 2 | 4 | 5))?;
        let subject = parts.next()?.parse().ok()?;
        let detail = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some((class, subject, detail))
    }

    fn lines(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(String::as_str)
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        for line in &self.lines {
            if !line.is_empty() {
                write!(f, " {line}")?;
            }
        }
        Ok(())
    }
}

/// The relay's text with control characters (a terminal's escapes, line
/// ends) written as escapes.
fn escape(text: &[u8]) -> String {
    // Nearly every reply (`250 2.0.0 Ok`) is printable ASCII throughout:
    // then it is its own text, with no character to look at twice.
    if text.iter().all(|b| (b' '..=b'~').contains(b)) {
        return text.iter().map(|&b| char::from(b)).collect();
    }
    let mut out = String::with_capacity(text.len());
    for c in String::from_utf8_lossy(text).chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// What the relay offers in its EHLO reply, as far as Gazette uses it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Extensions {
    pub pipelining: bool,
    /// `SIZE` was listed; its number, when one was given and is not 0
    /// (which means no limit).
    pub size: Option<Option<u64>>,
    pub eight_bit_mime: bool,
    pub smtp_utf8: bool,
    pub enhanced_status_codes: bool,
    pub starttls: bool,
    /// The AUTH mechanisms offered, upper-case.
    pub auth: Vec<String>,
}

impl Extensions {
    /// The extensions in an EHLO reply (its first line is the server's name).
    fn from_ehlo(reply: &Reply) -> Self {
        let mut extensions = Self::default();
        for line in reply.lines().skip(1) {
            let mut words = line.split_whitespace();
            let Some(keyword) = words.next() else { continue };
            let keyword = keyword.to_ascii_uppercase();
            // Some old servers write `AUTH=PLAIN LOGIN`.
            let (keyword, first) = match keyword.split_once('=') {
                Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                None => (keyword, None),
            };
            let mut words = first.into_iter().chain(words.map(str::to_owned));
            match keyword.as_str() {
                "PIPELINING" => extensions.pipelining = true,
                "SIZE" => {
                    let limit = words.next().and_then(|n| n.parse::<u64>().ok()).filter(|n| *n > 0);
                    extensions.size = Some(limit);
                }
                "8BITMIME" => extensions.eight_bit_mime = true,
                "SMTPUTF8" => extensions.smtp_utf8 = true,
                "ENHANCEDSTATUSCODES" => extensions.enhanced_status_codes = true,
                "STARTTLS" => extensions.starttls = true,
                "AUTH" => extensions.auth.extend(words.map(|w| w.to_ascii_uppercase())),
                _ => {}
            }
        }
        extensions
    }

    /// The largest message the relay takes, if it said.
    pub fn size_limit(&self) -> Option<u64> {
        self.size.flatten()
    }
}

/// Why a step on the connection failed.
#[derive(Debug)]
pub(super) enum ClientError {
    Io(io::Error),
    Timeout(Duration),
    /// The relay closed the connection.
    Closed,
    /// The relay wrote something that is not an SMTP reply.
    Malformed(String),
    /// The relay answered, but not with what the step needs.
    Reply(Reply),
    /// The relay does not offer what the settings require.
    Missing(&'static str),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::Timeout(limit) => write!(f, "no answer within {} s", limit.as_secs()),
            ClientError::Closed => write!(f, "the relay closed the connection"),
            ClientError::Malformed(why) => write!(f, "the relay's reply is not SMTP: {why}"),
            ClientError::Reply(reply) => write!(f, "{reply}"),
            ClientError::Missing(what) => write!(f, "the relay does not offer {what}"),
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// How the connection is secured.
pub(super) enum Security {
    Plain,
    Starttls(tokio_rustls::TlsConnector, ServerName<'static>),
    Implicit(tokio_rustls::TlsConnector, ServerName<'static>),
}

/// What opening a connection needs.
pub(super) struct Dial<'a> {
    pub host: &'a str,
    pub port: u16,
    pub security: &'a Security,
    /// The EHLO argument.
    pub hello: &'a str,
    pub credentials: Option<(&'a str, &'a str)>,
    pub timeout: Duration,
}

/// An open, greeted (and, as the settings say, secured and authenticated)
/// connection.
pub(super) struct Client {
    stream: Stream,
    /// Bytes read from the relay and not yet taken as a reply.
    input: Vec<u8>,
    /// The bytes of the next command, kept to reuse its allocation.
    output: Vec<u8>,
    extensions: Extensions,
    timeout: Duration,
    broken: bool,
}

impl Client {
    /// Connects, reads the greeting, says EHLO (HELO to a server that
    /// does not know EHLO), then STARTTLS and AUTH as `dial` says. The
    /// caller bounds the whole by its timeout.
    pub async fn connect(dial: &Dial<'_>) -> Result<Self, ClientError> {
        let tcp = TcpStream::connect((dial.host, dial.port)).await?;
        // Each write is a whole batch of commands or a whole message: no
        // reason to wait for the peer's ACK of the previous one.
        tcp.set_nodelay(true)?;
        let stream = match dial.security {
            Security::Implicit(connector, name) => Stream::Tls(Box::new(connector.connect(name.clone(), tcp).await?)),
            _ => Stream::Plain(tcp),
        };
        let mut client = Self {
            stream,
            input: Vec::with_capacity(1024),
            output: Vec::new(),
            extensions: Extensions::default(),
            timeout: dial.timeout,
            broken: false,
        };
        client.expect(220).await?;
        client.hello(dial.hello).await?;
        if let Security::Starttls(connector, name) = dial.security {
            if !client.extensions.starttls {
                return Err(ClientError::Missing("STARTTLS"));
            }
            client.command("STARTTLS").await?;
            client.expect(220).await?;
            if !client.input.is_empty() {
                // Bytes sent before the TLS handshake would be taken as
                // coming through TLS: a known injection (CVE-2011-0411).
                return Err(ClientError::Malformed("data after the STARTTLS reply".into()));
            }
            let Stream::Plain(tcp) = std::mem::replace(&mut client.stream, Stream::Gone) else {
                return Err(ClientError::Malformed("STARTTLS twice".into()));
            };
            client.stream = Stream::Tls(Box::new(connector.connect(name.clone(), tcp).await?));
            client.hello(dial.hello).await?;
        }
        if let Some((user, password)) = dial.credentials {
            client.authenticate(user, password).await?;
        }
        Ok(client)
    }

    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Whether the connection failed and must not be used again.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Gives the connection up: whatever the relay was in the middle of,
    /// it discards (an unfinished DATA included).
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    async fn hello(&mut self, name: &str) -> Result<(), ClientError> {
        self.command(&format!("EHLO {name}")).await?;
        let reply = self.read_reply().await?;
        if reply.is_success() {
            self.extensions = Extensions::from_ehlo(&reply);
            return Ok(());
        }
        if !reply.is_permanent() {
            return Err(ClientError::Reply(reply));
        }
        // A server from before ESMTP: no extensions.
        self.command(&format!("HELO {name}")).await?;
        self.expect(250).await?;
        self.extensions = Extensions::default();
        Ok(())
    }

    async fn authenticate(&mut self, user: &str, password: &str) -> Result<(), ClientError> {
        let offers = |m: &str| self.extensions.auth.iter().any(|a| a == m);
        if offers("PLAIN") {
            let response = BASE64.encode(format!("\0{user}\0{password}"));
            self.command(&format!("AUTH PLAIN {response}")).await?;
            self.expect(235).await
        } else if offers("LOGIN") {
            self.command("AUTH LOGIN").await?;
            self.expect(334).await?;
            self.command(&BASE64.encode(user)).await?;
            self.expect(334).await?;
            self.command(&BASE64.encode(password)).await?;
            self.expect(235).await
        } else {
            Err(ClientError::Missing("AUTH PLAIN or LOGIN"))
        }
    }

    /// Reads a reply and fails unless its code is `code`.
    async fn expect(&mut self, code: u16) -> Result<(), ClientError> {
        let reply = self.read_reply().await?;
        if reply.code == code {
            Ok(())
        } else {
            Err(ClientError::Reply(reply))
        }
    }

    /// Writes one command line.
    pub async fn command(&mut self, line: &str) -> Result<(), ClientError> {
        let mut bytes = std::mem::take(&mut self.output);
        bytes.clear();
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        let result = self.write(&bytes).await;
        self.output = bytes;
        result
    }

    /// Writes `parts` as one write (commands in a pipeline, or a message's
    /// pieces and its end-of-data line): a gathering write, so the pieces
    /// an issue shares with every copy are not copied for each.
    pub async fn write_all<'a>(&mut self, parts: impl IntoIterator<Item = &'a [u8]>) -> Result<(), ClientError> {
        let mut slices: Vec<IoSlice<'a>> = parts.into_iter().filter(|p| !p.is_empty()).map(IoSlice::new).collect();
        let stream = &mut self.stream;
        let written = tokio::time::timeout(self.timeout, async {
            let mut left = &mut slices[..];
            while !left.is_empty() {
                let at_once = left.len().min(MAX_SLICES);
                let n = stream.write_vectored(&left[..at_once]).await?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                IoSlice::advance_slices(&mut left, n);
            }
            stream.flush().await
        })
        .await;
        self.check(written)
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let written = tokio::time::timeout(self.timeout, async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        })
        .await;
        self.check(written)
    }

    /// A write's outcome; a failed one leaves the client broken.
    fn check(&mut self, written: Result<io::Result<()>, tokio::time::error::Elapsed>) -> Result<(), ClientError> {
        let result = match written {
            Err(_) => Err(ClientError::Timeout(self.timeout)),
            Ok(result) => result.map_err(ClientError::Io),
        };
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    /// Reads one reply (all its lines). A 421, a timeout or a broken
    /// stream leaves the client broken.
    pub async fn read_reply(&mut self) -> Result<Reply, ClientError> {
        let timeout = self.timeout;
        let result = match tokio::time::timeout(timeout, self.read_reply_untimed()).await {
            Err(_) => Err(ClientError::Timeout(timeout)),
            Ok(result) => result,
        };
        match &result {
            Ok(reply) if reply.is_closing() => self.broken = true,
            Ok(_) => {}
            Err(_) => self.broken = true,
        }
        result
    }

    async fn read_reply_untimed(&mut self) -> Result<Reply, ClientError> {
        let mut code = None;
        let mut lines = Vec::new();
        let mut consumed = 0;
        loop {
            let Some(end) = self.input[consumed..].iter().position(|b| *b == b'\n') else {
                if self.input.len() > REPLY_LIMIT {
                    return Err(ClientError::Malformed(format!(
                        "a reply longer than {REPLY_LIMIT} octets"
                    )));
                }
                self.fill().await?;
                continue;
            };
            let line = &self.input[consumed..consumed + end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            consumed += end + 1;
            let (this_code, last, text) = parse_line(line)?;
            if code.is_some_and(|c| c != this_code) {
                return Err(ClientError::Malformed(format!(
                    "a reply whose lines have different codes: {}",
                    escape(line)
                )));
            }
            code = Some(this_code);
            lines.push(escape(text));
            if last {
                self.input.drain(..consumed);
                return Ok(Reply { code: this_code, lines });
            }
        }
    }

    /// Reads what has arrived into `input`'s spare room: no buffer on the
    /// stack, where it would sit in every send's future and be copied with it.
    async fn fill(&mut self) -> Result<(), ClientError> {
        self.input.reserve(4096);
        let n = self.stream.read_buf(&mut self.input).await?;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        Ok(())
    }

    /// QUIT, politely, within the timeout; the connection closes either way.
    pub async fn quit(mut self) {
        if self.broken {
            return;
        }
        if self.command("QUIT").await.is_ok() {
            let _ = self.read_reply().await;
        }
        let _ = tokio::time::timeout(self.timeout, self.stream.shutdown()).await;
    }
}

/// `250-text`, `250 text` or `250`: the code, whether it is the last line,
/// and the text.
fn parse_line(line: &[u8]) -> Result<(u16, bool, &[u8]), ClientError> {
    let malformed = || ClientError::Malformed(escape(line));
    let digits = line.get(..3).ok_or_else(malformed)?;
    if !digits.iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&digits[0]) {
        return Err(malformed());
    }
    let code = digits.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    match line.get(3) {
        None => Ok((code, true, b"")),
        Some(b' ') => Ok((code, true, &line[4..])),
        Some(b'-') => Ok((code, false, &line[4..])),
        Some(_) => Err(malformed()),
    }
}

/// The connection, plain or TLS (`Gone` only while STARTTLS swaps them).
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Gone,
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection was given up")
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
            Stream::Gone => false,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, lines: &[&str]) -> Reply {
        Reply {
            code,
            lines: lines.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn reply_lines_give_their_code_whether_more_follow_and_their_text() {
        assert_eq!(parse_line(b"250-PIPELINING").unwrap(), (250, false, &b"PIPELINING"[..]));
        assert_eq!(parse_line(b"550 5.1.1 no").unwrap(), (550, true, &b"5.1.1 no"[..]));
        assert_eq!(parse_line(b"354").unwrap(), (354, true, &b""[..]));
        for bad in [&b"25"[..], b"abc def", b"250x", b"650 no", b""] {
            assert!(parse_line(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn ehlo_extensions_are_read_with_their_arguments() {
        let ehlo = reply(
            250,
            &[
                "relay.example.org hello",
                "PIPELINING",
                "size 10240000",
                "8BITMIME",
                "ENHANCEDSTATUSCODES",
                "AUTH=PLAIN LOGIN",
                "STARTTLS",
            ],
        );
        let extensions = Extensions::from_ehlo(&ehlo);
        assert!(extensions.pipelining && extensions.eight_bit_mime && extensions.enhanced_status_codes);
        assert!(extensions.starttls && !extensions.smtp_utf8);
        assert_eq!(extensions.size_limit(), Some(10_240_000));
        assert_eq!(extensions.auth, ["PLAIN", "LOGIN"]);
        let unlimited = Extensions::from_ehlo(&reply(250, &["relay", "SIZE 0", "AUTH PLAIN"]));
        assert_eq!((unlimited.size, unlimited.size_limit()), (Some(None), None));
        assert!(!unlimited.pipelining);
        // The server's name on the first line is no extension.
        assert!(!Extensions::from_ehlo(&reply(250, &["PIPELINING"])).pipelining);
    }

    #[test]
    fn a_replys_enhanced_code_and_text_are_read_and_escaped() {
        assert_eq!(reply(552, &["5.3.4 Message too big"]).enhanced(), Some((5, 3, 4)));
        assert_eq!(reply(550, &["Mailbox unavailable"]).enhanced(), None);
        assert_eq!(reply(250, &["1.2.3 odd"]).enhanced(), None);
        assert_eq!(escape(b"no\x1b[31mred\r"), "no\\u{1b}[31mred\\r");
        assert_eq!(
            reply(421, &["4.7.0 closing", "bye"]).to_string(),
            "421 4.7.0 closing bye"
        );
    }
}
