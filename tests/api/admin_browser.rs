//! One end-to-end run of the staff area in a real browser: headless
//! Chromium driven over WebDriver (chromedriver) with fantoccini. It logs
//! in, adds an article, opens the preview, sends a test to the in-process
//! SMTP server, and sends the issue, watching the live progress.
//!
//! Screenshots of the dashboard (laptop and phone width) and the preview
//! are saved under
//! `$CARGO_TARGET_DIR/tmp/admin-e2e/` (cargo's CARGO_TARGET_TMPDIR).
//! Without `chromium` and `chromedriver` the test is skipped with a
//! message; with CI=true it must run.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::admin::{STAFF_EMAIL, STAFF_PASSWORD, add_confirmed_reader, add_staff};
use crate::helpers::{Backend, spawn_app, wait_until};

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

pub async fn staff_log_in_add_an_article_preview_test_and_send_in_chromium(backend: Backend) {
    let app = spawn_app(&backend).await;
    add_staff(&app, STAFF_EMAIL, STAFF_PASSWORD).await;
    add_confirmed_reader(&app, "reader@example.com", "Reader").await;
    let driver = Driver::start();
    let profile = std::env::temp_dir().join(format!("gazette-chromium-{}", uuid::Uuid::new_v4()));
    let client = browser(&driver, &profile).await;
    let outcome = async {
        // Log in.
        client.goto(&format!("{}/admin", app.address)).await.unwrap();
        wait_for_path(&client, "/admin/login").await;
        fill(&client, "email", STAFF_EMAIL).await;
        fill(&client, "password", STAFF_PASSWORD).await;
        click(&client, "main form button[type=submit]").await;
        wait_for_path(&client, "/admin").await;
        let dashboard = client.source().await.unwrap();
        assert!(
            dashboard.contains("The last 30 days") && dashboard.contains("<svg"),
            "the dashboard"
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
        let shot = save_screenshot(&client, "dashboard-phone.png").await;
        eprintln!("screenshot: {}", shot.display());
        client.set_window_size(1280, 1024).await.unwrap();

        // Add an article.
        client
            .goto(&format!("{}/admin/articles/new", app.address))
            .await
            .unwrap();
        fill(&client, "url", "https://example.org/floods").await;
        fill(&client, "title", "Floods in the north").await;
        fill(&client, "summary", "The river rose overnight and towns emptied.").await;
        click(&client, "#add-article").await;
        wait_for_path(&client, "/admin/articles").await;
        assert!(client.source().await.unwrap().contains("Article added."));

        // The preview, in its sandboxed frame.
        client.goto(&format!("{}/admin/issues", app.address)).await.unwrap();
        client.wait().for_element(Locator::Id("preview")).await.unwrap();
        client.enter_frame(0).await.unwrap();
        let start = Instant::now();
        while !client.source().await.unwrap().contains("Floods in the north") {
            assert!(start.elapsed() < Duration::from_secs(10), "the frame shows the digest");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        client.enter_parent_frame().await.unwrap();
        let shot = save_screenshot(&client, "preview.png").await;
        eprintln!("screenshot: {}", shot.display());

        // A test to the staff member's own address.
        click(&client, "#send-test").await;
        wait_for_path(&client, "/admin/issues").await;
        let test = app.smtp.wait_for(STAFF_EMAIL, 1).await;
        assert!(test[0].parsed().subject().unwrap().starts_with("[Test] "));

        // Send the issue, through the confirmation step, and watch it finish
        // (the page's script updates the state without a reload).
        click(&client, "#send-now").await;
        wait_for_path(&client, "/admin/issues/send").await;
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
        assert_eq!(sent, "1");
    }
    .await;
    let _ = client.close().await;
    drop(driver);
    let _ = std::fs::remove_dir_all(&profile);
    outcome
}
