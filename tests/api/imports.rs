//! Moving from another tool (issue 18, part 3): `gazette subscribers
//! import` and the staff area's import read the export files of
//! Mailchimp, Substack, listmonk, Buttondown and Ghost (the samples in
//! `tests/fixtures/imports/` follow each tool's documented columns), say
//! which they recognised, join first and last names, and import readers
//! the file says left as unsubscribed: on record, never mailed. Files
//! separated by semicolons or tabs, and UTF-16 ones, read like any other; a
//! quote never closed is reported at the line it opened on.

use std::path::{Path, PathBuf};

use crate::admin::staff_session;
use crate::cli::{run, text};
use crate::helpers::{Backend, TestApp, spawn_app};

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/imports");

fn sample(name: &str) -> PathBuf {
    Path::new(SAMPLES).join(name)
}

async fn import(backend: &Backend, file: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["subscribers", "import", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(backend, &args).await
}

/// Each reader's (address, name, status), in address order.
async fn readers(app: &TestApp) -> Vec<(String, String, String)> {
    gazette::with_pool!(&app.db, pool => {
        sqlx::query_as("SELECT email, name, status FROM subscribers ORDER BY email_key")
            .fetch_all(pool)
            .await
            .unwrap()
    })
}

fn reader(email: &str, name: &str, status: &str) -> (String, String, String) {
    (email.into(), name.into(), status.into())
}

/// Addresses the transactional queue has mail for.
async fn mailed(app: &TestApp) -> Vec<String> {
    gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT recipient FROM outgoing_mail ORDER BY recipient")
            .fetch_all(pool)
            .await
            .unwrap()
    })
}

