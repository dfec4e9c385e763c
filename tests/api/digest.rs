//! The weekly issue, end to end: articles → `gazette dispatch` → a worker
//! process → each confirmed reader's inbox → one-click unsubscribe.

use std::time::Duration;

use crate::cli::{FIXTURE_URL, import, import_fixture, run, text};
use crate::helpers::{BASE_URL, Backend, TestApp, WorkerProcess, spawn_web_only, wait_until};

/// Signs a reader up and confirms them with the link their (still queued)
/// confirmation email holds: no worker runs yet in these tests.
async fn confirmed_without_worker(app: &TestApp, name: &str, email: &str) {
    assert_eq!(app.sign_up(name, email).await.status(), 200);
    let token: String = gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT token FROM outgoing_mail WHERE recipient = $1")
            .bind(email)
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(
        app.post_form("/subscriptions/confirm", &[("token", &token)])
            .await
            .status(),
        200
    );
}

async fn unsubscribe_link(app: &TestApp, email: &str) -> String {
    format!("{BASE_URL}/unsubscribe?token={}", app.unsubscribe_token(email).await)
}

async fn one_click(app: &TestApp, link: &str) -> reqwest::Response {
    let path = link.strip_prefix(BASE_URL).expect("a link to the site");
    app.post_raw(
        path,
        "application/x-www-form-urlencoded",
        b"List-Unsubscribe=One-Click".to_vec(),
    )
    .await
}

