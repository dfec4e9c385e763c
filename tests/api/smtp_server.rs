//! An SMTP server for the tests: async (tokio), on a runtime of its own so
//! it outlives any one test's runtime and serves hundreds of connections,
//! recording every message it accepts and misbehaving on request.
//!
//! The test controls it through [`SmtpSink`]:
//! - replies to chosen recipients: [`SmtpSink::refuse_recipients_with`]
//!   (any code, for good), [`SmtpSink::refuse_unknown_user`] (550 5.1.1),
//!   [`SmtpSink::refuse_by_policy`] (550 5.7.1),
//!   [`SmtpSink::defer_recipients`] (451 the first N times, then accept);
//! - dropping the connection at a chosen point for chosen recipients:
//!   [`SmtpSink::drop_connection`] with a [`DropPoint`];
//! - outages on the same port: [`SmtpSink::go_down`] /
//!   [`SmtpSink::go_down_as`] and [`SmtpSink::come_back`];
//! - a limit on messages per connection: [`SmtpSink::limit_messages_per_connection`];
//! - closing every open connection: [`SmtpSink::hang_up_all`];
//! - the extensions it offers (PIPELINING, SIZE, ENHANCEDSTATUSCODES, all on
//!   by default): [`SmtpSink::advertise`]; a size limit, answered with
//!   `552 5.3.4` whether advertised or not: [`SmtpSink::limit_size`];
//! - stalls (no answer for a while, at a chosen point): [`SmtpSink::stall`];
//! - the protocol's rules it enforces, refusing with a 5xx and recording
//!   what the client got wrong: lines of at most 998 octets, CRLF line ends
//!   only ([`SmtpSink::protocol_violations`]);
//! - which connections pipelined (a command arrived before the reply to
//!   the previous one was written): [`SmtpSink::pipelined_connections`];
//!   how many messages' end of data came with the next command
//!   (pipelining across messages): [`SmtpSink::ends_of_data_with_next_command`];
//! - what arrived: [`SmtpSink::received`], [`SmtpSink::received_for`],
//!   [`SmtpSink::count_for`], [`SmtpSink::counts`], [`SmtpSink::unacknowledged`],
//!   [`SmtpSink::connections`], [`SmtpSink::wait_for`].
//!
//! Rules match a recipient when its address contains the fragment
//! (ignoring ASCII case); the first matching rule with uses left applies.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::TcpListener as StdTcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

const HOSTNAME: &str = "sink.gazette.test";

/// A message as the SMTP server received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub mail_from: String,
    pub recipients: Vec<String>,
    /// The message as sent, dot-unstuffed, without the final `.` line.
    pub raw: Vec<u8>,
    /// The user the client authenticated as (AUTH PLAIN or LOGIN), if it did.
    pub authenticated_as: Option<String>,
    /// Which connection brought it, counting from 1 in the order accepted.
    pub connection: usize,
    /// When the server had read the whole message (for rate checks).
    pub at: std::time::Instant,
    /// The name the client gave in its last EHLO (or HELO) on that
    /// connection, as it wrote it.
    pub helo: Option<String>,
}

/// Where [`SmtpSink::drop_connection`] hangs up on a matching recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropPoint {
    /// After reading `RCPT TO`, before answering it.
    AfterRcpt,
    /// After answering `DATA` with 354 and reading the message's first line.
    DuringData,
    /// After reading the whole message, before the reply to it: the client
    /// cannot know whether it arrived. The message is kept apart, in
    /// [`SmtpSink::unacknowledged`], not in [`SmtpSink::received`].
    AfterData,
}

/// Where [`SmtpSink::stall`] stops answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StallPoint {
    /// Before the 220 greeting.
    Greeting,
    /// After reading `MAIL FROM`, before answering it.
    MailReply,
    /// After reading the whole message, before the reply to it. The client
    /// cannot know whether it arrived: the message is kept apart, in
    /// [`SmtpSink::unacknowledged`], and the connection is closed after the
    /// stall.
    EndOfData,
}

/// An extension [`SmtpSink::advertise`] can turn off (and on again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extension {
    Pipelining,
    Size,
    EnhancedStatusCodes,
}

/// How the server behaves while it is down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outage {
    /// Nothing listens on the port: connecting is refused.
    Refused,
    /// Connections are accepted and closed at once, without a greeting.
    ClosedOnConnect,
    /// Connections are greeted with `421 4.3.2` and closed.
    Busy,
}

/// STARTTLS with a certificate for 127.0.0.1 from a CA made for the test,
/// and AUTH PLAIN / LOGIN (offered only once TLS is on, and then required).
/// [`SinkTls::implicit`] makes it TLS from the first byte instead (port 465
/// style).
#[derive(Clone)]
pub struct SinkTls {
    /// The CA's certificate (PEM), for the client to trust.
    pub ca_file: PathBuf,
    implicit: bool,
    /// The same certificate, DER-encoded, for a client in the test.
    pub ca_der: Vec<u8>,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
    user: String,
    password: String,
}

