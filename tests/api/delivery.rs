//! Confirmation emails leave through the worker, whatever SMTP does.

use std::time::Duration;

use gazette::config::SmtpTls;

use crate::helpers::{
    Backend, SinkTls, SmtpSink, WorkerProcess, spawn_app, spawn_app_with_smtp, spawn_app_with_smtp_down, spawn_web_only,
};

pub async fn a_signup_while_smtp_is_down_is_mailed_once_it_is_back(backend: Backend) {
    let (app, smtp_port) = spawn_app_with_smtp_down(&backend, |_| {}).await;
    let response = app.sign_up("Ada", "ada@example.com").await;
    assert_eq!(response.status(), 200, "the signup succeeds although mail cannot leave");

    // The worker tries, fails, and keeps the message with the reason.
    crate::helpers::wait_until(Duration::from_secs(10), "a failed attempt", || async {
        app.count("SELECT COUNT(*) FROM outgoing_mail WHERE attempts >= 1 AND last_error IS NOT NULL")
            .await
            == 1
    })
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outgoing_mail WHERE status IN ('queued', 'sending')")
            .await,
        1
    );

    let smtp = app.smtp.start_on(smtp_port);
    let mails = smtp.wait_for("ada@example.com", 1).await;
    mails[0].confirmation_link();
    app.wait_for_empty_queue().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(smtp.received_for("ada@example.com").len(), 1, "delivered exactly once");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outgoing_mail WHERE status = 'sent'")
            .await,
        1
    );
}

pub async fn a_message_the_server_refuses_for_good_is_marked_failed_and_not_retried(backend: Backend) {
    let app = spawn_app(&backend).await;
    app.smtp.refuse_recipients_containing("nobody@");
    assert_eq!(app.sign_up("No One", "nobody@example.com").await.status(), 200);
    assert_eq!(app.sign_up("Ada", "ada@example.com").await.status(), 200);
    app.smtp.wait_for("ada@example.com", 1).await;
    app.wait_for_empty_queue().await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let failed: (String, i32, String) = gazette::with_pool!(&app.db, pool => {
        sqlx::query_as("SELECT status, attempts, last_error FROM outgoing_mail WHERE recipient = 'nobody@example.com'")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(failed.0, "failed");
    assert_eq!(failed.1, 1, "a 5xx reply is never retried");
    assert!(failed.2.contains("550"), "the reply is kept: {}", failed.2);
    assert!(app.smtp.received_for("nobody@example.com").is_empty());
}

pub async fn a_message_held_by_a_worker_that_died_is_sent_once_its_lease_runs_out(backend: Backend) {
    // The test plays the part of a worker that died.
    let (app, smtp_port) = one_failed_attempt_then_quiet(&backend).await;

    // Another worker claimed the message (it was due) and died mid-send:
    // its lease holds.
    let now = chrono::Utc::now();
    let set_lease = |until: chrono::DateTime<chrono::Utc>| {
        let db = app.db.clone();
        async move {
            gazette::with_pool!(&db, pool => {
                sqlx::query("UPDATE outgoing_mail SET status = 'sending', locked_until = $1, next_attempt_at = $2")
                    .bind(until)
                    .bind(now - chrono::Duration::minutes(1))
                    .execute(pool)
                    .await
                    .unwrap();
            })
        }
    };
    set_lease(now + chrono::Duration::hours(1)).await;
    let smtp = app.smtp.start_on(smtp_port);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        smtp.received().is_empty(),
        "a message under another worker's lease is left alone"
    );

    set_lease(chrono::Utc::now() - chrono::Duration::seconds(1)).await;
    smtp.wait_for("ada@example.com", 1).await[0].confirmation_link();
    app.wait_for_empty_queue().await;
    assert_eq!(smtp.received().len(), 1);
}

pub async fn a_worker_whose_lease_ran_out_cannot_overwrite_the_next_claim(backend: Backend) {
    use gazette::db::outgoing_mail;
    let (app, _) = one_failed_attempt_then_quiet(&backend).await;
    // The retry is due in a minute: claimed here as if ten minutes had
    // passed, while the app's own worker, on the real clock, leaves it be.
    let now = chrono::Utc::now() + chrono::Duration::minutes(10);
    let a_day_later = now + chrono::Duration::days(1);

    // A slow worker claims it; its lease runs out; a second worker claims it.
    let slow = outgoing_mail::claim_due(&app.db, a_day_later, now, 10, uuid::Uuid::new_v4())
        .await
        .unwrap();
    assert_eq!(slow.len(), 1);
    let second = outgoing_mail::claim_due(
        &app.db,
        a_day_later,
        a_day_later + chrono::Duration::minutes(5),
        10,
        uuid::Uuid::new_v4(),
    )
    .await
    .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].attempts, slow[0].attempts + 1);
    assert!(
        outgoing_mail::claim_due(&app.db, a_day_later, a_day_later, 10, uuid::Uuid::new_v4())
            .await
            .unwrap()
            .is_empty(),
        "the lease holds"
    );

    // The slow worker's late verdicts do not touch the second claim.
    outgoing_mail::schedule_retry(&app.db, slow[0].id, slow[0].attempts, now, "late")
        .await
        .unwrap();
    outgoing_mail::mark_failed(&app.db, slow[0].id, slow[0].attempts, "late", None)
        .await
        .unwrap();
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outgoing_mail WHERE status = 'sending'")
            .await,
        1
    );
    outgoing_mail::mark_failed(&app.db, second[0].id, second[0].attempts, "550 no such user", None)
        .await
        .unwrap();
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outgoing_mail WHERE status = 'failed' AND token IS NULL")
            .await,
        1
    );
}

