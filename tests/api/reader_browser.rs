//! The reader's side in a real browser (issue 16): headless Chromium over
//! WebDriver signs up on the Russian pages, confirms from the email,
//! reads the privacy notice, the archive and the issue on the web, and
//! opens the unsubscribe page. Every public page it meets is checked with
//! axe-core (Deque's accessibility engine, injected through the WebDriver
//! session) against WCAG 2.1 A and AA: no violation. The issue's page on
//! the site and a reader's copy of the digest as it arrived over SMTP are
//! photographed at 600 and 375 px, light and dark, next to the staff
//! area's screenshots (`$CARGO_TARGET_DIR/tmp/admin-e2e/`).
//!
//! A second walk follows a Russian reader from the signup to their
//! preferences page (from the welcome email): a pause of two weeks, the
//! resume, and unsubscribing; each page is checked and photographed
//! (`reader-ru-*.png`, in the same folder).
//!
//! axe-core comes from npm (`.ci/run` fetches it); its file is
//! `$GAZETTE_AXE_JS`, by default `/var/tmp/gazette-axe/axe.min.js`.
//! Without it, or without Chromium, the test is skipped with the reason;
//! with CI=true it must run.

use std::path::PathBuf;

use fantoccini::{Client, Locator};

use crate::admin::add_confirmed_readers;
use crate::admin_browser::{Driver, browser_with, click, fill, missing_browser, save_screenshot, wait_for_path};
use crate::cli::{import_fixture, run, text};
use crate::helpers::{BASE_URL, Backend, spawn_app, spawn_app_with};

pub fn axe_file() -> PathBuf {
    std::env::var_os("GAZETTE_AXE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/gazette-axe/axe.min.js"))
}

/// Why a browser test with axe-core (this one, the staff area's) cannot
/// run here, if it cannot.
pub fn missing() -> Option<String> {
    missing_browser().or_else(|| {
        (!axe_file().is_file()).then(|| {
            format!(
                "axe-core is not at {} (npm pack axe-core, then extract package/axe.min.js; or set GAZETTE_AXE_JS)",
                axe_file().display()
            )
        })
    })
}

