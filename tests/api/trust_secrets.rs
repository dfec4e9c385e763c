//! Nothing secret in logs, exports or error messages (issue 10, §6): link
//! tokens are redacted from access logs, database passwords from every
//! message, exports guard spreadsheet formulas and import again unchanged,
//! and an erased reader leaves every export and their unsubscribe link.

use std::time::{Duration, Instant};

use crate::admin::{add_confirmed_reader, add_confirmed_readers, erase_reader, first_id, staff_session};
use crate::cli::{run, text};
use crate::helpers::{Backend, ServeProcess, gazette_command as gazette, spawn_app};

pub async fn access_logs_show_confirm_and_unsubscribe_links_without_their_tokens(backend: Backend) {
    let serve = ServeProcess::start(
        &backend,
        &[
            ("GAZETTE_LOG__LEVEL", "info"),
            ("NO_COLOR", "1"),
            ("GAZETTE_SERVER__TRUSTED_PROXIES", "127.0.0.1"),
        ],
    )
    .await;
    let (client, base, line_rx) = (reqwest::Client::new(), &serve.base, &serve.lines);
    let signup = client
        .post(format!("{base}/subscriptions"))
        .form(&[("name", "Ada"), ("email", "ada@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 200);
    let db = gazette::db::Db::connect(&crate::helpers::test_settings(&backend, 25).database)
        .await
        .unwrap();
    let (confirm_token, id, secret): (String, uuid::Uuid, Vec<u8>) = gazette::with_pool!(&db, pool => {
        sqlx::query_as(
            "SELECT m.token, s.id, s.unsubscribe_secret FROM outgoing_mail m JOIN subscribers s ON s.id = m.subscriber_id",
        )
        .fetch_one(pool)
        .await
        .unwrap()
    });
    db.close().await;
    let unsubscribe_token = gazette::domain::UnsubscribeToken::from_parts(id, &secret)
        .unwrap()
        .as_string();
    for (path, request_id) in [
        (
            format!("/subscriptions/confirm?token={confirm_token}"),
            "token-log-confirm",
        ),
        (
            format!("/unsubscribe?token={unsubscribe_token}&x=1"),
            "token-log-unsubscribe",
        ),
    ] {
        let response = client
            .get(format!("{base}{path}"))
            .header("X-Request-Id", request_id)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let mut lines = Vec::new();
    let mut access_lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(line) = line_rx.recv_timeout(left) else { break };
        if line.contains("gazette::access") && line.contains("request_id=token-log-") {
            access_lines.push(line.clone());
        }
        lines.push(line);
        if access_lines.len() == 2 {
            break;
        }
    }
    drop(serve);
    let log = lines.join("\n");
    assert_eq!(access_lines.len(), 2, "both access lines:\n{log}");
    assert!(
        access_lines[0].contains(r#"method=GET path="/subscriptions/confirm?token=***""#),
        "{log}"
    );
    assert!(
        access_lines[1].contains(r#"method=GET path="/unsubscribe?token=***&x=1""#),
        "{log}"
    );
    for token in [&confirm_token, &unsubscribe_token] {
        assert!(!log.contains(token.as_str()), "a token in the log:\n{log}");
    }
}

/// A PostgreSQL URL with a password in the userinfo and another in
/// `?password=`, on a port where nothing listens (or one that is no port).
const USERINFO_SECRET: &str = "userinfo-secret-81";
const QUERY_SECRET: &str = "query-secret-82";

fn leaks(output: &std::process::Output) -> Option<String> {
    let all = format!("{}{}", text(&output.stdout), text(&output.stderr));
    (all.contains(USERINFO_SECRET) || all.contains(QUERY_SECRET)).then_some(all)
}

pub fn database_passwords_never_reach_the_terminal_or_the_logs() -> Result<(), libtest_mimic::Failed> {
    let closed = format!("postgres://gazette:{USERINFO_SECRET}@127.0.0.1:1/gazette?password={QUERY_SECRET}");
    let bad_port = format!("postgres://gazette:{USERINFO_SECRET}@127.0.0.1:notaport/gazette?password={QUERY_SECRET}");
    let check = gazette()
        .args(["config", "check"])
        .env("GAZETTE_DATABASE__URL", &closed)
        .output()?;
    // The values are shown, then the database is tried: nothing listens there.
    assert_eq!(check.status.code(), Some(1), "{}", text(&check.stderr));
    if let Some(all) = leaks(&check) {
        panic!("config check shows a database password:\n{all}");
    }
    assert!(
        text(&check.stdout).contains("gazette:***@127.0.0.1:1/gazette?password=***"),
        "{}",
        text(&check.stdout)
    );
    for url in [&closed, &bad_port] {
        for args in [&["migrate"][..], &["serve", "--no-scheduler"][..]] {
            let output = gazette()
                .args(args)
                .env("GAZETTE_DATABASE__URL", url)
                .env("GAZETTE_LOG__LEVEL", "debug")
                .env("GAZETTE_SERVER__PORT", "0")
                .output()?;
            assert!(!output.status.success(), "{args:?} with {url}");
            if let Some(all) = leaks(&output) {
                panic!("`gazette {}` shows a database password:\n{all}", args.join(" "));
            }
            let stderr = text(&output.stderr);
            assert!(stderr.contains("gazette:***@127.0.0.1"), "{args:?}: {stderr}");
        }
    }
    Ok(())
}

/// Names and addresses a spreadsheet would run as formulas.
const FORMULA_READERS: [(&str, &str); 5] = [
    ("=eq@example.org", "=SUM(A1:A9)"),
    ("+plus@example.org", "+cmd|' /C calc'!A0"),
    ("-dash@example.org", "-2+3"),
    ("at@example.org", "@HYPERLINK(\"https://evil.example\")"),
    ("quote@example.org", "'=already quoted"),
];

async fn names(app: &crate::helpers::TestApp) -> Vec<(String, String)> {
    gazette::with_pool!(&app.db, pool => {
        sqlx::query_as("SELECT email, name FROM subscribers ORDER BY email_key")
            .fetch_all(pool)
            .await
            .unwrap()
    })
}

async fn import_file(backend: &Backend, csv: &str) -> String {
    let dir = std::env::temp_dir().join(format!("gazette-roundtrip-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("export.csv");
    std::fs::write(&file, csv).unwrap();
    let output = run(backend, &["subscribers", "import", file.to_str().unwrap()]).await;
    let _ = std::fs::remove_dir_all(dir);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(!text(&output.stderr).contains("rejected"), "{}", text(&output.stderr));
    text(&output.stdout)
}

pub async fn both_exports_guard_formulas_and_import_again_creating_nothing(backend: Backend) {
    let app = spawn_app(&backend).await;
    let readers: Vec<(String, String)> = FORMULA_READERS
        .iter()
        .map(|(email, name)| (email.to_string(), name.to_string()))
        .collect();
    add_confirmed_readers(&app, &readers).await;
    let before = names(&app).await;
    assert_eq!(before.len(), 5);

    let export = run(&backend, &["subscribers", "export"]).await;
    assert!(export.status.success(), "{}", text(&export.stderr));
    let cli_csv = text(&export.stdout);
    for guarded in [
        "'=eq@example.org,'=SUM(A1:A9)",
        "'+plus@example.org",
        "'-dash@example.org,'-2+3,",
    ] {
        assert!(cli_csv.contains(guarded), "`{guarded}` in\n{cli_csv}");
    }
    assert!(cli_csv.contains(",\"'@HYPERLINK("), "{cli_csv}");
    assert!(cli_csv.contains(",''=already quoted,"), "{cli_csv}");

    let mut staff = staff_session(&app).await;
    staff.page("/admin/subscribers").await;
    let download = staff.get("/admin/subscribers/export.csv").await.text().await.unwrap();
    // One guard for both: the same rows, in another order (by id).
    let mut cli_rows: Vec<&str> = cli_csv.lines().collect();
    let mut staff_rows: Vec<&str> = download.lines().collect();
    cli_rows.sort();
    staff_rows.sort();
    assert_eq!(cli_rows, staff_rows);

    for csv in [&cli_csv, &download] {
        let report = import_file(&backend, csv).await;
        assert!(
            report.contains("5 rows: 0 added, 5 already present, 0 rejected"),
            "{report}"
        );
        assert_eq!(names(&app).await, before, "the import changed nothing");
    }
}

pub async fn an_erased_reader_loses_their_unsubscribe_link_and_leaves_every_export(backend: Backend) {
    let app = spawn_app(&backend).await;
    add_confirmed_reader(&app, "zoe@example.com", "Zoë Erase").await;
    add_confirmed_reader(&app, "ada@example.com", "Ada").await;
    let link = app.unsubscribe_token("zoe@example.com").await;
    assert_eq!(app.get(&format!("/unsubscribe?token={link}")).await.status(), 200);
    let mut staff = staff_session(&app).await;
    erase_reader(&mut staff, "zoe").await;

    let page = app.get(&format!("/unsubscribe?token={link}")).await;
    assert_eq!(page.status(), 404, "the erased reader's link is dead");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM subscribers WHERE erased_at IS NOT NULL AND LENGTH(unsubscribe_secret) > 0")
            .await,
        0,
        "the secret is cleared"
    );
    let export = run(&backend, &["subscribers", "export"]).await;
    assert!(export.status.success(), "{}", text(&export.stderr));
    let cli_csv = text(&export.stdout);
    assert_eq!(cli_csv.lines().count(), 2, "the header and Ada:\n{cli_csv}");
    assert!(!cli_csv.contains("erased") && !cli_csv.contains("zoe"), "{cli_csv}");
    let unsubscribed = run(&backend, &["subscribers", "export", "--status", "unsubscribed"]).await;
    assert_eq!(
        text(&unsubscribed.stdout).lines().count(),
        1,
        "{}",
        text(&unsubscribed.stdout)
    );
    let download = staff.get("/admin/subscribers/export.csv").await.text().await.unwrap();
    assert_eq!(download.lines().count(), 2, "{download}");
    assert!(!download.contains("erased") && !download.contains("zoe"), "{download}");
}

/// `gazette subscribers export` and the staff download are one export: for
/// the same filter they are the same file, byte for byte, in address order,
/// and neither lists an erased reader.
pub async fn the_cli_and_the_staff_export_are_the_same_file_and_leave_out_erased_readers(backend: Backend) {
    let app = spawn_app(&backend).await;
    // Imported in this order, so their ids run the other way from their
    // addresses: an export ordered by id would not match one by address.
    for (email, name) in [
        ("zed@example.com", "Zed"),
        ("uma@example.com", "Uma"),
        ("zoe@example.com", "Zoë Erase"),
        ("ada@example.com", "Ada"),
    ] {
        add_confirmed_reader(&app, email, name).await;
    }
    assert_eq!(app.sign_up("Pending Pat", "pat@example.com").await.status(), 200);
    let mut staff = staff_session(&app).await;
    let uma = first_id(&staff.page("/admin/subscribers?q=uma").await, "/admin/subscribers/");
    let response = staff.post(&format!("/admin/subscribers/{uma}/unsubscribe"), &[]).await;
    assert_eq!(response.status(), 303);
    erase_reader(&mut staff, "zoe").await;

    for (cli_args, query, emails) in [
        (
            &["subscribers", "export"][..],
            "",
            &[
                "ada@example.com",
                "pat@example.com",
                "uma@example.com",
                "zed@example.com",
            ][..],
        ),
        (
            &["subscribers", "export", "--status", "unsubscribed"][..],
            "?status=unsubscribed",
            &["uma@example.com"][..],
        ),
        (
            &["subscribers", "export", "--status", "confirmed"][..],
            "?status=confirmed",
            &["ada@example.com", "zed@example.com"][..],
        ),
    ] {
        let cli = run(&backend, cli_args).await;
        assert!(cli.status.success(), "{}", text(&cli.stderr));
        let cli = text(&cli.stdout);
        let download = staff
            .get(&format!("/admin/subscribers/export.csv{query}"))
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(cli, download, "{cli_args:?} and export.csv{query} differ");
        let listed: Vec<&str> = cli.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
        assert_eq!(listed, emails, "{cli_args:?}:\n{cli}");
        assert!(!cli.contains("erased") && !cli.contains("zoe"), "{cli}");
    }
}
