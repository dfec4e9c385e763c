//! The delivery engine under load and under failure: many readers, a
//! relay that defers, refuses, hangs up, caps connections or goes away, and
//! workers that are stopped or killed mid-issue. Readers are seeded with
//! `gazette subscribers import --confirmed` and the issue is queued with
//! `gazette dispatch`, as an operator would.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::cli::{import_fixture, run, text};
use crate::helpers::{Backend, TestApp, WorkerProcess, spawn_app_with, spawn_web_only, wait_until};
use crate::smtp_server::DropPoint;

fn reader(i: usize) -> String {
    format!("reader{i}@example.com")
}

/// `readers` confirmed readers, an article, and this week's issue queued
/// for all of them.
pub(crate) async fn queue_issue(backend: &Backend, readers: &[String]) {
    let dir = std::env::temp_dir().join(format!("gazette-engine-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("readers.csv");
    let mut csv = String::from("email,name\n");
    for (i, address) in readers.iter().enumerate() {
        csv.push_str(&format!("{address},Reader {i}\n"));
    }
    std::fs::write(&file, csv).unwrap();
    let imported = run(
        backend,
        &["subscribers", "import", file.to_str().unwrap(), "--confirmed"],
    )
    .await;
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let _ = std::fs::remove_dir_all(dir);
    import_fixture(backend, chrono::Utc::now() - chrono::Duration::hours(1)).await;
    let dispatched = run(backend, &["dispatch"]).await;
    let expected = format!("issue queued for {} readers", readers.len());
    assert!(
        text(&dispatched.stdout).contains(&expected),
        "{}",
        text(&dispatched.stdout)
    );
}

async fn wait_for_issue_sent(app: &TestApp, limit: Duration) {
    wait_until(limit, "the issue to be delivered to every reader", || async {
        app.count("SELECT COUNT(*) FROM issues WHERE status = 'sent'").await == 1
    })
    .await;
}

/// Each reader's number of copies at the server, and the readers with
/// none.
fn copies(app: &TestApp, readers: &[String]) -> (BTreeMap<String, usize>, Vec<String>) {
    let counts = app.smtp.counts();
    let missing = readers.iter().filter(|r| !counts.contains_key(*r)).cloned().collect();
    (counts, missing)
}

/// (status, attempts) of a reader's copy of the issue.
pub(crate) async fn delivery_row(app: &TestApp, email: &str) -> (String, i64) {
    gazette::with_pool!(&app.db, pool => {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT d.status, CAST(d.attempts AS BIGINT) FROM deliveries d
             JOIN subscribers s ON s.id = d.subscriber_id WHERE s.email_key = $1",
        )
        .bind(email)
        .fetch_one(pool)
        .await
        .unwrap()
    })
}

pub async fn an_issue_reaches_every_reader_once_within_each_connection_limit(backend: Backend) {
    // The relay closes a connection after 40 messages (421); Gazette's own
    // limit is 25 per connection.
    let app = spawn_web_only(&backend).await;
    app.smtp.limit_messages_per_connection(Some(40));
    let readers: Vec<String> = (0..600).map(reader).collect();
    queue_issue(&backend, &readers).await;
    let worker = WorkerProcess::start_with(
        &backend,
        app.smtp.port,
        &[("GAZETTE_MAIL__SMTP__MAX_MESSAGES_PER_CONNECTION", "25")],
    );
    wait_for_issue_sent(&app, Duration::from_secs(40)).await;
    assert!(worker.stop().await.success());
    let (counts, missing) = copies(&app, &readers);
    assert!(
        missing.is_empty(),
        "{} readers got nothing: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(counts.values().all(|&n| n == 1), "a reader got two copies");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM deliveries WHERE status = 'sent'").await,
        600
    );
    let mut per_connection = BTreeMap::new();
    for message in app.smtp.received() {
        *per_connection.entry(message.connection).or_insert(0) += 1;
    }
    let busiest = per_connection.values().copied().max().unwrap();
    assert!(busiest <= 25, "{busiest} messages on one connection");
    assert!(busiest >= 10, "connections are reused (busiest carried {busiest})");
}

