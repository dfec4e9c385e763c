//! Backups through the real binary, checked with tools Gazette did not
//! write: `gazette backup` of a live SQLite database while `gazette serve`
//! takes signups, read back with the `sqlite3` CLI and restored into a fresh
//! directory that a new `gazette serve` serves; `gazette restore` refusing
//! what it must; and, for PostgreSQL, the README's own `pg_dump` and
//! `pg_restore` lines (Debian's postgresql-client) into a second database.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::admin::{STAFF_EMAIL, STAFF_PASSWORD, StaffClient};
use crate::cli::{import_fixture, run, text};
use crate::helpers::{Backend, ServeProcess, gazette_command, spawn_app, test_settings, wait_until};

/// A fresh directory of its own under the system's temporary directory.
fn scratch_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gazette-{what}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `sqlite3 -readonly FILE SQL`, Debian's SQLite shell: its output lines.
fn sqlite3(file: &Path, sql: &str) -> Vec<String> {
    let output = std::process::Command::new("sqlite3")
        .arg("-readonly")
        .arg(file)
        .arg(sql)
        .output()
        .expect("Debian's sqlite3 runs (package sqlite3)");
    assert!(output.status.success(), "sqlite3: {}", text(&output.stderr));
    text(&output.stdout).lines().map(str::to_owned).collect()
}

/// `gazette staff add EMAIL` with the password on stdin.
async fn add_staff(backend: &Backend) {
    use std::io::Write;
    let url = backend.database_url().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        let mut child = gazette_command()
            .args(["staff", "add", STAFF_EMAIL])
            .env("GAZETTE_DATABASE__URL", url)
            .env("GAZETTE_SUBSCRIPTIONS__ALLOW_TEST_DOMAINS", "true")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{STAFF_PASSWORD}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
}

async fn sign_up(base: &str, name: &str, email: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/subscriptions"))
        .form(&[("name", name), ("email", email)])
        .send()
        .await
        .expect("POST /subscriptions")
        .status()
        .as_u16()
}

