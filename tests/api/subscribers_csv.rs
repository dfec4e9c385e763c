//! `gazette subscribers import FILE.csv [--confirmed]` and
//! `gazette subscribers export [--status S]`, through the real binary.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{run, text};
use crate::helpers::{Backend, TestApp, spawn_app};

/// A CSV file in a fresh directory; removed with the directory by the test.
fn csv_file(contents: &[u8]) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("gazette-csv-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("readers.csv");
    std::fs::write(&file, contents).unwrap();
    (dir, file)
}

async fn import(backend: &Backend, file: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let file = file.to_str().unwrap();
    let mut args = vec!["subscribers", "import", file];
    args.extend_from_slice(extra);
    run(backend, &args).await
}

async fn confirm_by_email(app: &TestApp, email: &str) {
    let link = app.smtp.wait_for(email, 1).await[0].confirmation_link();
    let token = link.split("token=").nth(1).unwrap();
    let response = app.post_form("/subscriptions/confirm", &[("token", token)]).await;
    assert_eq!(response.status(), 200);
}

async fn source_of(app: &TestApp, email_key: &str) -> String {
    gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT signup_source FROM subscribers WHERE email_key = $1")
            .bind(email_key)
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

pub async fn an_import_reports_bad_rows_by_line_and_each_new_reader_gets_an_opt_in_email(backend: Backend) {
    let app = spawn_app(&backend).await;
    // Already on the list: one confirmed, one still pending.
    assert_eq!(app.sign_up("Old Friend", "friend@example.com").await.status(), 200);
    confirm_by_email(&app, "friend@example.com").await;
    assert_eq!(app.sign_up("Waiting Wanda", "wanda@example.com").await.status(), 200);
    app.smtp.wait_for("wanda@example.com", 1).await;

    // A spreadsheet's export: BOM, CRLF, quoted fields, a blank line, a
    // field over two lines.
    let (dir, file) = csv_file(
        "\u{feff}Email,Name\r\n\
         ada@example.com,Ada Lovelace\r\n\
         \"bob@example.com\",\"Builder, Bob \"\"the\"\"\"\r\n\
         not-an-email,Nobody\r\n\
         \r\n\
         FRIEND@example.com,Someone Else\r\n\
         cal@example.com,\r\n\
         \"dan@example.com\",\"Dan\r\nSecond Line\"\r\n\
         Ada@Example.com,Ada Twice\r\n\
         wanda@example.com,Wanda\r\n\
         eve@example.com,Eve\r\n"
            .as_bytes(),
    );
    let output = import(&backend, &file, &[]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout).trim(),
        format!(
            "{}: CSV with a header, 9 rows: 4 added, 3 already present, 2 rejected",
            file.display()
        )
    );
    let stderr = text(&output.stderr);
    let rejected: Vec<&str> = stderr.lines().filter(|l| l.starts_with("rejected")).collect();
    assert_eq!(rejected.len(), 2, "{stderr}");
    assert!(
        rejected[0].starts_with(r#"rejected line 4: email "not-an-email": "#),
        "{stderr}"
    );
    // A name is optional, as on the form: Cal's row imports.
    assert!(rejected[1].starts_with("rejected line 8: name "), "{stderr}");
    assert!(rejected[1].contains("control characters"), "{stderr}");

    // The new readers are pending and get the same email as a web signup.
    for email in [
        "ada@example.com",
        "bob@example.com",
        "cal@example.com",
        "eve@example.com",
    ] {
        assert_eq!(app.subscriber_status(email).await.as_deref(), Some("pending"));
        assert_eq!(source_of(&app, email).await, "import");
    }
    let bob = app.smtp.wait_for("bob@example.com", 1).await.remove(0);
    // The name is kept, but not mailed before the address is confirmed.
    assert!(!bob.text().contains("Builder"), "{}", bob.text());
    confirm_by_email(&app, "ada@example.com").await;
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("confirmed")
    );

    // Readers already on the list are left alone and get nothing.
    app.smtp.wait_for("eve@example.com", 1).await;
    app.wait_for_empty_queue().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.smtp.count_for("friend@example.com"), 1);
    assert_eq!(app.smtp.count_for("wanda@example.com"), 1);
    assert_eq!(
        app.smtp.count_for("ada@example.com"),
        1,
        "one email for a row twice in the file"
    );
    assert_eq!(
        app.subscriber_status("friend@example.com").await.as_deref(),
        Some("confirmed")
    );
    let friend_name: String = gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT name FROM subscribers WHERE email_key = 'friend@example.com'")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(friend_name, "Old Friend");
    assert_eq!(app.count("SELECT COUNT(*) FROM subscribers").await, 6);

    // Importing again changes nothing and mails no one.
    let again = import(&backend, &file, &[]).await;
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains("9 rows: 0 added, 7 already present, 2 rejected"),
        "{}",
        text(&again.stdout)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.smtp.received().len(), 6, "two web signups, four imported readers");
    assert_eq!(app.count("SELECT COUNT(*) FROM outgoing_mail").await, 6);

    let missing = import(&backend, &dir.join("missing.csv"), &[]).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("missing.csv"),
        "{}",
        text(&missing.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}

