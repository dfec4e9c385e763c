//! DKIM and the mail settings around it, checked from outside: every kind
//! of message, received through the test SMTP server (so dot-stuffing and
//! the transport are part of what is verified), must verify with dkimpy, a
//! verifier Gazette did not write, against the TXT record `gazette config
//! check` tells the operator to publish.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use gazette::config::{DkimAlgorithm, DkimSettings};

use crate::admin::{STAFF_EMAIL, add_confirmed_reader, add_confirmed_readers, hidden_field, staff_session};
use crate::cli::{import_fixture, run as run_cli, text};
use crate::helpers::gazette_command as gazette;
use crate::helpers::{Backend, Received, TestApp, WorkerProcess, spawn_app_with, spawn_web_only, wait_until};

const VERIFIER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/dkim_verify.py");
const RSA_KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dkim-rsa.pem");

/// Why dkimpy cannot run here, if it cannot (`.ci/run` installs it).
pub fn missing_verifier() -> Option<String> {
    match Command::new("python3").args(["-c", "import dkim, nacl"]).output() {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(format!(
            "python3 cannot import dkimpy and PyNaCl (`python3 -m pip install dkimpy PyNaCl`): {}",
            text(&output.stderr).lines().last().unwrap_or("")
        )),
        Err(e) => Some(format!("python3 does not run: {e}")),
    }
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gazette-dkim-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A signing key for `algorithm`: the RSA fixture, or a fresh Ed25519 seed.
fn key_file(dir: &Path, algorithm: DkimAlgorithm) -> PathBuf {
    match algorithm {
        DkimAlgorithm::Rsa => PathBuf::from(RSA_KEY),
        DkimAlgorithm::Ed25519 => {
            use base64::Engine;
            let file = dir.join("ed25519.key");
            let seed: [u8; 32] = rand::random();
            std::fs::write(&file, base64::engine::general_purpose::STANDARD.encode(seed)).unwrap();
            file
        }
    }
}

fn algorithm_name(algorithm: DkimAlgorithm) -> &'static str {
    match algorithm {
        DkimAlgorithm::Rsa => "rsa",
        DkimAlgorithm::Ed25519 => "ed25519",
    }
}

fn dkim_env(algorithm: DkimAlgorithm, key: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("GAZETTE_MAIL__DKIM__DOMAIN", "gazette.test".into()),
        ("GAZETTE_MAIL__DKIM__SELECTOR", "weekly".into()),
        ("GAZETTE_MAIL__DKIM__ALGORITHM", algorithm_name(algorithm).into()),
        ("GAZETTE_MAIL__DKIM__PRIVATE_KEY_FILE", key.display().to_string()),
    ]
}

/// What `gazette config check` says to publish: the DNS name and the TXT
/// value (its quoted strings joined, as DNS joins them).
fn published_record(algorithm: DkimAlgorithm, key: &Path) -> (String, String) {
    let output = gazette()
        .args(["config", "check"])
        .envs(dkim_env(algorithm, key))
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let line = stdout
        .lines()
        .find(|l| l.contains(" IN TXT "))
        .unwrap_or_else(|| panic!("no TXT record printed:\n{stdout}"));
    let (name, strings) = line.split_once(" IN TXT ").unwrap();
    let record: String = strings.split('"').skip(1).step_by(2).collect();
    let kind = algorithm_name(algorithm);
    assert!(record.starts_with(&format!("v=DKIM1; k={kind}; p=")), "{record}");
    assert_eq!(name, "weekly._domainkey.gazette.test.");
    (name.trim_end_matches('.').to_owned(), record)
}

/// dkimpy's verdict on `raw`, with the public key from `record`.
fn dkimpy(raw: &[u8], name: &str, record: &str) -> Result<(), String> {
    let mut child = Command::new("python3")
        .args([VERIFIER, name, record])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("python3: {e}"))?;
    child.stdin.take().unwrap().write_all(raw).unwrap();
    let output = child.wait_with_output().unwrap();
    match output.status.success() {
        true => Ok(()),
        false => Err(format!("{}{}", text(&output.stdout), text(&output.stderr))),
    }
}