pub async fn a_relay_that_closes_connections_early_costs_no_message(backend: Backend) {
    // The relay's own cap (421 after 7 messages) is below Gazette's limit:
    // the message refused with 421 goes out at once on a new connection.
    let app = spawn_web_only(&backend).await;
    app.smtp.limit_messages_per_connection(Some(7));
    let readers: Vec<String> = (0..120).map(reader).collect();
    queue_issue(&backend, &readers).await;
    let worker = WorkerProcess::start(&backend, app.smtp.port);
    wait_for_issue_sent(&app, Duration::from_secs(30)).await;
    assert!(worker.stop().await.success());
    let (counts, missing) = copies(&app, &readers);
    assert!(missing.is_empty() && counts.values().all(|&n| n == 1), "{counts:?}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM deliveries WHERE status = 'sent' AND attempts = 1")
            .await,
        120,
        "a 421 at MAIL FROM on a reused connection is retried at once, not counted as an attempt"
    );
}

pub async fn deferred_refused_and_bounced_readers_each_get_their_due(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    let mut readers: Vec<String> = (0..40).map(reader).collect();
    for special in ["grey@example.com", "gone@example.com", "policy@example.com"] {
        readers.push(special.into());
    }
    app.smtp.defer_recipients("grey@", 2);
    app.smtp.refuse_unknown_user("gone@");
    app.smtp.refuse_by_policy("policy@");
    queue_issue(&backend, &readers).await;
    let worker = WorkerProcess::start(&backend, app.smtp.port);
    wait_for_issue_sent(&app, Duration::from_secs(30)).await;
    assert!(worker.stop().await.success());

    // 451 twice, then accepted on the third attempt.
    assert_eq!(app.smtp.count_for("grey@example.com"), 1);
    assert_eq!(delivery_row(&app, "grey@example.com").await, ("sent".into(), 3));
    // 550 5.1.1: failed at once, and the reader is bounced.
    assert_eq!(delivery_row(&app, "gone@example.com").await, ("failed".into(), 1));
    assert_eq!(
        app.subscriber_status("gone@example.com").await.as_deref(),
        Some("bounced")
    );
    // 550 5.7.1: failed at once, the reader untouched.
    assert_eq!(delivery_row(&app, "policy@example.com").await, ("failed".into(), 1));
    assert_eq!(
        app.subscriber_status("policy@example.com").await.as_deref(),
        Some("confirmed")
    );
    let error: String = gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar(
            "SELECT d.last_error FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
             WHERE s.email_key = 'policy@example.com'",
        )
        .fetch_one(pool)
        .await
        .unwrap()
    });
    assert!(error.contains("5.7.1"), "the reply is kept: {error}");
    // Everyone else got exactly one copy; refusals did not cost them.
    for address in readers.iter().filter(|r| r.starts_with("reader")) {
        assert_eq!(app.smtp.count_for(address), 1, "{address}");
    }
}

pub async fn hang_ups_mid_message_are_retried_with_one_accepted_copy(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    let mut readers: Vec<String> = (0..30).map(reader).collect();
    for special in [
        "rcpt-drop@example.com",
        "data-drop@example.com",
        "after-drop@example.com",
    ] {
        readers.push(special.into());
    }
    app.smtp.drop_connection("rcpt-drop@", DropPoint::AfterRcpt, Some(1));
    app.smtp.drop_connection("data-drop@", DropPoint::DuringData, Some(1));
    app.smtp.drop_connection("after-drop@", DropPoint::AfterData, Some(1));
    queue_issue(&backend, &readers).await;
    let worker = WorkerProcess::start(&backend, app.smtp.port);
    wait_for_issue_sent(&app, Duration::from_secs(30)).await;
    assert!(worker.stop().await.success());
    let (counts, missing) = copies(&app, &readers);
    assert!(missing.is_empty(), "{missing:?}");
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    // The copy whose acknowledgement was lost is the one duplicate the
    // relay saw; it was never acknowledged, so it is not counted as sent.
    let unacknowledged = app.smtp.unacknowledged();
    assert_eq!(unacknowledged.len(), 1);
    assert_eq!(unacknowledged[0].recipients, vec!["after-drop@example.com".to_owned()]);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM deliveries WHERE status = 'sent'").await,
        33
    );
}