impl SinkTls {
    pub fn create(dir: &Path, user: &str, password: &str) -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        std::fs::create_dir_all(dir).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        Self {
            ca_file,
            implicit: false,
            ca_der: ca.der().to_vec(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
            user: user.to_owned(),
            password: password.to_owned(),
        }
    }

    /// TLS from the first byte, no STARTTLS.
    pub fn implicit(mut self) -> Self {
        self.implicit = true;
        self
    }

    fn acceptor(&self) -> TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = rustls::pki_types::PrivateKeyDer::try_from(self.key_der.clone()).expect("a private key");
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![self.cert_der.clone().into()], key)
            .expect("a valid certificate and key");
        TlsAcceptor::from(Arc::new(config))
    }
}

/// What a matching recipient gets.
#[derive(Clone, Debug)]
enum Action {
    Reply { code: u16, message: String },
    Drop(DropPoint),
}

#[derive(Clone, Debug)]
struct Rule {
    fragment: String,
    action: Action,
    /// How many more times the rule applies; `None` for ever.
    uses_left: Option<usize>,
}

/// Whether the server listens, and how it behaves when it does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Up,
    Down(Outage),
}

struct State {
    inbox: Mutex<Vec<Received>>,
    unacknowledged: Mutex<Vec<Received>>,
    rules: Mutex<Vec<Rule>>,
    messages_per_connection: Mutex<Option<usize>>,
    /// A reply to every MAIL FROM, instead of accepting it.
    refuse_senders: Mutex<Option<String>>,
    /// What EHLO lists: PIPELINING, SIZE, ENHANCEDSTATUSCODES.
    advertised: Mutex<[bool; 3]>,
    /// The largest message taken, in octets (after dot-unstuffing).
    size_limit: Mutex<Option<usize>>,
    /// Stalls to come: where, for how long, how many more times.
    stalls: Mutex<Vec<(StallPoint, Duration, usize)>>,
    /// What clients got wrong (bare CR or LF, a line over 998 octets).
    violations: Mutex<Vec<String>>,
    /// The connections on which a command arrived before the reply to the
    /// previous one was written.
    pipelined: Mutex<BTreeSet<usize>>,
    /// Messages whose end-of-data line arrived together with the next
    /// command (before the reply to it was written).
    ends_with_next: AtomicUsize,
    connections: AtomicUsize,
    /// Wakes every open connection to close it ([`SmtpSink::hang_up_all`]).
    hang_up: tokio::sync::Notify,
    tls: Option<(SinkTls, TlsAcceptor)>,
    /// Every task of this server watches it: a change of mode, or the
    /// last handle going away (the sender dropped), ends what must end.
    mode: watch::Sender<Mode>,
}

/// Closes the server when the last [`SmtpSink`] handle is dropped.
struct Lifetime(Arc<State>);

impl Drop for Lifetime {
    fn drop(&mut self) {
        // Wakes every task; they stop once they see the sender is closing.
        self.0.mode.send_replace(Mode::Down(Outage::Refused));
    }
}

/// A real SMTP server, on its own runtime, that records every message and
/// answers as the test tells it to. Clones share one server.
#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    state: Arc<State>,
    _lifetime: Arc<Lifetime>,
}

/// The runtime all sinks run on: its own thread, alive for the whole run,
/// so a server outlives the test runtime that started it.
fn runtime() -> &'static tokio::runtime::Handle {
    static RUNTIME: OnceLock<tokio::runtime::Handle> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("smtp-sink")
            .enable_all()
            .build()
            .expect("the SMTP sink's runtime");
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name("smtp-sink".into())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))
            .expect("the SMTP sink's thread");
        handle
    })
}

impl SmtpSink {
    /// A plain server on a free port that accepts everything.
    pub fn start() -> Self {
        Self::not_running(0).serve(bind(0).expect("a port for the SMTP server"))
    }

    /// A server that speaks STARTTLS and requires AUTH after it.
    pub fn start_with_tls(tls: SinkTls) -> Self {
        Self::new(0, Some(tls)).serve(bind(0).expect("a port for the SMTP server"))
    }

    /// A server that does not listen yet: [`SmtpSink::start_on`] starts it.
    pub fn not_running(port: u16) -> Self {
        Self::new(port, None)
    }

