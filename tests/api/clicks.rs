//! Aggregate click counting (issue 17, `tracking.clicks = "aggregate"`):
//! the digest's story links go through Gazette, the same link for every
//! reader; a person's click is counted once, a mail scanner's fetch not at
//! all, and nothing about who clicked is stored.

use fantoccini::Locator;

use crate::admin::{add_article, add_confirmed_readers, hidden_field, staff_session};
use crate::admin_browser::{Driver, browser_with};
use crate::helpers::{BASE_URL, Backend, TestApp, free_port, spawn_app_with, wait_until};
use gazette::config::{BaseUrl, ClickTracking};

async fn send_now(staff: &mut crate::admin::StaffClient) -> String {
    let confirm = staff.page("/admin/issues/send").await;
    let sent = staff
        .post("/admin/issues/send", &[("key", &hidden_field(&confirm, "key"))])
        .await;
    assert_eq!(sent.status(), 303);
    sent.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

async fn clicks(app: &TestApp) -> Vec<(i32, String, i64)> {
    gazette::with_pool!(&app.db, pool => {
        sqlx::query_as("SELECT position, url, clicks FROM issue_links ORDER BY position")
            .fetch_all(pool)
            .await
            .unwrap()
    })
}

pub async fn a_persons_click_is_counted_a_scanners_fetch_is_not_and_no_reader_is_known(backend: Backend) {
    let app = spawn_app_with(&backend, |settings| {
        settings.tracking.clicks = ClickTracking::Aggregate;
    })
    .await;
    let mut staff = staff_session(&app).await;
    add_confirmed_readers(
        &app,
        &[
            ("ada@example.com".into(), "Ada".into()),
            ("bob@example.com".into(), "Bob".into()),
        ],
    )
    .await;
    add_article(&mut staff, "Floods in the north").await;
    add_article(&mut staff, "Bridge reopens").await;
    // The staff's preview links the stories themselves: nothing to count.
    let preview = staff.get("/admin/issues/preview.html").await.text().await.unwrap();
    assert!(
        preview.contains(r#"href="https://example.org/Bridge-reopens""#),
        "{preview}"
    );
    let week = send_now(&mut staff).await;

    // Both readers' copies link the story the same way: no reader in it.
    let counted = format!("{BASE_URL}/c/{week}/1");
    let ada = app.smtp.wait_for("ada@example.com", 1).await.remove(0);
    let bob = app.smtp.wait_for("bob@example.com", 1).await.remove(0);
    for copy in [&ada, &bob] {
        assert!(copy.html().contains(&format!(r#"href="{counted}""#)), "{}", copy.html());
        assert!(copy.text().contains(&format!("[1] {counted}")), "{}", copy.text());
        assert!(!copy.html().contains("https://example.org/Bridge-reopens"));
    }
    assert_eq!(
        clicks(&app).await,
        [
            (1, "https://example.org/Bridge-reopens".to_owned(), 0),
            (2, "https://example.org/Floods-in-the-north".to_owned(), 0)
        ]
    );

    let events_before = app.count("SELECT COUNT(*) FROM subscriber_events").await;
    let link = format!("{}/c/{week}/1", app.address);
    // A scanner (no browser's headers) is led to the story, uncounted.
    let scanner = app.client.get(&link).send().await.unwrap();
    assert_eq!(scanner.status(), 302);
    assert_eq!(scanner.headers()["location"], "https://example.org/Bridge-reopens");
    assert_eq!(scanner.headers()["referrer-policy"], "no-referrer");
    let prefetch = app
        .client
        .get(&link)
        .header("User-Agent", "Mozilla/5.0 Chrome/156.0")
        .header("Sec-Fetch-Mode", "navigate")
        .header("Sec-Purpose", "prefetch")
        .send()
        .await
        .unwrap();
    assert_eq!(prefetch.status(), 302);
    assert_eq!(clicks(&app).await[0].2, 0, "neither was a person");
    // A person's click, as a browser sends it.
    let click = app
        .client
        .get(&link)
        .header(
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36",
        )
        .header("Accept", "text/html,application/xhtml+xml")
        .header("Sec-Fetch-Mode", "navigate")
        .header("Sec-Fetch-User", "?1")
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(click.status(), 302);
    assert_eq!(clicks(&app).await[0].2, 1);
    assert_eq!(clicks(&app).await[1].2, 0, "the other story's count is its own");
    // Links no issue has.
    for path in [
        format!("/c/{week}/3"),
        format!("/c/{week}/0"),
        "/c/2020-W01/1".into(),
        "/c/x/y".into(),
    ] {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 404, "{path}");
    }
    // What is stored: the issue, the link and a count. No reader's id,
    // token or address anywhere in the row, and no reader event.
    let ids: Vec<uuid::Uuid> = gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT id FROM subscribers").fetch_all(pool).await.unwrap()
    });
    let row: String = gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT url || ' ' || title || ' ' || CAST(clicks AS TEXT) FROM issue_links WHERE position = 1")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    for secret in ids
        .iter()
        .flat_map(|id| [id.to_string(), id.simple().to_string()])
        .chain([app.unsubscribe_token("ada@example.com").await, "ada@example.com".into()])
    {
        assert!(!row.contains(&secret), "{row}");
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM subscriber_events").await,
        events_before,
        "a click is no reader's event"
    );
    // Staff see the counts on the issue's page.
    let page = staff.page(&format!("/admin/issues/{week}")).await;
    assert!(
        page.contains(r#"<td data-label="Story"><a href="https://example.org/Bridge-reopens">Bridge reopens</a></td><td data-label="Clicks">1</td>"#),
        "{page}"
    );
}

/// Chromium opens a reader's copy and a person clicks the lead story:
/// counted once, through the real browser's own headers.
pub async fn a_click_in_chromium_counts_once(backend: Backend) {
    let port = free_port();
    let app = spawn_app_with(&backend, |settings| {
        settings.tracking.clicks = ClickTracking::Aggregate;
        settings.server.port = port;
        settings.server.base_url = BaseUrl::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    })
    .await;
    let mut staff = staff_session(&app).await;
    add_confirmed_readers(&app, &[("ada@example.com".into(), "Ada".into())]).await;
    add_article(&mut staff, "Floods in the north").await;
    send_now(&mut staff).await;
    let digest = app.smtp.wait_for("ada@example.com", 1).await.remove(0);

    let driver = Driver::start();
    let profile = std::env::temp_dir().join(format!("gazette-click-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&profile).unwrap();
    let digest_path = profile.join("digest.html");
    std::fs::write(&digest_path, digest.html()).unwrap();
    // Headless Chromium says "HeadlessChrome" in its User-Agent, which
    // Gazette takes for a scanner (sandboxes that open mail run it): this
    // one says what the same browser says with a screen.
    let agent = "--user-agent=Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
    let client = browser_with(&driver, &profile, &[agent]).await;
    let outcome = async {
        client.goto(&format!("file://{}", digest_path.display())).await.unwrap();
        assert_eq!(clicks(&app).await[0].2, 0, "opening the mail counts nothing");
        client
            .find(Locator::Css("h2 a[href*='/c/']"))
            .await
            .expect("the story's counted link")
            .click()
            .await
            .unwrap();
        // The browser follows the redirect to the story (which this
        // machine cannot reach: an error page is fine, the URL says it left).
        wait_until(
            std::time::Duration::from_secs(10),
            "the browser to leave for the story",
            || async {
                client.current_url().await.is_ok_and(|url| {
                    url.as_str().starts_with("https://example.org/") || url.as_str().starts_with("chrome-error:")
                })
            },
        )
        .await;
        assert_eq!(clicks(&app).await[0].2, 1, "one click, counted once");
    }
    .await;
    let _ = client.close().await;
    drop(driver);
    let _ = std::fs::remove_dir_all(&profile);
    outcome
}