pub async fn an_issue_reaches_each_confirmed_reader_once_and_one_click_unsubscribes(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    import_fixture(&backend, chrono::Utc::now() - chrono::Duration::days(1)).await;
    for (name, email) in [
        ("Ada", "ada@example.com"),
        ("Bob", "bob@example.com"),
        ("Cal", "cal@example.com"),
    ] {
        confirmed_without_worker(&app, name, email).await;
    }
    app.sign_up("Pending Pat", "pat@example.com").await;

    let dispatched = run(&backend, &["dispatch"]).await;
    assert!(dispatched.status.success(), "{}", text(&dispatched.stderr));
    let week = gazette::domain::IssueWeek::of(chrono::Utc::now(), chrono_tz::UTC).to_string();
    assert_eq!(
        text(&dispatched.stdout).trim(),
        format!("{week}: issue queued for 3 readers (1 articles)")
    );
    let again = run(&backend, &["dispatch"]).await;
    assert_eq!(
        text(&again.stdout).trim(),
        format!("{week}: already dispatched; nothing queued")
    );

    // The archive shows the issue at once, without anyone's link in it.
    let archive = app.get("/archive").await;
    assert_eq!(archive.status(), 200);
    let listing = archive.text().await.unwrap();
    assert!(
        listing.contains(&format!(r#"<a href="/archive/{week}">Tajikistan"#)),
        "listed by its lead story: {listing}"
    );
    let web_version = app.get(&format!("/archive/{week}")).await;
    assert_eq!(web_version.status(), 200);
    let page = web_version.text().await.unwrap();
    assert!(page.contains(FIXTURE_URL) && page.contains(r#"<a class="button" href="/">"#));
    assert!(!page.contains("%%UNSUBSCRIBE_URL%%") && !page.contains("token=") && !page.contains("/unsubscribe"));
    assert_eq!(app.get("/archive/2020-W01").await.status(), 404);
    assert_eq!(app.get("/archive/not-a-week").await.status(), 404);
    let feed = app.get("/archive/feed.xml").await;
    assert_eq!(feed.headers()["content-type"], "application/atom+xml; charset=utf-8");
    let feed = feed.text().await.unwrap();
    assert!(feed.contains(&format!("<id>{BASE_URL}/archive/{week}</id>")), "{feed}");
    let parsed = feed_rs::parser::parse(feed.as_bytes()).expect("a valid Atom feed");
    assert_eq!(parsed.entries.len(), 1);

    // Cal leaves after the issue was queued, before it went out.
    let cal = unsubscribe_link(&app, "cal@example.com").await;
    assert_eq!(one_click(&app, &cal).await.status(), 200);

    let worker = WorkerProcess::start_with(&backend, app.smtp.port, &[]);
    let is_digest = |m: &crate::helpers::Received| m.is_digest();
    wait_until(Duration::from_secs(20), "the issue to be delivered", || async {
        app.count("SELECT COUNT(*) FROM issues WHERE status = 'sent'").await == 1
    })
    .await;
    assert!(worker.stop().await.success());

    for reader in ["ada@example.com", "bob@example.com"] {
        let digests: Vec<_> = app.smtp.received_for(reader).into_iter().filter(is_digest).collect();
        assert_eq!(digests.len(), 1, "{reader} gets the issue exactly once");
    }
    assert!(
        app.smtp.received_for("cal@example.com").iter().all(|m| !is_digest(m)),
        "Cal left before it went out"
    );
    assert!(
        app.smtp.received_for("pat@example.com").iter().all(|m| !is_digest(m)),
        "Pat never confirmed"
    );
    assert_eq!(
        gazette::db::deliveries::status_for(&app.db, "cal@example.com")
            .await
            .unwrap(),
        Some(gazette::domain::DeliveryStatus::Skipped)
    );

    let digest = app
        .smtp
        .received_for("ada@example.com")
        .into_iter()
        .find(is_digest)
        .unwrap();
    let parsed = digest.parsed();
    // Raw header values, unfolded (long ones are folded onto more lines).
    let header = |name: &str| parsed.header_raw(name).map(|v| v.replace("\r\n", "").trim().to_owned());
    // Her link in this issue names the issue.
    let ada = format!("{}&issue={week}", unsubscribe_link(&app, "ada@example.com").await);
    // Only the one-click link: no mailto: while nothing reads mail sent there.
    assert_eq!(header("List-Unsubscribe"), Some(format!("<{ada}>")));
    assert_eq!(
        header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert_eq!(
        header("List-Id").as_deref(),
        Some("The Test Gazette <weekly.gazette.test>")
    );
    assert_eq!(header("Precedence").as_deref(), Some("bulk"));
    assert_eq!(header("Auto-Submitted").as_deref(), Some("auto-generated"));
    assert!(parsed.message_id().is_some() && parsed.date().is_some());
    let (html, plain) = (digest.html(), digest.text());
    for (part, link) in [(&html, ada.replace('&', "&amp;")), (&plain, ada.clone())] {
        assert!(part.contains(&link), "Ada's own unsubscribe link");
        assert!(part.contains(FIXTURE_URL));
        assert!(!part.contains("%%UNSUBSCRIBE_URL%%"));
    }
    assert!(plain.contains("Tajikistan’s “multi-vector” foreign policy is testing the Kremlin’s"));
    assert!(html.contains("Tajikistan’s “multi-vector” foreign policy is testing the Kremlin’s patience."));

    // Ada's mail program uses the header: one click, no cookies, no redirect.
    let response = one_click(&app, &ada).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("unsubscribed")
    );
    // Her history says so, and which issue she left from.
    let left_from: Vec<(String, String)> = gazette::with_pool!(&app.db, pool => {
        sqlx::query_as(
            "SELECT e.detail, i.week FROM subscriber_events e JOIN issues i ON i.id = e.issue_id
             JOIN subscribers s ON s.id = e.subscriber_id
             WHERE e.kind = 'unsubscribed' AND s.email_key = 'ada@example.com'",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    });
    assert_eq!(
        left_from,
        [("with their mail program's unsubscribe button".to_owned(), week.clone())]
    );

    // A week passes: the issue is relabelled as last week's (its window
    // still ends when it was dispatched), a new article comes in, and the
    // next issue goes to Bob alone.
    let last_week = gazette::domain::IssueWeek::of(chrono::Utc::now() - chrono::Duration::days(7), chrono_tz::UTC);
    gazette::with_pool!(&app.db, pool => {
        sqlx::query("UPDATE issues SET week = $1").bind(last_week.to_string()).execute(pool).await.unwrap();
    });
    let dir = std::env::temp_dir().join(format!("gazette-next-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let next = dir.join("next.txt");
    std::fs::write(
        &next,
        "Markets calm in Almaty\nPrices held steady on Monday. Traders waited for news.",
    )
    .unwrap();
    let next = next.display().to_string();
    let imported = import(&backend, &[&next, "--url", "https://news.example.org/almaty-markets"]).await;
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let dispatched = run(&backend, &["dispatch"]).await;
    assert_eq!(
        text(&dispatched.stdout).trim(),
        format!("{week}: issue queued for 1 readers (1 articles)")
    );
    let worker = WorkerProcess::start(&backend, app.smtp.port);
    wait_until(Duration::from_secs(20), "the second issue to be delivered", || async {
        app.count("SELECT COUNT(*) FROM issues WHERE status = 'sent'").await == 2
    })
    .await;
    assert!(worker.stop().await.success());
    let is_second = |m: &crate::helpers::Received| m.parsed().subject().is_some_and(|s| s.contains("Almaty"));
    assert_eq!(
        app.smtp
            .received_for("bob@example.com")
            .into_iter()
            .filter(is_second)
            .count(),
        1
    );
    assert!(
        app.smtp.received_for("ada@example.com").iter().all(|m| !is_second(m)),
        "Ada left"
    );
    let second = app
        .smtp
        .received_for("bob@example.com")
        .into_iter()
        .find(is_second)
        .unwrap();
    assert!(
        !second.text().contains("multi-vector"),
        "only articles since the last issue"
    );
    let _ = std::fs::remove_dir_all(dir);
}

pub async fn a_week_without_new_articles_sends_nothing(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    confirmed_without_worker(&app, "Ada", "ada@example.com").await;
    let dispatched = run(&backend, &["dispatch"]).await;
    assert!(dispatched.status.success(), "{}", text(&dispatched.stderr));
    assert!(
        text(&dispatched.stdout).contains("no articles published since"),
        "{}",
        text(&dispatched.stdout)
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM issues").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM deliveries").await, 0);
}

pub async fn two_workers_share_the_queue_and_never_send_twice(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    let readers: Vec<String> = (0..150).map(|i| format!("reader{i}@example.com")).collect();
    for reader in &readers {
        confirmed_without_worker(&app, "Reader", reader).await;
    }
    import_fixture(&backend, chrono::Utc::now() - chrono::Duration::hours(2)).await;
    let dispatched = run(&backend, &["dispatch"]).await;
    assert!(
        text(&dispatched.stdout).contains("issue queued for 150 readers"),
        "{}",
        text(&dispatched.stdout)
    );

    // Two worker processes start on the same queue: 150 confirmation emails
    // and 150 digests between them.
    let workers = [
        WorkerProcess::start(&backend, app.smtp.port),
        WorkerProcess::start(&backend, app.smtp.port),
    ];
    app.wait_until_the_issue_and_all_mail_are_sent().await;
    for worker in workers {
        assert!(worker.stop().await.success());
    }
    let received = app.smtp.received();
    assert_eq!(received.len(), 300, "each message exactly once");
    for reader in &readers {
        assert_eq!(
            app.smtp.received_for(reader).len(),
            2,
            "{reader}: one confirmation, one digest"
        );
    }
}