pub async fn an_smtp_outage_mid_issue_delays_it_without_losing_or_repeating_anyone(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    let readers: Vec<String> = (0..300).map(reader).collect();
    queue_issue(&backend, &readers).await;
    let worker = WorkerProcess::start_with(&backend, app.smtp.port, &[("GAZETTE_DELIVERY__RATE_PER_SECOND", "100")]);
    wait_until(Duration::from_secs(20), "the first copies to arrive", || async {
        app.smtp.received().len() >= 120
    })
    .await;
    app.smtp.go_down();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = app.smtp.received().len();
    assert!(during < 300, "the outage came before the end of the issue");
    app.smtp.come_back();
    wait_for_issue_sent(&app, Duration::from_secs(40)).await;
    assert!(worker.stop().await.success());
    let (counts, missing) = copies(&app, &readers);
    assert!(missing.is_empty(), "{} readers got nothing", missing.len());
    assert!(counts.values().all(|&n| n == 1), "a reader got two copies");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM deliveries WHERE status <> 'sent'")
            .await,
        0
    );
    assert!(
        app.count("SELECT COUNT(*) FROM deliveries WHERE attempts > 1").await > 0,
        "the outage made some deliveries wait for another attempt"
    );
}

pub async fn a_confirmation_leaves_within_seconds_while_a_large_issue_is_sending(backend: Backend) {
    // 1500 readers at 200 messages a second keep the issue busy for about
    // seven seconds; the rate limit is shared with the confirmation.
    let app = spawn_app_with(&backend, |s| s.delivery.rate_per_second = 200).await;
    let readers: Vec<String> = (0..1500).map(reader).collect();
    let started = Instant::now();
    queue_issue(&backend, &readers).await;
    wait_until(Duration::from_secs(20), "the issue to start going out", || async {
        app.smtp.received().len() >= 100
    })
    .await;
    let signed_up = Instant::now();
    assert_eq!(app.sign_up("Newcomer", "newcomer@example.com").await.status(), 200);
    wait_until(
        Duration::from_secs(5),
        "the confirmation email (5 s at most)",
        || async { app.smtp.count_for("newcomer@example.com") == 1 },
    )
    .await;
    let waited = signed_up.elapsed();
    assert_eq!(
        app.count("SELECT COUNT(*) FROM issues WHERE status = 'sending'").await,
        1,
        "the issue was still sending when the confirmation left ({waited:?})"
    );
    wait_for_issue_sent(&app, Duration::from_secs(40)).await;
    // The rate limit held: 1300 messages past the first second's burst at
    // 200 a second cannot take much under 6.5 s.
    assert!(started.elapsed() >= Duration::from_secs(5), "{:?}", started.elapsed());
    let (counts, missing) = copies(&app, &readers);
    assert!(missing.is_empty() && counts.values().all(|&n| n <= 2), "{counts:?}");
}