    fn new(port: u16, tls: Option<SinkTls>) -> Self {
        let (mode, _) = watch::channel(Mode::Down(Outage::Refused));
        let state = Arc::new(State {
            inbox: Mutex::default(),
            unacknowledged: Mutex::default(),
            rules: Mutex::default(),
            messages_per_connection: Mutex::default(),
            refuse_senders: Mutex::default(),
            advertised: Mutex::new([true; 3]),
            size_limit: Mutex::default(),
            stalls: Mutex::default(),
            violations: Mutex::default(),
            pipelined: Mutex::default(),
            ends_with_next: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            hang_up: tokio::sync::Notify::new(),
            tls: tls.map(|tls| {
                let acceptor = tls.acceptor();
                (tls, acceptor)
            }),
            mode,
        });
        Self {
            port,
            _lifetime: Arc::new(Lifetime(state.clone())),
            state,
        }
    }

    /// Starts listening on `port` (a server that was down comes back).
    pub fn start_on(&self, port: u16) -> Self {
        Self { port, ..self.clone() }.serve(bind(port).expect("the SMTP port is free again"))
    }

    fn serve(self, listener: StdTcpListener) -> Self {
        let port = listener.local_addr().unwrap().port();
        self.state.mode.send_replace(Mode::Up);
        let state = self.state.clone();
        let _entered = runtime().enter();
        let listener = TcpListener::from_std(listener).expect("a tokio listener");
        runtime().spawn(accept_loop(state, listener));
        Self { port, ..self }
    }

    /// Stops answering on the port: connecting is refused and open
    /// connections are closed, until [`SmtpSink::come_back`].
    pub fn go_down(&self) {
        self.go_down_as(Outage::Refused);
    }

    /// Stops serving mail, as `outage` says; open connections are closed.
    pub fn go_down_as(&self, outage: Outage) {
        self.state.mode.send_replace(Mode::Down(outage));
    }

    /// Serves mail again on the same port after [`SmtpSink::go_down`].
    pub fn come_back(&self) {
        let was = *self.state.mode.borrow();
        match was {
            Mode::Up => {}
            Mode::Down(Outage::Refused) => {
                // The accept loop has closed its listener, or is about to.
                let listener = retry_bind(self.port);
                let _ = Self { ..self.clone() }.serve(listener);
            }
            Mode::Down(_) => {
                self.state.mode.send_replace(Mode::Up);
            }
        }
    }

    /// Answers 550 to RCPT TO for addresses containing `fragment`.
    pub fn refuse_recipients_containing(&self, fragment: &str) {
        self.refuse_recipients_with(fragment, 550, "Mailbox unavailable");
    }

    /// Answers `code message` to RCPT TO for addresses containing `fragment`.
    pub fn refuse_recipients_with(&self, fragment: &str, code: u16, message: &str) {
        self.add_rule(fragment, reply(code, message), None);
    }

    /// A hard bounce: `550 5.1.1 … User unknown` for matching recipients.
    pub fn refuse_unknown_user(&self, fragment: &str) {
        self.refuse_recipients_with(fragment, 550, "5.1.1 Recipient address rejected: User unknown");
    }

    /// A policy refusal: `550 5.7.1 … rejected by policy` for matching recipients.
    pub fn refuse_by_policy(&self, fragment: &str) {
        self.refuse_recipients_with(fragment, 550, "5.7.1 Message rejected by policy");
    }

    /// Greylisting: `451 4.7.1 … try again later` to the first `times`
    /// matching RCPT TOs (counted across connections), then accepts.
    pub fn defer_recipients(&self, fragment: &str, times: usize) {
        self.add_rule(
            fragment,
            reply(451, "4.7.1 Greylisted, please try again later"),
            Some(times),
        );
    }

    /// Hangs up at `point` on the first `times` matching recipients
    /// (`None`: every time).
    pub fn drop_connection(&self, fragment: &str, point: DropPoint, times: Option<usize>) {
        self.add_rule(fragment, Action::Drop(point), times);
    }

    /// Answers every MAIL FROM with `code message` (a relay that will not
    /// take mail from our address); `None` accepts again.
    pub fn refuse_senders_with(&self, reply: Option<(u16, &str)>) {
        *self.state.refuse_senders.lock().unwrap() = reply.map(|(code, message)| format!("{code} {message}\r\n"));
    }

    /// After `limit` messages on one connection, answers the next MAIL FROM
    /// with `421 4.7.0` and closes the connection. `None` lifts the limit.
    pub fn limit_messages_per_connection(&self, limit: Option<usize>) {
        *self.state.messages_per_connection.lock().unwrap() = limit;
    }

    /// Lists `extension` in the EHLO reply (`true`, the default) or not.
    pub fn advertise(&self, extension: Extension, on: bool) {
        self.state.advertised.lock().unwrap()[extension as usize] = on;
    }

