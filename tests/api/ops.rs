//! The operator's side: the built-in scheduler, `/metrics`, request ids,
//! JSON logs and `gazette config check`.

use std::time::Duration;

use chrono::{Timelike, Utc};
use gazette::config::CronSchedule;

use crate::cli::{import_fixture, text};
use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with, spawn_web_only, wait_until};
use crate::helpers::{ServeProcess, gazette_command as gazette};

/// A reader signed up and confirmed with the token their (possibly still
/// queued) confirmation email holds.
async fn confirmed_reader(app: &TestApp, name: &str, email: &str) {
    assert_eq!(app.sign_up(name, email).await.status(), 200);
    let queued: Option<String> = gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT token FROM outgoing_mail WHERE recipient = $1")
            .bind(email)
            .fetch_one(pool)
            .await
            .unwrap()
    });
    // A running worker may have sent the email already (and forgotten the
    // token): then the link is in the reader's inbox.
    let token = match queued {
        Some(token) => token,
        None => {
            let link = app.smtp.wait_for(email, 1).await[0].confirmation_link();
            link.split("token=").nth(1).unwrap().to_owned()
        }
    };
    let confirmed = app.post_form("/subscriptions/confirm", &[("token", &token)]).await;
    assert_eq!(confirmed.status(), 200);
}

/// Three confirmed readers and one article from yesterday: a week with
/// something to send.
async fn a_week_worth_sending(backend: &Backend, app: &TestApp) -> [&'static str; 3] {
    import_fixture(backend, Utc::now() - chrono::Duration::days(1)).await;
    let readers = ["ada@example.com", "bob@example.com", "cal@example.com"];
    for (i, email) in readers.iter().enumerate() {
        confirmed_reader(app, &format!("Reader {i}"), email).await;
    }
    readers
}

fn scheduled(cron: &str, grace_hours: u32) -> impl FnOnce(&mut gazette::config::Settings) {
    let cron = CronSchedule::parse(cron).unwrap();
    move |settings| {
        settings.schedule.enabled = true;
        settings.schedule.cron = cron;
        settings.schedule.grace_hours = grace_hours;
    }
}

fn is_digest(message: &crate::helpers::Received) -> bool {
    message.is_digest()
}

pub async fn two_instances_scheduled_for_the_same_moment_dispatch_one_issue(backend: Backend) {
    let setup = spawn_web_only(&backend).await;
    let readers = a_week_worth_sending(&backend, &setup).await;
    // Two `gazette serve` processes on one database, both firing every
    // second (a seconds field makes the race frequent): each fire is a
    // dispatch for the same instant in both.
    let first = spawn_app_with(&backend, scheduled("* * * * * *", 24)).await;
    let second = spawn_app_with(&backend, scheduled("* * * * * *", 24)).await;
    wait_until(Duration::from_secs(20), "the issue to be sent", || async {
        setup.count("SELECT COUNT(*) FROM issues WHERE status = 'sent'").await == 1
    })
    .await;
    // Both schedulers keep firing; later fires must find the week done.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(setup.count("SELECT COUNT(*) FROM issues").await, 1);
    assert_eq!(setup.count("SELECT COUNT(*) FROM deliveries").await, 3);
    for reader in readers {
        let digests = first.smtp.received_for(reader).into_iter().filter(is_digest).count()
            + second.smtp.received_for(reader).into_iter().filter(is_digest).count();
        assert_eq!(digests, 1, "{reader} gets the week's issue once");
    }
}

/// A daily pattern whose last run was `ago` before now (UTC).
fn daily_at(ago: chrono::Duration) -> String {
    let at = Utc::now() - ago;
    format!("{} {} * * *", at.minute(), at.hour())
}

