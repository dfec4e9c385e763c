//! SMTP as Gazette's own client speaks it, at the test server: PIPELINING
//! (and the classic dialogue where the relay does not offer it), refusals,
//! 421s and hang-ups in the middle of a pipeline, stalls and timeouts,
//! SIZE, and dot-stuffing from the article's text to the reader's copy.
//! The server refuses, and records, any line over 998 octets or any line
//! end but CRLF: every test checks that it recorded none.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::admin::{add_confirmed_reader, staff_session};
use crate::cli::{run, text};
use crate::engine::{delivery_row as delivery, queue_issue};
use crate::helpers::{Backend, TestApp, WorkerProcess, spawn_app, spawn_app_with, spawn_web_only, wait_until};
use crate::smtp_server::{DropPoint, Extension, SmtpSink, StallPoint};

fn readers(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("reader{i}@example.com")).collect()
}

/// One worker, one connection at a time: connections can be counted.
async fn deliver_with_one_connection(backend: &Backend, app: &TestApp, readers: &[String]) {
    queue_issue(backend, readers).await;
    let worker = WorkerProcess::start_with(backend, app.smtp.port, &[("GAZETTE_DELIVERY__CONCURRENCY", "1")]);
    wait_until(Duration::from_secs(30), "the issue to be sent", || async {
        app.count("SELECT COUNT(*) FROM issues WHERE status = 'sent'").await == 1
    })
    .await;
    assert!(worker.stop().await.success());
}

/// (status, attempts, last error) of the transactional mail to `email`.
async fn outgoing(app: &TestApp, email: &str) -> (String, i64, String) {
    gazette::with_pool!(&app.db, pool => {
        sqlx::query_as::<_, (String, i64, Option<String>)>(
            "SELECT status, CAST(attempts AS BIGINT), last_error FROM outgoing_mail WHERE recipient = $1",
        )
        .bind(email)
        .fetch_one(pool)
        .await
        .map(|(s, a, e)| (s, a, e.unwrap_or_default()))
        .unwrap()
    })
}

/// Each of `readers` but `except` got exactly one copy, and those in
/// `except` none.
fn each_once_except(smtp: &SmtpSink, readers: &[String], except: &[&str]) {
    let counts = smtp.counts();
    for reader in readers {
        let expected = usize::from(!except.contains(&reader.as_str()));
        assert_eq!(
            counts.get(reader).copied().unwrap_or(0),
            expected,
            "{reader}: {counts:?}"
        );
    }
}

/// The connections that carried an accepted message.
fn carrying(smtp: &SmtpSink) -> BTreeSet<usize> {
    smtp.received().iter().map(|m| m.connection).collect()
}

fn no_violations(smtp: &SmtpSink) {
    assert_eq!(smtp.protocol_violations(), Vec::<String>::new());
}

pub async fn a_refused_recipient_in_a_pipeline_fails_alone_and_the_connection_goes_on(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    app.smtp.refuse_unknown_user("reader5@");
    let readers = readers(20);
    deliver_with_one_connection(&backend, &app, &readers).await;
    each_once_except(&app.smtp, &readers, &["reader5@example.com"]);
    let (status, attempts) = delivery(&app, "reader5@example.com").await;
    assert_eq!((status.as_str(), attempts), ("failed", 1));
    assert_eq!(delivery(&app, "reader6@example.com").await, ("sent".to_owned(), 1));
    // MAIL, RCPT (550) and DATA (554) went in one write; RSET then kept
    // the connection for the 15 that came after.
    assert_eq!(app.smtp.connections(), 1, "the refusal cost no connection");
    assert_eq!(app.smtp.pipelined_connections(), BTreeSet::from([1]));
    no_violations(&app.smtp);
}

pub async fn a_421_mid_pipeline_moves_the_message_to_a_new_connection_at_once(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    // The server closes each connection after 6 messages: 421 to the next
    // MAIL, whose RCPT and DATA are already on their way.
    app.smtp.limit_messages_per_connection(Some(6));
    let readers = readers(20);
    deliver_with_one_connection(&backend, &app, &readers).await;
    each_once_except(&app.smtp, &readers, &[]);
    for reader in &readers {
        assert_eq!(
            delivery(&app, reader).await,
            ("sent".to_owned(), 1),
            "{reader}: no attempt lost"
        );
    }
    // 20 messages at 6 a connection: 4 connections, each opened for a
    // message that then went on it.
    assert_eq!(app.smtp.connections(), 4, "one new connection per 421");
    assert_eq!(carrying(&app.smtp).len(), 4);
    assert_eq!(app.smtp.pipelined_connections(), carrying(&app.smtp));
    no_violations(&app.smtp);
}

