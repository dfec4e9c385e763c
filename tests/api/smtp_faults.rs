//! The test SMTP server's controls, shown through what the app does today
//! (a 4xx or a lost connection is retried, a 5xx fails the message), plus
//! one conversation in raw SMTP.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::helpers::{Backend, DropPoint, Outage, SmtpSink, TestApp, spawn_app, spawn_app_with_smtp, wait_until};

async fn status_and_attempts(app: &TestApp, recipient: &str) -> (String, i32) {
    gazette::with_pool!(&app.db, pool => {
        sqlx::query_as("SELECT status, attempts FROM outgoing_mail WHERE recipient = $1")
            .bind(recipient)
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

pub async fn a_greylisted_reader_gets_their_email_after_two_451s(backend: Backend) {
    let app = spawn_app(&backend).await;
    app.smtp.defer_recipients("ada@", 2);
    assert_eq!(app.sign_up("Ada", "ada@example.com").await.status(), 200);
    app.smtp.wait_for("ada@example.com", 1).await[0].confirmation_link();
    app.wait_for_empty_queue().await;
    assert_eq!(
        status_and_attempts(&app, "ada@example.com").await,
        ("sent".to_owned(), 3),
        "two 451s, then accepted"
    );
    assert_eq!(app.smtp.count_for("ada@example.com"), 1);
}

pub async fn an_unknown_user_and_a_policy_refusal_fail_without_retries(backend: Backend) {
    let app = spawn_app(&backend).await;
    app.smtp.refuse_unknown_user("gone@");
    app.smtp.refuse_by_policy("blocked@");
    for (name, email) in [
        ("Gone", "gone@example.com"),
        ("Blocked", "blocked@example.com"),
        ("Ada", "ada@example.com"),
    ] {
        assert_eq!(app.sign_up(name, email).await.status(), 200);
    }
    app.smtp.wait_for("ada@example.com", 1).await;
    app.wait_for_empty_queue().await;
    for (email, code) in [("gone@example.com", "5.1.1"), ("blocked@example.com", "5.7.1")] {
        assert_eq!(
            status_and_attempts(&app, email).await,
            ("failed".to_owned(), 1),
            "{email}"
        );
        let last_error: String = gazette::with_pool!(&app.db, pool => {
            sqlx::query_scalar("SELECT last_error FROM outgoing_mail WHERE recipient = $1")
                .bind(email)
                .fetch_one(pool)
                .await
                .unwrap()
        });
        assert!(last_error.contains(code), "{email}: {last_error}");
    }
    assert_eq!(app.smtp.counts().keys().collect::<Vec<_>>(), ["ada@example.com"]);
}

pub async fn a_connection_dropped_at_any_point_is_retried_until_the_message_is_accepted(backend: Backend) {
    let app = spawn_app(&backend).await;
    let readers = [
        ("ada@example.com", DropPoint::AfterRcpt),
        ("bob@example.com", DropPoint::DuringData),
        ("cal@example.com", DropPoint::AfterData),
    ];
    for (email, point) in readers {
        app.smtp.drop_connection(email, point, Some(1));
    }
    for (email, _) in readers {
        assert_eq!(app.sign_up("Reader", email).await.status(), 200);
    }
    for (email, _) in readers {
        app.smtp.wait_for(email, 1).await[0].confirmation_link();
    }
    app.wait_for_empty_queue().await;
    for (email, _) in readers {
        assert_eq!(app.smtp.count_for(email), 1, "{email}: accepted once");
        assert!(status_and_attempts(&app, email).await.1 >= 2, "{email}: retried");
    }
    // The one dropped after its whole message was read is kept apart.
    let unacknowledged = app.smtp.unacknowledged();
    assert_eq!(unacknowledged.len(), 1);
    assert_eq!(unacknowledged[0].recipients, ["cal@example.com"]);
    assert!(app.smtp.connections() >= 4, "each drop cost a connection");
}

pub async fn mail_waits_out_an_outage_and_arrives_once_after_it(backend: Backend) {
    let app = spawn_app(&backend).await;
    for (outage, email) in [
        (Outage::Refused, "ada@example.com"),
        (Outage::ClosedOnConnect, "bob@example.com"),
        (Outage::Busy, "cal@example.com"),
    ] {
        app.smtp.go_down_as(outage);
        let connections = app.smtp.connections();
        assert_eq!(app.sign_up("Reader", email).await.status(), 200);
        wait_until(Duration::from_secs(10), "a failed attempt", || async {
            app.count("SELECT COUNT(*) FROM outgoing_mail WHERE status = 'queued' AND last_error IS NOT NULL")
                .await
                == 1
        })
        .await;
        if outage == Outage::Refused {
            assert_eq!(app.smtp.connections(), connections, "nothing listens: {outage:?}");
        } else {
            assert!(app.smtp.connections() > connections, "accepted and closed: {outage:?}");
        }
        assert!(app.smtp.received_for(email).is_empty());
        app.smtp.come_back();
        app.smtp.wait_for(email, 1).await;
        app.wait_for_empty_queue().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(app.smtp.counts().values().all(|n| *n == 1), "{:?}", app.smtp.counts());
    assert_eq!(app.smtp.received().len(), 3);
}

pub async fn a_server_limit_on_messages_per_connection_is_never_exceeded(backend: Backend) {
    let smtp = SmtpSink::start();
    smtp.limit_messages_per_connection(Some(2));
    let app = spawn_app_with_smtp(&backend, smtp, |_| {}).await;
    let readers: Vec<String> = (0..7).map(|i| format!("reader{i}@example.com")).collect();
    for email in &readers {
        assert_eq!(app.sign_up("Reader", email).await.status(), 200);
    }
    for email in &readers {
        app.smtp.wait_for(email, 1).await;
    }
    app.wait_for_empty_queue().await;
    let mut per_connection = std::collections::BTreeMap::new();
    for message in app.smtp.received() {
        *per_connection.entry(message.connection).or_insert(0) += 1;
    }
    assert!(per_connection.values().all(|n| *n <= 2), "{per_connection:?}");
    assert!(per_connection.len() >= 4, "{per_connection:?}");
    assert!(app.smtp.counts().values().all(|n| *n == 1));
}

/// The server itself, in raw SMTP: dot-unstuffing, RSET, AUTH only after
/// STARTTLS (so not here), and going down and back on the same port.
pub fn the_sink_speaks_smtp_and_goes_down_and_back_on_its_port() -> Result<(), libtest_mimic::Failed> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let smtp = SmtpSink::start();
        let stream = TcpStream::connect(("127.0.0.1", smtp.port)).await.unwrap();
        let mut client = BufReader::new(stream);
        let mut say = async |line: &str| -> String {
            if !line.is_empty() {
                client.get_mut().write_all(line.as_bytes()).await.unwrap();
            }
            let mut reply = String::new();
            loop {
                let mut next = String::new();
                client.read_line(&mut next).await.unwrap();
                reply.push_str(&next);
                if next.len() < 4 || next.as_bytes()[3] != b'-' {
                    return reply;
                }
            }
        };
        assert!(say("").await.starts_with("220 "));
        let ehlo = say("EHLO client.test\r\n").await;
        assert!(ehlo.starts_with("250-") && !ehlo.contains("AUTH"), "{ehlo}");
        assert!(say("RCPT TO:<a@example.com>\r\n").await.starts_with("503 "));
        assert!(say("AUTH PLAIN AGZvbwBiYXI=\r\n").await.starts_with("503 "));
        assert!(
            say("MAIL FROM:<news@gazette.test> BODY=8BITMIME\r\n")
                .await
                .starts_with("250 ")
        );
        assert!(say("RCPT TO:<lost@example.com>\r\n").await.starts_with("250 "));
        assert!(say("RSET\r\n").await.starts_with("250 "));
        assert!(say("NOOP\r\n").await.starts_with("250 "));
        assert!(say("MAIL FROM:<>\r\n").await.starts_with("250 "));
        assert!(say("RCPT TO:<Ada@Example.com>\r\n").await.starts_with("250 "));
        assert!(say("DATA\r\n").await.starts_with("354 "));
        let reply = say("Subject: hi\r\n\r\n..leading dot\r\n.\r\n").await;
        assert!(reply.starts_with("250 "), "{reply}");
        assert!(say("QUIT\r\n").await.starts_with("221 "));

        let received = smtp.received();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].recipients, ["Ada@Example.com"]);
        assert_eq!(received[0].mail_from, "");
        assert_eq!(received[0].raw, b"Subject: hi\r\n\r\n.leading dot\r\n");
        assert_eq!(smtp.counts().get("ada@example.com"), Some(&1));
        assert_eq!(smtp.connections(), 1);

        smtp.go_down();
        let mut refused = false;
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", smtp.port)).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(refused, "connecting is refused while the server is down");
        smtp.come_back();
        let mut again = BufReader::new(TcpStream::connect(("127.0.0.1", smtp.port)).await.unwrap());
        let mut greeting = String::new();
        again.read_line(&mut greeting).await.unwrap();
        assert!(greeting.starts_with("220 "), "{greeting}");
    });
    Ok(())
}