/// Confirms the reader with the token their queued confirmation holds
/// (the serve process runs no worker, so it is still in the queue).
async fn confirm(db: &gazette::db::Db, base: &str, email: &str) {
    let token: String = gazette::with_pool!(db, pool => {
        sqlx::query_scalar("SELECT token FROM outgoing_mail WHERE recipient = $1")
            .bind(email)
            .fetch_one(pool)
            .await
            .unwrap()
    });
    let confirmed = reqwest::Client::new()
        .post(format!("{base}/subscriptions/confirm"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);
}

/// The number after `label` in `said` ("… 12 readers …" → 12 for "readers").
fn number_before(said: &str, label: &str) -> i64 {
    let at = said.find(label).unwrap_or_else(|| panic!("{label:?} in {said}"));
    let digits: String = said[..at]
        .trim_end()
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.chars().rev().collect::<String>().parse().unwrap()
}

/// Serve environment: many signups from one address, without the limits.
const SERVE_ENV: &[(&str, &str)] = &[
    ("GAZETTE_LIMITS__SIGNUPS_PER_IP_PER_MINUTE", "0"),
    ("GAZETTE_LIMITS__CONFIRMATIONS_PER_HOUR", "0"),
];

pub async fn a_backup_taken_while_serve_takes_signups_restores_into_a_fresh_directory(backend: Backend) {
    let settings = test_settings(&backend, 25);
    let db = gazette::db::Db::connect(&settings.database).await.unwrap();
    db.migrate().await.unwrap();
    add_staff(&backend).await;
    let serve = ServeProcess::start(&backend, SERVE_ENV).await;
    let readers = ["ada@example.com", "bob@example.com", "cal@example.com"];
    for email in readers {
        assert_eq!(sign_up(&serve.base, "Reader", email).await, 200);
        confirm(&db, &serve.base, email).await;
    }
    import_fixture(&backend, chrono::Utc::now() - chrono::Duration::days(1)).await;
    let dispatched = run(&backend, &["dispatch"]).await;
    assert!(
        text(&dispatched.stdout).contains("issue queued for 3 readers"),
        "{}{}",
        text(&dispatched.stdout),
        text(&dispatched.stderr)
    );

    // Signups keep arriving, one after another, during the backup.
    let signups = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (base, signups, stop) = (serve.base.clone(), signups.clone(), stop.clone());
        async move {
            while !stop.load(Ordering::SeqCst) {
                let n = signups.load(Ordering::SeqCst);
                assert_eq!(sign_up(&base, "Busy", &format!("busy{n}@example.com")).await, 200);
                signups.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    wait_until(Duration::from_secs(10), "signups to be under way", || async {
        signups.load(Ordering::SeqCst) >= 5
    })
    .await;
    let dir = scratch_dir("backups");
    let file = dir.join("gazette-backup.db");
    let file_arg = file.to_str().unwrap();
    let during = signups.load(Ordering::SeqCst);
    let made = run(&backend, &["backup", file_arg]).await;
    let after = signups.load(Ordering::SeqCst);
    wait_until(Duration::from_secs(10), "signups after the backup", || async {
        signups.load(Ordering::SeqCst) > after
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    assert!(made.status.success(), "{}", text(&made.stderr));
    let said = text(&made.stdout);
    assert!(said.contains(&format!("backup written to {file_arg}: ")), "{said}");
    let bytes = number_before(&said, "bytes");
    assert_eq!(bytes, i64::try_from(std::fs::metadata(&file).unwrap().len()).unwrap());
    let backed_up_readers = number_before(&said, "readers");
    assert!(said.contains("(3 confirmed), 1 issues, 1 staff users"), "{said}");
    assert!(
        said.contains(&format!(
            "schema version {}",
            gazette::maintenance::latest_schema_version()
        )),
        "{said}"
    );

    // Debian's sqlite3 reads the copy: sound, and holding what was said.
    let read = sqlite3(
        &file,
        "PRAGMA integrity_check; SELECT COUNT(*) FROM subscribers; SELECT COUNT(*) FROM staff_users; \
         SELECT COUNT(*) FROM issues; SELECT COUNT(*) FROM deliveries; PRAGMA journal_mode;",
    );
    assert_eq!(read[0], "ok");
    let copied_readers: i64 = read[1].parse().unwrap();
    assert_eq!(copied_readers, backed_up_readers);
    // Everything signed up before the backup began is in it; no more than
    // what had been by its end.
    let before_backup = (3 + during) as i64;
    let by_end = (3 + after + 1) as i64;
    assert!(
        (before_backup..=by_end).contains(&copied_readers),
        "{copied_readers} readers in the backup, {before_backup}..={by_end} expected"
    );
    assert_eq!(read[2..], ["1", "1", "3", "delete"]);
    assert!(!dir.join("gazette-backup.db-wal").exists());

    // A second backup to the same name is refused and leaves the file be.
    let first_copy = std::fs::read(&file).unwrap();
    let again = run(&backend, &["backup", file_arg]).await;
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("exists already"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(std::fs::read(&file).unwrap(), first_copy);

    // The live database is in use (by the serve process alone now):
    // restoring over it is refused.
    db.close().await;
    let live = match &backend {
        Backend::Sqlite { url } => PathBuf::from(url.trim_start_matches("sqlite://")),
        Backend::Postgres { .. } => unreachable!("a SQLite test"),
    };
    let live_readers = sqlite3(&live, "SELECT COUNT(*) FROM subscribers");
    let refused = run(&backend, &["restore", file_arg]).await;
    assert_eq!(refused.status.code(), Some(1));
    let why = text(&refused.stderr);
    assert!(
        why.contains("is open in process") && why.contains("stop the service first"),
        "{why}"
    );
    assert_eq!(sqlite3(&live, "SELECT COUNT(*) FROM subscribers"), live_readers);
    assert_eq!(sign_up(&serve.base, "After", "after@example.com").await, 200);
    drop(serve);

    // Restored into a fresh directory, a new `gazette serve` has the data.
    let fresh = scratch_dir("restored");
    let restored_db = fresh.join("data").join("gazette.db");
    let restored = Backend::Sqlite {
        url: format!("sqlite://{}", restored_db.display()),
    };
    let done = run(&restored, &["restore", file_arg]).await;
    assert!(done.status.success(), "{}", text(&done.stderr));
    let said = text(&done.stdout);
    assert!(
        said.contains(&format!("restored {file_arg} into {}", restored_db.display())),
        "{said}"
    );
    assert!(
        said.contains(&format!("{backed_up_readers} readers (3 confirmed)")),
        "{said}"
    );
    assert_eq!(
        sqlite3(&restored_db, "SELECT COUNT(*) FROM subscribers"),
        [backed_up_readers.to_string()]
    );
    let serve = ServeProcess::start(&restored, SERVE_ENV).await;
    let mut staff = StaffClient::at(&serve.base);
    let login = staff.log_in(STAFF_EMAIL, STAFF_PASSWORD).await;
    assert_eq!(login.status(), 303, "the staff user came back");
    let issues = staff.page("/admin/issues").await;
    assert!(issues.contains("</a></td><td data-label=\"Subject\">"), "{issues}");
    assert!(
        issues.contains("<td data-label=\"Sent\">0 of 3</td>"),
        "the issue and its 3 copies came back: {issues}"
    );
    let subscribers = staff.page("/admin/subscribers?q=busy0%40example.com").await;
    assert!(subscribers.contains("busy0@example.com"), "{subscribers}");
    drop(serve);

    // Restoring over a database nobody uses keeps the old one aside.
    let over = run(&restored, &["restore", file_arg]).await;
    assert!(over.status.success(), "{}", text(&over.stderr));
    let said = text(&over.stdout);
    assert!(said.contains("the database it replaced is kept as"), "{said}");
    let kept = std::fs::read_dir(fresh.join("data"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("gazette.db.replaced-"))
        .count();
    assert!(kept >= 1, "the replaced database is kept");
    assert!(!fresh.join("data").join("gazette.db-shm").exists());
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(fresh);
}

/// What `gazette restore` refuses, each time changing nothing: a file that
/// is not a database, a database of something else, a damaged backup, and
/// one from a newer release.
pub async fn restore_refuses_what_is_not_a_sound_gazette_backup(backend: Backend) {
    let app = spawn_app(&backend).await;
    assert_eq!(app.sign_up("Ada", "ada@example.com").await.status(), 200);
    let dir = scratch_dir("bad-backups");
    let good = dir.join("good.db");
    let made = run(&backend, &["backup", good.to_str().unwrap()]).await;
    assert!(made.status.success(), "{}", text(&made.stderr));

    let text_file = dir.join("notes.txt");
    std::fs::write(
        &text_file,
        "not a database at all, just some words in a file\n".repeat(100),
    )
    .unwrap();
    let other = dir.join("other.db");
    sqlite3_write(&other, "CREATE TABLE t (x); INSERT INTO t VALUES (1);");
    let damaged = dir.join("damaged.db");
    let mut bytes = std::fs::read(&good).unwrap();
    // Past the header page: the schema's pages, overwritten with noise.
    for b in bytes.iter_mut().skip(4096).take(8192) {
        *b = 0xA5;
    }
    std::fs::write(&damaged, bytes).unwrap();
    let newer = dir.join("newer.db");
    std::fs::copy(&good, &newer).unwrap();
    sqlite3_write(
        &newer,
        "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time)
         VALUES (9999, 'from the future', '2099-01-01', 1, x'00', 0);",
    );

    let target = scratch_dir("restore-target").join("gazette.db");
    let target_backend = Backend::Sqlite {
        url: format!("sqlite://{}", target.display()),
    };
    for (file, reason) in [
        (&text_file, "not a Gazette SQLite database"),
        (&other, "it has no migration history"),
        (&damaged, "not a Gazette SQLite database"),
        (&newer, "which this Gazette does not know"),
        (&dir.join("missing.db"), "No such file"),
    ] {
        let refused = run(&target_backend, &["restore", file.to_str().unwrap()]).await;
        assert_eq!(refused.status.code(), Some(1), "{}", file.display());
        let why = text(&refused.stderr);
        assert!(why.contains(reason), "{}: {why}", file.display());
        assert!(!target.exists(), "nothing was written for {}", file.display());
    }
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(target.parent().unwrap());
}

fn sqlite3_write(file: &Path, sql: &str) {
    let output = std::process::Command::new("sqlite3")
        .arg(file)
        .arg(sql)
        .output()
        .unwrap();
    assert!(output.status.success(), "sqlite3: {}", text(&output.stderr));
}

/// The README's `pg_dump` and `pg_restore` lines, as written there, with
/// its variables set for this test's database and a throwaway second one.
fn readme_postgres_commands() -> (String, String) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split_once("\n## Backups\n")
        .expect("the README has a Backups section")
        .1
        .split("\n## ")
        .next()
        .unwrap();
    let line = |command: &str| {
        section
            .lines()
            .find(|l| l.starts_with(command))
            .unwrap_or_else(|| panic!("a `{command}` line in the README's Backups section"))
            .to_owned()
    };
    (line("pg_dump "), line("pg_restore "))
}

pub async fn the_readmes_pg_dump_and_pg_restore_bring_the_data_back(backend: Backend) {
    let app = spawn_app(&backend).await;
    crate::admin::add_staff(&app, STAFF_EMAIL, STAFF_PASSWORD).await;
    crate::admin::add_confirmed_reader(&app, "ada@example.com", "Ada").await;
    assert_eq!(app.sign_up("Bob", "bob@example.com").await.status(), 200);
    import_fixture(&backend, chrono::Utc::now() - chrono::Duration::days(1)).await;
    assert!(run(&backend, &["dispatch"]).await.status.success());

    // Gazette's own commands point at pg_dump and do nothing.
    for command in ["backup", "restore"] {
        let file = std::env::temp_dir().join(format!("gazette-pg-{}.db", uuid::Uuid::new_v4().simple()));
        let said = run(&backend, &[command, file.to_str().unwrap()]).await;
        assert_eq!(said.status.code(), Some(1));
        let why = text(&said.stderr);
        assert!(why.contains("pg_dump") && why.contains("\"Backups\""), "{why}");
        assert!(!file.exists());
    }

    let (dump, restore) = readme_postgres_commands();
    let dir = scratch_dir("pg-backup");
    let backup = dir.join("gazette.dump");
    let source = backend.database_url().to_owned();
    let mut copy = url::Url::parse(&source).unwrap();
    let copy_name = format!("{}_restored", copy.path().trim_start_matches('/'));
    copy.set_path(&copy_name);
    let admin = {
        let mut admin = url::Url::parse(&source).unwrap();
        admin.set_path("postgres");
        sqlx::PgPool::connect(admin.as_str()).await.unwrap()
    };
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {copy_name}")))
        .execute(&admin)
        .await
        .unwrap();
    let shell = |line: String| {
        let (source, copy, backup) = (source.clone(), copy.to_string(), backup.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(&line)
                .env("DATABASE_URL", source)
                .env("RESTORE_URL", copy)
                .env("BACKUP", backup)
                .output()
                .expect("sh runs")
        })
    };
    let dumped = shell(dump.clone()).await.unwrap();
    let restored = shell(restore.clone()).await.unwrap();
    let counts = |url: String| async move {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let mut found = Vec::new();
        for sql in [
            "SELECT COUNT(*) FROM subscribers",
            "SELECT COUNT(*) FROM staff_users",
            "SELECT COUNT(*) FROM issues",
            "SELECT COUNT(*) FROM deliveries",
            "SELECT COUNT(*) FROM outgoing_mail",
            "SELECT MAX(version) FROM _sqlx_migrations",
        ] {
            found.push(sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap());
        }
        pool.close().await;
        found
    };
    let outcome = if dumped.status.success() && restored.status.success() {
        Some((counts(source.clone()).await, counts(copy.to_string()).await))
    } else {
        None
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {copy_name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await
    .unwrap();
    admin.close().await;
    let _ = std::fs::remove_dir_all(dir);
    assert!(dumped.status.success(), "{dump}: {}", text(&dumped.stderr));
    assert!(restored.status.success(), "{restore}: {}", text(&restored.stderr));
    let (original, copied) = outcome.unwrap();
    assert_eq!(original[..3], [2, 1, 1], "two readers, one staff user, one issue");
    assert_eq!(
        copied, original,
        "the restored database holds the same rows and schema version"
    );
}