pub async fn sigterm_mid_issue_stops_promptly_and_returns_unsent_claims(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    let readers: Vec<String> = (0..400).map(reader).collect();
    queue_issue(&backend, &readers).await;
    let worker = WorkerProcess::start_with(
        &backend,
        app.smtp.port,
        &[
            ("GAZETTE_DELIVERY__RATE_PER_SECOND", "50"),
            ("GAZETTE_DELIVERY__BATCH_SIZE", "100"),
        ],
    );
    wait_until(Duration::from_secs(20), "the first copies to arrive", || async {
        app.smtp.received().len() >= 60
    })
    .await;
    let stopping = Instant::now();
    assert!(worker.stop().await.success(), "exit 0 on SIGTERM");
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "stopped in {:?}",
        stopping.elapsed()
    );
    // Nothing is left claimed: what was not sent is queued again, without an
    // attempt counted against it; what was sent is recorded as sent.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM deliveries WHERE status = 'sending'")
            .await,
        0
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM deliveries WHERE status = 'queued' AND attempts > 0")
            .await,
        0
    );
    let sent = app.count("SELECT COUNT(*) FROM deliveries WHERE status = 'sent'").await;
    assert_eq!(sent as usize, app.smtp.received().len());
    assert!(sent < 400, "the stop came mid-issue");

    let worker = WorkerProcess::start(&backend, app.smtp.port);
    wait_for_issue_sent(&app, Duration::from_secs(30)).await;
    assert!(worker.stop().await.success());
    let (counts, missing) = copies(&app, &readers);
    assert!(missing.is_empty() && counts.values().all(|&n| n == 1), "{counts:?}");
}

pub async fn a_killed_worker_loses_no_reader_and_repeats_at_most_its_unrecorded_sends(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    let readers: Vec<String> = (0..400).map(reader).collect();
    queue_issue(&backend, &readers).await;
    let env = [
        ("GAZETTE_DELIVERY__RATE_PER_SECOND", "100"),
        ("GAZETTE_DELIVERY__BATCH_SIZE", "50"),
        ("GAZETTE_DELIVERY__CONCURRENCY", "8"),
        ("GAZETTE_DELIVERY__LEASE_SECONDS", "4"),
    ];
    let worker = WorkerProcess::start_with(&backend, app.smtp.port, &env);
    wait_until(Duration::from_secs(20), "the first copies to arrive", || async {
        app.smtp.received().len() >= 100
    })
    .await;
    drop(worker); // SIGKILL: no chance to record or release anything
    let at_kill = app.smtp.received().len();
    assert!(at_kill < 400, "the kill came mid-issue");

    let worker = WorkerProcess::start_with(&backend, app.smtp.port, &env);
    wait_for_issue_sent(&app, Duration::from_secs(40)).await;
    assert!(worker.stop().await.success());
    let (counts, missing) = copies(&app, &readers);
    assert!(missing.is_empty(), "{} readers got nothing", missing.len());
    let repeated = counts.values().filter(|&&n| n > 1).count();
    // At most what was in flight or sent but not yet recorded at the kill:
    // the 8 senders' messages, the outcome queue (two claims of 50 a second
    // × 4 s / 8 = 50 rows) and the recorder's batch being written (50).
    assert!(repeated <= 8 + 2 * 50 + 50, "{repeated} readers got two copies");
    assert!(counts.values().all(|&n| n <= 2), "{counts:?}");
}

pub async fn a_relay_that_refuses_our_sender_bounces_no_reader_and_loses_no_copy(backend: Backend) {
    // A relay that will not take mail from our address (a 5.1.8/5.7.1 at
    // MAIL FROM) is a configuration problem: every copy waits, no reader is
    // marked bounced, and all go out once the relay is fixed.
    let app = spawn_web_only(&backend).await;
    app.smtp
        .refuse_senders_with(Some((550, "5.1.8 Sender address rejected: Domain not found")));
    let readers: Vec<String> = (0..20).map(reader).collect();
    queue_issue(&backend, &readers).await;
    let worker = WorkerProcess::start(&backend, app.smtp.port);
    wait_until(Duration::from_secs(20), "refused attempts to be recorded", || async {
        app.count("SELECT COUNT(*) FROM deliveries WHERE status = 'queued' AND last_error LIKE '%sender address%'")
            .await
            == 20
    })
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM subscribers WHERE status = 'bounced'")
            .await,
        0
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM deliveries WHERE status = 'failed'")
            .await,
        0
    );
    app.smtp.refuse_senders_with(None);
    wait_for_issue_sent(&app, Duration::from_secs(30)).await;
    assert!(worker.stop().await.success());
    let (counts, missing) = copies(&app, &readers);
    assert!(missing.is_empty() && counts.values().all(|&n| n == 1), "{counts:?}");
}
