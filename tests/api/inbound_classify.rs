//! `gazette inbound classify FILE.eml…`, run as the real binary.

use std::path::{Path, PathBuf};

use gazette::domain::{IssueWeek, UnsubscribeToken};
use gazette::mail::verp::{Origin, ReturnPaths};

use crate::admin::add_confirmed_readers;
use crate::helpers::{Backend, gazette_command as gazette, spawn_app};
use crate::inbound_smtp::postfix_dsn;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inbound")
}

/// Every fixture, in one run, prints the line its row in `expected.tsv`
/// says (the table the classifier's own corpus test reads), in the order
/// the files were given.
pub fn every_fixture_prints_the_line_its_table_row_says() -> Result<(), libtest_mimic::Failed> {
    let table = std::fs::read_to_string(fixtures().join("expected.tsv"))?;
    let mut files = Vec::new();
    let mut want = Vec::new();
    for row in table.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        let cells: Vec<&str> = row.split('\t').collect();
        assert_eq!(cells.len(), 5, "{row:?}");
        let path = fixtures().join(cells[0]);
        let reason = if cells[4] == "undefined" { "-" } else { cells[4] };
        want.push(format!(
            "{}: {} {} {} {}",
            path.display(),
            cells[1],
            cells[2],
            cells[3],
            reason
        ));
        files.push(path);
    }
    assert!(files.len() >= 30, "the corpus has {} messages", files.len());
    let output = gazette().args(["inbound", "classify"]).args(&files).output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8(output.stdout)?;
    let got: Vec<&str> = stdout.lines().collect();
    assert_eq!(got.len(), want.len(), "{stdout}");
    for (got, want) in got.iter().zip(&want) {
        assert_eq!(got, want);
    }
    Ok(())
}

/// A file that cannot be read is named on standard error, the files after
/// it are still read, and the command exits 1.
pub fn an_unreadable_file_is_named_and_the_others_still_print() -> Result<(), libtest_mimic::Failed> {
    let missing = fixtures().join("no-such-message.eml");
    let output = gazette()
        .args(["inbound", "classify"])
        .arg(&missing)
        .arg(fixtures().join("postfix-user-unknown.eml"))
        .output()?;
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout)?;
    assert_eq!(
        stdout,
        format!(
            "{}: hard ada@example.org 5.1.1 userunknown\n",
            fixtures().join("postfix-user-unknown.eml").display()
        )
    );
    let stderr = String::from_utf8(output.stderr)?;
    assert!(
        stderr.contains(&format!("{}: ", missing.display())) && stderr.contains("1 of 2 files could not be read"),
        "{stderr}"
    );
    Ok(())
}

/// The command reads files only: with the database's file absent it still
/// prints what the message says (and creates no database).
pub fn it_needs_no_database() -> Result<(), libtest_mimic::Failed> {
    let dir = std::env::temp_dir().join(format!("gazette-inbound-classify-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("absent.db");
    let output = gazette()
        .env("GAZETTE_DATABASE__URL", format!("sqlite://{}", db.display()))
        .args(["inbound", "classify"])
        .arg(fixtures().join("arf-yahoo.eml"))
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(String::from_utf8(output.stdout)?.ends_with(": complaint bella@yahoo.com - feedback\n"));
    assert!(!db.exists(), "no database was made");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// What a stranger wrote (the failed address) and the file's name reach
/// the terminal escaped: no control character gets through.
pub fn outside_text_is_escaped_for_the_terminal() -> Result<(), libtest_mimic::Failed> {
    let dir = std::env::temp_dir().join(format!("gazette-inbound-escape-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("bounce\x1b[2J.eml");
    std::fs::write(
        &file,
        "From: MAILER-DAEMON@mx.example\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n\
         --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n\
         Final-Recipient: rfc822; evil\x1b]0;owned\x07@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n--b--\r\n",
    )?;
    let output = gazette().args(["inbound", "classify"]).arg(&file).output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8(output.stdout)?;
    assert!(!stdout.chars().any(|c| c.is_control() && c != '\n'), "{stdout:?}");
    assert!(
        stdout.contains(" hard ") && stdout.contains("5.1.1 userunknown"),
        "{stdout:?}"
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// With a bounce domain, the command asks the database whom a return path
/// or an unsubscribe address names and prints that reader's address, as
/// the pipeline would find them; it changes nothing. A return path that
/// does not verify names nobody: the line keeps the message's address.
pub async fn with_a_bounce_domain_it_prints_the_reader_a_return_path_names(backend: Backend) {
    const DOMAIN: &str = "bounces.gazette.test";
    let app = spawn_app(&backend).await;
    add_confirmed_readers(
        &app,
        &[
            ("ada@example.com".into(), "Ada".into()),
            ("bob@example.com".into(), "Bob".into()),
        ],
    )
    .await;
    let secret = gazette::db::inbound::return_path_secret(&app.db).await.unwrap();
    let paths = ReturnPaths::new(DOMAIN, &secret);
    let ada: uuid::Uuid = gazette::with_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT id FROM subscribers WHERE email_key = 'ada@example.com'")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    let week = IssueWeek::parse("2026-W48").unwrap();
    let return_path = paths.return_path(&Origin::Digest { week, subscriber: ada }).to_string();
    let token = UnsubscribeToken::parse(&app.unsubscribe_token("bob@example.com").await).unwrap();
    let unsubscribe = paths.unsubscribe_address(&token).to_string();
    // Ada's mail was forwarded: the bounce names the address it was
    // forwarded to, which is nobody's here.
    let forwarded = "ada.old@forwarded.example";
    let forged = {
        let (local, domain) = return_path.split_once('@').unwrap();
        let mut local = local.to_owned();
        let last = local.pop();
        local.push(if last == Some('a') { 'b' } else { 'a' });
        format!("{local}@{domain}")
    };
    let dir = std::env::temp_dir().join(format!("gazette-classify-lookup-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = [
        (
            "bounce.eml",
            postfix_dsn(&return_path, forwarded, "5.1.1", "550 5.1.1 no such user"),
        ),
        (
            "unsubscribe.eml",
            format!("From: bob@example.com\r\nTo: {unsubscribe}\r\nSubject: keep me!\r\n\r\nI love it.\r\n")
                .into_bytes(),
        ),
        (
            "forged.eml",
            postfix_dsn(&forged, forwarded, "5.1.1", "550 5.1.1 no such user"),
        ),
    ];
    let mut paths_given = Vec::new();
    for (name, raw) in &files {
        let path = dir.join(name);
        std::fs::write(&path, raw).unwrap();
        paths_given.push(path);
    }
    let url = backend.database_url().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        gazette()
            .env("GAZETTE_DATABASE__URL", url)
            .env("GAZETTE_MAIL__BOUNCE_DOMAIN", DOMAIN)
            .args(["inbound", "classify"])
            .args(&paths_given)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    let d = dir.display();
    assert_eq!(
        lines,
        [
            format!("{d}/bounce.eml: hard ada@example.com 5.1.1 userunknown"),
            format!("{d}/unsubscribe.eml: unsubscribe bob@example.com - unsubscribe"),
            format!("{d}/forged.eml: hard {forwarded} 5.1.1 userunknown"),
        ],
        "{stderr}"
    );
    // Looked at, not applied.
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 0);
    assert_eq!(
        app.subscriber_status("ada@example.com").await.as_deref(),
        Some("confirmed")
    );
    assert_eq!(
        app.subscriber_status("bob@example.com").await.as_deref(),
        Some("confirmed")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
