//! Mail coming back: digests and confirmations leave with a return path
//! that names them (VERP) and digests with the reader's own `mailto:`
//! unsubscribe address; what comes back reaches the SMTP/LMTP listener
//! through clients Gazette did not write (Debian's `swaks`, and lettre as a
//! mail program would send), and through a plain socket where a test must
//! see every reply line (LMTP's one reply per recipient, pipelining).
//!
//! The loop tests (a DSN bounces the reader, a complaint unsubscribes and
//! marks them, mail to the mailto unsubscribes) need the classification and
//! the policy of issue 15 as well as the listener.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use gazette::domain::IssueWeek;
use gazette::mail::verp::{Addressed, Origin, ReturnPaths};
use gazette::with_pool;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use uuid::Uuid;

use crate::admin::{add_article, add_confirmed_reader, hidden_field, staff_session};
use crate::helpers::{
    Backend, Received, TestApp, WorkerProcess, free_port, spawn_app, spawn_app_with, spawn_web_only, wait_until,
};

const BOUNCE_DOMAIN: &str = "bounces.gazette.test";

/// Why swaks cannot run here, if it cannot (`.ci/run` installs it).
pub fn missing_swaks() -> Option<String> {
    match Command::new("swaks").arg("--version").output() {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(format!(
            "swaks --version failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )),
        Err(e) => Some(format!("swaks is not installed (apt-get install swaks): {e}")),
    }
}

/// The app with a bounce domain and the listener on a port of its own.
async fn spawn_listening(backend: &Backend, customise: impl FnOnce(&mut gazette::config::Settings)) -> (TestApp, u16) {
    let port = free_port();
    let app = spawn_app_with(backend, |settings| {
        settings.mail.bounce_domain = BOUNCE_DOMAIN.into();
        settings.inbound.smtp_listen = Some(format!("127.0.0.1:{port}").parse().unwrap());
        customise(settings);
    })
    .await;
    (app, port)
}

/// The addresses as the app writes and reads them, with the key it keeps
/// in the database.
async fn return_paths(app: &TestApp) -> ReturnPaths {
    let secret = gazette::db::inbound::return_path_secret(&app.db).await.unwrap();
    ReturnPaths::new(BOUNCE_DOMAIN, &secret)
}

async fn subscriber_id(app: &TestApp, email_key: &str) -> Uuid {
    with_pool!(&app.db, pool => sqlx::query_scalar("SELECT id FROM subscribers WHERE email_key = $1")
        .bind(email_key)
        .fetch_one(pool)
        .await
        .unwrap())
}

async fn stored_messages(app: &TestApp) -> Vec<(String, String, Vec<u8>)> {
    with_pool!(&app.db, pool => sqlx::query_as(
        "SELECT source, envelope_to, raw FROM inbound_messages ORDER BY received_at")
        .fetch_all(pool)
        .await
        .unwrap())
}

/// Staff write one article and send the issue; waits for every reader's copy.
async fn send_issue(app: &TestApp, readers: &[&str]) -> Vec<Received> {
    for reader in readers {
        add_confirmed_reader(app, reader, "A Reader").await;
    }
    let mut staff = staff_session(app).await;
    add_article(&mut staff, "Floods in the north").await;
    let confirm = staff.page("/admin/issues/send").await;
    let key = hidden_field(&confirm, "key");
    assert_eq!(staff.post("/admin/issues/send", &[("key", &key)]).await.status(), 303);
    let mut copies = Vec::new();
    for reader in readers {
        copies.push(app.smtp.wait_for(reader, 1).await.remove(0));
    }
    copies
}

async fn issue_week(app: &TestApp) -> IssueWeek {
    let week: String = with_pool!(&app.db, pool => sqlx::query_scalar("SELECT week FROM issues")
        .fetch_one(pool)
        .await
        .unwrap());
    IssueWeek::parse(&week).unwrap()
}

/// `List-Unsubscribe`'s URIs, in order.
fn list_unsubscribe(message: &Received) -> Vec<String> {
    let parsed = message.parsed();
    let value: String = parsed
        .header_raw("List-Unsubscribe")
        .expect("a List-Unsubscribe header")
        .split_whitespace()
        .collect();
    value
        .split(',')
        .map(|uri| uri.trim_start_matches('<').trim_end_matches('>').to_owned())
        .collect()
}

/// What swaks said, and whether it thought the message went through.
struct Swaks {
    delivered: bool,
    transcript: String,
}

/// Delivers `message` with swaks (`extra` adds options, e.g. `--protocol
/// LMTP`); `from` may be empty for the null sender, as bounces have.
async fn swaks(port: u16, from: &str, to: &str, message: &[u8], extra: &[&str]) -> Swaks {
    let mut args: Vec<String> = [
        "--server",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--helo",
        "mta.example.net",
        "--from",
        // swaks's spelling of the null sender.
        if from.is_empty() { "<>" } else { from },
        "--to",
        to,
        "--data",
        "-",
        "--timeout",
        "10",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let message = message.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new("swaks")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("swaks runs");
        child.stdin.take().unwrap().write_all(&message).unwrap();
        let output = child.wait_with_output().unwrap();
        Swaks {
            delivered: output.status.success(),
            transcript: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    })
    .await
    .unwrap()
}

/// A plain SMTP/LMTP client, for tests that must see every reply.
struct Raw {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Raw {
    /// Connects and returns the greeting with the client.
    async fn connect(port: u16) -> (Self, String) {
        Self::connect_at(std::net::Ipv4Addr::LOCALHOST, port).await
    }

    async fn connect_at(ip: std::net::Ipv4Addr, port: u16) -> (Self, String) {
        let stream = TcpStream::connect((ip, port)).await.unwrap();
        let (read, writer) = stream.into_split();
        let mut raw = Self {
            reader: BufReader::new(read),
            writer,
        };
        let greeting = raw.reply().await;
        (raw, greeting)
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    /// One reply, all its lines (empty if the server closed).
    async fn reply(&mut self) -> String {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(Duration::from_secs(10), self.reader.read_line(&mut line))
                .await
                .expect("a reply within 10 s")
                .unwrap();
            if read == 0 {
                return reply;
            }
            reply.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return reply;
            }
        }
    }

    async fn command(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }
}

/// A DSN as postfix writes it (RFC 3464), for `original_to` (the digest's
/// recipient) sent back to `return_path`.
pub fn postfix_dsn(return_path: &str, original_to: &str, status: &str, diagnostic: &str) -> Vec<u8> {
    format!(
        "Return-Path: <>\r\n\
         From: MAILER-DAEMON@mx.example.com (Mail Delivery System)\r\n\
         To: {return_path}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B0UND\"\r\n\
         Message-Id: <20261130.ABC@mx.example.com>\r\n\
         \r\n\
         --B0UND\r\n\
         Content-Description: Notification\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         \r\n\
         This is the mail system at host mx.example.com.\r\n\
         \r\n\
         I'm sorry to have to inform you that your message could not\r\n\
         be delivered to one or more recipients.\r\n\
         \r\n\
         <{original_to}>: host mx.example.com[192.0.2.25] said: {diagnostic}\r\n\
         \r\n\
         --B0UND\r\n\
         Content-Description: Delivery report\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; mx.example.com\r\n\
         Arrival-Date: Mon, 30 Nov 2026 10:00:00 +0000 (UTC)\r\n\
         \r\n\
         Final-Recipient: rfc822; {original_to}\r\n\
         Original-Recipient: rfc822;{original_to}\r\n\
         Action: failed\r\n\
         Status: {status}\r\n\
         Remote-MTA: dns; mx.example.com\r\n\
         Diagnostic-Code: smtp; {diagnostic}\r\n\
         \r\n\
         --B0UND\r\n\
         Content-Description: Undelivered Message Headers\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n\
         Return-Path: <{return_path}>\r\n\
         From: The Test Gazette <news@gazette.test>\r\n\
         To: {original_to}\r\n\
         Subject: Weekly digest\r\n\
         \r\n\
         --B0UND--\r\n"
    )
    .into_bytes()
}

/// An abuse report (RFC 5965) a mailbox provider sends for `original_to`.
fn arf_complaint(return_path: &str, original_to: &str) -> Vec<u8> {
    format!(
        "From: Mail Abuse <feedback@fbl.example.com>\r\n\
         To: {return_path}\r\n\
         Subject: FW: Weekly digest\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"ARF\"\r\n\
         \r\n\
         --ARF\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         \r\n\
         This is an email abuse report for an email message received from IP 192.0.2.1.\r\n\
         \r\n\
         --ARF\r\n\
         Content-Type: message/feedback-report\r\n\
         \r\n\
         Feedback-Type: abuse\r\n\
         User-Agent: ExampleFBL/1.0\r\n\
         Version: 1\r\n\
         Original-Mail-From: <{return_path}>\r\n\
         Original-Rcpt-To: <{original_to}>\r\n\
         Arrival-Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n\
         Source-IP: 192.0.2.1\r\n\
         \r\n\
         --ARF\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n\
         Return-Path: <{return_path}>\r\n\
         From: The Test Gazette <news@gazette.test>\r\n\
         To: {original_to}\r\n\
         Subject: Weekly digest\r\n\
         \r\n\
         --ARF--\r\n"
    )
    .into_bytes()
}

async fn rename(app: &TestApp, statement: &'static str) {
    with_pool!(&app.db, pool => {
        sqlx::query(statement).execute(pool).await.unwrap();
    })
}

fn small_message(to: &str) -> Vec<u8> {
    format!("From: someone@example.net\r\nTo: {to}\r\nSubject: hello\r\n\r\nHello.\r\n").into_bytes()
}

pub async fn with_a_bounce_domain_every_message_leaves_with_a_return_path_naming_it(backend: Backend) {
    let (app, _port) = spawn_listening(&backend, |_| {}).await;
    let paths = return_paths(&app).await;

    // A confirmation names its outgoing_mail row.
    assert_eq!(app.sign_up("Zoë", "zoe@example.com").await.status(), 200);
    let confirmation = app.smtp.wait_for("zoe@example.com", 1).await.remove(0);
    let row: Uuid = with_pool!(&app.db, pool => sqlx::query_scalar(
        "SELECT id FROM outgoing_mail WHERE recipient = 'zoe@example.com'")
        .fetch_one(pool)
        .await
        .unwrap());
    assert!(
        confirmation.mail_from.ends_with(&format!("@{BOUNCE_DOMAIN}")),
        "{}",
        confirmation.mail_from
    );
    assert_eq!(
        paths.read(&confirmation.mail_from),
        Some(Addressed::Bounce(Origin::Mail { id: row }))
    );

    // A digest names the reader and the issue's week, and carries the
    // reader's own mailto after the https link.
    let digest = send_issue(&app, &["ada@example.com"]).await.remove(0);
    let ada = subscriber_id(&app, "ada@example.com").await;
    assert_eq!(
        paths.read(&digest.mail_from),
        Some(Addressed::Bounce(Origin::Digest {
            week: issue_week(&app).await,
            subscriber: ada,
        }))
    );
    let uris = list_unsubscribe(&digest);
    let token = app.unsubscribe_token("ada@example.com").await;
    assert_eq!(uris.len(), 2, "{uris:?}");
    assert!(
        uris[0].starts_with("http://gazette.test/unsubscribe?token="),
        "{uris:?}"
    );
    let mailto = uris[1].strip_prefix("mailto:").expect("a mailto second");
    match paths.read(mailto) {
        Some(Addressed::Unsubscribe(read)) => assert_eq!(read.as_string(), token),
        other => panic!("the mailto reads as {other:?}"),
    }
    // The header's From stays the publication's: only the envelope changed.
    assert_eq!(
        digest.parsed().from().unwrap().first().unwrap().address(),
        Some("news@gazette.test")
    );
}

pub async fn without_a_bounce_domain_mail_leaves_as_before(backend: Backend) {
    let app = spawn_app(&backend).await;
    assert_eq!(app.sign_up("Zoë", "zoe@example.com").await.status(), 200);
    let confirmation = app.smtp.wait_for("zoe@example.com", 1).await.remove(0);
    assert_eq!(confirmation.mail_from, "news@gazette.test");
    let digest = send_issue(&app, &["ada@example.com"]).await.remove(0);
    assert_eq!(digest.mail_from, "news@gazette.test");
    let uris = list_unsubscribe(&digest);
    assert_eq!(uris.len(), 1, "only the https link: {uris:?}");
    assert!(uris[0].starts_with("http://gazette.test/unsubscribe?token="));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM app_secrets").await,
        0,
        "no key was made"
    );
}

pub async fn a_dsn_for_a_digest_delivered_with_swaks_bounces_that_reader(backend: Backend) {
    let (app, port) = spawn_listening(&backend, |_| {}).await;
    let copies = send_issue(&app, &["ada@example.com", "bob@example.com"]).await;
    let verp = &copies[0].mail_from;
    assert!(verp.starts_with("bounces+"), "{verp}");

    let dsn = postfix_dsn(
        verp,
        "ada@example.com",
        "5.1.1",
        "550 5.1.1 <ada@example.com>: Recipient address rejected: User unknown in virtual mailbox table",
    );
    let sent = swaks(port, "", verp, &dsn, &[]).await;
    assert!(sent.delivered, "{}", sent.transcript);
    assert!(
        sent.transcript.contains("250 2.0.0 Ok: stored as"),
        "{}",
        sent.transcript
    );
    let stored = stored_messages(&app).await;
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].0.as_str(), stored[0].1.as_str()), ("smtp", verp.as_str()));
    // As it came (swaks ends what it sends with an empty line of its own).
    assert_eq!(
        String::from_utf8_lossy(&stored[0].2).trim_end(),
        String::from_utf8_lossy(&dsn).trim_end(),
        "stored as it came"
    );

    wait_until(Duration::from_secs(10), "ada to be bounced", || async {
        app.subscriber_status("ada@example.com").await.as_deref() == Some("bounced")
    })
    .await;
    assert_eq!(
        app.subscriber_status("bob@example.com").await.as_deref(),
        Some("confirmed")
    );

    // The same message again (an MTA whose 250 got lost retries): taken,
    // and still stored once.
    let again = swaks(port, "", verp, &dsn, &[]).await;
    assert!(again.delivered, "{}", again.transcript);
    assert_eq!(stored_messages(&app).await.len(), 1, "a retried message is stored once");
}

