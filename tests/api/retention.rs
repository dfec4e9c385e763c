//! Retention through the real binary: `gazette prune --dry-run` counts and
//! changes nothing, `gazette prune` removes exactly what is older than the
//! settings keep and nothing an open issue or waiting mail needs, and the
//! staff pages show the same issue counts after it; `gazette serve` prunes
//! at start-up and still stops cleanly.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::admin::{add_article, add_confirmed_readers, hidden_field, staff_session};
use crate::cli::text;
use crate::helpers::{Backend, ServeProcess, TestApp, gazette_command, spawn_app_with, wait_until};

fn days_ago(days: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::days(days)
}

fn months_ago(months: u32) -> DateTime<Utc> {
    Utc::now().checked_sub_months(chrono::Months::new(months)).unwrap()
}

/// Runs `gazette prune ARGS…` on the test's database with `outbox` as the
/// outbox and the default retention settings.
async fn prune(backend: &Backend, outbox: &Path, args: &[&str]) -> String {
    let url = backend.database_url().to_owned();
    let outbox = outbox.to_owned();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let output = tokio::task::spawn_blocking(move || {
        gazette_command()
            .arg("prune")
            .args(args)
            .env("GAZETTE_DATABASE__URL", url)
            .env("GAZETTE_MAIL__OUTBOX_DIR", outbox)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
}

async fn execute(app: &TestApp, sql: &'static str, binds: Binds<'_>) {
    gazette::with_pool!(&app.db, pool => {
        let mut query = sqlx::query(sql);
        for time in binds.times {
            query = query.bind(*time);
        }
        for text in binds.texts {
            query = query.bind(*text);
        }
        let done = query.execute(pool).await.expect(sql);
        assert!(done.rows_affected() > 0, "{sql} changed nothing");
    });
}

/// A statement's parameters: the times first ($1…), then the texts.
#[derive(Default)]
struct Binds<'a> {
    times: &'a [DateTime<Utc>],
    texts: &'a [&'a str],
}

async fn subscriber_id(app: &TestApp, email_key: &str) -> Uuid {
    gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT id FROM subscribers WHERE email_key = $1")
            .bind(email_key)
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

/// Stores an issue with one delivery per `(reader, status)`, as dispatch
/// and the worker would have left it.
async fn stored_issue(
    app: &TestApp,
    week: &str,
    status: &str,
    created_at: DateTime<Utc>,
    paused: bool,
    deliveries: &[(Uuid, &str)],
) {
    let id = Uuid::now_v7();
    gazette::with_pool!(&app.db, pool => {
        sqlx::query(
            "INSERT INTO issues (id, week, subject, html, text, article_count, window_start, window_end, status,
                                 created_at, paused_at)
             VALUES ($1, $2, 'An old issue', '<p>old</p>', 'old', 1, $3, $3, $4, $3, $5)",
        )
        .bind(id)
        .bind(week)
        .bind(created_at)
        .bind(status)
        .bind(paused.then_some(created_at))
        .execute(pool)
        .await
        .unwrap();
        for (reader, outcome) in deliveries {
            // A copy not settled waits where a paused issue's copies wait.
            let next = if *outcome == "queued" {
                DateTime::parse_from_rfc3339("9999-01-01T00:00:00Z").unwrap().with_timezone(&Utc)
            } else {
                created_at
            };
            let sent_at = (*outcome == "sent").then_some(created_at);
            sqlx::query(
                "INSERT INTO deliveries (issue_id, subscriber_id, status, attempts, next_attempt_at, sent_at)
                 VALUES ($1, $2, $3, 1, $4, $5)",
            )
            .bind(id)
            .bind(reader)
            .bind(*outcome)
            .bind(next)
            .bind(sent_at)
            .execute(pool)
            .await
            .unwrap();
        }
    });
}

/// An `.eml`-or-other file in `dir` last changed `days` ago.
fn outbox_file(dir: &Path, name: &str, days: u64) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, "From: x\r\n\r\nbody\r\n").unwrap();
    let at = SystemTime::now() - Duration::from_secs(days * 24 * 60 * 60);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(at)
        .unwrap();
    path
}

