//! The signup form cannot be turned against strangers: the confirmation
//! email repeats nothing the form's sender typed, confirmation emails are
//! capped per hour across processes, and addresses that reach no mailbox
//! (special-use domains) are refused with a reason.

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;

use crate::cli::{run, text};
use crate::helpers::ServeProcess;
use crate::helpers::{Backend, Received, TestApp, spawn_app, spawn_app_with, wait_until};

/// A CSV file in a fresh directory (removed by the caller).
fn csv_file(contents: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("gazette-trust-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("readers.csv");
    std::fs::write(&file, contents).unwrap();
    (dir, file)
}

/// The header block of a received message, unfolded, lowercased.
fn header_block(mail: &Received) -> String {
    let raw = String::from_utf8_lossy(&mail.raw).replace("\r\n", "\n");
    let end = raw.find("\n\n").expect("a header block");
    raw[..end].replace("\n ", " ").replace("\n\t", " ").to_lowercase()
}

/// Asserts that none of `words` (lowercase) appears in the message's
/// headers or in either decoded part, and that `To:` is the bare address.
fn assert_carries_none_of(mail: &Received, address: &str, words: &[&str]) {
    let parsed = mail.parsed();
    let to = parsed.to().unwrap().first().unwrap();
    assert_eq!((to.name(), to.address()), (None, Some(address)));
    let (headers, text, html) = (
        header_block(mail),
        mail.text().to_lowercase(),
        mail.html().to_lowercase(),
    );
    for word in words {
        assert!(!headers.contains(word), "{word:?} in the headers:\n{headers}");
        assert!(!text.contains(word), "{word:?} in the text part:\n{text}");
        assert!(!html.contains(word), "{word:?} in the HTML part:\n{html}");
    }
}

async fn stored_name(app: &TestApp, email_key: &str) -> String {
    gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT name FROM subscribers WHERE email_key = $1")
            .bind(email_key)
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

pub async fn the_confirmation_email_repeats_nothing_the_form_said(backend: Backend) {
    let app = spawn_app(&backend).await;
    let prize = "Claim your prize at evil.example";
    let prize_words = ["claim", "prize", "evil"];

    // A signup, and a re-send to the same pending address with other text.
    assert_eq!(app.sign_up(prize, "victim@example.com").await.status(), 200);
    let first = app.smtp.wait_for("victim@example.com", 1).await.remove(0);
    assert_carries_none_of(&first, "victim@example.com", &prize_words);
    assert!(first.confirmation_link().contains("token="));
    assert_eq!(stored_name(&app, "victim@example.com").await, prize, "the name is kept");

    let locked = "Your bank account is locked, call 555 0100";
    assert_eq!(app.sign_up(locked, "victim@example.com").await.status(), 200);
    let second = app.smtp.wait_for("victim@example.com", 2).await.remove(1);
    // The number as written, with its space: alone, "555" turns up by
    // chance in a random Message-ID, boundary or token now and then.
    assert_carries_none_of(&second, "victim@example.com", &["bank", "locked", "555 0100"]);
    assert_eq!(stored_name(&app, "victim@example.com").await, locked);

    // `gazette subscribers import` without --confirmed sends the same email.
    let (dir, file) = csv_file(&format!("email,name\nstranger@example.com,{prize}\n"));
    let output = run(&backend, &["subscribers", "import", file.to_str().unwrap()]).await;
    std::fs::remove_dir_all(dir).unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let imported = app.smtp.wait_for("stranger@example.com", 1).await.remove(0);
    assert_carries_none_of(&imported, "stranger@example.com", &prize_words);
    assert_eq!(stored_name(&app, "stranger@example.com").await, prize);
}

const SPECIAL_USE: [&str; 6] = ["invalid", "localhost", "local", "onion", "arpa", "test"];

pub async fn special_use_domains_are_refused_at_signup_and_import(backend: Backend) {
    let app = spawn_app_with(&backend, |s| s.subscriptions.allow_test_domains = false).await;
    for suffix in SPECIAL_USE {
        let upper = suffix.to_uppercase();
        for email in [format!("ada@example.{suffix}"), format!("Ada@Mail.EXAMPLE.{upper}.")] {
            let response = app.sign_up("Ada", &email).await;
            assert_eq!(response.status(), 400, "{email}");
            let page = response.text().await.unwrap();
            assert!(
                page.contains(&format!("Addresses ending in .{suffix} cannot receive our mail"))
                    && page.contains("special-use"),
                "{email}: no reason in\n{page}"
            );
        }
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM subscribers").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM outgoing_mail").await, 0);

    // The command line runs with the default settings: `.test` refused too.
    let mut csv = String::from("email,name\n");
    for suffix in SPECIAL_USE {
        csv.push_str(&format!("reader@example.{suffix},Reader\n"));
    }
    csv.push_str("real@example.com,Real Reader\n");
    let (dir, file) = csv_file(&csv);
    let output = run(&backend, &["subscribers", "import", file.to_str().unwrap()]).await;
    std::fs::remove_dir_all(dir).unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("7 rows: 1 added, 0 already present, 6 rejected"),
        "{}",
        text(&output.stdout)
    );
    let stderr = text(&output.stderr);
    let rejected: Vec<&str> = stderr.lines().filter(|l| l.starts_with("rejected")).collect();
    assert_eq!(rejected.len(), 6, "{stderr}");
    for (i, suffix) in SPECIAL_USE.iter().enumerate() {
        let line = rejected[i];
        assert!(
            line.starts_with(&format!("rejected line {}: email \"reader@example.{suffix}\": ", i + 2))
                && line.contains(&format!("Addresses ending in .{suffix} cannot receive our mail")),
            "{line}"
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM subscribers").await, 1);

    // `subscriptions.allow_test_domains` lets `.test` through, and only it.
    let allowing = spawn_app_with(&backend, |s| s.subscriptions.allow_test_domains = true).await;
    assert_eq!(allowing.sign_up("Ada", "ada@example.test").await.status(), 200);
    assert_eq!(allowing.sign_up("Ada", "ada@example.invalid").await.status(), 400);
}

pub async fn a_non_ascii_local_part_is_called_unsupported(backend: Backend) {
    let app = spawn_app(&backend).await;
    let response = app.sign_up("Jürgen", "jürgen@example.com").await;
    assert_eq!(response.status(), 400);
    let page = response.text().await.unwrap();
    assert!(page.contains("are not supported"), "{page}");
    assert!(!page.contains("may only use letters"), "{page}");
    assert_eq!(app.count("SELECT COUNT(*) FROM subscribers").await, 0);
}

fn metric(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn withheld(app: &TestApp) -> Option<f64> {
    let body = app.scrape_metrics().await.text().await.unwrap();
    metric(&body, "gazette_confirmations_withheld_total")
}

/// Moves every queued confirmation email's time `hours` into the past.
async fn age_confirmations(app: &TestApp, hours: i64) {
    let then = Utc::now() - chrono::Duration::hours(hours);
    gazette::with_pool!(&app.db, pool => {
        sqlx::query("UPDATE outgoing_mail SET created_at = $1")
            .bind(then)
            .execute(pool)
            .await
            .unwrap();
    });
}

pub async fn confirmation_emails_past_the_hourly_cap_are_refused_across_processes(backend: Backend) {
    const CAP: u32 = 5;
    let one = spawn_app_with(&backend, |s| s.limits.confirmations_per_hour = CAP).await;
    // A second process on the same database: the cap is counted there.
    let two = spawn_app_with(&backend, |s| s.limits.confirmations_per_hour = CAP).await;
    let addresses: Vec<String> = (0..16).map(|i| format!("reader{i}@example.com")).collect();
    let responses = futures_util::future::join_all(addresses.iter().enumerate().map(|(i, email)| {
        let app = if i % 2 == 0 { &one } else { &two };
        async move { (email.clone(), app.sign_up("Reader", email).await) }
    }))
    .await;
    let mut admitted = Vec::new();
    for (email, response) in responses {
        match response.status().as_u16() {
            200 => admitted.push(email),
            503 => {
                let retry: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                assert!((3000..=3600).contains(&retry), "Retry-After: {retry}");
                let page = response.text().await.unwrap();
                assert!(
                    page.contains("Nothing was saved") && page.contains("Please try again in about"),
                    "{page}"
                );
            }
            other => panic!("{email}: {other}"),
        }
    }
    assert_eq!(admitted.len(), CAP as usize, "{admitted:?}");
    // Refused signups left nothing behind.
    assert_eq!(one.count("SELECT COUNT(*) FROM subscribers").await, i64::from(CAP));
    assert_eq!(one.count("SELECT COUNT(*) FROM outgoing_mail").await, i64::from(CAP));
    assert_eq!(
        one.count("SELECT COUNT(*) FROM confirmation_tokens").await,
        i64::from(CAP)
    );
    let refused = (16 - CAP) as f64;
    let counted = withheld(&one).await.unwrap() + withheld(&two).await.unwrap();
    assert_eq!(counted, refused, "withheld confirmations on /metrics");

    // The same answer for an address already on the list: no enumeration.
    let pending = one.sign_up("Reader", &admitted[0]).await;
    assert_eq!(pending.status(), 503);
    // Each process's worker sends what it claims, through its own relay.
    let mailed = |email: &str| one.smtp.count_for(email) + two.smtp.count_for(email);
    for email in &admitted {
        wait_until(Duration::from_secs(10), email, || async { mailed(email) == 1 }).await;
    }
    one.wait_for_empty_queue().await;
    assert_eq!(
        one.smtp.received().len() + two.smtp.received().len(),
        CAP as usize,
        "only the admitted signups were mailed"
    );

    // An hour later there is room again.
    age_confirmations(&one, 2).await;
    assert_eq!(two.sign_up("Late Reader", "late@example.com").await.status(), 200);
    wait_until(Duration::from_secs(10), "the late reader's email", || async {
        mailed("late@example.com") == 1
    })
    .await;
}

/// `gazette serve`, on this test's database, with JSON logs on stderr.
pub async fn reaching_the_confirmation_cap_is_logged_once_and_so_is_the_end_of_it(backend: Backend) {
    let serve = ServeProcess::start(
        &backend,
        &[
            ("GAZETTE_LIMITS__SIGNUPS_PER_IP_PER_MINUTE", "0"),
            ("GAZETTE_LIMITS__CONFIRMATIONS_PER_HOUR", "1"),
            ("GAZETTE_LOG__LEVEL", "warn"),
            ("GAZETTE_LOG__FORMAT", "json"),
        ],
    )
    .await;
    let (client, base, line_rx) = (reqwest::Client::new(), &serve.base, &serve.lines);
    let sign_up = |email: &'static str| {
        let request = client
            .post(format!("{base}/subscriptions"))
            .form(&[("name", "Reader"), ("email", email)]);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(sign_up("first@example.com").await, 200);
    for email in ["second@example.com", "third@example.com", "fourth@example.com"] {
        assert_eq!(sign_up(email).await, 503, "{email}");
    }
    let db = gazette::db::Db::connect(&crate::helpers::test_settings(&backend, 25).database)
        .await
        .unwrap();
    gazette::with_pool!(&db, pool => {
        sqlx::query("UPDATE outgoing_mail SET created_at = $1")
            .bind(Utc::now() - chrono::Duration::hours(2))
            .execute(pool)
            .await
            .unwrap();
    });
    db.close().await;
    assert_eq!(sign_up("fifth@example.com").await, 200);

    // Lines arrive in order: once the "again" line is read, every line the
    // refusals logged has been read before it.
    let mut lines = Vec::new();
    loop {
        let line = line_rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no line saying signups are accepted again; read:\n{}", lines.join("\n")));
        let again = line.contains("under the hourly cap again");
        lines.push(line);
        if again {
            break;
        }
    }
    drop(serve);
    let reached: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("limits.confirmations_per_hour reached"))
        .collect();
    assert_eq!(reached.len(), 1, "{lines:#?}");
    assert!(reached[0].contains("\"level\":\"ERROR\""), "{}", reached[0]);
}