pub async fn each_tools_export_is_recognised_and_readers_who_left_are_never_mailed(backend: Backend) {
    let app = spawn_app(&backend).await;
    for (file, said) in [
        (
            "mailchimp_subscribed.csv",
            "Mailchimp export, 2 rows: 2 added, 0 already present, 0 rejected",
        ),
        (
            "mailchimp_unsubscribed.csv",
            "Mailchimp export, 1 rows: 1 added (1 of them unsubscribed, as in the file), 0 already present, 0 rejected",
        ),
        (
            "mailchimp_cleaned.csv",
            "Mailchimp export, 1 rows: 1 added (1 of them unsubscribed, as in the file), 0 already present, 0 rejected",
        ),
        (
            "substack.csv",
            "Substack export, 3 rows: 3 added (1 of them unsubscribed, as in the file), 0 already present, 0 rejected",
        ),
        (
            "listmonk.csv",
            "listmonk export, 2 rows: 2 added (1 of them unsubscribed, as in the file), 0 already present, 0 rejected",
        ),
        (
            "buttondown.csv",
            "Buttondown export, 3 rows: 3 added (1 of them unsubscribed, as in the file), 0 already present, 0 rejected",
        ),
        (
            "ghost.csv",
            "Ghost members export, 2 rows: 2 added (1 of them unsubscribed, as in the file), 0 already present, 0 rejected",
        ),
    ] {
        // They consented in the tool they leave: added confirmed.
        let output = import(&backend, &sample(file), &["--confirmed"]).await;
        assert!(output.status.success(), "{file}: {}", text(&output.stderr));
        assert_eq!(
            text(&output.stdout).trim(),
            format!("{}: {said}", sample(file).display()),
            "{file}"
        );
    }
    assert_eq!(
        readers(&app).await,
        [
            reader("aigerim@example.com", "Айгерим Садыкова", "confirmed"),
            reader("bakyt@example.com", "Bakyt", "confirmed"),
            reader("blocked@example.com", "Blocked Reader", "unsubscribed"),
            reader("dilnoza@example.com", "", "confirmed"),
            reader("gone@example.com", "Gone Away", "unsubscribed"),
            reader("left@example.com", "Lev Tolstoy", "unsubscribed"),
            reader("muted@example.com", "", "unsubscribed"),
            // Buttondown says they never confirmed: asked to, whatever
            // `--confirmed` says.
            reader("never@example.com", "", "pending"),
            reader("nurlan@example.com", "Nurlan", "confirmed"),
            reader("paid@example.com", "", "confirmed"),
            reader("quiet@example.com", "Quiet One", "unsubscribed"),
            reader("quit@example.com", "", "unsubscribed"),
            reader("timur@example.com", "Timur", "confirmed"),
            reader("zarina@example.com", "", "confirmed"),
        ]
    );
    assert_eq!(mailed(&app).await, ["never@example.com"]);
    let confirmation = app.smtp.wait_for("never@example.com", 1).await.remove(0);
    assert!(confirmation.confirmation_link().contains("token="));
    // Those who left are on record as unsubscribed, with the time.
    let stamped = app
        .count("SELECT COUNT(*) FROM subscribers WHERE status = 'unsubscribed' AND unsubscribed_at IS NOT NULL")
        .await;
    assert_eq!(stamped, 6);

    // Importing a file again changes nobody: someone who left stays left,
    // however the file is imported.
    let again = import(&backend, &sample("mailchimp_unsubscribed.csv"), &[]).await;
    assert!(
        text(&again.stdout).contains("Mailchimp export, 1 rows: 0 added, 1 already present, 0 rejected"),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(mailed(&app).await, ["never@example.com"]);

    // The issue goes to the confirmed readers only.
    crate::cli::import_fixture(&backend, chrono::Utc::now() - chrono::Duration::days(1)).await;
    let dispatched = run(&backend, &["dispatch"]).await;
    assert!(
        text(&dispatched.stdout).contains("issue queued for 7 readers"),
        "{}",
        text(&dispatched.stdout)
    );
}

pub async fn semicolons_tabs_and_utf16_read_and_an_unclosed_quote_names_its_line(backend: Backend) {
    let app = spawn_app(&backend).await;
    let dir = std::env::temp_dir().join(format!("gazette-imports-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };

    // A spreadsheet in a locale whose decimal mark is the comma.
    let semicolons = write(
        "semicolons.csv",
        "email;name\nada@example.com;\"Lovelace, Ada\"\nbob@example.com;Bob\n".as_bytes(),
    );
    let output = import(&backend, &semicolons, &["--confirmed"]).await;
    assert!(
        text(&output.stdout).contains("CSV with a header, 2 rows: 2 added"),
        "{}",
        text(&output.stdout)
    );

    // "Unicode text" from a spreadsheet: UTF-16 with a byte order mark,
    // tabs between the fields, a Mailchimp export's header.
    let tabbed = "Email Address\tFirst Name\tLast Name\tUNSUB_TIME\r\n\
                  zoe@example.com\tЗоя\tКим\t\r\n\
                  ivan@example.com\tИван\t\t2024-05-05 12:00:00\r\n";
    let utf16: Vec<u8> = std::iter::once(0xFEFF_u16)
        .chain(tabbed.encode_utf16())
        .flat_map(u16::to_le_bytes)
        .collect();
    let output = import(&backend, &write("unicode.txt", &utf16), &["--confirmed"]).await;
    assert!(
        text(&output.stdout).contains(
            "Mailchimp export, 2 rows: 2 added (1 of them unsubscribed, as in the file), 0 already present, 0 rejected"
        ),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );

    // A quote opened on line 3 and never closed: the rows before it are
    // imported, and the message names line 3, not the end of the file.
    let unclosed = write(
        "unclosed.csv",
        b"email,name\ncal@example.com,Cal\ndan@example.com,\"Dan\neve@example.com,Eve\nfay@example.com,Fay\n",
    );
    let output = import(&backend, &unclosed, &["--confirmed"]).await;
    assert!(!output.status.success());
    let said = text(&output.stderr);
    assert!(
        said.contains("cannot read line 3: a quoted field begins on this line and is never closed"),
        "{said}"
    );
    assert!(said.contains("the 1 rows before it were imported"), "{said}");

    assert_eq!(
        readers(&app).await,
        [
            reader("ada@example.com", "Lovelace, Ada", "confirmed"),
            reader("bob@example.com", "Bob", "confirmed"),
            reader("cal@example.com", "Cal", "confirmed"),
            reader("ivan@example.com", "Иван", "unsubscribed"),
            reader("zoe@example.com", "Зоя Ким", "confirmed"),
        ]
    );
    let _ = std::fs::remove_dir_all(dir);
}

pub async fn the_staff_import_says_which_tool_the_rows_came_from(backend: Backend) {
    let app = spawn_app(&backend).await;
    let mut staff = staff_session(&app).await;
    staff.page("/admin/subscribers/import").await;
    let listmonk = std::fs::read_to_string(sample("listmonk.csv")).unwrap();
    let response = staff
        .post("/admin/subscribers/import", &[("csv", &listmonk), ("consented", "on")])
        .await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains("Recognised as a listmonk export."), "{page}");
    assert!(
        page.contains("2 rows: 2 added (1 of them unsubscribed, as the file says they left)"),
        "{page}"
    );
    assert_eq!(
        readers(&app).await,
        [
            reader("blocked@example.com", "Blocked Reader", "unsubscribed"),
            reader("nurlan@example.com", "Nurlan", "confirmed"),
        ]
    );
}