/// `raw` verifies; its signature names every header it must cover; and
/// a forged List-Unsubscribe or a changed body makes it fail.
fn assert_verifies(what: &str, message: &Received, name: &str, record: &str) {
    let raw = &message.raw;
    if let Err(why) = dkimpy(raw, name, record) {
        panic!(
            "the {what} does not verify:\n{why}\n--- message ---\n{}",
            String::from_utf8_lossy(raw)
        );
    }
    let parsed = message.parsed();
    let signature: String = parsed
        .header_raw("DKIM-Signature")
        .unwrap()
        .split_whitespace()
        .collect();
    let listed: Vec<String> = signature
        .split(';')
        .find_map(|t| t.strip_prefix("h="))
        .unwrap()
        .split(':')
        .map(str::to_ascii_lowercase)
        .collect();
    for header in [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "feedback-id",
    ] {
        assert!(
            listed.iter().any(|h| h == header),
            "{what}: {header} is not signed: {signature}"
        );
    }
    assert!(signature.contains("c=relaxed/relaxed;"), "{signature}");
    // What the message must show, so that the check above covered it.
    let lines: Vec<&[u8]> = raw.split(|&b| b == b'\n').collect();
    assert!(
        lines.iter().any(|l| l.starts_with(b".")),
        "{what}: no line starts with a dot, so dot-stuffing went untested"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(b" ") || l.starts_with(b"\t")),
        "{what}: no folded header"
    );
    assert!(
        parsed
            .header_raw("Feedback-ID")
            .is_some_and(|v| v.trim() == "weekly:gazette"),
        "{what}: the Feedback-ID"
    );
    // A forged header and a changed body are caught.
    let forged = String::from_utf8_lossy(raw).replacen("Feedback-ID: weekly:gazette", "Feedback-ID: forged:x", 1);
    assert!(
        dkimpy(forged.as_bytes(), name, record).is_err(),
        "{what}: a forged header verified"
    );
    let mut changed = raw.clone();
    let last = changed.len() - 3;
    changed[last] = if changed[last] == b'x' { b'y' } else { b'x' };
    assert!(
        dkimpy(&changed, name, record).is_err(),
        "{what}: a changed body verified"
    );
}

/// Text that makes transport trouble: non-ASCII, lines that start with a
/// dot once wrapped (".NET …"), a word longer than SMTP's 998-octet line
/// limit, runs of spaces and a tab.
fn awkward_summary() -> String {
    let words = "Ünïcödé “news” — .NET 10 ships; .NET tools, .config files and   spaced\ttext. ".repeat(8);
    format!("{words}{} end.", "x".repeat(1100))
}

/// A sender whose name starts a line of the confirmation with a dot once
/// folded, and makes a long non-ASCII (RFC 2047-encoded) header.
const DOTTED_FROM: &str =
    "\".NET Wöchentlich — Ünïcödé Nachrichten für Entwicklerinnen und Entwickler aus aller Welt\" <news@gazette.test>";

