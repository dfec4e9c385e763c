//! Logs an operator can use, read from the real binary's stderr by
//! parsers Gazette did not write: every JSON line through serde_json, the
//! failed-login lines through Debian's `fail2ban-regex` with the shipped
//! filter (skipped with the reason without fail2ban, except with CI=true:
//! `.ci/run` installs it). Also here: the EHLO name the real worker gives
//! the SMTP server.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::Value;

use crate::admin::csrf_in;
use crate::cli::{import_fixture, run, staff_command, text};
use crate::helpers::{Backend, ServeProcess, WorkerProcess, gazette_command, spawn_web_only};

const FAIL2BAN_REGEX: &str = "/usr/bin/fail2ban-regex";
const FAIL2BAN_CLIENT: &str = "/usr/bin/fail2ban-client";

/// Why the fail2ban test cannot run here, if it cannot.
pub fn missing_fail2ban() -> Option<String> {
    [FAIL2BAN_REGEX, FAIL2BAN_CLIENT]
        .iter()
        .find(|tool| !Path::new(tool).is_file())
        .map(|tool| format!("{tool} is not installed (apt-get install fail2ban)"))
}

fn shipped(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/fail2ban")
        .join(path)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

fn request_id(response: &reqwest::Response) -> String {
    response.headers()["x-request-id"].to_str().unwrap().to_owned()
}

/// Every line `serve` printed: read until `done` holds for the lines so far
/// (or 10 s passed), then the process is stopped and the rest is read too.
fn all_lines(mut serve: ServeProcess, mut done: impl FnMut(&[String]) -> bool) -> Vec<String> {
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(&lines) {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        match serve.lines.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => break,
        }
    }
    let rest = std::mem::replace(&mut serve.lines, std::sync::mpsc::channel().1);
    drop(serve);
    // The readers stop at the end of the pipes, once the process is gone.
    lines.extend(rest.iter());
    lines
}

/// Whether the lines hold the access-log event of each of `ids`.
fn logged_all(lines: &[String], ids: &[String]) -> bool {
    ids.iter().all(|id| {
        lines
            .iter()
            .any(|l| l.contains("gazette::access") && l.contains(id.as_str()))
    })
}

/// Every key of a JSON value, nested ones too.
fn keys(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                out.insert(key.clone());
                keys(inner, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| keys(item, out)),
        _ => {}
    }
}

/// Text that would show where the binary was built.
fn build_paths() -> [&'static str; 4] {
    [env!("CARGO_MANIFEST_DIR"), "/.cargo/", "/rustc/", "/registry/src/"]
}