pub async fn a_connection_dropped_mid_pipeline_loses_no_one_and_repeats_no_one(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    // Hung up on after RCPT (DATA unread), and in the middle of a content.
    app.smtp.drop_connection("reader4@", DropPoint::AfterRcpt, Some(1));
    app.smtp.drop_connection("reader11@", DropPoint::DuringData, Some(1));
    let readers = readers(16);
    deliver_with_one_connection(&backend, &app, &readers).await;
    each_once_except(&app.smtp, &readers, &[]);
    assert!(app.smtp.unacknowledged().is_empty());
    // (reader4's costs no attempt when its connection was a reused one,
    // which depends on the order of the queue.)
    assert_eq!(delivery(&app, "reader4@example.com").await.0, "sent");
    // Once the content was on its way, the attempt counts.
    assert_eq!(delivery(&app, "reader11@example.com").await, ("sent".to_owned(), 2));
    assert_eq!(app.smtp.connections(), 3, "one new connection per hang-up");
    assert_eq!(app.smtp.pipelined_connections(), carrying(&app.smtp));
    no_violations(&app.smtp);
}

pub async fn a_relay_without_pipelining_gets_one_command_at_a_time(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    app.smtp.advertise(Extension::Pipelining, false);
    app.smtp.advertise(Extension::EnhancedStatusCodes, false);
    app.smtp.refuse_recipients_containing("reader3@");
    let readers = readers(12);
    deliver_with_one_connection(&backend, &app, &readers).await;
    each_once_except(&app.smtp, &readers, &["reader3@example.com"]);
    assert_eq!(delivery(&app, "reader3@example.com").await.0, "failed");
    assert_eq!(app.smtp.connections(), 1);
    assert_eq!(
        app.smtp.pipelined_connections(),
        BTreeSet::new(),
        "no command before the previous reply"
    );
    no_violations(&app.smtp);
}

pub async fn a_stalled_relay_times_out_and_the_message_is_retried_and_delivered_once(backend: Backend) {
    let app = spawn_app_with(&backend, |s| s.mail.smtp.timeout_seconds = 1).await;
    // Far longer than the 1 s timeout, so that a client that waited it out
    // is told apart from one that gave up, however busy the machine.
    let stall = Duration::from_secs(20);
    // One message after another on the worker's one connection at a time:
    // ada's greeting stalls (a connection that never opens: retried);
    // bob's MAIL stalls on the connection ada's went on (a reused one that
    // failed before the content: at once on a new one, no attempt lost);
    // cal's reply after the content stalls (an attempt: retried).
    for (email, point, attempts, connections) in [
        ("ada@example.com", StallPoint::Greeting, None, 2),
        ("bob@example.com", StallPoint::MailReply, Some(1), 3),
        ("cal@example.com", StallPoint::EndOfData, Some(2), 4),
    ] {
        app.smtp.stall(point, stall, 1);
        let started = std::time::Instant::now();
        assert_eq!(app.sign_up("Reader", email).await.status(), 200);
        app.smtp.wait_for(email, 1).await;
        app.wait_for_empty_queue().await;
        let elapsed = started.elapsed();
        let (status, tries, error) = outgoing(&app, email).await;
        assert_eq!(status, "sent", "{point:?}");
        if let Some(attempts) = attempts {
            assert_eq!(tries, attempts, "{point:?} ({error})");
        }
        assert_eq!(
            app.smtp.connections(),
            connections,
            "{point:?}: one connection given up"
        );
        assert!(
            elapsed < stall / 2,
            "{point:?}: given up after the 1 s timeout, not at the end of the stall ({elapsed:?})"
        );
        assert_eq!(app.smtp.count_for(email), 1, "{point:?}: accepted once");
    }
    // The one stalled after its content never learnt that it arrived.
    let unacknowledged = app.smtp.unacknowledged();
    assert_eq!(unacknowledged.len(), 1);
    assert_eq!(unacknowledged[0].recipients, ["cal@example.com"]);
    no_violations(&app.smtp);
}

