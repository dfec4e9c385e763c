//! The provider webhooks over HTTP: Mailgun's posts signed with Python's
//! `hmac` (an implementation Gazette did not write), Postmark's with Basic
//! credentials. What cannot be authenticated gets 401 and stores nothing;
//! a replay is stored once; a good post is stored and changes the reader.

use std::path::PathBuf;
use std::process::Command;

use gazette::config::Settings;
use serde_json::json;

use crate::admin::add_confirmed_reader;
use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with};

const MAILGUN_KEY: &str = "key-0123456789abcdef";
const POSTMARK_USER: &str = "postmark-hooks";
const POSTMARK_PASSWORD: &str = "p@ss:wörd";

/// A file holding `secret`, in a directory of its own.
fn secret_file(name: &str, secret: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gazette-hooks-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    path
}

fn configure_hooks(settings: &mut Settings) {
    settings.inbound.mailgun_signing_key_file = secret_file("mailgun", MAILGUN_KEY);
    settings.inbound.postmark_username = POSTMARK_USER.to_owned();
    settings.inbound.postmark_password_file = secret_file("postmark", POSTMARK_PASSWORD);
}

/// Mailgun's signature as Python's `hmac` computes it.
fn python_hmac(key: &str, timestamp: &str, token: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import hashlib, hmac, sys\n\
             print(hmac.new(sys.argv[1].encode(), (sys.argv[2] + sys.argv[3]).encode(), hashlib.sha256).hexdigest())",
            key,
            timestamp,
            token,
        ])
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn mailgun_post(timestamp: i64, token: &str, signature: &str, event_data: serde_json::Value) -> Vec<u8> {
    json!({
        "signature": {"timestamp": timestamp.to_string(), "token": token, "signature": signature},
        "event-data": event_data,
    })
    .to_string()
    .into_bytes()
}

fn signed_mailgun_post(timestamp: i64, token: &str, event_data: serde_json::Value) -> Vec<u8> {
    let signature = python_hmac(MAILGUN_KEY, &timestamp.to_string(), token);
    mailgun_post(timestamp, token, &signature, event_data)
}

fn hard_bounce(recipient: &str) -> serde_json::Value {
    json!({
        "event": "failed",
        "severity": "permanent",
        "id": "G9Bn5sl1TC6nu79C8C0bwg",
        "timestamp": 1521233195.375624,
        "recipient": recipient,
        "reason": "bounce",
        "delivery-status": {
            "code": 550,
            "enhanced-code": "5.1.1",
            "message": "5.1.1 The email account that you tried to reach does not exist.",
        },
    })
}

/// The stored post with this dedupe key, read as the pipeline reads it.
async fn reading(app: &TestApp, dedupe_key: &str) -> gazette::inbound::Report {
    let (source, raw): (String, Vec<u8>) = gazette::with_pool!(&app.db, pool => {
        sqlx::query_as("SELECT source, raw FROM inbound_messages WHERE dedupe_key = $1")
            .bind(dedupe_key)
            .fetch_one(pool)
            .await
            .unwrap()
    });
    let source = match source.as_str() {
        "mailgun" => gazette::domain::InboundSource::Mailgun,
        "postmark" => gazette::domain::InboundSource::Postmark,
        "ses" => gazette::domain::InboundSource::Ses,
        other => panic!("stored from {other}"),
    };
    gazette::inbound::classify(source, &raw, &[])
}

async fn stored(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM inbound_messages").await
}

async fn post(app: &TestApp, path: &str, authorization: Option<&str>, body: Vec<u8>) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}{path}", app.address))
        .header("Content-Type", "application/json")
        .body(body);
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    request.send().await.expect("POST")
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