pub async fn a_complaint_through_the_listener_unsubscribes_the_reader_and_marks_them(backend: Backend) {
    let (app, port) = spawn_listening(&backend, |_| {}).await;
    let copies = send_issue(&app, &["ada@example.com", "bob@example.com"]).await;
    let verp = &copies[1].mail_from;
    let sent = swaks(port, "", verp, &arf_complaint(verp, "bob@example.com"), &[]).await;
    assert!(sent.delivered, "{}", sent.transcript);
    assert_eq!(stored_messages(&app).await.len(), 1);

    wait_until(Duration::from_secs(10), "bob to be unsubscribed", || async {
        app.subscriber_status("bob@example.com").await.as_deref() == Some("unsubscribed")
    })
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM subscribers WHERE complained_at IS NOT NULL")
            .await,
        1
    );
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("confirmed")
    );
}

pub async fn mail_to_the_mailto_in_list_unsubscribe_unsubscribes_the_reader(backend: Backend) {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let (app, port) = spawn_listening(&backend, |_| {}).await;
    let copies = send_issue(&app, &["ada@example.com", "bob@example.com"]).await;
    let uris = list_unsubscribe(&copies[0]);
    let mailto = uris[1].strip_prefix("mailto:").expect("a mailto").to_owned();

    // As a mail program's unsubscribe button sends it: any subject, any text.
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .build();
    let message = lettre::Message::builder()
        .from("Ada <ada@example.com>".parse().unwrap())
        .to(mailto.parse().unwrap())
        .subject("Please take me off")
        .body("Thanks for everything.".to_owned())
        .unwrap();
    let response = transport.send(message).await.expect("the listener takes it");
    assert!(response.is_positive());
    assert_eq!(stored_messages(&app).await[0].1, mailto);

    wait_until(Duration::from_secs(10), "ada to be unsubscribed", || async {
        app.subscriber_status("ada@example.com").await.as_deref() == Some("unsubscribed")
    })
    .await;
    assert_eq!(
        app.subscriber_status("bob@example.com").await.as_deref(),
        Some("confirmed")
    );
}