    /// Takes messages of at most `limit` octets (`None`: any size),
    /// answering `552 5.3.4` to a larger one: to a `MAIL FROM` whose
    /// `SIZE=` declares it, else after its content.
    pub fn limit_size(&self, limit: Option<usize>) {
        *self.state.size_limit.lock().unwrap() = limit;
    }

    /// Stops answering for `duration` at `point`, the next `times` times
    /// that point is reached (counted across connections).
    pub fn stall(&self, point: StallPoint, duration: Duration, times: usize) {
        self.state.stalls.lock().unwrap().push((point, duration, times));
    }

    /// Closes every open connection, as a relay does with idle ones: the
    /// client's next message needs a new connection (and EHLO).
    pub fn hang_up_all(&self) {
        self.state.hang_up.notify_waiters();
    }

    /// What clients sent against the protocol's rules (each one refused).
    pub fn protocol_violations(&self) -> Vec<String> {
        self.state.violations.lock().unwrap().clone()
    }

    /// The connections (numbered as in [`Received::connection`]) on which
    /// the client pipelined.
    pub fn pipelined_connections(&self) -> BTreeSet<usize> {
        self.state.pipelined.lock().unwrap().clone()
    }

    /// How many accepted messages had the next command arrive with their
    /// end of data: the client sent a message's content and the next
    /// message's envelope in one go (RFC 2920 pipelining across messages).
    pub fn ends_of_data_with_next_command(&self) -> usize {
        self.state.ends_with_next.load(Ordering::SeqCst)
    }

    fn add_rule(&self, fragment: &str, action: Action, uses_left: Option<usize>) {
        self.state.rules.lock().unwrap().push(Rule {
            fragment: fragment.to_ascii_lowercase(),
            action,
            uses_left,
        });
    }

    /// Every message accepted (answered 250 after DATA), in order.
    pub fn received(&self) -> Vec<Received> {
        self.state.inbox.lock().unwrap().clone()
    }