pub async fn the_webhook_routes_answer_404_until_configured(backend: Backend) {
    let app = spawn_app(&backend).await;
    let now = chrono::Utc::now().timestamp();
    let body = signed_mailgun_post(now, "t1", hard_bounce("ada@example.com"));
    assert_eq!(post(&app, "/inbound/mailgun", None, body).await.status(), 404);
    let body = json!({"RecordType": "Bounce", "ID": 1}).to_string().into_bytes();
    let auth = basic(POSTMARK_USER, POSTMARK_PASSWORD);
    assert_eq!(post(&app, "/inbound/postmark", Some(&auth), body).await.status(), 404);
    let sns = json!({"Type": "Notification", "TopicArn": TOPIC})
        .to_string()
        .into_bytes();
    assert_eq!(post(&app, "/inbound/ses", None, sns).await.status(), 404);
    assert_eq!(stored(&app).await, 0);
}

pub async fn mailgun_posts_are_refused_unless_signed_and_fresh_stored_once_and_bounce_the_reader(backend: Backend) {
    let app = spawn_app_with(&backend, configure_hooks).await;
    add_confirmed_reader(&app, "ada@example.com", "Ada").await;
    let now = chrono::Utc::now().timestamp();
    let event = hard_bounce("ada@example.com");

    // Nothing that cannot be authenticated is stored.
    let unsigned = json!({"event-data": event}).to_string().into_bytes();
    assert_eq!(post(&app, "/inbound/mailgun", None, unsigned).await.status(), 401);
    let wrong_key = python_hmac("key-someone-else", &now.to_string(), "tok-1");
    let forged = mailgun_post(now, "tok-1", &wrong_key, event.clone());
    assert_eq!(post(&app, "/inbound/mailgun", None, forged).await.status(), 401);
    // A good signature over another timestamp than the one posted.
    let moved = mailgun_post(
        now,
        "tok-1",
        &python_hmac(MAILGUN_KEY, &(now - 1).to_string(), "tok-1"),
        event.clone(),
    );
    assert_eq!(post(&app, "/inbound/mailgun", None, moved).await.status(), 401);
    let old = signed_mailgun_post(now - 6 * 60, "tok-old", event.clone());
    assert_eq!(post(&app, "/inbound/mailgun", None, old).await.status(), 401);
    let not_json = b"signature=abc&token=def".to_vec();
    assert_eq!(post(&app, "/inbound/mailgun", None, not_json).await.status(), 401);
    assert_eq!(stored(&app).await, 0, "a refused post stores nothing");

    // Too large: refused before it is read.
    let huge = signed_mailgun_post(
        now,
        "tok-huge",
        json!({"event": "failed", "pad": "x".repeat(300 * 1024)}),
    );
    assert_eq!(post(&app, "/inbound/mailgun", None, huge).await.status(), 413);

    // Well signed but not an event: 400, nothing stored.
    let eventless = signed_mailgun_post(now, "tok-2", json!("nothing"));
    assert_eq!(post(&app, "/inbound/mailgun", None, eventless).await.status(), 400);
    assert_eq!(stored(&app).await, 0);

    let good = signed_mailgun_post(now, "tok-3", event.clone());
    let response = post(&app, "/inbound/mailgun", None, good.clone()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(stored(&app).await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM inbound_messages WHERE source = 'mailgun' AND dedupe_key = 'mailgun:tok-3'")
            .await,
        1
    );
    // The same post again (a replay, or Mailgun retrying): stored once.
    assert_eq!(post(&app, "/inbound/mailgun", None, good).await.status(), 200);
    assert_eq!(stored(&app).await, 1, "a replay is not stored twice");
    let report = reading(&app, "mailgun:tok-3").await;
    assert_eq!(report.kind, gazette::domain::InboundKind::Hard);
    assert_eq!(report.reason.as_str(), "userunknown");
    assert_eq!(report.recipient.as_deref(), Some("ada@example.com"));
    assert_eq!(report.status_code.as_deref(), Some("5.1.1"));

    // Needs the policy work (`inbound::apply`): a hard bounce for a reader
    // found by address makes them `bounced`.
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("bounced")
    );
}