pub async fn a_confirmed_import_mails_no_one_and_never_resubscribes_a_reader_who_left(backend: Backend) {
    let app = spawn_app(&backend).await;
    assert_eq!(app.sign_up("Pending Pat", "pat@example.com").await.status(), 200);
    assert_eq!(app.sign_up("Gone Gil", "gil@example.com").await.status(), 200);
    app.smtp.wait_for("gil@example.com", 1).await;
    app.smtp.wait_for("pat@example.com", 1).await;
    let token = app.unsubscribe_token("gil@example.com").await;
    assert_eq!(app.post_form("/unsubscribe", &[("token", &token)]).await.status(), 200);
    assert_eq!(
        app.subscriber_status("gil@example.com").await.as_deref(),
        Some("unsubscribed")
    );

    // No header row: the columns are email, name.
    let (dir, file) = csv_file(b"ada@example.com,Ada\nbob@example.com,Bob\npat@example.com,Pat\ngil@example.com,Gil\n");
    let output = import(&backend, &file, &["--confirmed"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("4 rows: 2 added, 1 pending readers confirmed, 1 already present, 0 rejected"),
        "{}",
        text(&output.stdout)
    );
    for email in ["ada@example.com", "bob@example.com", "pat@example.com"] {
        assert_eq!(
            app.subscriber_status(email).await.as_deref(),
            Some("confirmed"),
            "{email}"
        );
        assert_eq!(source_of(&app, email).await, "import --confirmed");
    }
    assert_eq!(
        app.subscriber_status("gil@example.com").await.as_deref(),
        Some("unsubscribed")
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM subscribers WHERE status = 'confirmed' AND confirmed_at IS NOT NULL")
            .await,
        3
    );
    // Only the two web signups' emails: the imported readers get none.
    assert_eq!(app.count("SELECT COUNT(*) FROM outgoing_mail").await, 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(app.smtp.received_for("ada@example.com").is_empty());
    assert!(app.smtp.received_for("bob@example.com").is_empty());

    // A confirmed reader is never taken back to pending by an opt-in import.
    let again = import(&backend, &file, &[]).await;
    assert!(
        text(&again.stdout).contains("4 rows: 0 added, 4 already present, 0 rejected"),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM subscribers WHERE status = 'confirmed'")
            .await,
        3
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM outgoing_mail").await, 2);
    let _ = std::fs::remove_dir_all(dir);
}

pub async fn an_export_lists_subscribers_as_csv_filtered_by_status_and_imports_again(backend: Backend) {
    let app = spawn_app(&backend).await;
    let (dir, file) = csv_file(b"email,name\nzed@example.com,\"Zed, Jr.\"\nada@example.com,Ada\n");
    assert!(import(&backend, &file, &["--confirmed"]).await.status.success());
    assert_eq!(app.sign_up("Pending Pat", "pat@example.com").await.status(), 200);

    let all = run(&backend, &["subscribers", "export"]).await;
    assert!(all.status.success(), "{}", text(&all.stderr));
    let mut reader = csv::Reader::from_reader(all.stdout.as_slice());
    assert_eq!(
        reader.headers().unwrap(),
        vec![
            "email",
            "name",
            "status",
            "source",
            "created_at",
            "confirmed_at",
            "unsubscribed_at"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let summary: Vec<(&str, &str, &str, &str)> = rows.iter().map(|r| (&r[0], &r[1], &r[2], &r[3])).collect();
    assert_eq!(
        summary,
        [
            ("ada@example.com", "Ada", "confirmed", "import --confirmed"),
            ("pat@example.com", "Pending Pat", "pending", "web form"),
            ("zed@example.com", "Zed, Jr.", "confirmed", "import --confirmed"),
        ]
    );
    for row in &rows {
        chrono::DateTime::parse_from_rfc3339(&row[4]).expect("created_at is RFC 3339");
    }
    assert!(rows[0][5].ends_with('Z') && rows[1][5].is_empty());

    let pending = run(&backend, &["subscribers", "export", "--status", "pending"]).await;
    assert!(pending.status.success());
    let pending = text(&pending.stdout);
    assert_eq!(pending.lines().count(), 2, "{pending}");
    assert!(
        pending
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("pat@example.com,Pending Pat,pending,")
    );

    let bad = run(&backend, &["subscribers", "export", "--status", "subscribed"]).await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("`subscribed` is not a subscriber status"),
        "{}",
        text(&bad.stderr)
    );
    assert!(bad.stdout.is_empty());

    // The export is an import file: every row is already present.
    let exported = dir.join("export.csv");
    std::fs::write(&exported, &all.stdout).unwrap();
    let reimport = import(&backend, &exported, &[]).await;
    assert!(
        text(&reimport.stdout).contains("3 rows: 0 added, 3 already present, 0 rejected"),
        "{}",
        text(&reimport.stdout)
    );
    let _ = std::fs::remove_dir_all(dir);
}