pub async fn recipients_that_are_not_ours_get_550_and_nothing_is_stored(backend: Backend) {
    let (app, port) = spawn_listening(&backend, |_| {}).await;
    let paths = return_paths(&app).await;
    let real = paths.return_path(&Origin::Mail { id: Uuid::now_v7() }).to_string();
    let (local, _) = real.split_once('@').unwrap();
    let forged = format!(
        "{}{}@{BOUNCE_DOMAIN}",
        &local[..local.len() - 1],
        match local.ends_with('a') {
            true => 'b',
            false => 'a',
        }
    );
    let foreign_key = ReturnPaths::new(BOUNCE_DOMAIN, b"not the app's key")
        .return_path(&Origin::Mail { id: Uuid::now_v7() })
        .to_string();
    for recipient in [
        format!("nobody@{BOUNCE_DOMAIN}"),
        forged,
        foreign_key,
        // Relaying: ours, but at another domain; and a reader's own address.
        format!("{local}@elsewhere.example"),
        "ada@example.com".to_owned(),
    ] {
        let sent = swaks(port, "", &recipient, &small_message(&recipient), &[]).await;
        assert!(!sent.delivered, "{recipient}: {}", sent.transcript);
        assert!(
            sent.transcript.contains("550 5.1.1"),
            "{recipient}: {}",
            sent.transcript
        );
    }
    assert!(stored_messages(&app).await.is_empty());

    // With lettre too: a permanent error with the code.
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .build();
    let message = lettre::Message::builder()
        .from("someone@example.net".parse().unwrap())
        .to(format!("nobody@{BOUNCE_DOMAIN}").parse().unwrap())
        .subject("x")
        .body("x".to_owned())
        .unwrap();
    let error = transport.send(message).await.unwrap_err();
    assert!(error.is_permanent(), "{error}");
    assert_eq!(error.status().map(u16::from), Some(550), "{error}");

    // The postmaster is always taken (RFC 5321 §4.5.1), and shown to staff.
    let postmaster = format!("postmaster@{BOUNCE_DOMAIN}");
    let sent = swaks(
        port,
        "someone@example.net",
        &postmaster,
        &small_message(&postmaster),
        &[],
    )
    .await;
    assert!(sent.delivered, "{}", sent.transcript);
    assert_eq!(stored_messages(&app).await.len(), 1);
    // A real return path is taken.
    let sent = swaks(port, "", &real, &small_message(&real), &[]).await;
    assert!(sent.delivered, "{}", sent.transcript);
    assert_eq!(stored_messages(&app).await.len(), 2);
}