pub async fn postmark_posts_need_the_credentials_are_stored_once_and_a_complaint_unsubscribes(backend: Backend) {
    let app = spawn_app_with(&backend, configure_hooks).await;
    add_confirmed_reader(&app, "bob@example.com", "Bob").await;
    add_confirmed_reader(&app, "cyd@example.com", "Cyd").await;
    let complaint = json!({
        "RecordType": "SpamComplaint",
        "MessageStream": "outbound",
        "ID": 42,
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "Name": "Spam complaint",
        "Tag": "",
        "MessageID": "00000000-0000-0000-0000-000000000000",
        "ServerID": 23,
        "Description": "The subscriber explicitly marked this message as spam.",
        "Details": "Test spam complaint details",
        "Email": "bob@example.com",
        "From": "news@gazette.test",
        "BouncedAt": "2026-11-30T10:00:00Z",
        "Inactive": true,
        "CanActivate": false,
        "Subject": "This week",
    })
    .to_string()
    .into_bytes();

    let good = basic(POSTMARK_USER, POSTMARK_PASSWORD);
    for authorization in [
        None,
        Some(basic(POSTMARK_USER, "p@ss:wörd2")),
        Some(basic("someone", POSTMARK_PASSWORD)),
        Some(format!("Bearer {POSTMARK_PASSWORD}")),
    ] {
        let response = post(&app, "/inbound/postmark", authorization.as_deref(), complaint.clone()).await;
        assert_eq!(response.status(), 401, "{authorization:?}");
        assert!(
            (response.headers()["www-authenticate"].to_str().unwrap()).starts_with("Basic realm="),
            "{authorization:?}"
        );
    }
    assert_eq!(stored(&app).await, 0, "a refused post stores nothing");

    let malformed = b"{\"RecordType\": \"Bounce\"".to_vec();
    assert_eq!(
        post(&app, "/inbound/postmark", Some(&good), malformed).await.status(),
        400
    );
    let no_id = json!({"RecordType": "Bounce", "Email": "bob@example.com"})
        .to_string()
        .into_bytes();
    assert_eq!(post(&app, "/inbound/postmark", Some(&good), no_id).await.status(), 400);
    assert_eq!(stored(&app).await, 0);

    let response = post(&app, "/inbound/postmark", Some(&good), complaint.clone()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        post(&app, "/inbound/postmark", Some(&good), complaint).await.status(),
        200
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM inbound_messages WHERE source = 'postmark' AND dedupe_key = 'postmark:SpamComplaint:42'"
        )
        .await,
        1,
        "a replay is not stored twice"
    );
    assert_eq!(stored(&app).await, 1);

    let bounce = json!({
        "RecordType": "Bounce",
        "ID": 4323372036854775807_u64,
        "Type": "HardBounce",
        "TypeCode": 1,
        "Name": "Hard bounce",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": "cyd@example.com",
        "BouncedAt": "2026-11-30T10:00:00Z",
    })
    .to_string()
    .into_bytes();
    assert_eq!(post(&app, "/inbound/postmark", Some(&good), bounce).await.status(), 200);
    assert_eq!(stored(&app).await, 2);
    let report = reading(&app, "postmark:SpamComplaint:42").await;
    assert_eq!(report.kind, gazette::domain::InboundKind::Complaint);
    assert_eq!(report.recipient.as_deref(), Some("bob@example.com"));
    let report = reading(&app, "postmark:Bounce:4323372036854775807").await;
    assert_eq!(report.kind, gazette::domain::InboundKind::Hard);
    assert_eq!(report.recipient.as_deref(), Some("cyd@example.com"));

    // Needs the policy work (`inbound::apply`): a complaint unsubscribes the
    // reader at once and marks them, a hard bounce makes them `bounced`.
    assert_eq!(
        app.subscriber_status("bob@example.com").await.as_deref(),
        Some("unsubscribed")
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM subscribers WHERE email_key = 'bob@example.com' AND complained_at IS NOT NULL")
            .await,
        1
    );
    assert_eq!(
        app.subscriber_status("cyd@example.com").await.as_deref(),
        Some("bounced")
    );
}