    pub fn received_for(&self, address: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|m| m.recipients.iter().any(|r| r.eq_ignore_ascii_case(address)))
            .collect()
    }

    /// How many accepted messages were addressed to `address`.
    pub fn count_for(&self, address: &str) -> usize {
        self.received_for(address).len()
    }

    /// Accepted messages per recipient (addresses lowercased), for
    /// exactly-once checks over many readers.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for message in self.state.inbox.lock().unwrap().iter() {
            for recipient in &message.recipients {
                *counts.entry(recipient.to_ascii_lowercase()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Messages read in full but never answered ([`DropPoint::AfterData`]).
    pub fn unacknowledged(&self) -> Vec<Received> {
        self.state.unacknowledged.lock().unwrap().clone()
    }

    /// TCP connections accepted so far, whatever became of them.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Waits until `n` messages to `address` have arrived, and returns them.
    pub async fn wait_for(&self, address: &str, n: usize) -> Vec<Received> {
        crate::helpers::wait_until(
            Duration::from_secs(10),
            &format!("{n} message(s) to {address}"),
            || async { self.received_for(address).len() >= n },
        )
        .await;
        self.received_for(address)
    }
}

fn reply(code: u16, message: &str) -> Action {
    Action::Reply {
        code,
        message: message.to_owned(),
    }
}

fn bind(port: u16) -> io::Result<StdTcpListener> {
    let listener = StdTcpListener::bind(("127.0.0.1", port))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Binds `port` again after an outage; the old listener may take a moment
/// to close on the server's runtime.
fn retry_bind(port: u16) -> StdTcpListener {
    for _ in 0..100 {
        if let Ok(listener) = bind(port) {
            return listener;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bind(port).expect("the SMTP port is free again")
}

async fn accept_loop(state: Arc<State>, listener: TcpListener) {
    let mut mode = state.mode.subscribe();
    loop {
        let current = *mode.borrow_and_update();
        if current == Mode::Down(Outage::Refused) {
            return; // the listener closes: connecting is refused
        }
        tokio::select! {
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let number = state.connections.fetch_add(1, Ordering::SeqCst) + 1;
                match current {
                    Mode::Up => {
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(serve_connection(state.clone(), stream, number));
                    }
                    Mode::Down(Outage::Busy) => {
                        tokio::spawn(async move {
                            let mut stream = stream;
                            let _ = stream.write_all(b"421 4.3.2 Service not available, closing\r\n").await;
                            let _ = stream.shutdown().await;
                        });
                    }
                    Mode::Down(_) => drop(stream),
                }
            }
        }
    }
}

/// Serves one connection until the client quits, the server hangs up, or
/// the server goes down.
async fn serve_connection(state: Arc<State>, stream: TcpStream, number: usize) {
    let mut mode = state.mode.subscribe();
    let session = Session::new(state.clone(), number);
    tokio::select! {
        _ = session.run(stream) => {}
        _ = state.hang_up.notified() => {}
        _ = async {
            while mode.changed().await.is_ok() {
                if *mode.borrow() != Mode::Up {
                    return;
                }
            }
        } => {}
    }
}

/// A connection's stream, plain or after STARTTLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// What the session does after a command.
enum Next {
    Continue,
    Close,
    StartTls,
}

struct Session {
    state: Arc<State>,
    connection: usize,
    greeted: bool,
    secured: bool,
    authenticated_as: Option<String>,
    helo: Option<String>,
    mail_from: Option<String>,
    recipients: Vec<String>,
    /// Where to hang up in DATA, set by a matching recipient.
    drop_in_data: Option<DropPoint>,
    messages: usize,
}

impl Session {
    fn new(state: Arc<State>, connection: usize) -> Self {
        Self {
            state,
            connection,
            greeted: false,
            secured: false,
            authenticated_as: None,
            helo: None,
            mail_from: None,
            recipients: vec![],
            drop_in_data: None,
            messages: 0,
        }
    }

    async fn run(mut self, stream: TcpStream) -> io::Result<()> {
        let mut io: BufReader<Box<dyn Stream>> = match &self.state.tls {
            Some((tls, acceptor)) if tls.implicit => {
                self.secured = true;
                BufReader::new(Box::new(acceptor.accept(stream).await?))
            }
            _ => BufReader::new(Box::new(stream)),
        };
        if let Some(duration) = self.state.take_stall(StallPoint::Greeting) {
            tokio::time::sleep(duration).await;
        }
        io.get_mut()
            .write_all(format!("220 {HOSTNAME} ESMTP Gazette test sink\r\n").as_bytes())
            .await?;
        loop {
            let Some(line) = read_line(&mut io).await? else {
                return Ok(());
            };
            let line = match line {
                Line::Command(line) => line,
                Line::Violation(why) => {
                    self.state.violations.lock().unwrap().push(why);
                    self.reply(&mut io, "500 5.5.2 Command lines end with CRLF\r\n").await?;
                    continue;
                }
            };
            match self.command(&mut io, &line).await? {
                Next::Continue => {}
                Next::Close => return Ok(()),
                Next::StartTls => {
                    let (_, acceptor) = self.state.tls.as_ref().expect("STARTTLS only when offered");
                    // Anything the client sent before the handshake is dropped.
                    let plain = io.into_inner();
                    let tls = acceptor.accept(plain).await?;
                    io = BufReader::new(Box::new(tls));
                    self.secured = true;
                    self.greeted = false;
                    self.reset();
                }
            }
        }
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.recipients.clear();
        self.drop_in_data = None;
    }

    fn auth_required(&self) -> bool {
        self.state.tls.is_some() && self.authenticated_as.is_none()
    }

    async fn command(&mut self, io: &mut BufReader<Box<dyn Stream>>, line: &str) -> io::Result<Next> {
        let (verb, rest) = match line.find(' ') {
            Some(i) => (&line[..i], line[i + 1..].trim()),
            None => (line, ""),
        };
        let verb = verb.to_ascii_uppercase();
        let answer = |text: &str| format!("{text}\r\n");
        let out = match verb.as_str() {
            "EHLO" | "HELO" if rest.is_empty() => answer("501 5.5.4 Syntax: EHLO hostname"),
            "EHLO" => {
                self.greeted = true;
                self.helo = Some(rest.to_owned());
                self.reset();
                let mut lines = vec![HOSTNAME.to_owned(), "8BITMIME".into(), "SMTPUTF8".into()];
                let [pipelining, size, enhanced] = *self.state.advertised.lock().unwrap();
                if pipelining {
                    lines.push("PIPELINING".into());
                }
                if size {
                    let limit = self.state.size_limit.lock().unwrap().unwrap_or(0);
                    lines.push(format!("SIZE {limit}"));
                }
                if enhanced {
                    lines.push("ENHANCEDSTATUSCODES".into());
                }
                match (&self.state.tls, self.secured) {
                    (Some(_), false) => lines.push("STARTTLS".into()),
                    (Some(_), true) => lines.push("AUTH PLAIN LOGIN".into()),
                    (None, _) => {}
                }
                let last = lines.len() - 1;
                lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' }))
                    .collect()
            }
            "HELO" => {
                self.greeted = true;
                self.helo = Some(rest.to_owned());
                self.reset();
                answer(&format!("250 {HOSTNAME}"))
            }
            "STARTTLS" => match (&self.state.tls, self.secured) {
                (Some(_), false) => {
                    self.reply(io, "220 2.0.0 Ready to start TLS\r\n").await?;
                    return Ok(Next::StartTls);
                }
                _ => answer("502 5.5.1 STARTTLS not available"),
            },
            "AUTH" => self.auth(io, rest).await?,
            "MAIL" => {
                let reply = self.mail(rest);
                if let Some(duration) = self.state.take_stall(StallPoint::MailReply) {
                    tokio::time::sleep(duration).await;
                }
                reply
            }
            "RCPT" => match self.rcpt(rest) {
                Some(reply) => reply,
                None => return Ok(Next::Close),
            },
            "DATA" => return self.data(io).await,
            "RSET" => {
                self.reset();
                answer("250 2.0.0 Ok")
            }
            "NOOP" => answer("250 2.0.0 Ok"),
            "VRFY" => answer("252 2.0.0 Cannot verify, but will accept"),
            "QUIT" => {
                self.reply(io, "221 2.0.0 Bye\r\n").await?;
                return Ok(Next::Close);
            }
            _ => answer("500 5.5.2 Command not recognised"),
        };
        self.reply(io, &out).await?;
        if out.starts_with("421") {
            return Ok(Next::Close);
        }
        Ok(Next::Continue)
    }

    async fn auth(&mut self, io: &mut BufReader<Box<dyn Stream>>, rest: &str) -> io::Result<String> {
        if self.state.tls.is_none() || !self.secured {
            return Ok("503 5.5.1 AUTH not available\r\n".into());
        }
        if self.authenticated_as.is_some() {
            return Ok("503 5.5.1 Already authenticated\r\n".into());
        }
        let (mechanism, initial) = match rest.split_once(' ') {
            Some((m, i)) => (m.to_ascii_uppercase(), Some(i.trim().to_owned())),
            None => (rest.to_ascii_uppercase(), None),
        };
        let credentials = match mechanism.as_str() {
            "PLAIN" => {
                let Some(response) = challenge(io, initial, "").await? else {
                    return Ok("501 5.7.0 Authentication cancelled\r\n".into());
                };
                let mut parts = response.split(|b| *b == 0);
                let (_authzid, user, password) = (parts.next(), parts.next(), parts.next());
                user.zip(password).map(|(u, p)| {
                    (
                        String::from_utf8_lossy(u).into_owned(),
                        String::from_utf8_lossy(p).into_owned(),
                    )
                })
            }
            "LOGIN" => {
                let Some(user) = challenge(io, initial, "VXNlcm5hbWU6").await? else {
                    return Ok("501 5.7.0 Authentication cancelled\r\n".into());
                };
                let Some(password) = challenge(io, None, "UGFzc3dvcmQ6").await? else {
                    return Ok("501 5.7.0 Authentication cancelled\r\n".into());
                };
                Some((
                    String::from_utf8_lossy(&user).into_owned(),
                    String::from_utf8_lossy(&password).into_owned(),
                ))
            }
            _ => return Ok("504 5.5.4 Unrecognised authentication mechanism\r\n".into()),
        };
        let (tls, _) = self.state.tls.as_ref().expect("checked above");
        Ok(match credentials {
            Some((user, password)) if user == tls.user && password == tls.password => {
                self.authenticated_as = Some(user);
                "235 2.7.0 Authentication successful\r\n".into()
            }
            Some(_) => "535 5.7.8 Authentication credentials invalid\r\n".into(),
            None => "501 5.5.2 Cannot decode the response\r\n".into(),
        })
    }

    fn mail(&mut self, rest: &str) -> String {
        if !self.greeted {
            return "503 5.5.1 Say EHLO first\r\n".into();
        }
        if self.auth_required() {
            return "530 5.7.0 Authentication required\r\n".into();
        }
        if self.mail_from.is_some() {
            return "503 5.5.1 Nested MAIL command\r\n".into();
        }
        let limit = *self.state.messages_per_connection.lock().unwrap();
        if limit.is_some_and(|limit| self.messages >= limit) {
            return "421 4.7.0 Too many messages on this connection, closing\r\n".into();
        }
        if let Some(reply) = self.state.refuse_senders.lock().unwrap().clone() {
            return reply;
        }
        let declared = rest
            .split_whitespace()
            .skip(1)
            .find_map(|p| p.get(..5).filter(|k| k.eq_ignore_ascii_case("SIZE=")).map(|_| &p[5..]))
            .map(|n| n.parse::<usize>());
        let limit = *self.state.size_limit.lock().unwrap();
        match declared {
            Some(Err(_)) => return "501 5.5.4 SIZE takes a number\r\n".into(),
            Some(Ok(size)) if limit.is_some_and(|limit| size > limit) => {
                return "552 5.3.4 Message size exceeds fixed maximum message size\r\n".into();
            }
            _ => {}
        }
        match path_argument(rest, "FROM:") {
            Some(from) => {
                self.mail_from = Some(from);
                "250 2.1.0 Ok\r\n".into()
            }
            None => "501 5.5.4 Syntax: MAIL FROM:<address>\r\n".into(),
        }
    }

    /// The reply to RCPT TO, or `None` to hang up without one.
    fn rcpt(&mut self, rest: &str) -> Option<String> {
        if self.mail_from.is_none() {
            return Some("503 5.5.1 Need MAIL before RCPT\r\n".into());
        }
        let Some(to) = path_argument(rest, "TO:").filter(|to| !to.is_empty()) else {
            return Some("501 5.5.4 Syntax: RCPT TO:<address>\r\n".into());
        };
        match self.state.take_rule(&to) {
            Some(Action::Reply { code, message }) => Some(format!("{code} {message}\r\n")),
            Some(Action::Drop(DropPoint::AfterRcpt)) => None,
            Some(Action::Drop(point)) => {
                self.drop_in_data = Some(point);
                self.recipients.push(to);
                Some("250 2.1.5 Ok\r\n".into())
            }
            None => {
                self.recipients.push(to);
                Some("250 2.1.5 Ok\r\n".into())
            }
        }
    }

    async fn data(&mut self, io: &mut BufReader<Box<dyn Stream>>) -> io::Result<Next> {
        if self.mail_from.is_none() {
            self.reply(io, "503 5.5.1 Need MAIL command\r\n").await?;
            return Ok(Next::Continue);
        }
        if self.recipients.is_empty() {
            self.reply(io, "554 5.5.1 No valid recipients\r\n").await?;
            return Ok(Next::Continue);
        }
        self.reply(io, "354 End data with <CR><LF>.<CR><LF>\r\n").await?;
        let mut raw = Vec::new();
        let mut violation = None;
        loop {
            let mut line = Vec::new();
            if io.read_until(b'\n', &mut line).await? == 0 {
                return Ok(Next::Close); // the client went away mid-message
            }
            if self.drop_in_data == Some(DropPoint::DuringData) {
                return Ok(Next::Close);
            }
            if line == b".\r\n" {
                break;
            }
            if violation.is_none() {
                violation = data_line_violation(&line);
            }
            if line == b".\n" {
                break; // a bare LF, already recorded, but the end all the same
            }
            // Dot-unstuffing (RFC 5321 §4.5.2).
            let line = line.strip_prefix(b".").unwrap_or(&line);
            raw.extend_from_slice(line);
        }
        if let Some(why) = violation {
            self.state.violations.lock().unwrap().push(why.clone());
            self.reset();
            self.reply(io, &format!("550 5.6.0 Message refused: {why}\r\n")).await?;
            return Ok(Next::Continue);
        }
        if self
            .state
            .size_limit
            .lock()
            .unwrap()
            .is_some_and(|limit| raw.len() > limit)
        {
            self.reset();
            self.reply(io, "552 5.3.4 Message size exceeds fixed maximum message size\r\n")
                .await?;
            return Ok(Next::Continue);
        }
        let received = Received {
            mail_from: self.mail_from.take().unwrap_or_default(),
            recipients: std::mem::take(&mut self.recipients),
            raw,
            authenticated_as: self.authenticated_as.clone(),
            connection: self.connection,
            at: std::time::Instant::now(),
            helo: self.helo.clone(),
        };
        if self.drop_in_data.take() == Some(DropPoint::AfterData) {
            self.state.unacknowledged.lock().unwrap().push(received);
            return Ok(Next::Close);
        }
        if let Some(duration) = self.state.take_stall(StallPoint::EndOfData) {
            self.state.unacknowledged.lock().unwrap().push(received);
            tokio::time::sleep(duration).await;
            return Ok(Next::Close);
        }
        self.messages += 1;
        // Whatever the client sent with the end of data is in the buffer,
        // or (when the buffer ended exactly at the end-of-data line) ready
        // to read without waiting.
        let next_command_here = !io.buffer().is_empty()
            || futures_util::FutureExt::now_or_never(io.fill_buf()).is_some_and(|r| r.is_ok_and(|b| !b.is_empty()));
        if next_command_here {
            self.state.ends_with_next.fetch_add(1, Ordering::SeqCst);
        }
        let queued = {
            let mut inbox = self.state.inbox.lock().unwrap();
            inbox.push(received);
            inbox.len()
        };
        self.reply(io, &format!("250 2.0.0 Ok: queued as {queued}\r\n")).await?;
        self.reset();
        Ok(Next::Continue)
    }
}

impl State {
    /// The duration of the next stall at `point`, using one up.
    fn take_stall(&self, point: StallPoint) -> Option<Duration> {
        let mut stalls = self.stalls.lock().unwrap();
        let stall = stalls.iter_mut().find(|(p, _, left)| *p == point && *left > 0)?;
        stall.2 -= 1;
        Some(stall.1)
    }

    /// The action of the first rule matching `recipient` that has uses
    /// left, using one up.
    fn take_rule(&self, recipient: &str) -> Option<Action> {
        let recipient = recipient.to_ascii_lowercase();
        let mut rules = self.rules.lock().unwrap();
        let rule = rules
            .iter_mut()
            .find(|r| recipient.contains(r.fragment.as_str()) && r.uses_left != Some(0))?;
        if let Some(n) = &mut rule.uses_left {
            *n -= 1;
        }
        Some(rule.action.clone())
    }
}

/// A command line as read.
enum Line {
    /// Without its CRLF.
    Command(String),
    /// A line the protocol does not allow, and why.
    Violation(String),
}

/// One command line; `None` at the end of the stream.
async fn read_line(io: &mut BufReader<Box<dyn Stream>>) -> io::Result<Option<Line>> {
    let mut line = Vec::new();
    if io.read_until(b'\n', &mut line).await? == 0 {
        return Ok(None);
    }
    if let Some(why) = data_line_violation(&line) {
        return Ok(Some(Line::Violation(format!("command: {why}"))));
    }
    line.truncate(line.len() - 2);
    Ok(Some(Line::Command(String::from_utf8_lossy(&line).into_owned())))
}

/// What is wrong with a line as read (up to its LF, if it has one): a line
/// end other than CRLF, a CR elsewhere, more than 998 octets before the
/// CRLF (RFC 5321 §2.3.8, §4.5.3.1.6).
fn data_line_violation(line: &[u8]) -> Option<String> {
    let Some(body) = line.strip_suffix(b"\r\n") else {
        return Some(match line.last() {
            Some(b'\n') => format!("a bare LF ends a line of {} octets", line.len() - 1),
            _ => "the last line has no CRLF".to_owned(),
        });
    };
    if body.contains(&b'\r') {
        return Some("a bare CR within a line".to_owned());
    }
    if body.contains(&b'\n') {
        return Some("a bare LF within a line".to_owned());
    }
    (body.len() > 998).then(|| format!("a line of {} octets (at most 998)", body.len()))
}

impl Session {
    /// Writes a reply, noting whether the client pipelined (the next
    /// command is already here) and leaving out the enhanced status codes
    /// when they are not advertised.
    async fn reply(&mut self, io: &mut BufReader<Box<dyn Stream>>, text: &str) -> io::Result<()> {
        if !io.buffer().is_empty() {
            self.state.pipelined.lock().unwrap().insert(self.connection);
        }
        let enhanced = self.state.advertised.lock().unwrap()[Extension::EnhancedStatusCodes as usize];
        if enhanced {
            return write(io, text).await;
        }
        let plain: String = text
            .split_inclusive("\r\n")
            .map(|line| match line.get(..4).zip(line.get(4..)) {
                Some((code, rest)) => {
                    let (first, after) = rest.split_once(' ').unwrap_or((rest, ""));
                    let is_enhanced = first.split('.').count() == 3
                        && first
                            .split('.')
                            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
                    if is_enhanced {
                        format!("{code}{after}")
                    } else {
                        line.to_owned()
                    }
                }
                None => line.to_owned(),
            })
            .collect();
        write(io, &plain).await
    }
}

async fn write(io: &mut BufReader<Box<dyn Stream>>, text: &str) -> io::Result<()> {
    let stream = io.get_mut();
    stream.write_all(text.as_bytes()).await?;
    stream.flush().await
}

/// A SASL exchange step: the initial response if the client gave one,
/// else a `334` challenge and the client's answer, base64-decoded. `None`
/// if the client cancelled (`*`) or sent something that is not base64.
async fn challenge(
    io: &mut BufReader<Box<dyn Stream>>,
    initial: Option<String>,
    prompt: &str,
) -> io::Result<Option<Vec<u8>>> {
    let response = match initial {
        Some(initial) => initial,
        None => {
            write(io, &format!("334 {prompt}\r\n")).await?;
            match read_line(io).await? {
                Some(Line::Command(line)) => line,
                // Not base64 either: answered as such.
                Some(Line::Violation(why)) => why,
                None => String::new(),
            }
        }
    };
    if response == "*" {
        return Ok(None);
    }
    if response == "=" {
        return Ok(Some(Vec::new()));
    }
    Ok(BASE64.decode(response.trim()).ok())
}

/// The address in `FROM:<a@b> PARAMS` or `TO:<a@b>` (the prefix matched
/// without regard to case); `<>` gives the empty string.
fn path_argument(rest: &str, prefix: &str) -> Option<String> {
    let head = rest.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let path = rest[prefix.len()..].trim_start();
    let path = path.split_whitespace().next().unwrap_or("");
    let address = path.strip_prefix('<')?.strip_suffix('>')?;
    Some(address.to_owned())
}