pub async fn an_oversize_message_gets_552_declared_or_counted_and_the_connection_goes_on(backend: Backend) {
    let (app, port) = spawn_listening(&backend, |settings| settings.inbound.max_message_bytes = 20_000).await;
    let postmaster = format!("postmaster@{BOUNCE_DOMAIN}");
    let (mut client, greeting) = Raw::connect(port).await;
    assert!(greeting.starts_with("220 "), "{greeting}");
    let ehlo = client.command("EHLO mta.example.net").await;
    for extension in ["SIZE 20000", "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"] {
        assert!(ehlo.contains(extension), "{ehlo}");
    }
    for absent in ["AUTH", "STARTTLS"] {
        assert!(!ehlo.contains(absent), "{ehlo}");
    }
    // Declared.
    let reply = client.command("MAIL FROM:<> SIZE=20001").await;
    assert!(reply.starts_with("552 5.3.4"), "{reply}");
    // Counted while reading: 200 kB sent, read to the end, dropped.
    assert!(client.command("MAIL FROM:<> SIZE=100").await.starts_with("250"));
    assert!(
        client
            .command(&format!("RCPT TO:<{postmaster}>"))
            .await
            .starts_with("250")
    );
    assert!(client.command("DATA").await.starts_with("354"));
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    for _ in 0..2000 {
        big.extend_from_slice(&[b'x'; 98]);
        big.extend_from_slice(b"\r\n");
    }
    big.extend_from_slice(b".\r\n");
    client.send(&big).await;
    let reply = client.reply().await;
    assert!(reply.starts_with("552 5.3.4"), "{reply}");
    // The connection goes on: the rest of the message was not taken for commands.
    assert!(client.command("NOOP").await.starts_with("250"));
    // A command line over the limit is refused, and the next one read.
    let reply = client.command(&"X".repeat(5000)).await;
    assert!(reply.starts_with("500 5.5.2"), "{reply}");
    assert!(client.command("RSET").await.starts_with("250"));
    assert!(stored_messages(&app).await.is_empty());
    // A message within the limit, on the same connection.
    assert!(client.command("MAIL FROM:<>").await.starts_with("250"));
    assert!(
        client
            .command(&format!("RCPT TO:<{postmaster}>"))
            .await
            .starts_with("250")
    );
    assert!(client.command("DATA").await.starts_with("354"));
    let reply = client.command("Subject: small\r\n\r\n..dot-stuffed\r\n.").await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert!(client.command("QUIT").await.starts_with("221"));
    let stored = stored_messages(&app).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].2, b"Subject: small\r\n\r\n.dot-stuffed\r\n");

    // swaks, whose message is over the limit without saying so.
    let mut body = small_message(&postmaster);
    body.extend(std::iter::repeat_n(b"y".repeat(76).into_iter().chain(*b"\n"), 400).flatten());
    let sent = swaks(port, "", &postmaster, &body, &[]).await;
    assert!(!sent.delivered, "{}", sent.transcript);
    assert!(sent.transcript.contains("552 5.3.4"), "{}", sent.transcript);
    assert_eq!(stored_messages(&app).await.len(), 1);
}