/// Why the SES test cannot run here, if it cannot.
pub fn missing_cryptography() -> Option<String> {
    match Command::new("python3").args(["-c", "import cryptography"]).output() {
        Ok(out) if out.status.success() => None,
        Ok(_) => Some("python3 cannot import cryptography (`python3 -m pip install cryptography`)".to_owned()),
        Err(e) => Some(format!("python3 does not run: {e}")),
    }
}

const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:gazette-bounces";

/// A certificate and key made by Python's `cryptography` (as SNS's
/// would be), and a local HTTP server that hands out the certificate and
/// records the paths asked for (the subscription's confirmation).
struct SnsSide {
    dir: PathBuf,
    port: u16,
    asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

const MAKE_CERT: &str = r#"
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.eu-west-1.amazonaws.com")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
    .serial_number(x509.random_serial_number()).not_valid_before(now)
    .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
open(sys.argv[1] + "/key.pem", "wb").write(key.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
open(sys.argv[1] + "/cert.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
"#;

const SIGN: &str = r#"
import base64, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
key = serialization.load_pem_private_key(open(sys.argv[1], "rb").read(), password=None)
digest = hashes.SHA1() if sys.argv[2] == "1" else hashes.SHA256()
print(base64.b64encode(key.sign(sys.stdin.buffer.read(), padding.PKCS1v15(), digest)).decode())
"#;

impl SnsSide {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("gazette-sns-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("python3")
            .args(["-c", MAKE_CERT])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let pem = std::fs::read(dir.join("cert.pem")).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = asked.clone();
        std::thread::spawn(move || {
            use std::io::{BufRead, BufReader, Write};
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let path = line.split(' ').nth(1).unwrap_or("").to_owned();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                }
                seen.lock().unwrap().push(path.clone());
                let body = if path == "/cert.pem" {
                    pem.clone()
                } else {
                    b"ok".to_vec()
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        Self { dir, port, asked }
    }

    fn prefix(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The SNS message with its signature (Python's, over SNS's string to
    /// sign), as SNS posts it.
    fn signed(&self, version: &str, fields: &[(&str, &str)]) -> serde_json::Value {
        let order = [
            "Message",
            "MessageId",
            "Subject",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ];
        let text: String = order
            .iter()
            .filter_map(|name| fields.iter().find(|(n, _)| n == name))
            .map(|(name, value)| format!("{name}\n{value}\n"))
            .collect();
        let mut child = Command::new("python3")
            .args(["-c", SIGN])
            .arg(self.dir.join("key.pem"))
            .arg(version)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let mut message = serde_json::Map::new();
        for (name, value) in fields {
            message.insert((*name).to_owned(), json!(value));
        }
        message.insert("SignatureVersion".into(), json!(version));
        message.insert("Signature".into(), json!(String::from_utf8(out.stdout).unwrap().trim()));
        message.insert("SigningCertURL".into(), json!(format!("{}cert.pem", self.prefix())));
        serde_json::Value::Object(message)
    }
}

fn ses_notification<'a>(id: &'a str, message: &'a str, topic: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("Type", "Notification"),
        ("MessageId", id),
        ("TopicArn", topic),
        ("Message", message),
        ("Timestamp", "2026-11-30T10:00:00.000Z"),
    ]
}

pub async fn ses_notifications_are_checked_against_the_sns_certificate_stored_once_and_applied(backend: Backend) {
    let sns = SnsSide::start();
    let prefix = sns.prefix();
    let app = spawn_app_with(&backend, |settings| {
        settings.inbound.ses_topic_arns = vec![TOPIC.to_owned()];
        settings.inbound.ses_extra_cert_url_prefix = prefix;
    })
    .await;
    add_confirmed_reader(&app, "ada@example.com", "Ada").await;
    add_confirmed_reader(&app, "bob@example.com", "Bob").await;
    let ses_post = |message: &serde_json::Value| message.to_string().into_bytes();

    // The subscription is confirmed by fetching its SubscribeURL.
    let confirm_url = format!("{}confirm?Token=abc", sns.prefix());
    let confirmation = sns.signed(
        "1",
        &[
            ("Type", "SubscriptionConfirmation"),
            ("MessageId", "c-1"),
            ("Token", "abc"),
            ("TopicArn", TOPIC),
            ("Message", "You have chosen to subscribe to the topic."),
            ("SubscribeURL", &confirm_url),
            ("Timestamp", "2026-11-30T10:00:00.000Z"),
        ],
    );
    assert_eq!(
        post(&app, "/inbound/ses", None, ses_post(&confirmation)).await.status(),
        200
    );
    assert!(sns.asked.lock().unwrap().iter().any(|p| p == "/confirm?Token=abc"));

    let bounce = json!({
        "notificationType": "Bounce",
        "bounce": {"bounceType": "Permanent", "bounceSubType": "General", "bouncedRecipients": [
            {"emailAddress": "ada@example.com", "action": "failed", "status": "5.1.1",
             "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]},
        "mail": {"messageId": "0100018c-aaaa"},
    })
    .to_string();
    let good = sns.signed("2", &ses_notification("n-1", &bounce, TOPIC));

    // What is not signed by the certificate, or not from the topic, is refused.
    let mut tampered = good.clone();
    tampered["Message"] = json!(bounce.replace("ada@", "bob@"));
    assert_eq!(
        post(&app, "/inbound/ses", None, ses_post(&tampered)).await.status(),
        401
    );
    let other_topic = sns.signed("2", &ses_notification("n-2", &bounce, "arn:aws:sns:eu-west-1:1:other"));
    assert_eq!(
        post(&app, "/inbound/ses", None, ses_post(&other_topic)).await.status(),
        401
    );
    let mut elsewhere = good.clone();
    elsewhere["SigningCertURL"] = json!("https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem");
    assert_eq!(
        post(&app, "/inbound/ses", None, ses_post(&elsewhere)).await.status(),
        401
    );
    let mut unsigned = good.clone();
    unsigned.as_object_mut().unwrap().remove("Signature");
    assert_eq!(
        post(&app, "/inbound/ses", None, ses_post(&unsigned)).await.status(),
        401
    );
    assert_eq!(stored(&app).await, 0, "a refused post stores nothing");

    assert_eq!(post(&app, "/inbound/ses", None, ses_post(&good)).await.status(), 200);
    assert_eq!(post(&app, "/inbound/ses", None, ses_post(&good)).await.status(), 200);
    assert_eq!(stored(&app).await, 1, "a replay is not stored twice");
    let report = reading(&app, "ses:n-1").await;
    assert_eq!(report.kind, gazette::domain::InboundKind::Hard);
    assert_eq!(report.recipient.as_deref(), Some("ada@example.com"));

    let complaint = json!({
        "notificationType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": "bob@example.com"}], "complaintFeedbackType": "abuse"},
        "mail": {"messageId": "0100018c-bbbb"},
    })
    .to_string();
    let signed_v1 = sns.signed("1", &ses_notification("n-3", &complaint, TOPIC));
    assert_eq!(
        post(&app, "/inbound/ses", None, ses_post(&signed_v1)).await.status(),
        200
    );
    assert_eq!(stored(&app).await, 2);
    assert_eq!(
        reading(&app, "ses:n-3").await.kind,
        gazette::domain::InboundKind::Complaint
    );

    // Needs the policy work (`inbound::apply`).
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("bounced")
    );
    assert_eq!(
        app.subscriber_status("bob@example.com").await.as_deref(),
        Some("unsubscribed")
    );
}