pub async fn a_run_missed_while_stopped_is_caught_up_within_the_grace_period_and_skipped_after(backend: Backend) {
    let setup = spawn_web_only(&backend).await;
    a_week_worth_sending(&backend, &setup).await;

    // Three hours late with one hour of grace: the week is skipped.
    let _late = spawn_app_with(&backend, scheduled(&daily_at(chrono::Duration::hours(3)), 1)).await;
    // The decision is made as the scheduler starts; a dispatch would have
    // written the issue well within this time.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(setup.count("SELECT COUNT(*) FROM issues").await, 0, "skipped");

    // Two minutes late with a day of grace: dispatched at start-up.
    let _on_time = spawn_app_with(&backend, scheduled(&daily_at(chrono::Duration::minutes(2)), 24)).await;
    wait_until(Duration::from_secs(10), "the missed run to be caught up", || async {
        setup.count("SELECT COUNT(*) FROM issues").await == 1
    })
    .await;
    assert_eq!(setup.count("SELECT COUNT(*) FROM deliveries").await, 3);
}

pub async fn the_next_run_is_in_the_configured_zone_and_none_when_disabled(backend: Backend) {
    let mut settings = crate::helpers::test_settings(&backend, 25);
    settings.schedule.enabled = true;
    settings.schedule.cron = CronSchedule::parse("0 9 * * FRI").unwrap();
    settings.schedule.timezone = gazette::config::ScheduleTimezone::parse("America/New_York").unwrap();
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let next = settings.schedule.next_run(now).unwrap();
    assert_eq!(next.to_rfc3339(), "2026-12-04T14:00:00+00:00");
    settings.schedule.enabled = false;
    assert_eq!(settings.schedule.next_run(now), None);
}