pub async fn lmtp_answers_once_for_each_recipient_it_took(backend: Backend) {
    let (app, port) = spawn_listening(&backend, |_| {}).await;
    let paths = return_paths(&app).await;
    let first = paths.return_path(&Origin::Mail { id: Uuid::now_v7() }).to_string();
    let second = paths.return_path(&Origin::Mail { id: Uuid::now_v7() }).to_string();
    let (mut client, _) = Raw::connect(port).await;
    let lhlo = client.command("LHLO mta.example.net").await;
    assert!(lhlo.contains("PIPELINING"), "{lhlo}");
    // Pipelined (RFC 2920): every command in one write, the replies in order.
    client
        .send(
            format!(
                "MAIL FROM:<>\r\nRCPT TO:<{first}>\r\nRCPT TO:<nobody@{BOUNCE_DOMAIN}>\r\nRCPT TO:<{second}>\r\nDATA\r\n"
            )
            .as_bytes(),
        )
        .await;
    let replies = [
        client.reply().await,
        client.reply().await,
        client.reply().await,
        client.reply().await,
        client.reply().await,
    ];
    let codes: Vec<&str> = replies.iter().map(|r| &r[..3]).collect();
    assert_eq!(codes, ["250", "250", "550", "250", "354"], "{replies:?}");
    client.send(b"Subject: two\r\n\r\nTwo recipients.\r\n.\r\n").await;
    // One reply per recipient taken, none for the refused one.
    let (one, two) = (client.reply().await, client.reply().await);
    assert!(
        one.starts_with("250 2.0.0") && two.starts_with("250 2.0.0"),
        "{one}{two}"
    );
    assert!(
        client.command("NOOP").await.starts_with("250"),
        "no third reply came first"
    );
    let stored = stored_messages(&app).await;
    assert_eq!(stored.len(), 1, "stored once for both");
    assert_eq!(stored[0].1, format!("{first}\n{second}"));

    // swaks speaks LMTP too.
    let sent = swaks(port, "", &first, &small_message(&first), &["--protocol", "LMTP"]).await;
    assert!(sent.delivered, "{}", sent.transcript);
    assert!(sent.transcript.contains("LHLO"), "{}", sent.transcript);
    assert_eq!(stored_messages(&app).await.len(), 2);
}