pub async fn mail_goes_through_starttls_with_auth_to_a_relay_with_a_private_ca(backend: Backend) {
    let (app, dir) = spawn_app_behind_tls_relay(&backend, "correct horse").await;
    assert_eq!(app.sign_up("Ada", "ada@example.com").await.status(), 200);
    let mail = app.smtp.wait_for("ada@example.com", 1).await.remove(0);
    assert_eq!(
        mail.authenticated_as.as_deref(),
        Some("newsletter"),
        "AUTH after STARTTLS"
    );
    mail.confirmation_link();
    let _ = std::fs::remove_dir_all(dir);
}

pub async fn mail_goes_through_implicit_tls_with_auth(backend: Backend) {
    let dir = std::env::temp_dir().join(format!("gazette-tls-{}", uuid::Uuid::new_v4().simple()));
    let tls = SinkTls::create(&dir, "newsletter", "correct horse").implicit();
    let smtp = SmtpSink::start_with_tls(tls.clone());
    let app = spawn_app_with_smtp(&backend, smtp, |s| {
        s.mail.smtp.tls = SmtpTls::Tls;
        s.mail.smtp.ca_file = tls.ca_file.clone();
        s.mail.smtp.username = "newsletter".into();
        s.mail.smtp.password = "correct horse".into();
    })
    .await;
    assert_eq!(app.sign_up("Ada", "ada@example.com").await.status(), 200);
    let mail = app.smtp.wait_for("ada@example.com", 1).await.remove(0);
    assert_eq!(mail.authenticated_as.as_deref(), Some("newsletter"), "AUTH inside TLS");
    mail.confirmation_link();
    let _ = std::fs::remove_dir_all(dir);
}

pub async fn a_wrong_smtp_password_keeps_the_mail_queued_with_the_reason(backend: Backend) {
    let (app, dir) = spawn_app_behind_tls_relay(&backend, "battery staple").await;
    assert_eq!(app.sign_up("Ada", "ada@example.com").await.status(), 200);
    crate::helpers::wait_until(Duration::from_secs(10), "a refused attempt", || async {
        app.count("SELECT COUNT(*) FROM outgoing_mail WHERE last_error LIKE '%535%'")
            .await
            == 1
    })
    .await;
    assert!(app.smtp.received().is_empty());
    // The relay refused our credentials, not the message: it stays queued
    // for the retry after the operator fixes the password.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outgoing_mail WHERE status = 'failed'")
            .await,
        0
    );
    let reason: String = gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT last_error FROM outgoing_mail").fetch_one(pool).await.unwrap()
    });
    assert!(reason.contains("mail.smtp.password"), "{reason}");
    let _ = std::fs::remove_dir_all(dir);
}

