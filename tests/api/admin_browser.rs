//! One end-to-end run of the staff area in a real browser: headless
//! Chromium driven over WebDriver (chromedriver) with fantoccini. It logs
//! in, adds an article, opens the preview, sends a test to the in-process
//! SMTP server, and sends the issue, watching the live progress; then it
//! opens the readers, the mail that came back and the account. Every staff
//! page it meets is checked with axe-core (WCAG 2.1 A and AA, as the
//! reader's pages are in `reader_browser`: no violation), starts with the
//! skip link and marks its section in the navigation; on a phone's width
//! the tables are stacked rows and the navigation's targets are 44 px.
//!
//! Screenshots of the dashboard (laptop and phone width), the preview, and
//! the issues and subscribers pages at 375 px are saved under
//! `$CARGO_TARGET_DIR/tmp/admin-e2e/` (cargo's CARGO_TARGET_TMPDIR).
//! Without `chromium`, `chromedriver` or axe-core the test is skipped with
//! a message; with CI=true it must run.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};

use crate::admin::{STAFF_EMAIL, STAFF_PASSWORD, add_confirmed_reader, add_staff};
use crate::helpers::{Backend, spawn_app, wait_until};
use crate::reader_browser::{accessible, axe_file, wait_for_text};

const CHROMIUM: &str = "/usr/bin/chromium";

fn find_program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|path| path.is_file())
}

/// Why the browser test cannot run here, if it cannot.
pub fn missing_browser() -> Option<String> {
    if !PathBuf::from(CHROMIUM).is_file() {
        return Some(format!(
            "{CHROMIUM} is not installed (apt-get install chromium chromium-driver)"
        ));
    }
    if find_program("chromedriver").is_none() {
        return Some("chromedriver is not on PATH (apt-get install chromium-driver)".into());
    }
    None
}

pub fn artifacts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("admin-e2e")
}

/// chromedriver on a free port, stopped when dropped.
pub struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(15), "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    browser_with(driver, profile, &[]).await
}

/// A Chromium session with `extra` command-line arguments (such as
/// `--blink-settings=preferredColorScheme=0` for a dark colour scheme).
pub async fn browser_with(driver: &Driver, profile: &std::path::Path, extra: &[&str]) -> Client {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1024",
    ]
    .map(String::from)
    .into_iter()
    .chain([format!("--user-data-dir={}", profile.display())])
    .chain(extra.iter().map(|a| a.to_string()))
    .collect::<Vec<_>>();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "binary": CHROMIUM, "args": args }),
    );
    // fantoccini's TLS stack needs a process-wide provider; chromedriver
    // itself is plain HTTP on localhost.
    let _ = rustls::crypto::ring::default_provider().install_default();
    ClientBuilder::rustls()
        .expect("TLS roots for the WebDriver client")
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session")
}