pub async fn connections_past_the_limit_get_421_until_one_closes(backend: Backend) {
    let (_app, port) = spawn_listening(&backend, |settings| settings.inbound.max_connections = 2).await;
    let (mut first, greeting) = Raw::connect(port).await;
    assert!(greeting.starts_with("220"), "{greeting}");
    let (_second, greeting) = Raw::connect(port).await;
    assert!(greeting.starts_with("220"), "{greeting}");
    let (_third, greeting) = Raw::connect(port).await;
    assert!(greeting.starts_with("421 4.3.2"), "{greeting}");
    assert!(first.command("QUIT").await.starts_with("221"));
    drop(first);
    wait_until(Duration::from_secs(5), "a place to free up", || async {
        Raw::connect(port).await.1.starts_with("220")
    })
    .await;
}

pub async fn a_message_the_database_cannot_store_gets_451_and_its_retry_is_stored(backend: Backend) {
    let (app, port) = spawn_listening(&backend, |_| {}).await;
    let postmaster = format!("postmaster@{BOUNCE_DOMAIN}");
    rename(&app, "ALTER TABLE inbound_messages RENAME TO inbound_messages_away").await;
    let sent = swaks(port, "", &postmaster, &small_message(&postmaster), &[]).await;
    assert!(!sent.delivered, "{}", sent.transcript);
    assert!(sent.transcript.contains("451 4.3.0"), "{}", sent.transcript);
    rename(&app, "ALTER TABLE inbound_messages_away RENAME TO inbound_messages").await;
    // The sending MTA tries again later, and this time it is stored.
    let sent = swaks(port, "", &postmaster, &small_message(&postmaster), &[]).await;
    assert!(sent.delivered, "{}", sent.transcript);
    assert_eq!(stored_messages(&app).await.len(), 1);
}

