//! The `gazette` binary's own surface.

use crate::helpers::Backend;
use crate::helpers::gazette_command as gazette;

pub fn help_lists_every_command() -> Result<(), libtest_mimic::Failed> {
    let output = gazette().arg("--help").output()?;
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout)?;
    for command in [
        "serve",
        "worker",
        "migrate",
        "dispatch",
        "staff",
        "articles",
        "subscribers",
    ] {
        assert!(help.contains(command), "`{command}` missing from --help:\n{help}");
    }
    Ok(())
}

pub fn a_bad_config_value_stops_the_process_naming_the_key() -> Result<(), libtest_mimic::Failed> {
    for (var, value, key) in [
        ("GAZETTE_MAIL__TRANSPORT", "pigeon", "pigeon"),
        ("GAZETTE_SERVER__BASE_URL", "example.com", "example.com"),
        ("GAZETTE_DATABASE__URL", "mysql://x", "database.url"),
        ("GAZETTE_SERVER__PORT", "eighty", "port"),
    ] {
        let output = gazette().arg("migrate").env(var, value).output()?;
        assert_eq!(output.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8(output.stderr)?;
        assert!(
            stderr.contains("invalid configuration") && stderr.contains(key),
            "{var}={value}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "one clear line: {stderr}");
    }
    Ok(())
}

pub async fn migrate_applies_the_migrations_and_exits(backend: Backend) {
    let url = backend.database_url().to_owned();
    let output =
        tokio::task::spawn_blocking(move || gazette().arg("migrate").env("GAZETTE_DATABASE__URL", url).output())
            .await
            .unwrap()
            .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("migrations applied"));
    let settings = crate::helpers::test_settings(&backend, 25);
    let db = gazette::db::Db::connect(&settings.database).await.unwrap();
    let tables: i64 = gazette::with_pool!(&db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM subscribers").fetch_one(pool).await.unwrap()
    });
    assert_eq!(tables, 0);
}

/// Runs `gazette articles import ARGS…` against the test's database.
/// Imports the fixture article as published at `published`, and checks
/// that it went in.
pub async fn import_fixture(backend: &Backend, published: chrono::DateTime<chrono::Utc>) {
    let published = published.to_rfc3339();
    let imported = import(backend, &[FIXTURE, "--url", FIXTURE_URL, "--published", &published]).await;
    assert!(imported.status.success(), "{}", text(&imported.stderr));
}

pub async fn import(backend: &Backend, args: &[&str]) -> std::process::Output {
    let url = backend.database_url().to_owned();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        gazette()
            .args(["articles", "import"])
            .args(args)
            .env("GAZETTE_DATABASE__URL", url)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/article-tajikistan-multi-vector.txt"
);
pub const FIXTURE_URL: &str = "https://eurasianet.org/tajikistan-multi-vector-policy-tests-kremlin";