fn metric(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

pub async fn metrics_count_readers_requests_and_smtp_sends(backend: Backend) {
    let app = spawn_app(&backend).await;
    confirmed_reader(&app, "Ada", "ada@example.com").await;
    confirmed_reader(&app, "Bob", "bob@example.com").await;
    let token = app.unsubscribe_token("bob@example.com").await;
    assert_eq!(app.post_form("/unsubscribe", &[("token", &token)]).await.status(), 200);
    assert_eq!(app.get("/archive/2020-W01").await.status(), 404);
    assert_eq!(app.get("/archive/2020-W02").await.status(), 404);
    assert_eq!(app.get("/no/such/page").await.status(), 404);
    app.wait_for_empty_queue().await;

    let response = app.scrape_metrics().await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = response.text().await.unwrap();
    assert_eq!(metric(&body, "gazette_signups_total"), Some(2.0), "{body}");
    assert_eq!(metric(&body, "gazette_confirmations_total"), Some(2.0), "{body}");
    assert_eq!(metric(&body, "gazette_unsubscribes_total"), Some(1.0), "{body}");
    // By route pattern, not by path: two weeks are one series.
    assert_eq!(
        metric(
            &body,
            r#"gazette_http_requests_total{method="GET",route="/archive/{week}",status="404"}"#
        ),
        Some(2.0),
        "{body}"
    );
    assert_eq!(
        metric(
            &body,
            r#"gazette_http_requests_total{method="POST",route="/subscriptions",status="200"}"#
        ),
        Some(2.0),
        "{body}"
    );
    assert_eq!(
        metric(
            &body,
            r#"gazette_http_requests_total{method="GET",route="unmatched",status="404"}"#
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(metric(&body, r#"gazette_queue_depth{kind="transactional"}"#), Some(0.0));
    assert_eq!(metric(&body, r#"gazette_queue_depth{kind="digest"}"#), Some(0.0));
    assert_eq!(metric(&body, r#"gazette_deliveries{outcome="sent"}"#), Some(0.0));
    // The two confirmation emails went over SMTP (the histogram counts
    // every send in this process, other tests' too).
    let sent = metric(&body, r#"gazette_smtp_send_seconds_count{outcome="sent"}"#).unwrap_or(0.0);
    assert!(sent >= 2.0, "{body}");
    let inf = metric(&body, r#"gazette_smtp_send_seconds_bucket{outcome="sent",le="+Inf"}"#);
    assert!(inf.is_some_and(|n| n >= 2.0), "{body}");
}

pub async fn metrics_show_the_queue_depth_by_kind(backend: Backend) {
    // No worker: what is queued stays queued.
    let app = spawn_web_only(&backend).await;
    a_week_worth_sending(&backend, &app).await;
    app.sign_up("Pat", "pat@example.com").await;
    let dispatched = crate::cli::run(&backend, &["dispatch"]).await;
    assert!(dispatched.status.success(), "{}", text(&dispatched.stderr));
    let body = app.scrape_metrics().await.text().await.unwrap();
    // Four opt-in emails; the issue for the three confirmed readers.
    assert_eq!(
        metric(&body, r#"gazette_queue_depth{kind="transactional"}"#),
        Some(4.0),
        "{body}"
    );
    assert_eq!(
        metric(&body, r#"gazette_queue_depth{kind="digest"}"#),
        Some(3.0),
        "{body}"
    );
    assert_eq!(
        metric(&body, r#"gazette_deliveries{outcome="queued"}"#),
        Some(3.0),
        "{body}"
    );
}

/// The id is kept only from a trusted proxy (here the test itself).
pub async fn every_response_carries_a_request_id_kept_from_the_request_when_sane(backend: Backend) {
    let app = spawn_app_with(&backend, |settings| {
        settings.server.trusted_proxies = gazette::config::TrustedProxies::parse("127.0.0.1").unwrap();
    })
    .await;
    let id_of = |response: &reqwest::Response| response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let mut generated = Vec::new();
    for path in ["/", "/no/such/page"] {
        let response = app.get(path).await;
        let id = id_of(&response);
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{path}: {id}");
        generated.push(id);
    }
    assert_ne!(generated[0], generated[1]);
    let kept = app
        .client
        .get(format!("{}/", app.address))
        .header("X-Request-Id", "edge-7f3a.42")
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&kept), "edge-7f3a.42");
    for hostile in ["<script>alert(1)</script>", &"x".repeat(200), "a b"] {
        let replaced = app
            .client
            .get(format!("{}/", app.address))
            .header("X-Request-Id", hostile)
            .send()
            .await
            .unwrap();
        let id = id_of(&replaced);
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{hostile} → {id}");
    }
    // A client that is no trusted proxy cannot choose its request's id.
    let direct = spawn_app(&backend).await;
    let ignored = direct
        .client
        .get(format!("{}/", direct.address))
        .header("X-Request-Id", "edge-7f3a.42")
        .send()
        .await
        .unwrap();
    let id = id_of(&ignored);
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
}

/// `gazette serve` with JSON logs: every line is a JSON object, and the
/// request's lines carry its request id.
pub async fn json_logs_carry_the_request_id(backend: Backend) {
    let serve = ServeProcess::start(
        &backend,
        &[
            ("GAZETTE_LOG__LEVEL", "info"),
            ("GAZETTE_LOG__FORMAT", "json"),
            ("GAZETTE_SERVER__TRUSTED_PROXIES", "127.0.0.1"),
        ],
    )
    .await;
    let (client, base, line_rx) = (reqwest::Client::new(), &serve.base, &serve.lines);
    let archive = client
        .get(format!("{base}/archive"))
        .header("X-Request-Id", "json-log-check-2")
        .send()
        .await
        .unwrap();
    assert_eq!(archive.status(), 200);
    // A confirmation logs an event inside the request's span.
    let token = crate::helpers::sign_up_ada_on(&backend, &client, base).await;
    let confirmed = client
        .post(format!("{base}/subscriptions/confirm"))
        .header("X-Request-Id", "json-log-check-3")
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);
    // The access log lines are written once the bodies have gone out.
    let mut lines = Vec::new();
    let mut access_lines = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        let Ok(line) = line_rx.recv_timeout(left) else { break };
        if line.contains("gazette::access") && (line.contains("json-log-check-2") || line.contains("json-log-check-3"))
        {
            access_lines += 1;
        }
        lines.push(line);
        if access_lines == 2 {
            break;
        }
    }
    drop(serve);
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(
            line.starts_with('{') && line.ends_with('}') && line.contains(r#""level":"#),
            "not a JSON log line: {line}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("json-log-check-2") && l.contains("/archive")),
        "the access log line names the request id:\n{}",
        lines.join("\n")
    );
    assert!(
        lines.iter().any(|l| l.contains("subscriber confirmed")
            && l.contains(r#""span":{"#)
            && l.contains(r#""request_id":"json-log-check-3""#)),
        "the handler's event carries the request's span:\n{}",
        lines.join("\n")
    );
}

pub fn config_check_prints_the_effective_configuration_with_secrets_masked() -> Result<(), libtest_mimic::Failed> {
    let output = gazette()
        .args(["config", "check"])
        .env("GAZETTE_MAIL__SMTP__USERNAME", "mailer")
        .env("GAZETTE_MAIL__SMTP__PASSWORD", "hunter2-secret")
        .env(
            "GAZETTE_DATABASE__URL",
            "postgres://gazette:db-pass-9@db.internal/gazette",
        )
        .env("GAZETTE_SCHEDULE__TIMEZONE", "Europe/Berlin")
        .output()?;
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    // Every value is shown before the database is tried; this one is not there.
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("postgres://gazette:***@db.internal/gazette") && !stderr.contains("db-pass-9"),
        "{stderr}"
    );
    assert!(!stdout.contains("hunter2") && !stdout.contains("db-pass-9"), "{stdout}");
    for line in [
        r#"mail.smtp.password = "***""#,
        r#"mail.smtp.username = "mailer""#,
        r#"database.url = "postgres://gazette:***@db.internal/gazette""#,
        r#"schedule.timezone = "Europe/Berlin""#,
        r#"schedule.cron = "0 9 * * FRI""#,
        r#"schedule.grace_hours = "24""#,
    ] {
        assert!(stdout.lines().any(|l| l == line), "missing `{line}`:\n{stdout}");
    }
    Ok(())
}

pub fn the_sample_production_configuration_is_valid_once_its_secrets_are_set() -> Result<(), libtest_mimic::Failed> {
    // The sample's database is on the production network; a SQLite file
    // that `gazette migrate` makes stands in.
    let dir = std::env::temp_dir().join(format!("gazette-sample-{}", uuid::Uuid::new_v4().simple()));
    let url = format!("sqlite://{}/gazette.db", dir.display());
    let sample = || {
        let mut command = gazette();
        // The sample's key file is on the production machine; the test's stands in.
        let key = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dkim-rsa.pem");
        command
            .args(["--config-dir", "deploy"])
            .env("GAZETTE_ENV", "production")
            .env("GAZETTE_SERVER__SESSION_KEY", "cd".repeat(64))
            .env("GAZETTE_DATABASE__URL", &url)
            .env("GAZETTE_MAIL__DKIM__PRIVATE_KEY_FILE", key);
        command
    };
    let migrated = sample()
        .arg("migrate")
        .env("GAZETTE_MAIL__SMTP__PASSWORD", "relay-secret")
        .output()?;
    assert!(migrated.status.success(), "{}", text(&migrated.stderr));
    let output = sample()
        .args(["config", "check"])
        .env("GAZETTE_MAIL__SMTP__PASSWORD", "relay-secret")
        .output()?;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(r#"server.base_url = "https://news.example.org""#),
        "{stdout}"
    );
    assert!(
        stdout.contains("gazette._domainkey.example.org. IN TXT \"v=DKIM1; k=rsa; p="),
        "the DKIM record to publish: {stdout}"
    );
    assert!(!stdout.contains("relay-secret"), "{stdout}");
    // Without the relay's password it must not start.
    let output = sample().args(["config", "check"]).output()?;
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("mail.smtp.password"));
    Ok(())
}

pub fn bad_operations_settings_stop_the_process_naming_the_key() -> Result<(), libtest_mimic::Failed> {
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[("GAZETTE_SCHEDULE__CRON", "every friday")], "schedule.cron"),
        (&[("GAZETTE_SCHEDULE__TIMEZONE", "Mars/Olympus")], "schedule.timezone"),
        (&[("GAZETTE_LOG__FORMAT", "xml")], "log.format"),
        (&[("GAZETTE_MAIL__TRANSPORT", "pigeon")], "mail.transport"),
        (
            &[
                ("GAZETTE_ENV", "production"),
                ("GAZETTE_MAIL__SMTP__USERNAME", "mailer"),
            ],
            "mail.smtp.password",
        ),
    ];
    for (env, key) in cases {
        for command in [&["config", "check"][..], &["serve"][..]] {
            let output = gazette().args(command).envs(env.iter().copied()).output()?;
            assert_eq!(output.status.code(), Some(2), "{env:?} {command:?}");
            let stderr = text(&output.stderr);
            assert!(stderr.contains(key), "{env:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "one clear line: {stderr}");
        }
    }
    // In production a password set through the environment is enough (with
    // what production needs besides: a relay, a key, a database made first).
    let database = crate::helpers::migrated_sqlite_database();
    let output = gazette()
        .args(["config", "check"])
        .env("GAZETTE_ENV", "production")
        .env("GAZETTE_DATABASE__URL", &database)
        .env("GAZETTE_MAIL__TRANSPORT", "smtp")
        .env("GAZETTE_SERVER__SESSION_KEY", "ab".repeat(64))
        .env("GAZETTE_SERVER__BASE_URL", "https://news.example.org")
        .env("GAZETTE_MAIL__SMTP__USERNAME", "mailer")
        .env("GAZETTE_MAIL__SMTP__PASSWORD", "s3cret")
        .output()?;
    assert!(output.status.success(), "{}", text(&output.stderr));
    Ok(())
}

/// A key no setting has is refused, in a file or in the environment, by
/// `config check` and by `serve` alike, naming the key and the one meant:
/// `rate_per_sec = 5` must not pass for a setting while `rate_per_second`
/// stays unlimited. Variables that name no key (`GAZETTE_ENV`,
/// `GAZETTE_CONFIG_DIR`, the tests' own) are not settings and pass.
pub fn an_unknown_key_stops_the_process_naming_the_key_meant() -> Result<(), libtest_mimic::Failed> {
    let dir = std::env::temp_dir().join(format!("gazette-config-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("default.toml"), "[delivery]\nrate_per_sec = 5\n")?;
    let config_dir = dir.to_str().expect("a UTF-8 temporary directory");
    /// Arguments, environment, the one line expected on stderr.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 2] = [
        (
            &["--config-dir", config_dir],
            &[],
            "unknown key `delivery.rate_per_sec`: did you mean `delivery.rate_per_second`?",
        ),
        (
            &[],
            &[("GAZETTE_MAIL__SMTP__HOTS", "relay.example.org")],
            "unknown key `mail.smtp.hots`: did you mean `mail.smtp.host`?",
        ),
    ];
    for (args, env, expected) in cases {
        for command in [&["config", "check"][..], &["serve"][..]] {
            let output = gazette().args(args).args(command).envs(env.iter().copied()).output()?;
            let stderr = text(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{args:?} {env:?} {command:?}: {stderr}");
            assert_eq!(stderr.trim(), format!("gazette: invalid configuration: {expected}"));
        }
    }
    let output = gazette()
        .args(["config", "check"])
        .env("GAZETTE_CONFIG_DIR", "config")
        .env("GAZETTE_TEST_SOMETHING", "not a setting")
        .output()?;
    assert!(output.status.success(), "{}", text(&output.stderr));
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// `gazette config check | head` and the like: output to a pipe nobody
/// reads any more ends the command quietly, never with a panic. The pipe's
/// reading end is closed before the command starts, so every write fails.
pub fn output_to_a_closed_pipe_ends_the_command_quietly() -> Result<(), libtest_mimic::Failed> {
    let database = crate::helpers::migrated_sqlite_database();
    for command in [&["config", "check"][..], &["dispatch", "--dry-run"][..]] {
        let (reader, writer) = std::io::pipe()?;
        drop(reader);
        let output = gazette()
            .args(command)
            .env("GAZETTE_DATABASE__URL", &database)
            .stdout(writer)
            .output()?;
        let stderr = text(&output.stderr);
        assert!(output.status.success(), "{command:?}: {:?} {stderr}", output.status);
        assert!(!stderr.contains("panicked"), "{command:?}: {stderr}");
    }
    Ok(())
}

/// A mail setting the transport refuses (a CA file that is not there) is
/// a bad setting like any other: `config check` finds it, and `serve` and
/// `worker` exit 2, which the systemd units do not restart, instead of 1.
pub fn a_bad_mail_setting_exits_2_from_every_role() -> Result<(), libtest_mimic::Failed> {
    for command in [&["config", "check"][..], &["serve"][..], &["worker"][..]] {
        let output = gazette()
            .args(command)
            .env("GAZETTE_DATABASE__URL", "sqlite::memory:")
            .env("GAZETTE_SERVER__PORT", "0")
            .env("GAZETTE_MAIL__TRANSPORT", "smtp")
            .env("GAZETTE_MAIL__SMTP__TLS", "starttls")
            .env("GAZETTE_MAIL__SMTP__CA_FILE", "/nonexistent/relay-ca.pem")
            .output()?;
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command:?}: {stderr}");
        assert_eq!(
            stderr.lines().last(),
            Some(
                "gazette: mail.smtp.ca_file: cannot read /nonexistent/relay-ca.pem: No such file or directory (os error 2)"
            ),
            "{command:?}: {stderr}"
        );
    }
    Ok(())
}

/// Running a command again on a migrated database prints only its own
/// output: PostgreSQL's notice that `_sqlx_migrations` exists is not logged.
pub async fn commands_print_no_database_notices(backend: Backend) {
    for _ in 0..2 {
        let output = gazette()
            .arg("migrate")
            .env("GAZETTE_DATABASE__URL", backend.database_url())
            .env("GAZETTE_LOG__LEVEL", "info")
            .output()
            .unwrap();
        let stderr = text(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(
            !stderr.contains("_sqlx_migrations") && !stderr.contains("notice"),
            "{stderr}"
        );
    }
}

/// A mistyped `GAZETTE_ENV` stops every command instead of running on the
/// defaults; an environment with its own file in the configuration
/// directory is one.
pub fn an_unknown_environment_stops_the_process() -> Result<(), libtest_mimic::Failed> {
    for command in [&["config", "check"][..], &["serve"][..], &["dispatch", "--dry-run"][..]] {
        let output = gazette().args(command).env("GAZETTE_ENV", "prodution").output()?;
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command:?}: {stderr}");
        assert!(
            stderr.starts_with("gazette: invalid configuration: GAZETTE_ENV `prodution` is not an environment")
                && stderr.lines().count() == 1,
            "{stderr}"
        );
    }
    let dir = std::env::temp_dir().join(format!("gazette-config-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("staging.toml"), "[server]\nport = 8123\n")?;
    let output = gazette()
        .args(["--config-dir", dir.to_str().expect("UTF-8"), "config", "check"])
        .env("GAZETTE_ENV", "staging")
        .output()?;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).lines().any(|l| l == "server.port = \"8123\""),
        "{}",
        text(&output.stdout)
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// `gazette serve` logs when the scheduler will dispatch next, in the
/// configured zone, and stops cleanly on SIGTERM with the scheduler running.
pub async fn serve_logs_the_next_dispatch_and_stops_on_sigterm(backend: Backend) {
    // Signals are handled once the server runs: `start_as` waits until it answers.
    let mut serve = ServeProcess::start_as(
        &backend,
        &["serve", "--no-worker"],
        &[
            ("GAZETTE_LOG__LEVEL", "info"),
            ("GAZETTE_SCHEDULE__CRON", "30 7 * * MON"),
            ("GAZETTE_SCHEDULE__TIMEZONE", "Asia/Tokyo"),
            ("NO_COLOR", "1"),
        ],
    )
    .await;
    let next_line = serve
        .line_containing("scheduler: next dispatch", Duration::from_secs(10))
        .expect("a log line with the next dispatch");
    assert!(
        next_line.contains("07:30:00 +09:00") || next_line.contains("07:30:00 JST"),
        "{next_line}"
    );
    let status = serve.terminate().await;
    assert!(status.success(), "{status:?}");
}