/// axe-core's WCAG 2.1 A and AA violations on the page `client` shows, one
/// line each: the rule, what it asks, and the elements at fault.
pub async fn violations(client: &Client, axe: &str) -> Vec<String> {
    client.execute(axe, vec![]).await.expect("axe-core loads into the page");
    let found = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
               .then(r => done(r.violations.map(v => v.id + ': ' + v.help + ' at '
                   + v.nodes.map(n => n.target.join(' ')).join(', '))))
               .catch(e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await
        .expect("axe-core runs");
    serde_json::from_value(found).expect("a list of violations")
}

pub async fn accessible(client: &Client, axe: &str, page: &str) {
    let found = violations(client, axe).await;
    assert!(found.is_empty(), "{page}: {found:#?}");
}

/// Waits for the page the browser is loading to say `text` (a click on a
/// form's button returns before the answer arrives).
pub async fn wait_for_text(client: &Client, text: &str) {
    let start = std::time::Instant::now();
    while !client.source().await.unwrap().contains(text) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "no {text:?} in {}",
            client.source().await.unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn html_lang(client: &Client) -> String {
    client
        .find(Locator::Css("html"))
        .await
        .unwrap()
        .attr("lang")
        .await
        .unwrap()
        .unwrap_or_default()
}

pub async fn a_reader_signs_up_in_russian_and_every_public_page_passes_axe_in_chromium(backend: Backend) {
    let axe = std::fs::read_to_string(axe_file()).expect("axe-core is readable");
    let app = spawn_app(&backend).await;
    // An issue in the archive, for the front page's link and the web version.
    add_confirmed_readers(&app, &[("ada@example.com".into(), "Ada".into())]).await;
    import_fixture(&backend, chrono::Utc::now() - chrono::Duration::days(1)).await;
    let dispatched = run(&backend, &["dispatch"]).await;
    assert!(dispatched.status.success(), "{}", text(&dispatched.stderr));
    let week: String = gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT week FROM issues").fetch_one(pool).await.unwrap()
    });

    let driver = Driver::start();
    let profile = std::env::temp_dir().join(format!("gazette-reader-{}", uuid::Uuid::new_v4().simple()));
    // Ada's copy of the issue, as a file the browser opens.
    let digest = app.smtp.wait_for("ada@example.com", 1).await.remove(0);
    std::fs::create_dir_all(&profile).unwrap();
    let digest_path = profile.join("digest.html");
    std::fs::write(&digest_path, digest.html()).unwrap();
    let digest_file = format!("file://{}", digest_path.display());
    let client = browser_with(&driver, &profile, &[]).await;
    let outcome = async {
        let url = |path: &str| format!("{}{path}", app.address);

        // The front page in English, then in Russian through the switch.
        client.goto(&url("/")).await.unwrap();
        assert_eq!(html_lang(&client).await, "en");
        accessible(&client, &axe, "/ (en)").await;
        // The check can fail: an image without a text alternative is one.
        client
            .execute(
                "document.querySelector('main').appendChild(document.createElement('img'));",
                vec![],
            )
            .await
            .unwrap();
        let found = violations(&client, &axe).await;
        assert!(found.iter().any(|v| v.starts_with("image-alt:")), "{found:#?}");
        client.goto(&url("/")).await.unwrap();
        click(&client, r#"a[hreflang="ru"]"#).await;
        wait_for_text(&client, r#"<html lang="ru">"#).await;
        accessible(&client, &axe, "/ (ru)").await;

        // A mistake first: the field is marked and has the focus.
        fill(&client, "email", "aigerim@localhost").await;
        click(&client, "form button[type=submit]").await;
        wait_for_path(&client, "/subscriptions").await;
        wait_for_text(&client, "aria-invalid").await;
        let focused = client.active_element().await.unwrap().attr("id").await.unwrap();
        assert_eq!(focused.as_deref(), Some("email"), "the focus is on the field at fault");
        accessible(&client, &axe, "the form with an error (ru)").await;
        fill(&client, "name", "Айгерим").await;
        fill(&client, "email", "aigerim@example.com").await;
        click(&client, "form button[type=submit]").await;
        wait_for_text(&client, "Проверьте почту").await;
        accessible(&client, &axe, "check your inbox (ru)").await;

        // The confirmation email is Russian; its link's page follows the
        // browser's remembered choice.
        let mail = app.smtp.wait_for("aigerim@example.com", 1).await.remove(0);
        assert_eq!(
            mail.parsed().subject(),
            Some("Подтвердите подписку на The Test Gazette")
        );
        let link = mail.confirmation_link();
        client
            .goto(&url(link.strip_prefix(BASE_URL).expect("a link to the site")))
            .await
            .unwrap();
        assert_eq!(html_lang(&client).await, "ru");
        accessible(&client, &axe, "confirm (ru)").await;
        click(&client, "form button[type=submit]").await;
        wait_for_text(&client, "Вы подписаны").await;
        accessible(&client, &axe, "confirmed (ru)").await;

        for path in ["/privacy", "/archive", "/no-such-page"] {
            client.goto(&url(path)).await.unwrap();
            accessible(&client, &axe, path).await;
        }
        let token = app.unsubscribe_token("aigerim@example.com").await;
        client.goto(&url(&format!("/unsubscribe?token={token}"))).await.unwrap();
        accessible(&client, &axe, "unsubscribe (ru)").await;

        // The issue on the web: inside the site's layout, with its way
        // back to the archive and the call to subscribe.
        let issue = url(&format!("/archive/{week}"));
        client.goto(&issue).await.unwrap();
        accessible(&client, &axe, "the issue on the web").await;
        for wanted in [
            r#"<header class="site">"#,
            r#"<aside class="cta""#,
            r#"<a href="/archive">"#,
        ] {
            wait_for_text(&client, wanted).await;
        }
        for (width, height) in [(600, 1100), (375, 900)] {
            client.set_window_size(width, height).await.unwrap();
            client.goto(&issue).await.unwrap();
            let shot = save_screenshot(&client, &format!("archive-issue-{width}-light.png")).await;
            eprintln!("screenshot: {}", shot.display());
            // The digest as Ada's mail program gets it, her links and all.
            client.goto(&digest_file).await.unwrap();
            let shot = save_screenshot(&client, &format!("digest-{width}-light.png")).await;
            eprintln!("screenshot: {}", shot.display());
        }
    }
    .await;
    let _ = client.close().await;

    // The same pages in a browser that prefers a dark colour scheme: their
    // own dark styles apply.
    let dark = browser_with(&driver, &profile, &["--blink-settings=preferredColorScheme=0"]).await;
    let issue = format!("{}/archive/{week}", app.address);
    for (width, height) in [(600, 1100), (375, 900)] {
        dark.set_window_size(width, height).await.unwrap();
        for (page, name) in [(&issue, "archive-issue"), (&digest_file, "digest")] {
            dark.goto(page).await.unwrap();
            let background = dark
                .execute("return getComputedStyle(document.body).backgroundColor;", vec![])
                .await
                .unwrap();
            assert_eq!(
                background,
                serde_json::json!("rgb(22, 22, 22)"),
                "{name} dark at {width} px"
            );
            let shot = save_screenshot(&dark, &format!("{name}-{width}-dark.png")).await;
            eprintln!("screenshot: {}", shot.display());
        }
    }
    let _ = dark.close().await;
    drop(driver);
    let _ = std::fs::remove_dir_all(&profile);
    outcome
}

/// Waits for the page to say `russian`, then checks that it is a Russian
/// page with no axe-core violation, and photographs it as
/// `reader-ru-{name}.png`.
async fn russian_page(client: &Client, axe: &str, name: &str, russian: &str) {
    wait_for_text(client, russian).await;
    assert_eq!(html_lang(client).await, "ru", "{name}");
    accessible(client, axe, name).await;
    let shot = save_screenshot(client, &format!("reader-ru-{name}.png")).await;
    eprintln!("screenshot: {}", shot.display());
}

/// The reader's pause, as stored.
async fn paused_until(app: &crate::helpers::TestApp) -> Option<chrono::DateTime<chrono::Utc>> {
    gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT paused_until FROM subscribers WHERE email_key = 'aigerim@example.com'")
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

pub async fn a_russian_reader_pauses_resumes_and_leaves_on_their_preferences_page_in_chromium(backend: Backend) {
    let axe = std::fs::read_to_string(axe_file()).expect("axe-core is readable");
    let app = spawn_app_with(&backend, |settings| settings.signup.welcome = true).await;
    let driver = Driver::start();
    let profile = std::env::temp_dir().join(format!("gazette-reader-ru-{}", uuid::Uuid::new_v4().simple()));
    let client = browser_with(&driver, &profile, &[]).await;
    let outcome = async {
        let url = |path: &str| format!("{}{path}", app.address);
        let site = |link: &str| url(link.strip_prefix(BASE_URL).expect("a link to the site"));

        client.goto(&url("/?lang=ru")).await.unwrap();
        russian_page(&client, &axe, "signup", "Подписаться").await;
        fill(&client, "name", "Айгерим").await;
        fill(&client, "email", "aigerim@example.com").await;
        click(&client, "form button[type=submit]").await;
        russian_page(&client, &axe, "check-inbox", "Проверьте почту").await;

        let confirmation = app.smtp.wait_for("aigerim@example.com", 1).await.remove(0);
        client.goto(&site(&confirmation.confirmation_link())).await.unwrap();
        russian_page(&client, &axe, "confirm", "Подтвердите подписку").await;
        click(&client, "form button[type=submit]").await;
        russian_page(&client, &axe, "confirmed", "Вы подписаны").await;

        // The preferences page, from the link in the welcome email.
        let welcome = app.smtp.wait_for("aigerim@example.com", 2).await.remove(1);
        assert_eq!(welcome.parsed().subject(), Some("Добро пожаловать в The Test Gazette"));
        let text = welcome.text();
        let start = text
            .find(&format!("{BASE_URL}/preferences?token="))
            .expect("the preferences link in the welcome email");
        let link: String = text[start..].chars().take_while(|c| !c.is_whitespace()).collect();
        client.goto(&site(&link)).await.unwrap();
        russian_page(&client, &axe, "preferences", "Ваши настройки").await;

        // Two weeks' pause: the page says until when, and so does the row.
        client
            .find(Locator::Css("select#weeks"))
            .await
            .unwrap()
            .select_by_value("2")
            .await
            .unwrap();
        click(&client, "form:has(input[name=action][value=pause]) button[type=submit]").await;
        russian_page(&client, &axe, "paused", "Дайджест приостановлен до").await;
        let until = paused_until(&app).await.expect("paused");
        let weeks = until - chrono::Utc::now();
        assert!(
            weeks > chrono::Duration::days(13) && weeks <= chrono::Duration::days(14),
            "paused for {weeks}"
        );

        click(
            &client,
            "form:has(input[name=action][value=resume]) button[type=submit]",
        )
        .await;
        russian_page(&client, &axe, "resumed", "Уезжаете?").await;
        assert!(!client.source().await.unwrap().contains("Дайджест приостановлен до"));
        assert!(paused_until(&app).await.is_none(), "resumed");

        click(
            &client,
            "form:has(input[name=action][value=unsubscribe]) button[type=submit]",
        )
        .await;
        russian_page(&client, &axe, "unsubscribed", "Вы отписались").await;
        assert_eq!(
            app.subscriber_status("aigerim@example.com").await.as_deref(),
            Some("unsubscribed")
        );
    }
    .await;
    let _ = client.close().await;
    drop(driver);
    let _ = std::fs::remove_dir_all(&profile);
    outcome
}