pub async fn fill(client: &Client, id: &str, text: &str) {
    let field = client
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"));
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

pub async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

pub async fn wait_for_path(client: &Client, path: &str) {
    let start = Instant::now();
    loop {
        let url = client.current_url().await.unwrap();
        if url.path() == path {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "still on {url}, not {path}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn save_screenshot(client: &Client, name: &str) -> PathBuf {
    let png = client.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG image");
    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, png).unwrap();
    path
}

/// The skip link is the page's first stop for the keyboard, and the
/// navigation marks `section` (none on the login page) as the current one.
async fn check_frame(client: &Client, section: Option<&str>, page: &str) {
    let first = client
        .execute(
            "const stops = [...document.querySelectorAll('a[href], button, input, select, textarea, iframe, [tabindex]')]
               .filter(e => e.tabIndex >= 0 && !e.disabled && e.type !== 'hidden');
             return stops.length ? stops[0].outerHTML : '';",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        first
            .as_str()
            .is_some_and(|html| html.starts_with(r##"<a class="skip" href="#content">Skip to content</a>"##)),
        "{page}: the first stop is {first}"
    );
    let current = client
        .execute(
            "return [...document.querySelectorAll('nav [aria-current=page]')].map(e => e.getAttribute('href'));",
            vec![],
        )
        .await
        .unwrap();
    let current: Vec<String> = serde_json::from_value(current).unwrap();
    assert_eq!(
        current,
        section.into_iter().map(str::to_owned).collect::<Vec<_>>(),
        "{page}"
    );
}

/// Opens `path` of the staff area, then checks its frame and runs axe-core
/// on it.
async fn visit(client: &Client, axe: &str, base: &str, path: &str, section: Option<&str>) {
    client.goto(&format!("{base}{path}")).await.unwrap();
    wait_for_path(client, path.split('?').next().unwrap()).await;
    check_frame(client, section, path).await;
    accessible(client, axe, path).await;
}

async fn press(client: &Client, key: Key) {
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key.into() })
        .then(KeyAction::Up { value: key.into() });
    client.perform_actions(keys).await.unwrap();
}

/// The `id` and `class` of the element that has the keyboard's focus.
async fn focused(client: &Client) -> (String, String) {
    let element = client.active_element().await.unwrap();
    (
        element.attr("id").await.unwrap().unwrap_or_default(),
        element.attr("class").await.unwrap().unwrap_or_default(),
    )
}

/// Below 600 px the table `css` is stacked: its header row is out of
/// sight, each cell is a line of its own that starts with its column's
/// name, and the `State`/`Status` column is inside the window.
async fn assert_stacked(client: &Client, css: &str, state_label: &str) {
    let found = client
        .execute(
            "const [css, label] = arguments;
             const table = document.querySelector(css);
             const cell = table.querySelector(`td[data-label='${label}']`);
             const box = cell.getBoundingClientRect();
             return {
               cell: getComputedStyle(cell).display,
               before: getComputedStyle(cell, '::before').content,
               header: table.querySelector('thead').getBoundingClientRect().height,
               inside: box.left >= 0 && box.right <= window.innerWidth && box.width > 0,
               overflow: document.documentElement.scrollWidth - window.innerWidth,
             };",
            vec![css.into(), state_label.into()],
        )
        .await
        .unwrap();
    assert_eq!(found["cell"], "block", "{css}: {found}");
    assert_eq!(found["before"], format!("\"{state_label}\""), "{css}: {found}");
    assert!(found["header"].as_f64().is_some_and(|h| h <= 1.0), "{css}: {found}");
    assert_eq!(found["inside"], true, "{css}: {found}");
    assert!(found["overflow"].as_i64().is_some_and(|px| px <= 0), "{css}: {found}");
}

pub async fn staff_log_in_add_an_article_preview_test_and_send_in_chromium(backend: Backend) {
    let axe = std::fs::read_to_string(axe_file()).expect("axe-core is readable");
    let app = spawn_app(&backend).await;
    add_staff(&app, STAFF_EMAIL, STAFF_PASSWORD).await;
    add_confirmed_reader(&app, "reader@example.com", "Reader").await;
    add_confirmed_reader(&app, "ada.lovelace@example.com", "Ada Lovelace").await;
    let driver = Driver::start();
    let profile = std::env::temp_dir().join(format!("gazette-chromium-{}", uuid::Uuid::new_v4()));
    let client = browser(&driver, &profile).await;
    let base = app.address.as_str();
    let outcome = async {
        // Log in, after a mistake: the message belongs to both fields, and
        // the password, to type again, has the focus.
        client.goto(&format!("{base}/admin")).await.unwrap();
        wait_for_path(&client, "/admin/login").await;
        check_frame(&client, None, "/admin/login").await;
        accessible(&client, &axe, "/admin/login").await;
        fill(&client, "email", STAFF_EMAIL).await;
        fill(&client, "password", "not the password at all").await;
        click(&client, "main form button[type=submit]").await;
        wait_for_text(&client, "login-error").await;
        for field in ["email", "password"] {
            let input = client.find(Locator::Id(field)).await.unwrap();
            assert_eq!(input.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
            assert_eq!(
                input.attr("aria-describedby").await.unwrap().as_deref(),
                Some("login-error")
            );
        }
        assert_eq!(focused(&client).await.0, "password");
        accessible(&client, &axe, "/admin/login with an error").await;
        fill(&client, "password", STAFF_PASSWORD).await;
        click(&client, "main form button[type=submit]").await;
        wait_for_path(&client, "/admin").await;
        let dashboard = client.source().await.unwrap();
        assert!(
            dashboard.contains("The last 30 days") && dashboard.contains("<svg"),
            "the dashboard"
        );
        check_frame(&client, Some("/admin"), "/admin").await;
        accessible(&client, &axe, "/admin").await;
        // The keyboard's first stop skips to the page's content.
        press(&client, Key::Tab).await;
        assert_eq!(focused(&client).await.1, "skip");
        press(&client, Key::Enter).await;
        assert_eq!(
            focused(&client).await.0,
            "content",
            "the focus is on the page's content"
        );
        let shot = save_screenshot(&client, "dashboard.png").await;
        eprintln!("screenshot: {}", shot.display());
        // On a phone-sized window the page fits its width (no sideways
        // scrolling).
        client.set_window_size(390, 844).await.unwrap();
        let overflow = client
            .execute(
                "return document.documentElement.scrollWidth - window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            overflow.as_i64().is_some_and(|px| px <= 0),
            "{overflow} px too wide on a phone"
        );
        // Its navigation's targets are big enough for a finger.
        let small = client
            .execute(
                "return [...document.querySelectorAll('.adminbar nav a, .adminbar nav button')]
                   .map(e => e.getBoundingClientRect())
                   .filter(r => r.height < 44 || r.width < 44).length;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(small, 0, "navigation targets under 44 px on a phone");
        let shot = save_screenshot(&client, "dashboard-phone.png").await;
        eprintln!("screenshot: {}", shot.display());
        client.set_window_size(1280, 1024).await.unwrap();

        // Add an article.
        visit(&client, &axe, base, "/admin/articles/new", Some("/admin/articles")).await;
        fill(&client, "url", "https://example.org/floods").await;
        fill(&client, "title", "Floods in the north").await;
        fill(&client, "summary", "The river rose overnight and towns emptied.").await;
        click(&client, "#add-article").await;
        wait_for_path(&client, "/admin/articles").await;
        assert!(client.source().await.unwrap().contains("Article added."));
        check_frame(&client, Some("/admin/articles"), "/admin/articles").await;
        accessible(&client, &axe, "/admin/articles").await;
        click(&client, "table a[href^='/admin/articles/']").await;
        wait_for_text(&client, "<h1>Edit article</h1>").await;
        let edit = client.current_url().await.unwrap().path().to_owned();
        check_frame(&client, Some("/admin/articles"), &edit).await;
        accessible(&client, &axe, "an article's edit page").await;
        // The summary's counter follows the typing (the server wrote 43).
        wait_for_text(&client, r#"<span data-field="count">43</span> of 300 characters"#).await;
        client
            .find(Locator::Id("summary"))
            .await
            .unwrap()
            .send_keys(" Again.")
            .await
            .unwrap();
        wait_for_text(&client, r#"<span data-field="count">50</span> of 300 characters"#).await;
        // Deleting asks first, on a page of its own; "No" leads back.
        click(&client, "button.danger").await;
        wait_for_text(&client, "<h1>Delete this article?</h1>").await;
        check_frame(&client, Some("/admin/articles"), &format!("{edit}/delete")).await;
        accessible(&client, &axe, "the confirmation page of a delete").await;
        click(&client, "main a[href^='/admin/articles/']").await;
        wait_for_path(&client, &edit).await;
        // The sources page (`web::admin::sources`, another piece's file)
        // does not name its section yet: its entry is not marked.
        visit(&client, &axe, base, "/admin/sources", Some("/admin/sources")).await;

        // The editor's desk: a second story comes first (newest); "Make
        // lead" on the first one (a plain form's button) puts it back on
        // top; the issue's note is saved; "Send at" is set and taken off.
        visit(&client, &axe, base, "/admin/articles/new", Some("/admin/articles")).await;
        fill(&client, "url", "https://example.org/bridge").await;
        fill(&client, "title", "Bridge reopens").await;
        fill(&client, "summary", "Two years of detours end this week.").await;
        click(&client, "#add-article").await;
        wait_for_path(&client, "/admin/articles").await;
        visit(&client, &axe, base, "/admin/issues", Some("/admin/issues")).await;
        let order = || async {
            client
                .execute(
                    "return [...document.querySelectorAll('ol.draft > li')].map(li => li.querySelector('a').textContent);",
                    vec![],
                )
                .await
                .unwrap()
        };
        assert_eq!(order().await, serde_json::json!(["Bridge reopens", "Floods in the north"]));
        click(&client, "ol.draft > li:nth-child(2) button[value='lead']").await;
        wait_for_text(&client, "“Floods in the north” is now the lead story.").await;
        assert_eq!(order().await, serde_json::json!(["Floods in the north", "Bridge reopens"]));
        accessible(&client, &axe, "/admin/issues after a move").await;
        fill(&client, "note", "A *quiet* week, mostly.").await;
        click(&client, "#save-shape").await;
        wait_for_text(&client, "issue are saved.").await;
        let soon = chrono::Utc::now() + chrono::Duration::minutes(20);
        if gazette::domain::IssueWeek::of(soon, chrono_tz::UTC) == gazette::domain::IssueWeek::of(chrono::Utc::now(), chrono_tz::UTC) {
            client
                .execute(
                    "document.getElementById('send-at').value = arguments[0];",
                    vec![serde_json::json!(soon.format("%Y-%m-%dT%H:%M").to_string())],
                )
                .await
                .unwrap();
            click(&client, "#schedule").await;
            wait_for_text(&client, r#"<p id="scheduled">Scheduled to go out on"#).await;
            accessible(&client, &axe, "/admin/issues, scheduled").await;
            click(&client, "#unschedule").await;
            wait_for_text(&client, "is no longer scheduled").await;
        }

        // The preview, in its sandboxed frame; the draft's story leads to
        // its edit page; the text part can be reached by the keyboard.
        visit(&client, &axe, base, "/admin/issues", Some("/admin/issues")).await;
        client.wait().for_element(Locator::Id("preview")).await.unwrap();
        let story = client.find(Locator::Css("ol.draft li a")).await.unwrap();
        assert_eq!(story.attr("href").await.unwrap().as_deref(), Some(edit.as_str()));
        let text_part = client.find(Locator::Css("pre.textpart")).await.unwrap();
        assert_eq!(text_part.attr("tabindex").await.unwrap().as_deref(), Some("0"));
        client.enter_frame(0).await.unwrap();
        let start = Instant::now();
        while !client.source().await.unwrap().contains("Floods in the north") {
            assert!(start.elapsed() < Duration::from_secs(10), "the frame shows the digest");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        client.enter_parent_frame().await.unwrap();
        let shot = save_screenshot(&client, "preview.png").await;
        eprintln!("screenshot: {}", shot.display());
        // On a phone the preview fits the screen.
        client.set_window_size(375, 812).await.unwrap();
        let preview = client
            .execute(
                "const box = document.getElementById('preview').getBoundingClientRect();
                 return box.width > 0 && box.left >= 0 && box.right <= window.innerWidth
                   && box.height <= window.innerHeight
                   && document.documentElement.scrollWidth <= window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(preview, true, "the preview fits the screen");
        client
            .execute("document.getElementById('preview').scrollIntoView();", vec![])
            .await
            .unwrap();
        let shot = save_screenshot(&client, "preview-375.png").await;
        eprintln!("screenshot: {}", shot.display());
        client.set_window_size(1280, 1024).await.unwrap();

        // A test to the staff member's own address.
        click(&client, "#send-test").await;
        wait_for_path(&client, "/admin/issues").await;
        let test = app.smtp.wait_for(STAFF_EMAIL, 1).await;
        assert!(test[0].parsed().subject().unwrap().starts_with("[Test] "));

        // Send the issue, through the confirmation step, and watch it finish
        // (the page's script updates the state without a reload).
        click(&client, "#send-now").await;
        wait_for_path(&client, "/admin/issues/send").await;
        check_frame(&client, Some("/admin/issues"), "/admin/issues/send").await;
        accessible(&client, &axe, "/admin/issues/send").await;
        click(&client, "#confirm-send").await;
        let start = Instant::now();
        while !client
            .current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/admin/issues/20")
        {
            assert!(start.elapsed() < Duration::from_secs(10), "the progress page opens");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let issue = client.current_url().await.unwrap().path().to_owned();
        check_frame(&client, Some("/admin/issues"), &issue).await;
        accessible(&client, &axe, "an issue's progress").await;
        app.smtp.wait_for("reader@example.com", 1).await;
        wait_until(Duration::from_secs(15), "the live progress to say sent", || async {
            match client.find(Locator::Css("[data-field=state]")).await {
                Ok(state) => state.text().await.is_ok_and(|t| t == "sent"),
                Err(_) => false,
            }
        })
        .await;
        let sent = client
            .find(Locator::Css("[data-field=sent]"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(sent, "2");
        // Nothing is left to pause or cancel: no such button is shown.
        let shown = client
            .execute(
                "return [...document.querySelectorAll('#controls button')].filter(b => b.offsetParent !== null)
                   .map(b => b.textContent);",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(shown, serde_json::json!([]), "controls once the issue is sent");
        accessible(&client, &axe, "a sent issue's progress").await;

        // The readers, one of them, the mail that came back, the account.
        visit(&client, &axe, base, "/admin/subscribers", Some("/admin/subscribers")).await;
        click(&client, "#subscribers a[href^='/admin/subscribers/']").await;
        wait_for_text(&client, "Consent record").await;
        let reader = client.current_url().await.unwrap().path().to_owned();
        check_frame(&client, Some("/admin/subscribers"), &reader).await;
        accessible(&client, &axe, "a subscriber's page").await;
        visit(&client, &axe, base, "/admin/inbound", Some("/admin/inbound")).await;
        // The API tokens: one made (its page shows it once) and listed.
        visit(&client, &axe, base, "/admin/api-tokens", Some("/admin/api-tokens")).await;
        fill(&client, "name", "Our CMS").await;
        click(&client, "#make-token").await;
        wait_for_text(&client, "API token made").await;
        check_frame(&client, Some("/admin/api-tokens"), "a token just made").await;
        accessible(&client, &axe, "a token just made").await;
        visit(&client, &axe, base, "/admin/api-tokens", Some("/admin/api-tokens")).await;
        visit(&client, &axe, base, "/admin/account", Some("/admin/account")).await;

        // On a phone (375 px): tables are stacked rows, each cell named by
        // its column, so the state columns are in sight.
        client.set_window_size(375, 812).await.unwrap();
        visit(&client, &axe, base, "/admin/issues", Some("/admin/issues")).await;
        assert_stacked(&client, "table.stack", "State").await;
        let shot = save_screenshot(&client, "issues-375.png").await;
        eprintln!("screenshot: {}", shot.display());
        visit(&client, &axe, base, "/admin/subscribers", Some("/admin/subscribers")).await;
        assert_stacked(&client, "#subscribers", "Status").await;
        client
            .execute("document.getElementById('subscribers').scrollIntoView();", vec![])
            .await
            .unwrap();
        let shot = save_screenshot(&client, "subscribers-375.png").await;
        eprintln!("screenshot: {}", shot.display());

        // Articles ticked in the list and deleted, after the confirmation
        // page; "Recently deleted" holds them, stacked on a phone too.
        client.set_window_size(1280, 1024).await.unwrap();
        visit(&client, &axe, base, "/admin/articles", Some("/admin/articles")).await;
        click(&client, "#articles input[type=checkbox][name=id]").await;
        click(&client, "button[name=action][value=delete]").await;
        wait_for_text(&client, "<h1>Delete this article?</h1>").await;
        check_frame(&client, Some("/admin/articles"), "/admin/articles/delete").await;
        accessible(&client, &axe, "the confirmation page of a bulk delete").await;
        click(&client, "#confirm").await;
        wait_for_path(&client, "/admin/articles").await;
        wait_for_text(&client, "1 article is deleted.").await;
        visit(&client, &axe, base, "/admin/articles/deleted", Some("/admin/articles")).await;
        // The first ticked in the list, newest first.
        assert!(client.source().await.unwrap().contains("Bridge reopens"));
        client.set_window_size(375, 812).await.unwrap();
        visit(&client, &axe, base, "/admin/articles/deleted", Some("/admin/articles")).await;
        assert_stacked(&client, "#deleted", "Removed for good").await;
    }
    .await;
    let _ = client.close().await;
    drop(driver);
    let _ = std::fs::remove_dir_all(&profile);
    outcome
}