pub async fn the_fixture_imports_once_with_a_generated_summary(backend: Backend) {
    let first = import(
        &backend,
        &[FIXTURE, "--url", FIXTURE_URL, "--published", "2011-08-01T09:00:00Z"],
    )
    .await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stdout).contains("1 added, 0 updated, 0 unchanged, 0 rejected"),
        "{}",
        text(&first.stdout)
    );

    let again = import(
        &backend,
        &[FIXTURE, "--url", FIXTURE_URL, "--published", "2011-08-01T09:00:00Z"],
    )
    .await;
    assert!(
        text(&again.stdout).contains("0 added, 0 updated, 1 unchanged, 0 rejected"),
        "{}",
        text(&again.stdout)
    );

    let settings = crate::helpers::test_settings(&backend, 25);
    let db = gazette::db::Db::connect(&settings.database).await.unwrap();
    let (title, summary, source): (String, String, String) = gazette::with_pool!(&db, pool => {
        sqlx::query_as("SELECT title, summary, summary_source FROM articles WHERE url = $1")
            .bind(FIXTURE_URL)
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(
        title,
        "Tajikistan’s “multi-vector” foreign policy is testing the Kremlin’s patience."
    );
    assert!(summary.starts_with("Tajikistan’s “multi-vector” foreign policy is testing the Kremlin’s patience."));
    assert!(
        summary.chars().count() <= 300 && !summary.contains("Sign up"),
        "{summary}"
    );
    assert_eq!(source, "generated");
}

pub async fn a_feed_imports_its_good_entries_and_names_the_bad_one(backend: Backend) {
    let dir = std::env::temp_dir().join(format!("gazette-feed-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let feed = dir.join("feed.atom");
    std::fs::write(
        &feed,
        r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>The Test Gazette</title><id>urn:test</id><updated>2026-11-27T10:00:00Z</updated>
  <link href="https://news.example.org/"/>
  <entry><title>Floods in the north</title><id>urn:1</id><link href="/2026/floods"/>
    <updated>2026-11-26T08:00:00Z</updated><author><name>Ann Reporter</name></author>
    <summary>Thousands leave as the river rises.</summary>
    <content type="html">&lt;p&gt;The river rose overnight.&lt;/p&gt;&lt;p&gt;Towns emptied by morning.&lt;/p&gt;</content></entry>
  <entry><title>An entry without a link</title><id>urn:2</id><updated>2026-11-26T09:00:00Z</updated>
    <content type="text">Body.</content></entry>
  <entry><title>Markets calm</title><id>urn:3</id><link href="https://news.example.org/2026/markets"/>
    <updated>2026-11-27T08:00:00Z</updated><content type="text">Prices held steady. Traders waited.</content></entry>
</feed>"#,
    )
    .unwrap();
    let feed = feed.display().to_string();
    let output = import(&backend, &[&feed]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("2 added, 0 updated, 0 unchanged, 1 rejected"),
        "{}",
        text(&output.stdout)
    );
    assert!(text(&output.stderr).contains("rejected entry 2 (“An entry without a link”): it has no link"));
    let again = import(&backend, &[&feed]).await;
    assert!(
        text(&again.stdout).contains("0 added, 0 updated, 2 unchanged, 1 rejected"),
        "{}",
        text(&again.stdout)
    );

    let settings = crate::helpers::test_settings(&backend, 25);
    let db = gazette::db::Db::connect(&settings.database).await.unwrap();
    let rows: Vec<(String, Option<String>, String, String)> = gazette::with_pool!(&db, pool => {
        sqlx::query_as("SELECT url, author, summary, summary_source FROM articles ORDER BY url")
            .fetch_all(pool)
            .await
            .unwrap()
    });
    assert_eq!(
        rows,
        [
            (
                "https://news.example.org/2026/floods".to_owned(),
                Some("Ann Reporter".to_owned()),
                "Thousands leave as the river rises.".to_owned(),
                "feed".to_owned()
            ),
            (
                "https://news.example.org/2026/markets".to_owned(),
                None,
                "Prices held steady. Traders waited.".to_owned(),
                "generated".to_owned()
            ),
        ]
    );
    let _ = std::fs::remove_dir_all(dir);
}

pub async fn bad_import_arguments_get_errors_naming_them(backend: Backend) {
    let no_url = import(&backend, &[FIXTURE]).await;
    assert_eq!(no_url.status.code(), Some(1));
    assert!(text(&no_url.stderr).contains("--url"), "{}", text(&no_url.stderr));
    let bad_date = import(
        &backend,
        &[FIXTURE, "--url", FIXTURE_URL, "--published", "last Tuesday"],
    )
    .await;
    assert_eq!(bad_date.status.code(), Some(1));
    assert!(
        text(&bad_date.stderr).contains("`last Tuesday`"),
        "{}",
        text(&bad_date.stderr)
    );
    let bad_url = import(&backend, &[FIXTURE, "--url", "eurasianet.org/x"]).await;
    assert!(text(&bad_url.stderr).contains("--url"), "{}", text(&bad_url.stderr));
    let missing = import(&backend, &["/no/such/feed.xml"]).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("cannot read `/no/such/feed.xml`"));
    let dir = std::env::temp_dir().join(format!("gazette-feed-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let broken = dir.join("broken.xml");
    std::fs::write(&broken, "<rss><channel><item><title>cut off").unwrap();
    let malformed = import(&backend, &[&broken.display().to_string()]).await;
    assert_eq!(malformed.status.code(), Some(1));
    assert!(
        text(&malformed.stderr).contains("not a feed that can be read"),
        "{}",
        text(&malformed.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}

pub async fn run(backend: &Backend, args: &[&str]) -> std::process::Output {
    let url = backend.database_url().to_owned();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        gazette()
            .args(args)
            .env("GAZETTE_DATABASE__URL", url)
            .env("GAZETTE_MAIL__FROM", "The Test Gazette <news@gazette.test>")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

pub async fn dispatch_dry_run_previews_the_week_and_writes_nothing(backend: Backend) {
    let empty = run(&backend, &["dispatch", "--dry-run"]).await;
    assert!(empty.status.success(), "{}", text(&empty.stderr));
    assert!(
        text(&empty.stdout).contains("no articles published since"),
        "{}",
        text(&empty.stdout)
    );

    let ten_days_ago = (chrono::Utc::now() - chrono::Duration::days(10)).to_rfc3339();
    import_fixture(&backend, chrono::Utc::now() - chrono::Duration::days(2)).await;
    let dir = std::env::temp_dir().join(format!("gazette-old-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let old = dir.join("old.txt");
    std::fs::write(
        &old,
        "Last month's news\nSomething happened long ago. It was covered then.",
    )
    .unwrap();
    let old = old.display().to_string();
    let imported = import(
        &backend,
        &[
            &old,
            "--url",
            "https://news.example.org/old",
            "--published",
            &ten_days_ago,
        ],
    )
    .await;
    assert!(imported.status.success(), "{}", text(&imported.stderr));

    let app = crate::helpers::spawn_app(&backend).await;
    app.sign_up("Pending Reader", "pending@example.com").await;
    let counts = || async {
        (
            app.count("SELECT COUNT(*) FROM subscribers").await,
            app.count("SELECT COUNT(*) FROM outgoing_mail").await,
            app.count("SELECT COUNT(*) FROM articles").await,
        )
    };
    let before = counts().await;

    let preview = run(&backend, &["dispatch", "--dry-run"]).await;
    assert!(preview.status.success(), "{}", text(&preview.stderr));
    let out = text(&preview.stdout);
    let week = gazette::domain::IssueWeek::of(chrono::Utc::now(), chrono_tz::UTC).to_string();
    assert!(out.starts_with(&format!("{week} (dry run")), "{out}");
    // The default subject: the lead story, then the publication.
    assert!(
        out.contains(
            "Subject: Tajikistan’s “multi-vector” foreign policy is testing the Kremlin’s patience. — The Test Gazette"
        ),
        "{out}"
    );
    assert!(out.contains("Articles (1 of 1, newest first"), "{out}");
    assert!(
        out.contains("      Tajikistan’s “multi-vector” foreign policy is testing the"),
        "{out}"
    );
    assert!(!out.contains("Last month's news"), "older than a week: {out}");
    assert!(
        out.contains("Recipients: 0 confirmed subscribers"),
        "the pending reader is not one: {out}"
    );
    assert_eq!(counts().await, before, "a dry run writes nothing");

    let _ = std::fs::remove_dir_all(dir);
}

/// Runs `gazette staff ARGS…` with `stdin` as its standard input.
pub async fn staff_command(backend: &Backend, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let url = backend.database_url().to_owned();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = gazette()
            .arg("staff")
            .args(args)
            .env("GAZETTE_DATABASE__URL", url)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

async fn staff_hash(backend: &Backend, email_key: &str) -> Option<String> {
    let settings = crate::helpers::test_settings(backend, 25);
    let db = gazette::db::Db::connect(&settings.database).await.unwrap();
    gazette::with_pool!(&db, pool => {
        sqlx::query_scalar("SELECT password_hash FROM staff_users WHERE email_key = $1")
            .bind(email_key)
            .fetch_optional(pool)
            .await
            .unwrap()
    })
}

pub async fn staff_users_get_argon2id_passwords_from_stdin_and_can_change_them(backend: Backend) {
    let first = "correct horse battery";
    let added = staff_command(&backend, &["add", "Admin@Example.org"], &format!("{first}\n")).await;
    assert!(added.status.success(), "{}", text(&added.stderr));
    assert!(
        text(&added.stdout).contains("staff user Admin@example.org added"),
        "{}",
        text(&added.stdout)
    );
    let hash = staff_hash(&backend, "admin@example.org").await.expect("a staff row");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(gazette::staff::verify_password(first.into(), hash.clone()).await);

    let again = staff_command(&backend, &["add", "admin@example.org"], "another long password\n").await;
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("exists already"),
        "{}",
        text(&again.stderr)
    );

    let short = staff_command(&backend, &["passwd", "admin@example.org"], "short\n").await;
    assert_eq!(short.status.code(), Some(1));
    assert!(
        text(&short.stderr).contains("at least 12 characters"),
        "{}",
        text(&short.stderr)
    );
    assert_eq!(
        staff_hash(&backend, "admin@example.org").await.as_deref(),
        Some(hash.as_str())
    );

    let second = "a new and longer passphrase";
    let changed = staff_command(&backend, &["passwd", "admin@example.org"], &format!("{second}\n")).await;
    assert!(changed.status.success(), "{}", text(&changed.stderr));
    let new_hash = staff_hash(&backend, "admin@example.org").await.unwrap();
    assert!(gazette::staff::verify_password(second.into(), new_hash.clone()).await);
    assert!(!gazette::staff::verify_password(first.into(), new_hash).await);

    let unknown = staff_command(&backend, &["passwd", "nobody@example.org"], &format!("{second}\n")).await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown.stderr).contains("there is no staff user nobody@example.org"));
    let bad_email = staff_command(&backend, &["add", "not-an-address"], &format!("{second}\n")).await;
    assert_eq!(bad_email.status.code(), Some(1));
    assert!(
        text(&bad_email.stderr).contains("`not-an-address`"),
        "{}",
        text(&bad_email.stderr)
    );

    for output in [&added, &again, &short, &changed, &unknown, &bad_email] {
        let said = format!("{}{}", text(&output.stdout), text(&output.stderr));
        assert!(
            !said.contains("horse") && !said.contains("passphrase"),
            "a password was printed: {said}"
        );
    }
}

pub async fn serve_says_how_to_create_the_first_staff_user(backend: Backend) {
    use std::io::{BufRead, BufReader};
    let url = backend.database_url().to_owned();
    let found = tokio::task::spawn_blocking(move || {
        let mut child = gazette()
            .args(["serve", "--no-worker"])
            .env("GAZETTE_DATABASE__URL", url)
            .env("GAZETTE_SERVER__PORT", "0")
            .env("GAZETTE_METRICS__LISTEN", "127.0.0.1:0")
            .env("GAZETTE_LOG__LEVEL", "info")
            .env("NO_COLOR", "1")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let mut found = None;
        for line in stderr.lines().map_while(Result::ok).take(50) {
            if line.contains("no staff user yet") {
                found = Some(line);
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        found
    })
    .await
    .unwrap();
    let line = found.expect("a log line about the missing staff user");
    assert!(line.contains("gazette staff add"), "{line}");
}

pub async fn an_rss_feed_with_cdata_entities_relative_links_and_no_dates_imports(backend: Backend) {
    let feed = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/central-asia.rss");
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);
    let output = import(&backend, &[feed]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("2 added, 0 updated, 0 unchanged, 1 rejected"),
        "{}",
        text(&output.stdout)
    );
    assert!(text(&output.stderr).contains("rejected entry 3 (“An item that lost its link”): it has no link"));
    // The undated entry got the import time, and the report says which.
    assert!(
        text(&output.stdout).contains(", 1 rejected, 1 without a usable date (given the import time)\n"),
        "{}",
        text(&output.stdout)
    );
    assert!(
        text(&output.stderr).contains(
            "warning entry 2 (“Ташкент открывает новый рынок”): no usable date: dated with the import time, "
        ),
        "{}",
        text(&output.stderr)
    );

    let settings = crate::helpers::test_settings(&backend, 25);
    let db = gazette::db::Db::connect(&settings.database).await.unwrap();
    type Row = (
        String,
        String,
        Option<String>,
        chrono::DateTime<chrono::Utc>,
        String,
        String,
        String,
    );
    let rows: Vec<Row> = gazette::with_pool!(&db, pool => {
        sqlx::query_as("SELECT url, title, author, published_at, body, summary, summary_source FROM articles ORDER BY url")
            .fetch_all(pool)
            .await
            .unwrap()
    });
    let (url, title, author, published, body, summary, source) = &rows[0];
    assert_eq!(
        url, "https://news.example.org/2026/11/talks-stall",
        "relative link resolved"
    );
    assert_eq!(title, "Dushanbe & Moscow: talks stall", "entity decoded");
    assert_eq!(author.as_deref(), Some("Nodira Karimova"));
    assert_eq!(published.to_rfc3339(), "2026-11-26T08:30:00+00:00");
    assert!(
        body.contains("Officials in Dushanbe said “no deal” was near.") && !body.contains('<'),
        "{body}"
    );
    assert!(!body.contains("alert"), "scripts are dropped: {body}");
    assert_eq!(source, "generated", "the description is just the body's start");
    assert!(summary.starts_with("Border talks between Tajikistan and Russia stalled again on Wednesday."));

    let (url, title, _, published, _, summary, _) = &rows[1];
    assert_eq!(url, "https://news.example.org/2026/11/tashkent-market");
    assert_eq!(title, "Ташкент открывает новый рынок");
    assert!(*published >= before, "an undated entry gets the import time");
    assert_eq!(summary, "Узбекистан открыл новый рынок в Ташкенте. Торговцы довольны.");

    let again = import(&backend, &[feed]).await;
    assert!(
        text(&again.stdout).contains("0 added, 0 updated, 2 unchanged, 1 rejected"),
        "{}",
        text(&again.stdout)
    );
}

/// A one-file HTTP server: `GET /feed.rss` gets `body`, anything else 404.
pub async fn serve_feed(body: &'static [u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            let found = request.starts_with(b"GET /feed.rss ");
            let (status, payload): (&str, &[u8]) = if found {
                ("200 OK", body)
            } else {
                ("404 Not Found", b"no")
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/rss+xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                payload.len()
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(payload).await;
        }
    });
    port
}

pub async fn a_feed_imports_from_a_url(backend: Backend) {
    let port = serve_feed(include_bytes!("../fixtures/central-asia.rss")).await;
    // The test server is on this machine: an intranet feed, allowed by the setting.
    let import = |url: String| {
        let database = backend.database_url().to_owned();
        tokio::task::spawn_blocking(move || {
            gazette()
                .args(["articles", "import", &url])
                .env("GAZETTE_DATABASE__URL", database)
                .env("GAZETTE_FEEDS__ALLOW_PRIVATE_ADDRESSES", "true")
                .output()
                .unwrap()
        })
    };
    let output = import(format!("http://127.0.0.1:{port}/feed.rss")).await.unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("2 added, 0 updated, 0 unchanged, 1 rejected"),
        "{}",
        text(&output.stdout)
    );
    let missing = import(format!("http://127.0.0.1:{port}/gone.rss")).await.unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("answered HTTP status 404 Not Found"),
        "{}",
        text(&missing.stderr)
    );
    let unreachable = import("http://127.0.0.1:9/feed.rss".into()).await.unwrap();
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(
        text(&unreachable.stderr).contains("`http://127.0.0.1:9/feed.rss` cannot be reached"),
        "{}",
        text(&unreachable.stderr)
    );
}

fn json_feed(items: usize, first_titles: &[&str]) -> String {
    let items: Vec<String> = (0..items)
        .map(|i| {
            let title = first_titles
                .get(i)
                .map(|t| t.to_string())
                .unwrap_or_else(|| format!("Story number {i}"));
            format!(
                r#"{{"id": "story-{i}", "url": "https://news.example.org/stories/{i}", "title": "{title}",
                    "content_html": "<p>Story {i} happened. It mattered.</p>",
                    "date_published": "2026-11-2{}T10:00:00Z"}}"#,
                i % 7
            )
        })
        .collect();
    format!(
        r#"{{"version": "https://jsonfeed.org/version/1.1", "title": "JSON News",
            "home_page_url": "https://news.example.org/", "items": [{}]}}"#,
        items.join(",")
    )
}