pub async fn a_separate_worker_process_delivers_what_the_web_process_queued(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    assert_eq!(app.sign_up("Ada", "ada@example.com").await.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.smtp.received().is_empty(), "no worker in the web process");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outgoing_mail WHERE status = 'queued'")
            .await,
        1
    );

    let worker = WorkerProcess::start(&backend, app.smtp.port);
    app.smtp.wait_for("ada@example.com", 1).await[0].confirmation_link();
    app.wait_for_empty_queue().await;
    let status = worker.stop().await;
    assert!(status.success(), "SIGTERM stops the worker cleanly: {status}");
    assert_eq!(app.smtp.received().len(), 1);
}

/// An app whose SMTP server is down and whose retries are a minute apart,
/// after one signup and its first failed attempt: the app's own worker
/// leaves the message alone while the test acts on it.
async fn one_failed_attempt_then_quiet(backend: &Backend) -> (crate::helpers::TestApp, u16) {
    let (app, smtp_port) = spawn_app_with_smtp_down(backend, |s| s.delivery.retry_base_seconds = 60.0).await;
    assert_eq!(app.sign_up("Ada", "ada@example.com").await.status(), 200);
    crate::helpers::wait_until(Duration::from_secs(10), "a failed attempt", || async {
        app.count("SELECT COUNT(*) FROM outgoing_mail WHERE status = 'queued' AND last_error IS NOT NULL")
            .await
            == 1
    })
    .await;
    (app, smtp_port)
}

/// The app sending through a relay that speaks STARTTLS with a certificate
/// from a private CA (trusted through `mail.smtp.ca_file`) and accepts the
/// user "newsletter" with the password "correct horse".
async fn spawn_app_behind_tls_relay(
    backend: &Backend,
    password: &str,
) -> (crate::helpers::TestApp, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("gazette-tls-{}", uuid::Uuid::new_v4().simple()));
    let tls = SinkTls::create(&dir, "newsletter", "correct horse");
    let smtp = SmtpSink::start_with_tls(tls.clone());
    let app = spawn_app_with_smtp(backend, smtp, |s| {
        s.mail.smtp.tls = SmtpTls::Starttls;
        s.mail.smtp.ca_file = tls.ca_file.clone();
        s.mail.smtp.username = "newsletter".into();
        s.mail.smtp.password = password.into();
    })
    .await;
    (app, dir)
}

pub async fn a_hard_bounce_marks_the_reader_bounced_and_a_policy_refusal_does_not(backend: Backend) {
    let app = spawn_app(&backend).await;
    app.smtp.refuse_recipients_with(
        "gone@",
        550,
        "5.1.1 <gone@example.com>: Recipient address rejected: User unknown",
    );
    app.smtp
        .refuse_recipients_with("blocked@", 550, "5.7.1 Message rejected by policy");
    for (name, email) in [
        ("Gone", "gone@example.com"),
        ("Blocked", "blocked@example.com"),
        ("Ada", "ada@example.com"),
    ] {
        assert_eq!(app.sign_up(name, email).await.status(), 200);
    }
    let link = app.smtp.wait_for("ada@example.com", 1).await[0].confirmation_link();
    app.wait_for_empty_queue().await;
    assert_eq!(
        app.subscriber_status("gone@example.com").await.as_deref(),
        Some("bounced")
    );
    assert_eq!(
        app.subscriber_status("blocked@example.com").await.as_deref(),
        Some("pending"),
        "5.7.x is our problem"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outgoing_mail WHERE status = 'failed'")
            .await,
        2
    );

    // A confirmed reader whose mailbox has since gone away bounces the digest.
    let token = link.split("token=").nth(1).unwrap();
    assert_eq!(
        app.post_form("/subscriptions/confirm", &[("token", token)])
            .await
            .status(),
        200
    );
    app.smtp
        .refuse_recipients_with("ada@", 550, "5.1.1 <ada@example.com>: mailbox no longer exists");
    crate::cli::import_fixture(&backend, chrono::Utc::now() - chrono::Duration::hours(1)).await;
    assert!(crate::cli::run(&backend, &["dispatch"]).await.status.success());
    crate::helpers::wait_until(Duration::from_secs(10), "the issue to be settled", || async {
        app.count("SELECT COUNT(*) FROM issues WHERE status = 'sent'").await == 1
    })
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM deliveries WHERE status = 'failed'")
            .await,
        1
    );
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("bounced")
    );
}