pub async fn an_oversize_message_fails_at_once_and_is_not_retried(backend: Backend) {
    let app = spawn_app(&backend).await;
    // A confirmation is a few kilobytes. A relay that does not say its
    // limit answers 552 after the content.
    app.smtp.limit_size(Some(600));
    app.smtp.advertise(Extension::Size, false);
    assert_eq!(app.sign_up("Bob", "bob@example.com").await.status(), 200);
    app.wait_for_empty_queue().await;
    let (status, attempts, error) = outgoing(&app, "bob@example.com").await;
    assert_eq!((status.as_str(), attempts), ("failed", 1), "{error}");
    assert!(error.contains("552 5.3.4"), "{error}");
    // One that says it (SIZE 600 in its EHLO, to a new connection) gets
    // no such message: Gazette refuses it before sending, naming both sizes.
    app.smtp.advertise(Extension::Size, true);
    app.smtp.hang_up_all();
    assert_eq!(app.sign_up("Ada", "ada@example.com").await.status(), 200);
    app.wait_for_empty_queue().await;
    let (status, attempts, error) = outgoing(&app, "ada@example.com").await;
    assert_eq!((status.as_str(), attempts), ("failed", 1), "{error}");
    let size = error
        .strip_prefix("the message is ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("the message's size in: {error}"));
    assert!(size > 600 && error.ends_with("takes at most 600 (its SIZE)"), "{error}");
    assert_eq!(app.smtp.connections(), 2);
    assert!(app.smtp.received().is_empty());
    no_violations(&app.smtp);
}

pub async fn lines_beginning_with_a_dot_arrive_as_they_were_written(backend: Backend) {
    let app = spawn_app(&backend).await;
    add_confirmed_reader(&app, "ada@example.com", "Ada").await;
    // The digest wraps a summary at 72 characters, so each long word is a
    // line of its own: lines that begin with one dot, two dots, and the
    // lone dot that would end the message if it were not doubled.
    let one = format!(".one{}", "a".repeat(72));
    let two = format!("..two{}", "b".repeat(72));
    let summary = format!("Intro {one} . {two} .end");
    let mut staff = staff_session(&app).await;
    staff.page("/admin/articles/new").await;
    let response = staff
        .post(
            "/admin/articles",
            &[
                ("url", "https://example.org/dots"),
                ("title", "Dots at the start of lines"),
                ("author", "Ana"),
                ("published", ""),
                ("summary", &summary),
                ("body", "The body."),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let dispatched = run(&backend, &["dispatch"]).await;
    assert!(
        text(&dispatched.stdout).contains("issue queued for 1 readers"),
        "{}{}",
        text(&dispatched.stdout),
        text(&dispatched.stderr)
    );
    let copy = app.smtp.wait_for("ada@example.com", 1).await.remove(0);
    let lines: Vec<String> = copy.text().lines().map(|l| l.trim_end().to_owned()).collect();
    let at = lines
        .iter()
        .position(|l| l == "Intro")
        .expect("the summary in the text part");
    let expected = ["Intro", one.as_str(), ".", two.as_str(), ".end"];
    assert_eq!(
        lines.get(at..at + 5),
        Some(&expected.map(String::from)[..]),
        "{lines:?}"
    );
    // Un-stuffed by the server, the raw message still has lines beginning
    // with a dot: the client doubled them on the wire.
    let raw = String::from_utf8_lossy(&copy.raw);
    assert!(raw.contains("\r\n.\r\n") || raw.contains("\r\n.=\r\n"), "{raw}");
    no_violations(&app.smtp);
}

pub async fn each_message_goes_out_with_the_next_ones_envelope_in_one_round_trip(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    app.smtp.refuse_unknown_user("reader7@");
    let readers = readers(200);
    queue_issue(&backend, &readers).await;
    // Four at once: two connections, each with a message going out and the
    // next one queued behind it (and no limit per connection to open more).
    let worker = WorkerProcess::start_with(
        &backend,
        app.smtp.port,
        &[
            ("GAZETTE_DELIVERY__CONCURRENCY", "4"),
            ("GAZETTE_MAIL__SMTP__MAX_MESSAGES_PER_CONNECTION", "1000"),
        ],
    );
    wait_until(Duration::from_secs(60), "the issue to be sent", || async {
        app.count("SELECT COUNT(*) FROM issues WHERE status = 'sent'").await == 1
    })
    .await;
    assert!(worker.stop().await.success());
    each_once_except(&app.smtp, &readers, &["reader7@example.com"]);
    assert_eq!(delivery(&app, "reader7@example.com").await.0, "failed");
    assert_eq!(
        app.smtp.connections(),
        2,
        "a connection takes two messages before another opens"
    );
    // The first two on each connection were queued before it even
    // connected, so at least the first of each pair went out with the
    // second's envelope (a client that waits for each end-of-data reply
    // sends none this way). How many more do depends on timing: about
    // three in four here (the figure is printed, not asserted).
    let together = app.smtp.ends_of_data_with_next_command();
    eprintln!("{together} of 199 messages ended in the same write as the next one's envelope");
    assert!(together >= 2, "{together}");
    no_violations(&app.smtp);
}