pub async fn a_worker_process_signs_return_paths_with_the_key_every_process_shares(backend: Backend) {
    // The web role here has no bounce domain: only the worker process
    // composes, and it makes the key (first to ask) in the database.
    let app = spawn_web_only(&backend).await;
    assert_eq!(app.sign_up("Ada", "ada@example.com").await.status(), 200);
    let worker = WorkerProcess::start_with(
        &backend,
        app.smtp.port,
        &[("GAZETTE_MAIL__BOUNCE_DOMAIN", BOUNCE_DOMAIN)],
    );
    let confirmation = app.smtp.wait_for("ada@example.com", 1).await.remove(0);
    assert!(worker.stop().await.success());
    // Read back with the key as this process finds it in the database, as
    // the listener of another process would.
    let row: Uuid = with_pool!(&app.db, pool => sqlx::query_scalar("SELECT id FROM outgoing_mail")
        .fetch_one(pool)
        .await
        .unwrap());
    assert_eq!(
        return_paths(&app).await.read(&confirmation.mail_from),
        Some(Addressed::Bounce(Origin::Mail { id: row })),
        "{}",
        confirmation.mail_from
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM app_secrets").await, 1);
}

pub async fn a_silent_client_times_out_and_stopping_closes_idle_connections_with_421(backend: Backend) {
    use gazette::inbound::Inbound;
    use gazette::inbound::smtp_listener::{Limits, Listener};
    // A listener of its own, with a read timeout a test can wait out.
    let app = spawn_app(&backend).await;
    let mut settings = crate::helpers::test_settings(&backend, app.smtp.port);
    settings.mail.bounce_domain = BOUNCE_DOMAIN.into();
    let inbound = Inbound::new(app.db.clone(), &settings).await.unwrap();
    // An address of its own in 127.0.0.0/8, which no other test binds: once
    // this listener has closed its port, nothing else can have taken that
    // port at this address before the last check (on 127.0.0.1 another
    // test running alongside once did, and the check saw it listening).
    let ip = std::net::Ipv4Addr::new(
        127,
        rand::random_range(1..255),
        rand::random_range(1..255),
        rand::random_range(2..255),
    );
    let socket = std::net::TcpListener::bind((ip, 0)).unwrap();
    let port = socket.local_addr().unwrap().port();
    let listener = Listener::new(socket, inbound).with_limits(Limits {
        read_timeout: Duration::from_secs(1),
        ..Limits::default()
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(listener.run(stopped));

    // Silent between commands.
    let (mut idle, _) = Raw::connect_at(ip, port).await;
    let started = std::time::Instant::now();
    let reply = idle.reply().await;
    assert!(reply.starts_with("421 4.4.2"), "{reply}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    // Silent in the middle of a message: nothing is stored.
    let postmaster = format!("postmaster@{BOUNCE_DOMAIN}");
    let (mut stalled, _) = Raw::connect_at(ip, port).await;
    assert!(stalled.command("HELO mta.example.net").await.starts_with("250"));
    assert!(stalled.command("MAIL FROM:<>").await.starts_with("250"));
    assert!(
        stalled
            .command(&format!("RCPT TO:<{postmaster}>"))
            .await
            .starts_with("250")
    );
    assert!(stalled.command("DATA").await.starts_with("354"));
    stalled.send(b"Subject: half\r\n\r\nhalf a mess").await;
    let reply = stalled.reply().await;
    assert!(reply.starts_with("421 4.4.2"), "{reply}");
    assert!(stored_messages(&app).await.is_empty());

    // Stopping: an idle connection is told at once, and the listener ends.
    let (mut open, _) = Raw::connect_at(ip, port).await;
    assert!(open.command("NOOP").await.starts_with("250"));
    stop.send(true).unwrap();
    let reply = open.reply().await;
    assert!(reply.starts_with("421 4.3.2"), "{reply}");
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the listener stops")
        .unwrap();
    assert!(
        TcpStream::connect((ip, port)).await.is_err(),
        "nothing listens any more"
    );
}

/// An issue's page in the staff area says what followed its send: a bounce
/// and a complaint that came back over SMTP for its copies, and a reader
/// who left with its one-click link; its recipients page lists every copy,
/// searchable, filtered and as CSV.
pub async fn an_issues_page_counts_what_came_back_and_lists_its_recipients(backend: Backend) {
    let (app, port) = spawn_listening(&backend, |_| {}).await;
    let readers = [
        "ada@example.com",
        "bob@example.com",
        "cal@example.com",
        "dan@example.com",
    ];
    let copies = send_issue(&app, &readers).await;
    let week = issue_week(&app).await;

    let ada = &copies[0].mail_from;
    let dsn = postfix_dsn(ada, "ada@example.com", "5.1.1", "550 5.1.1 User unknown");
    assert!(swaks(port, "", ada, &dsn, &[]).await.delivered);
    let bob = &copies[1].mail_from;
    assert!(
        swaks(port, "", bob, &arf_complaint(bob, "bob@example.com"), &[])
            .await
            .delivered
    );
    // Cal's mail program presses the https link of the list header.
    let one_click = list_unsubscribe(&copies[2])[0].clone();
    assert!(one_click.ends_with(&format!("&issue={week}")), "{one_click}");
    let response = app
        .post_raw(
            one_click.strip_prefix(crate::helpers::BASE_URL).unwrap(),
            "application/x-www-form-urlencoded",
            b"List-Unsubscribe=One-Click".to_vec(),
        )
        .await;
    assert_eq!(response.status(), 200);
    wait_until(Duration::from_secs(10), "the bounce and the complaint", || async {
        app.subscriber_status("ada@example.com").await.as_deref() == Some("bounced")
            && app.subscriber_status("bob@example.com").await.as_deref() == Some("unsubscribed")
    })
    .await;

    // `send_issue` made the staff member: log in again.
    let mut staff = crate::admin::StaffClient::new(&app);
    assert_eq!(
        staff
            .log_in(crate::admin::STAFF_EMAIL, crate::admin::STAFF_PASSWORD)
            .await
            .status(),
        303
    );
    let page = staff.page(&format!("/admin/issues/{week}")).await;
    for (count, what) in [
        (1, "bounced"),
        (1, "complained (marked as spam)"),
        (1, "unsubscribed through this issue"),
        (0, "deferred (to be tried again)"),
    ] {
        assert!(
            page.contains(&format!("<strong>{count}</strong>{what}</div>")),
            "{what}: {page}"
        );
    }
    assert!(page.contains("Last copy sent 20"), "{page}");

    let recipients = staff.page(&format!("/admin/issues/{week}/recipients")).await;
    for reader in readers {
        assert!(recipients.contains(&format!(">{reader}</a>")), "{reader}: {recipients}");
    }
    let dan = staff.page(&format!("/admin/issues/{week}/recipients?q=DAN")).await;
    assert!(
        dan.contains(">dan@example.com</a>") && !dan.contains(">cal@example.com</a>"),
        "{dan}"
    );
    let failed = staff
        .page(&format!("/admin/issues/{week}/recipients?status=failed"))
        .await;
    assert!(failed.contains("No recipient matches."), "{failed}");
    let bad = staff.get(&format!("/admin/issues/{week}/recipients?status=lost")).await;
    assert_eq!(bad.status(), 400);
    let csv = staff
        .get(&format!("/admin/issues/{week}/recipients.csv?status=sent"))
        .await;
    assert_eq!(csv.status(), 200);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(
        rows.headers().unwrap(),
        vec!["email", "name", "state", "attempts", "sent_at", "last_error"]
    );
    let emails: Vec<String> = rows.records().map(|r| r.unwrap()[0].to_owned()).collect();
    assert_eq!(emails, readers);

    // Cal's own page: the issue she was sent, and that she left from it.
    let cal = staff
        .page(&format!(
            "/admin/subscribers/{}",
            subscriber_id(&app, "cal@example.com").await
        ))
        .await;
    assert!(
        cal.contains(&format!(
            r#"<tr><td data-label="Issue"><a href="/admin/issues/{week}">{week}</a></td>"#
        )) && cal.contains(r#"<td data-label="Their copy">sent</td>"#),
        "{cal}"
    );
    assert!(
        cal.contains(
            r#"<td data-label="What">unsubscribed</td><td data-label="Detail">with their mail program&#39;s unsubscribe button</td>"#
        ),
        "{cal}"
    );
}