async fn sign_every_kind_of_message(backend: Backend, algorithm: DkimAlgorithm) {
    let dir = temp_dir();
    let key = key_file(&dir, algorithm);
    let (name, record) = published_record(algorithm, &key);
    let app: TestApp = spawn_app_with(&backend, |settings| {
        settings.mail.dkim = DkimSettings {
            domain: "gazette.test".into(),
            selector: "weekly".into(),
            private_key_file: key.clone(),
            algorithm,
        };
        settings.mail.feedback_id = "weekly:gazette".into();
        // A name that starts a line of the confirmation with a dot, and a
        // long non-ASCII subject (folded, RFC 2047-encoded).
        settings.mail.from = DOTTED_FROM.parse().unwrap();
        settings.digest.summary_max_chars = 2000;
        settings.signup.welcome = true;
    })
    .await;

    // A confirmation, as a signup sends it, and the welcome email its link
    // leads to.
    app.sign_up("Zoë", "zoe@example.com").await;
    let confirmation = app.smtp.wait_for("zoe@example.com", 1).await.remove(0);
    assert_verifies("confirmation", &confirmation, &name, &record);
    let link = confirmation.confirmation_link();
    let token = link.split("token=").nth(1).expect("a token in the link");
    let response = app.post_form("/subscriptions/confirm", &[("token", token)]).await;
    assert_eq!(response.status(), 200);
    let welcome = app.smtp.wait_for("zoe@example.com", 2).await.remove(1);
    assert!(welcome.html().contains("/preferences?token="), "the welcome email");
    assert_verifies("welcome", &welcome, &name, &record);

    // A staff test send of the draft, and the issue itself.
    let mut staff = staff_session(&app).await;
    add_confirmed_reader(
        &app,
        "ada@example.com",
        "Ada Lovelace-Byron, Gräfin von Ünïcödé und Überlänge",
    )
    .await;
    add_confirmed_reader(&app, "aigerim@example.com", "Айгерим").await;
    gazette::with_pool!(&app.db, pool => {
        sqlx::query("UPDATE subscribers SET language = 'ru' WHERE email_key = 'aigerim@example.com'")
            .execute(pool)
            .await
            .map(|_| ())
            .unwrap()
    });
    staff.page("/admin/articles/new").await;
    let title = "Ünïcödé: a very long headline about .NET, quoted “text” and more words than fit on one line";
    let summary = awkward_summary();
    let response = staff
        .post(
            "/admin/articles",
            &[
                ("url", "https://example.org/dotnet"),
                ("title", title),
                ("summary", &summary),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let key_field = hidden_field(&staff.page("/admin/issues").await, "key");
    let response = staff
        .post("/admin/issues/test", &[("key", &key_field), ("recipients", "")])
        .await;
    assert_eq!(response.status(), 303);
    let test_send = app.smtp.wait_for(STAFF_EMAIL, 1).await;
    assert_verifies("test send", &test_send[0], &name, &record);

    let confirm = staff.page("/admin/issues/send").await;
    let key_field = hidden_field(&confirm, "key");
    let response = staff.post("/admin/issues/send", &[("key", &key_field)]).await;
    assert_eq!(response.status(), 303);
    let digest = app.smtp.wait_for("ada@example.com", 1).await;
    let digest = &digest[0];
    assert!(digest.html().contains(&"x".repeat(1100)), "the long word arrived whole");
    assert_verifies("digest", digest, &name, &record);
    assert!(
        digest.parsed().header_raw("List-Unsubscribe").is_some(),
        "a digest has its list headers"
    );
    // The Russian rendering, with both of the reader's links in its footer.
    let russian = app.smtp.wait_for("aigerim@example.com", 1).await.remove(0);
    assert!(
        russian.html().contains("Настроить подписку") && russian.html().contains("/preferences?token="),
        "{}",
        russian.html()
    );
    assert_verifies("Russian digest", &russian, &name, &record);
    wait_until(
        std::time::Duration::from_secs(10),
        "the issue to be recorded",
        || async { app.count("SELECT COUNT(*) FROM deliveries WHERE status = 'sent'").await == 3 },
    )
    .await;
    let _ = std::fs::remove_dir_all(dir);
}

pub async fn every_kind_of_message_verifies_with_dkimpy_rsa_sha256(backend: Backend) {
    sign_every_kind_of_message(backend, DkimAlgorithm::Rsa).await;
}

pub async fn every_kind_of_message_verifies_with_dkimpy_ed25519_sha256(backend: Backend) {
    sign_every_kind_of_message(backend, DkimAlgorithm::Ed25519).await;
}

/// `gazette worker`, the real process, drives its connections on one
/// runtime thread and makes RSA signatures on its blocking pool: the
/// confirmation and each of a dozen readers' copies of an issue it sends
/// verify with dkimpy.
pub async fn confirmations_and_digests_verify_when_a_worker_process_signs_on_its_pool(backend: Backend) {
    let dir = temp_dir();
    let key = key_file(&dir, DkimAlgorithm::Rsa);
    let (name, record) = published_record(DkimAlgorithm::Rsa, &key);
    let app = spawn_web_only(&backend).await;
    import_fixture(&backend, chrono::Utc::now() - chrono::Duration::days(1)).await;
    let readers: Vec<(String, String)> = (1..=12)
        .map(|i| (format!("reader{i}@example.com"), format!("Reader {i}")))
        .collect();
    add_confirmed_readers(&app, &readers).await;
    assert_eq!(app.sign_up("Zoë", "zoe@example.com").await.status(), 200);
    let dispatched = run_cli(&backend, &["dispatch"]).await;
    assert!(dispatched.status.success(), "{}", text(&dispatched.stderr));

    let mut env = dkim_env(DkimAlgorithm::Rsa, &key);
    env.push(("GAZETTE_MAIL__FEEDBACK_ID", "weekly:gazette".into()));
    env.push(("GAZETTE_MAIL__FROM", DOTTED_FROM.into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let worker = WorkerProcess::start_with(&backend, app.smtp.port, &env);
    wait_until(
        std::time::Duration::from_secs(30),
        "the worker process to send the issue",
        || async { app.count("SELECT COUNT(*) FROM issues WHERE status = 'sent'").await == 1 },
    )
    .await;
    let confirmation = app.smtp.wait_for("zoe@example.com", 1).await.remove(0);
    assert_verifies("confirmation from a worker process", &confirmation, &name, &record);
    for (email, _) in &readers {
        let copy = app.smtp.wait_for(email, 1).await.remove(0);
        assert!(copy.is_digest(), "{email} got the issue");
        assert_verifies("digest from a worker process", &copy, &name, &record);
    }
    assert!(worker.stop().await.success());
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs `gazette ARGS` with `env`; its exit code and stderr. A process
/// still running after 20 s (a `serve` that did start) is killed, and the
/// test fails.
fn run(args: &[&str], env: &[(&str, String)]) -> (Option<i32>, String) {
    let dir = temp_dir();
    let mut child = gazette()
        .args(args)
        .env(
            "GAZETTE_DATABASE__URL",
            format!("sqlite://{}/gazette.db", dir.display()),
        )
        .env("GAZETTE_SERVER__PORT", "0")
        .env("GAZETTE_LOG__LEVEL", "off")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&dir);
            panic!("`gazette {}` with {env:?} started instead of refusing", args.join(" "));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(dir);
    (output.status.code(), text(&output.stderr))
}

pub fn a_dkim_key_that_cannot_be_read_or_parsed_stops_serve_and_worker() -> Result<(), libtest_mimic::Failed> {
    let dir = temp_dir();
    let garbage = dir.join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----\n",
    )?;
    let cases = [
        (DkimAlgorithm::Rsa, dir.join("missing.pem"), "cannot read"),
        (DkimAlgorithm::Rsa, garbage.clone(), "is not an RSA private key"),
        (DkimAlgorithm::Ed25519, garbage, "is not an Ed25519 private key"),
        (
            DkimAlgorithm::Ed25519,
            PathBuf::from(RSA_KEY),
            "is not an Ed25519 private key",
        ),
    ];
    for (algorithm, key, why) in cases {
        for command in [&["serve"][..], &["worker"], &["config", "check"]] {
            let (code, stderr) = run(command, &dkim_env(algorithm, &key));
            assert_eq!(code, Some(2), "{command:?} {key:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
            assert!(
                stderr.contains("mail.dkim.private_key_file") && stderr.contains(why),
                "{command:?}: {stderr}"
            );
            assert!(stderr.contains(&key.display().to_string()), "names the file: {stderr}");
        }
    }
    // A good key: config check prints the record, and nothing secret.
    let output = gazette()
        .args(["config", "check"])
        .envs(dkim_env(DkimAlgorithm::Rsa, Path::new(RSA_KEY)))
        .output()?;
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("weekly._domainkey.gazette.test. IN TXT \"v=DKIM1; k=rsa; p="),
        "{stdout}"
    );
    assert!(!stdout.contains("PRIVATE KEY"), "{stdout}");
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

pub fn mail_settings_that_cannot_hold_their_promise_stop_the_process() -> Result<(), libtest_mimic::Failed> {
    let owned = |pairs: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
    };
    let cases = [
        // A mailto nobody reads would be a broken promise in every digest.
        (
            owned(&[("GAZETTE_DIGEST__UNSUBSCRIBE_MAILTO", "leave@gazette.test")]),
            "digest.unsubscribe_mailto",
            "inbound mail",
        ),
        // A password in clear text across the network.
        (
            owned(&[
                ("GAZETTE_MAIL__SMTP__HOST", "smtp.example.org"),
                ("GAZETTE_MAIL__SMTP__USERNAME", "mailer"),
                ("GAZETTE_MAIL__SMTP__PASSWORD", "s3cret"),
            ]),
            "mail.smtp.tls",
            "unencrypted",
        ),
        (
            owned(&[
                ("GAZETTE_MAIL__SMTP__HOST", "10.1.2.3"),
                ("GAZETTE_MAIL__SMTP__USERNAME", "mailer"),
            ]),
            "mail.smtp.tls",
            "unencrypted",
        ),
        // One-click unsubscribe (RFC 8058) needs https in production.
        (
            owned(&[
                ("GAZETTE_ENV", "production"),
                ("GAZETTE_SERVER__BASE_URL", "http://news.example.org"),
                ("GAZETTE_SERVER__SESSION_KEY", &"ab".repeat(64)),
            ]),
            "server.base_url",
            "https",
        ),
        (
            owned(&[("GAZETTE_MAIL__FEEDBACK_ID", "weekly:\u{1b}[31m")]),
            "mail.feedback_id",
            "printable ASCII",
        ),
    ];
    for (env, key, why) in &cases {
        for command in [&["serve"][..], &["worker"], &["config", "check"]] {
            let (code, stderr) = run(command, env);
            assert_eq!(code, Some(2), "{env:?} {command:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
            assert!(stderr.contains(key) && stderr.contains(why), "{env:?}: {stderr}");
            assert!(!stderr.contains("s3cret"), "{stderr}");
        }
    }
    // What is allowed: credentials to a relay on this machine, TLS to any
    // relay, and http in production when the operator says so.
    let allowed = [
        owned(&[
            ("GAZETTE_MAIL__SMTP__HOST", "localhost"),
            ("GAZETTE_MAIL__SMTP__USERNAME", "mailer"),
        ]),
        owned(&[
            ("GAZETTE_MAIL__SMTP__HOST", "::1"),
            ("GAZETTE_MAIL__SMTP__USERNAME", "mailer"),
        ]),
        owned(&[
            ("GAZETTE_MAIL__SMTP__HOST", "smtp.example.org"),
            ("GAZETTE_MAIL__SMTP__TLS", "starttls"),
            ("GAZETTE_MAIL__SMTP__USERNAME", "mailer"),
        ]),
        owned(&[
            ("GAZETTE_ENV", "production"),
            ("GAZETTE_SERVER__BASE_URL", "http://news.example.org"),
            ("GAZETTE_SERVER__ALLOW_HTTP_BASE_URL", "true"),
        ]),
        owned(&[
            ("GAZETTE_ENV", "production"),
            ("GAZETTE_SERVER__BASE_URL", "https://news.example.org"),
        ]),
    ];
    // Production also wants a relay, a key and a database made beforehand.
    let database = crate::helpers::migrated_sqlite_database();
    let production = owned(&[
        ("GAZETTE_MAIL__TRANSPORT", "smtp"),
        ("GAZETTE_SERVER__SESSION_KEY", &"ab".repeat(64)),
        ("GAZETTE_DATABASE__URL", &database),
    ]);
    let allowed = allowed.map(|mut env| {
        if env.iter().any(|(k, v)| *k == "GAZETTE_ENV" && v == "production") {
            env.extend(production.iter().cloned());
        }
        env
    });
    for env in &allowed {
        let (code, stderr) = run(&["config", "check"], env);
        assert_eq!(code, Some(0), "{env:?}: {stderr}");
    }
    Ok(())
}