pub async fn a_large_json_feed_shows_progress_and_staff_edits_survive_reimport(backend: Backend) {
    let dir = std::env::temp_dir().join(format!("gazette-json-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let feed = dir.join("feed.json");
    std::fs::write(&feed, json_feed(250, &[])).unwrap();
    let feed = feed.display().to_string();
    let first = import(&backend, &[&feed]).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stdout).contains("250 added, 0 updated, 0 unchanged, 0 rejected"),
        "{}",
        text(&first.stdout)
    );
    let progress = text(&first.stderr);
    assert!(
        progress.contains("imported 100/250 entries") && progress.contains("imported 250/250 entries"),
        "{progress}"
    );

    // Staff edit story 0; then the feed changes the titles of stories 0 and 1.
    let settings = crate::helpers::test_settings(&backend, 25);
    let db = gazette::db::Db::connect(&settings.database).await.unwrap();
    gazette::with_pool!(&db, pool => {
        sqlx::query("UPDATE articles SET title = 'Edited by staff', edited_by_staff = $1 WHERE url = $2")
            .bind(true)
            .bind("https://news.example.org/stories/0")
            .execute(pool)
            .await
            .unwrap();
    });
    std::fs::write(&feed, json_feed(250, &["Feed renames story 0", "Feed renames story 1"])).unwrap();
    let second = import(&backend, &[&feed]).await;
    assert!(
        text(&second.stdout).contains("0 added, 1 updated, 248 unchanged, 0 rejected, 1 kept as staff edited"),
        "{}",
        text(&second.stdout)
    );
    let titles: Vec<(String, String)> = gazette::with_pool!(&db, pool => {
        sqlx::query_as("SELECT url, title FROM articles WHERE url IN ($1, $2) ORDER BY url")
            .bind("https://news.example.org/stories/0")
            .bind("https://news.example.org/stories/1")
            .fetch_all(pool)
            .await
            .unwrap()
    });
    assert_eq!(titles[0].1, "Edited by staff", "a staff edit is never overwritten");
    assert_eq!(titles[1].1, "Feed renames story 1");
    let _ = std::fs::remove_dir_all(dir);
}