/// The rows of the staff's issue list, and each issue's progress as JSON.
async fn issue_figures(staff: &mut crate::admin::StaffClient, weeks: &[&str]) -> Vec<String> {
    let list = staff.page("/admin/issues").await;
    let mut figures: Vec<String> = list
        .lines()
        .filter(|l| l.contains("<tr><td data-label=\"Week\"><a href=\"/admin/issues/"))
        .map(str::to_owned)
        .collect();
    assert_eq!(figures.len(), weeks.len(), "{list}");
    for week in weeks {
        let json = staff.get(&format!("/admin/issues/{week}/progress")).await;
        assert_eq!(json.status(), 200);
        figures.push(json.text().await.unwrap());
    }
    figures
}

async fn deliveries_gauge(app: &TestApp) -> String {
    let exposition = app.scrape_metrics().await.text().await.unwrap();
    exposition
        .lines()
        .filter(|l| l.starts_with("gazette_deliveries{"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn counts(app: &TestApp) -> [i64; 5] {
    [
        app.count("SELECT COUNT(*) FROM deliveries").await,
        app.count("SELECT COUNT(*) FROM delivery_summaries").await,
        app.count("SELECT COUNT(*) FROM subscribers").await,
        app.count("SELECT COUNT(*) FROM outgoing_mail WHERE recipient = ''")
            .await,
        app.count("SELECT COUNT(*) FROM outgoing_mail").await,
    ]
}

pub async fn prune_removes_exactly_what_retention_no_longer_keeps_and_issue_counts_stay(backend: Backend) {
    // The daily prune is off here: it would race the test's own.
    let app = spawn_app_with(&backend, |s| {
        s.retention.daily = false;
        s.metrics.cache_seconds = 0;
    })
    .await;
    let mut staff = staff_session(&app).await;
    add_confirmed_readers(
        &app,
        &[
            ("ada@example.com".into(), "Ada".into()),
            ("bob@example.com".into(), "Bob".into()),
            ("cal@example.com".into(), "Cal".into()),
        ],
    )
    .await;
    app.smtp.refuse_unknown_user("cal@");
    // Issue A, through the real surface: sent by the worker, 2 sent and 1
    // failed; then dated 25 months back, when it went out.
    add_article(&mut staff, "Floods in the north").await;
    let key = hidden_field(&staff.page("/admin/issues/send").await, "key");
    assert_eq!(staff.post("/admin/issues/send", &[("key", &key)]).await.status(), 303);
    wait_until(Duration::from_secs(20), "issue A to be sent", || async {
        app.count("SELECT COUNT(*) FROM issues WHERE status = 'sent'").await == 1
    })
    .await;
    let week_a: String = gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT week FROM issues").fetch_one(pool).await.unwrap()
    });
    let old = months_ago(25);
    execute(
        &app,
        "UPDATE issues SET created_at = $1",
        Binds {
            times: &[old],
            ..Default::default()
        },
    )
    .await;
    execute(
        &app,
        "UPDATE deliveries SET sent_at = $1 WHERE status = 'sent'",
        Binds {
            times: &[old],
            ..Default::default()
        },
    )
    .await;
    // Issue B: as old, but paused with a copy still to send: kept whole.
    // Issue C: sent a month ago: kept.
    let (ada, bob) = (
        subscriber_id(&app, "ada@example.com").await,
        subscriber_id(&app, "bob@example.com").await,
    );
    stored_issue(
        &app,
        "2001-W01",
        "sending",
        old,
        true,
        &[(ada, "sent"), (bob, "queued")],
    )
    .await;
    stored_issue(
        &app,
        "2001-W02",
        "sent",
        months_ago(1),
        false,
        &[(ada, "sent"), (bob, "skipped")],
    )
    .await;

    // Pending readers: one whose link expired 38 days ago (removed), one
    // as old whose link is still valid, one new.
    for (name, email) in [
        ("Old", "old@example.com"),
        ("Valid", "valid@example.com"),
        ("New", "new@example.com"),
    ] {
        assert_eq!(app.sign_up(name, email).await.status(), 200);
    }
    // Dan confirmed; his confirmation email is 100 days old: its address goes.
    assert_eq!(app.sign_up("Dan", "dan@example.com").await.status(), 200);
    let link = app.smtp.wait_for("dan@example.com", 1).await[0].confirmation_link();
    let token = link.split("token=").nth(1).unwrap().to_owned();
    assert_eq!(
        app.post_form("/subscriptions/confirm", &[("token", &token)])
            .await
            .status(),
        200
    );
    app.wait_for_empty_queue().await;
    let forty = days_ago(40);
    execute(
        &app,
        "UPDATE subscribers SET signed_up_at = $1, created_at = $1 WHERE email_key IN ($2, $3)",
        Binds {
            times: &[forty],
            texts: &["old@example.com", "valid@example.com"],
        },
    )
    .await;
    execute(
        &app,
        "UPDATE confirmation_tokens SET expires_at = $1
                   WHERE subscriber_id = (SELECT id FROM subscribers WHERE email_key = $2)",
        Binds {
            times: &[days_ago(38)],
            texts: &["old@example.com"],
        },
    )
    .await;
    execute(
        &app,
        "UPDATE outgoing_mail SET created_at = $1 WHERE recipient IN ($2, $3)",
        Binds {
            times: &[forty],
            texts: &["old@example.com", "valid@example.com"],
        },
    )
    .await;
    execute(
        &app,
        "UPDATE outgoing_mail SET created_at = $1 WHERE recipient = $2",
        Binds {
            times: &[days_ago(100)],
            texts: &["dan@example.com"],
        },
    )
    .await;
    // A test send as old that never left (its retry far off): kept.
    gazette::with_pool!(&app.db, pool => {
        sqlx::query(
            "INSERT INTO outgoing_mail (id, kind, recipient, recipient_name, status, attempts, next_attempt_at,
                                        created_at)
             VALUES ($1, 'digest_test', 'eve@example.com', 'Eve', 'queued', 3, '9999-01-01T00:00:00Z', $2)",
        )
        .bind(Uuid::now_v7())
        .bind(days_ago(100))
        .execute(pool)
        .await
        .unwrap();
    });

    let outbox = std::env::temp_dir().join(format!("gazette-outbox-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&outbox).unwrap();
    let old_eml = outbox_file(&outbox, "old.eml", 40);
    let new_eml = outbox_file(&outbox, "new.eml", 2);
    let old_other = outbox_file(&outbox, "notes.txt", 40);

    let weeks = [week_a.as_str(), "2001-W01", "2001-W02"];
    let figures = issue_figures(&mut staff, &weeks).await;
    assert!(
        figures
            .iter()
            .any(|f| f.contains(&format!("\"week\":\"{week_a}\"")) && f.contains("\"sent\":2,\"failed\":1")),
        "{figures:?}"
    );
    let gauge = deliveries_gauge(&app).await;
    let before = counts(&app).await;
    assert_eq!(before[0], 7, "three deliveries of A, two of B, two of C");

    let dry = prune(&backend, &outbox, &["--dry-run"]).await;
    for line in [
        "prune would remove (dry run: nothing changed):",
        "deliveries: 3 rows of 1 issues, summarised per issue (older than 24 months)",
        "mail addresses: 1 (older than 90 days)",
        "unconfirmed readers: 1 (older than 30 days)",
        "outbox files: 1 in",
    ] {
        assert!(dry.contains(line), "{line:?} in {dry}");
    }
    assert_eq!(counts(&app).await, before, "a dry run changes nothing");
    assert!(old_eml.exists());

    let done = prune(&backend, &outbox, &[]).await;
    for line in [
        "prune removed:",
        "deliveries: 3 rows of 1 issues",
        "mail addresses: 1 (",
        "unconfirmed readers: 1 (",
        "outbox files: 1 in",
    ] {
        assert!(done.contains(line), "{line:?} in {done}");
    }
    // A's rows went into its summary; B's and C's stay.
    assert_eq!(app.count("SELECT COUNT(*) FROM deliveries").await, 4);
    let summary: (i64, i64, i64) = gazette::with_pool!(&app.db, pool => {
        sqlx::query_as("SELECT CAST(sent AS BIGINT), CAST(failed AS BIGINT), CAST(skipped AS BIGINT) FROM delivery_summaries")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(summary, (2, 1, 0));
    for (email, kept) in [
        ("old@example.com", false),
        ("valid@example.com", true),
        ("new@example.com", true),
        ("dan@example.com", true),
    ] {
        assert_eq!(app.subscriber_status(email).await.is_some(), kept, "{email}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM confirmation_tokens t WHERE NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.id = t.subscriber_id)").await, 0);
    // Dan's mail lost its address; Eve's queued mail and the recent mail kept theirs.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outgoing_mail WHERE recipient = ''")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outgoing_mail WHERE recipient = 'dan@example.com'")
            .await,
        0
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outgoing_mail WHERE recipient = 'eve@example.com' AND status = 'queued'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outgoing_mail WHERE recipient IN ('valid@example.com', 'new@example.com')")
            .await,
        2
    );
    assert!(!old_eml.exists() && new_eml.exists() && old_other.exists());

    assert_eq!(
        issue_figures(&mut staff, &weeks).await,
        figures,
        "the staff pages count the same"
    );
    assert_eq!(
        deliveries_gauge(&app).await,
        gauge,
        "gazette_deliveries counts the same"
    );

    let again = prune(&backend, &outbox, &[]).await;
    for line in [
        "deliveries: 0 rows of 0 issues",
        "mail addresses: 0 (",
        "unconfirmed readers: 0 (",
        "outbox files: 0 in",
    ] {
        assert!(again.contains(line), "{line:?} in {again}");
    }
    assert_eq!(issue_figures(&mut staff, &weeks).await, figures);
    let _ = std::fs::remove_dir_all(outbox);
}

/// `gazette serve` prunes at start-up (one log line with the counts), and
/// stops on SIGTERM with the prune task running.
pub async fn serve_prunes_at_start_up_and_stops_cleanly_on_sigterm(backend: Backend) {
    let setup = spawn_app_with(&backend, |s| s.retention.daily = false).await;
    assert_eq!(setup.sign_up("Old", "old@example.com").await.status(), 200);
    setup.wait_for_empty_queue().await;
    execute(
        &setup,
        "UPDATE subscribers SET signed_up_at = $1",
        Binds {
            times: &[days_ago(40)],
            ..Default::default()
        },
    )
    .await;
    execute(
        &setup,
        "UPDATE confirmation_tokens SET expires_at = $1",
        Binds {
            times: &[days_ago(38)],
            ..Default::default()
        },
    )
    .await;

    // Signals are handled once the server runs: `start` waits until it answers.
    let mut serve = ServeProcess::start(&backend, &[("GAZETTE_LOG__LEVEL", "info"), ("NO_COLOR", "1")]).await;
    let pruned = serve
        .line_containing("prune: removed", Duration::from_secs(20))
        .expect("a log line of the start-up prune");
    assert!(pruned.contains("unconfirmed_readers=1"), "{pruned}");
    assert_eq!(setup.subscriber_status("old@example.com").await, None);
    let status = serve.terminate().await;
    assert!(status.success(), "{status:?}");
}

/// Two `gazette prune` processes at the same moment (as two `serve`
/// processes' daily runs may be): every delivery row is summarised once.
pub async fn two_prunes_at_once_count_each_delivery_once(backend: Backend) {
    let app = spawn_app_with(&backend, |s| s.retention.daily = false).await;
    add_confirmed_readers(
        &app,
        &[
            ("ada@example.com".into(), "Ada".into()),
            ("bob@example.com".into(), "Bob".into()),
            ("cal@example.com".into(), "Cal".into()),
        ],
    )
    .await;
    let readers = [
        subscriber_id(&app, "ada@example.com").await,
        subscriber_id(&app, "bob@example.com").await,
        subscriber_id(&app, "cal@example.com").await,
    ];
    const ISSUES: usize = 30;
    for week in 1..=ISSUES {
        let deliveries = [(readers[0], "sent"), (readers[1], "failed"), (readers[2], "skipped")];
        stored_issue(
            &app,
            &format!("2001-W{week:02}"),
            "sent",
            months_ago(30),
            false,
            &deliveries,
        )
        .await;
    }
    let outbox = std::env::temp_dir().join(format!("gazette-no-outbox-{}", Uuid::new_v4().simple()));
    let (first, second) = tokio::join!(prune(&backend, &outbox, &[]), prune(&backend, &outbox, &[]));
    let rows = |said: &str| -> i64 {
        let line = said
            .lines()
            .find(|l| l.starts_with("deliveries: "))
            .expect("a deliveries line");
        line["deliveries: ".len()..].split(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(rows(&first) + rows(&second), (3 * ISSUES) as i64, "{first}\n{second}");
    assert_eq!(app.count("SELECT COUNT(*) FROM deliveries").await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM delivery_summaries WHERE sent = 1 AND failed = 1 AND skipped = 1")
            .await,
        ISSUES as i64
    );
}