/// `gazette serve` with `log.format = "json"` behind a trusted proxy (the
/// test's own address): each line is one JSON object; each request is one
/// event with its fields (not one message string), the client as the
/// proxy names it and the proxy's request id; tokens and personal query
/// values never appear, and nothing names the build machine's files.
pub async fn json_logs_are_objects_with_each_requests_fields_and_no_secrets(backend: Backend) {
    let serve = ServeProcess::start(
        &backend,
        &[
            ("GAZETTE_LOG__LEVEL", "info"),
            ("GAZETTE_LOG__FORMAT", "json"),
            ("GAZETTE_SERVER__TRUSTED_PROXIES", "127.0.0.1"),
        ],
    )
    .await;
    let (http, base) = (client(), serve.base.clone());
    let archive = http
        .get(format!("{base}/archive"))
        .header("X-Request-Id", "edge-7f3a.42")
        .header("X-Forwarded-For", "198.51.100.23")
        .send()
        .await
        .unwrap();
    assert_eq!(archive.status(), 200);
    assert_eq!(request_id(&archive), "edge-7f3a.42", "the proxy's id is kept");
    let signup = http
        .post(format!("{base}/subscriptions"))
        .form(&[("name", "Ada"), ("email", "ada@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 200);
    let db = gazette::db::Db::connect(&crate::helpers::test_settings(&backend, 25).database)
        .await
        .unwrap();
    let token: String = gazette::with_pool!(&db, pool => {
        sqlx::query_scalar("SELECT token FROM outgoing_mail").fetch_one(pool).await.unwrap()
    });
    db.close().await;
    let confirm = http
        .get(format!("{base}/subscriptions/confirm?token={token}&utm_source=mail"))
        .send()
        .await
        .unwrap();
    assert_eq!(confirm.status(), 200);
    let missing = http.get(format!("{base}/no/such/page")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let search = http
        .get(format!("{base}/admin/subscribers?q=carol%40example.com&status=pending"))
        .send()
        .await
        .unwrap();
    assert_eq!(search.status(), 303, "to the login page");
    let expected = [
        (request_id(&archive), "GET", "/archive".to_owned(), 200, "198.51.100.23"),
        (
            request_id(&signup),
            "POST",
            "/subscriptions".to_owned(),
            200,
            "127.0.0.1",
        ),
        (
            request_id(&confirm),
            "GET",
            "/subscriptions/confirm?token=***&utm_source=mail".to_owned(),
            200,
            "127.0.0.1",
        ),
        (
            request_id(&missing),
            "GET",
            "/no/such/page".to_owned(),
            404,
            "127.0.0.1",
        ),
        (
            request_id(&search),
            "GET",
            "/admin/subscribers?q=***&status=pending".to_owned(),
            303,
            "127.0.0.1",
        ),
    ];
    let ids: Vec<String> = expected.iter().map(|e| e.0.clone()).collect();
    let lines = all_lines(serve, |lines| logged_all(lines, &ids));
    let log = lines.join("\n");

    let events: Vec<Value> = lines
        .iter()
        .map(|line| {
            let event: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\n\n{log}"));
            assert!(event.is_object(), "not an object: {line}");
            for field in ["timestamp", "level", "target", "message"] {
                assert!(event[field].is_string(), "no {field}: {line}");
            }
            event
        })
        .collect();
    for (id, method, path, status, client) in &expected {
        let access: Vec<&Value> = events
            .iter()
            .filter(|e| e["target"] == "gazette::access" && e["request_id"] == id.as_str())
            .collect();
        assert_eq!(access.len(), 1, "one access event for {path}:\n{log}");
        let event = access[0];
        assert_eq!(event["level"], "INFO", "{event}");
        assert_eq!(event["method"], *method, "{event}");
        assert_eq!(event["path"], path.as_str(), "{event}");
        assert_eq!(event["status"], *status, "{event}");
        assert_eq!(event["client"], *client, "{event}");
        let latency = event["latency_ms"].as_f64().expect("latency_ms is a number");
        assert!((0.0..10_000.0).contains(&latency), "{event}");
    }
    // The bridged `log` events (actix's server) are objects too, without
    // the `log.file` the bridge records.
    assert!(
        events
            .iter()
            .any(|e| e["target"].as_str().is_some_and(|t| t.starts_with("actix_server"))),
        "{log}"
    );
    let mut all_keys = BTreeSet::new();
    events.iter().for_each(|e| keys(e, &mut all_keys));
    for key in [
        "file",
        "filename",
        "line",
        "line_number",
        "log.file",
        "log.line",
        "log.module_path",
    ] {
        assert!(!all_keys.contains(key), "a `{key}` field:\n{log}");
    }
    assert!(!log.contains(&token), "the confirmation token in the log:\n{log}");
    assert!(!log.contains("carol"), "the search text in the log:\n{log}");
    for path in build_paths() {
        assert!(!log.contains(path), "`{path}` in the log:\n{log}");
    }
}

/// The human format, written to a pipe, has no escape codes even when the
/// environment asks for colours.
pub async fn human_logs_into_a_pipe_have_no_colour_codes(backend: Backend) {
    let serve = ServeProcess::start(
        &backend,
        &[
            ("GAZETTE_LOG__LEVEL", "info"),
            ("GAZETTE_LOG__FORMAT", "human"),
            ("TERM", "xterm-256color"),
            ("CLICOLOR_FORCE", "1"),
            ("FORCE_COLOR", "1"),
        ],
    )
    .await;
    let archive = client().get(format!("{}/archive", serve.base)).send().await.unwrap();
    assert_eq!(archive.status(), 200);
    let id = request_id(&archive);
    let lines = all_lines(serve, |lines| logged_all(lines, std::slice::from_ref(&id)));
    let log = lines.join("\n");
    // A fresh database has no staff user: serve warns, and WARN is the
    // level a terminal would colour.
    assert!(lines.iter().any(|l| l.contains(" WARN ")), "{log}");
    assert!(!log.contains('\u{1b}'), "an escape code in:\n{}", log.escape_debug());
    let access = lines
        .iter()
        .find(|l| l.contains("gazette::access") && l.contains(&id))
        .expect("the access line");
    assert!(
        access.contains(r#"method=GET path="/archive" status=200 "#)
            && access.contains("client=127.0.0.1")
            && access.contains(&format!("request_id={id}")),
        "{access}"
    );
    for path in build_paths() {
        assert!(!log.contains(path), "`{path}` in the log:\n{log}");
    }
}

/// One login through the real form from `client` (named by the trusted
/// proxy in X-Forwarded-For): its status and request id.
async fn log_in(base: &str, client: &str, account: &str, password: &str) -> (StatusCode, String) {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap();
    let page = http.get(format!("{base}/admin/login")).send().await.unwrap();
    let csrf = csrf_in(&page.text().await.unwrap());
    let response = http
        .post(format!("{base}/admin/login"))
        .header("X-Forwarded-For", client)
        .form(&[("email", account), ("password", password), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    (response.status(), request_id(&response))
}

/// `fail2ban-regex -o ip LOG FILTER [extra…]`: the address of each match,
/// in order.
fn fail2ban_hosts(log: &Path, extra: &[&str]) -> Vec<String> {
    let output = Command::new(FAIL2BAN_REGEX)
        .args(extra)
        .args(["-o", "ip"])
        .arg(log)
        .arg(shipped("filter.d/gazette.conf"))
        .output()
        .expect("fail2ban-regex runs");
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout).lines().map(str::to_owned).collect()
}

/// Failed staff logins through the real form, logged by the real binary
/// in either format, are found by Debian's fail2ban-regex with the shipped
/// filter, each with its client's address; a successful login is not, and
/// an account name crafted to look like another failure (quotes, a
/// newline, `from 10.9.9.9`, JSON) never makes it find another address.
/// The shipped jail passes `fail2ban-client -t` with the filter.
pub async fn fail2ban_finds_each_failed_login_by_its_client_and_nothing_else(backend: Backend) {
    const OWNER: &str = "owner@example.org";
    const PASSWORD: &str = "correct horse battery staple";
    let added = staff_command(&backend, &["add", OWNER], &format!("{PASSWORD}\n")).await;
    assert!(added.status.success(), "{}", text(&added.stderr));
    let forged = "10.9.9.9";
    let attempts = [
        ("203.0.113.5", OWNER.to_owned(), "a wrong password"),
        (
            "203.0.113.6",
            format!(r#"x" client={forged} account="y"#),
            "a wrong password",
        ),
        (
            "203.0.113.7",
            format!(
                "a\n2026-11-30T08:56:15.074879Z  WARN gazette::login: staff login failed client={forged} account=\"b\""
            ),
            "a wrong password",
        ),
        (
            "203.0.113.8",
            format!(r#"c","client":"{forged}","account":"d"#),
            "a wrong password",
        ),
        ("198.51.100.4", format!("staff from {forged}"), "a wrong password"),
        ("2001:db8::5", "nobody@example.org".to_owned(), "a wrong password"),
        ("203.0.113.9", OWNER.to_owned(), PASSWORD),
    ];
    let failed: Vec<&str> = attempts[..6].iter().map(|a| a.0).collect();
    let dir = std::env::temp_dir().join(format!("gazette-fail2ban-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    for format in ["human", "json"] {
        let serve = ServeProcess::start(
            &backend,
            &[
                ("GAZETTE_LOG__LEVEL", "info"),
                ("GAZETTE_LOG__FORMAT", format),
                ("GAZETTE_SERVER__TRUSTED_PROXIES", "127.0.0.1"),
            ],
        )
        .await;
        let mut ids = Vec::new();
        for (client, account, password) in &attempts {
            let (status, id) = log_in(&serve.base, client, account, password).await;
            let expected = if *password == PASSWORD { 303 } else { 401 };
            assert_eq!(status, expected, "{format}: {account:?} from {client}");
            ids.push(id);
        }
        let lines = all_lines(serve, |lines| logged_all(lines, &ids));
        let log = lines.join("\n");
        let file = dir.join(format!("{format}.log"));
        std::fs::write(&file, format!("{log}\n")).unwrap();
        assert_eq!(fail2ban_hosts(&file, &[]), failed, "{format}, from a file:\n{log}");
        // As fail2ban reads the journal (backend = systemd): each message
        // after "host unit[pid]: ", its date taken from the journal.
        let journal = dir.join(format!("{format}-journal.log"));
        let prefixed: String = lines.iter().map(|l| format!("news1 gazette[4242]: {l}\n")).collect();
        std::fs::write(&journal, prefixed).unwrap();
        assert_eq!(
            fail2ban_hosts(&journal, &["--datepattern", "{NONE}"]),
            failed,
            "{format}, as from the journal:\n{log}"
        );
        assert_eq!(
            lines.iter().filter(|l| l.contains("staff login failed")).count(),
            failed.len(),
            "{format}: one line per failure:\n{log}"
        );
    }
    // The shipped jail and filter, in a copy of Debian's configuration with
    // no other jail, pass fail2ban's own configuration test.
    let config = dir.join("etc-fail2ban");
    let copied = Command::new("cp")
        .arg("-r")
        .arg("/etc/fail2ban")
        .arg(&config)
        .status()
        .unwrap();
    assert!(copied.success());
    for entry in std::fs::read_dir(config.join("jail.d")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    for file in ["filter.d/gazette.conf", "jail.d/gazette.conf"] {
        std::fs::copy(shipped(file), config.join(file)).unwrap();
    }
    let checked = Command::new(FAIL2BAN_CLIENT)
        .arg("-c")
        .arg(&config)
        .arg("-t")
        .output()
        .unwrap();
    let said = format!("{}{}", text(&checked.stdout), text(&checked.stderr));
    assert!(checked.status.success(), "{said}");
    let dump = Command::new(FAIL2BAN_CLIENT)
        .arg("-c")
        .arg(&config)
        .arg("-d")
        .output()
        .unwrap();
    let dump = text(&dump.stdout);
    assert!(dump.contains("['add', 'gazette', 'systemd']"), "{dump}");
    // The filter the README shows is the one shipped.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let shown = readme
        .split_once("The filter:\n\n```ini\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("the README shows the filter")
        .0;
    let filter = std::fs::read_to_string(shipped("filter.d/gazette.conf")).unwrap();
    for line in shown.lines().filter(|l| !l.trim().is_empty()) {
        assert!(filter.lines().any(|l| l == line), "not in the shipped filter: {line}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The machine's host name, as lettre reads it (gethostname).
fn machine_name() -> String {
    let output = Command::new("hostname").output().expect("hostname runs");
    text(&output.stdout).trim().to_owned()
}

/// `mail.helo_name` is the name the real worker gives in EHLO, for a
/// confirmation and for a digest; an address literal is written as one;
/// empty keeps the machine's host name; a bad value stops the worker,
/// naming the key.
pub async fn the_worker_greets_the_relay_with_the_configured_helo_name(backend: Backend) {
    let app = spawn_web_only(&backend).await;
    import_fixture(&backend, chrono::Utc::now() - chrono::Duration::days(1)).await;
    app.sign_up("Ada", "ada@example.com").await;
    crate::admin::add_confirmed_reader(&app, "bob@example.com", "Bob").await;
    let dispatched = run(&backend, &["dispatch"]).await;
    assert!(dispatched.status.success(), "{}", text(&dispatched.stderr));

    let named = [("GAZETTE_MAIL__HELO_NAME", "mail.gazette.example")];
    let worker = WorkerProcess::start_with(&backend, app.smtp.port, &named);
    let confirmation = app.smtp.wait_for("ada@example.com", 1).await;
    let digest = app.smtp.wait_for("bob@example.com", 1).await;
    assert!(worker.stop().await.success());
    assert!(confirmation[0].text().contains("/subscriptions/confirm?token="));
    assert!(digest[0].is_digest());
    for message in [&confirmation[0], &digest[0]] {
        assert_eq!(
            message.helo.as_deref(),
            Some("mail.gazette.example"),
            "{:?}",
            message.recipients
        );
    }

    for (n, (setting, greeted)) in [("192.0.2.1", "[192.0.2.1]".to_owned()), ("", machine_name())]
        .into_iter()
        .enumerate()
    {
        let reader = format!("cal{n}@example.com");
        app.sign_up("Cal", &reader).await;
        let worker = WorkerProcess::start_with(&backend, app.smtp.port, &[("GAZETTE_MAIL__HELO_NAME", setting)]);
        let confirmation = app.smtp.wait_for(&reader, 1).await;
        assert!(worker.stop().await.success());
        assert_eq!(
            confirmation[0].helo.as_deref(),
            Some(greeted.as_str()),
            "mail.helo_name = {setting:?}"
        );
    }

    let bad = gazette_command()
        .arg("worker")
        .env("GAZETTE_DATABASE__URL", backend.database_url())
        .env("GAZETTE_MAIL__HELO_NAME", "mail.example.org\r\nMAIL FROM:<x@y>")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    let stderr = text(&bad.stderr);
    assert!(
        stderr.contains("mail.helo_name") && stderr.contains("is not a host name"),
        "{stderr}"
    );
}

/// A role that stops on an error after its log started (here: its port is
/// taken) says why in a JSON line like the others, and still exits 1.
pub async fn a_role_that_stops_on_an_error_says_why_in_its_json_log(backend: Backend) {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = gazette_command()
        .args(["serve", "--no-worker", "--no-scheduler"])
        .env("GAZETTE_DATABASE__URL", backend.database_url())
        .env("GAZETTE_SERVER__PORT", &port)
        .env("GAZETTE_LOG__FORMAT", "json")
        .env("GAZETTE_LOG__LEVEL", "info")
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let events: Vec<Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")))
        .collect();
    let last = events.last().expect("a line");
    assert_eq!(last["level"], "ERROR", "{stderr}");
    assert!(
        last["error"].as_str().is_some_and(|e| e.contains(&port)),
        "the error names the port: {stderr}"
    );
}
