//! One configuration for every command (issue 12, §1): where it is read
//! from, what each command says it uses, what production refuses, secrets
//! from files, and checks that come before the database is touched. All
//! through the real binary, as an operator's shell or unit runs it.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::cli::text;
use crate::helpers::{Backend, gazette_command as gazette};

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gazette-{what}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

fn sqlite_url(file: &Path) -> String {
    format!("sqlite://{}", file.display())
}

/// What a production machine sets: a relay, a public https site, a key.
const PRODUCTION: [(&str, &str); 5] = [
    ("GAZETTE_ENV", "production"),
    ("GAZETTE_MAIL__TRANSPORT", "smtp"),
    ("GAZETTE_SERVER__BASE_URL", "https://news.example.org"),
    ("GAZETTE_SERVER__PORT", "0"),
    (
        "GAZETTE_SERVER__SESSION_KEY",
        "abababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababab",
    ),
];

fn production(args: &[&str], env: &[(&str, &str)]) -> Output {
    gazette()
        .args(args)
        .envs(PRODUCTION)
        .envs(env.iter().copied())
        .output()
        .expect("the gazette binary runs")
}

/// In production every command refuses what only suits trying Gazette
/// out, with one line naming the key, and leaves no file behind: the file
/// transport, a site on this machine, a SQLite path relative to wherever
/// the command runs, and a database that does not exist (which only
/// `gazette migrate` creates).
pub fn production_refuses_what_only_suits_trying_gazette_out() -> Result<(), libtest_mimic::Failed> {
    let dir = temp_dir("production");
    let database = dir.join("gazette.db");
    let url = sqlite_url(&database);
    let commands: [&[&str]; 5] = [
        &["config", "check"],
        &["serve", "--no-worker"],
        &["worker"],
        &["dispatch", "--dry-run"],
        &["subscribers", "export"],
    ];
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[("GAZETTE_MAIL__TRANSPORT", "file"), ("GAZETTE_DATABASE__URL", &url)],
            "mail.transport: \"file\" writes mail into",
        ),
        (
            &[
                ("GAZETTE_SERVER__BASE_URL", "https://localhost:8443"),
                ("GAZETTE_DATABASE__URL", &url),
            ],
            "server.base_url: `https://localhost:8443` is this machine",
        ),
        (
            &[("GAZETTE_DATABASE__URL", "sqlite://data/gazette.db")],
            "database.url: `sqlite://data/gazette.db` is a path relative",
        ),
        (&[("GAZETTE_DATABASE__URL", &url)], "does not exist"),
    ];
    for (env, refusal) in cases {
        for command in commands {
            let output = production(command, env);
            let stderr = text(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{command:?} {env:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
            assert!(stderr.contains(refusal), "{command:?} {env:?}: {stderr}");
            assert!(!database.exists(), "{command:?} created the database");
        }
    }
    // Outside production a command that only uses the database refuses a
    // missing one too, and leaves no empty file behind.
    let local = gazette()
        .args(["subscribers", "export"])
        .env("GAZETTE_DATABASE__URL", &url)
        .output()?;
    assert_eq!(local.status.code(), Some(2), "{}", text(&local.stderr));
    assert!(text(&local.stderr).contains("run `gazette migrate` first"));
    assert!(!database.exists());
    // `gazette migrate` is told to make the database; then the others run.
    let migrated = production(&["migrate"], &[("GAZETTE_DATABASE__URL", &url)]);
    assert!(migrated.status.success(), "{}", text(&migrated.stderr));
    assert!(database.exists());
    let export = production(&["subscribers", "export"], &[("GAZETTE_DATABASE__URL", &url)]);
    assert!(export.status.success(), "{}", text(&export.stderr));
    // `gazette restore` may also make it, from a backup, on a new machine.
    let backup = dir.join("backup.db");
    let backed_up = production(
        &["backup", backup.to_str().unwrap()],
        &[("GAZETTE_DATABASE__URL", &url)],
    );
    assert!(backed_up.status.success(), "{}", text(&backed_up.stderr));
    let elsewhere = dir.join("restored.db");
    let restored = production(
        &["restore", backup.to_str().unwrap()],
        &[("GAZETTE_DATABASE__URL", &sqlite_url(&elsewhere))],
    );
    assert!(restored.status.success(), "{}", text(&restored.stderr));
    assert!(elsewhere.exists());
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Each command says on stderr, before it acts, which configuration
/// (directory, files, variables) and which database it uses; a named
/// configuration directory that does not exist stops it.
pub fn every_command_says_which_configuration_and_database_it_uses() -> Result<(), libtest_mimic::Failed> {
    let dir = temp_dir("config-dir");
    std::fs::write(dir.join("default.toml"), "[digest]\nmax_articles = 7\n")?;
    let url = sqlite_url(&dir.join("gazette.db"));
    let migrated = gazette()
        .args(["migrate"])
        .env("GAZETTE_CONFIG_DIR", &dir)
        .env("GAZETTE_DATABASE__URL", &url)
        .output()?;
    assert!(migrated.status.success(), "{}", text(&migrated.stderr));
    for command in [&["dispatch", "--dry-run"][..], &["subscribers", "export"], &["migrate"]] {
        let output = gazette()
            .args(command)
            .env("GAZETTE_CONFIG_DIR", &dir)
            .env("GAZETTE_DATABASE__URL", &url)
            .output()?;
        let stderr = text(&output.stderr);
        assert!(output.status.success(), "{command:?}: {stderr}");
        let expected = format!(
            "gazette: configuration {} (default.toml) and GAZETTE_DATABASE__URL, GAZETTE_METRICS__LISTEN; database {url}",
            dir.display()
        );
        assert_eq!(stderr.lines().next(), Some(expected.as_str()), "{command:?}: {stderr}");
    }
    // Another environment's file is named as not read: run without
    // GAZETTE_ENV=production, a command shows it left production.toml out.
    std::fs::write(dir.join("production.toml"), "[digest]\nmax_articles = 5\n")?;
    let output = gazette()
        .args(["subscribers", "export"])
        .env("GAZETTE_CONFIG_DIR", &dir)
        .env("GAZETTE_DATABASE__URL", &url)
        .output()?;
    let stderr = text(&output.stderr);
    assert!(
        stderr.lines().next().is_some_and(|l| l.contains(
            "(default.toml) and GAZETTE_DATABASE__URL, GAZETTE_METRICS__LISTEN; not read: \
                                         production.toml (GAZETTE_ENV is local); database "
        )),
        "{stderr}"
    );
    std::fs::remove_file(dir.join("production.toml"))?;
    // `config check` says it in its own output.
    let output = gazette()
        .args(["config", "check"])
        .env("GAZETTE_CONFIG_DIR", &dir)
        .env("GAZETTE_DATABASE__URL", &url)
        .output()?;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        stdout.contains(&format!("# read from {} (default.toml)", dir.display())),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("# database: {url} answers")), "{stdout}");
    assert!(stdout.contains("digest.max_articles = \"7\""), "{stdout}");
    // A directory named but missing is a typo, not a reason to use defaults.
    let missing = dir.join("nowhere");
    for named in [
        gazette()
            .args(["--config-dir"])
            .arg(&missing)
            .args(["dispatch", "--dry-run"])
            .output()?,
        gazette()
            .env("GAZETTE_CONFIG_DIR", &missing)
            .args(["config", "check"])
            .output()?,
    ] {
        let stderr = text(&named.stderr);
        assert_eq!(named.status.code(), Some(2), "{stderr}");
        assert_eq!(
            stderr.trim_end(),
            format!(
                "gazette: invalid configuration: the configuration directory {} (--config-dir or GAZETTE_CONFIG_DIR) does not exist",
                missing.display()
            )
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A bad mail setting stops `serve` and `worker` before the database is
/// opened: no SQLite file, not even its directory, is made.
pub fn the_configuration_is_checked_before_the_database_is_touched() -> Result<(), libtest_mimic::Failed> {
    let dir = temp_dir("untouched");
    let database = dir.join("not-yet").join("gazette.db");
    for command in [&["serve"][..], &["worker"]] {
        let output = gazette()
            .args(command)
            .env("GAZETTE_DATABASE__URL", sqlite_url(&database))
            .env("GAZETTE_SERVER__PORT", "0")
            .env("GAZETTE_MAIL__TRANSPORT", "smtp")
            .env("GAZETTE_MAIL__SMTP__TLS", "starttls")
            .env("GAZETTE_MAIL__SMTP__CA_FILE", "/nonexistent/relay-ca.pem")
            .output()?;
        assert_eq!(output.status.code(), Some(2), "{command:?}: {}", text(&output.stderr));
        assert!(!database.parent().unwrap().exists(), "{command:?} touched the database");
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// `config check` tries the database: one that answers is reported so,
/// one that does not exits 1 (it may come up; restarting can help), and a
/// URL that cannot be a database's exits 2.
pub async fn config_check_reports_whether_the_database_answers(backend: Backend) {
    let check = |url: &str| {
        gazette()
            .args(["config", "check"])
            .env("GAZETTE_DATABASE__URL", url)
            .output()
            .unwrap()
    };
    let migrated = gazette()
        .arg("migrate")
        .env("GAZETTE_DATABASE__URL", backend.database_url())
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{}", text(&migrated.stderr));
    let answers = check(backend.database_url());
    let stdout = text(&answers.stdout);
    assert!(answers.status.success(), "{}", text(&answers.stderr));
    assert!(stdout.contains("answers"), "{stdout}");
    let down = check("postgres://gazette:s3cret@127.0.0.1:1/gazette");
    let stderr = text(&down.stderr);
    assert_eq!(down.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("postgres://gazette:***@127.0.0.1:1/gazette"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
    let bad = check("postgres://gazette@127.0.0.1:notaport/gazette");
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    assert!(text(&bad.stderr).contains("database.url"), "{}", text(&bad.stderr));
}

/// Secrets can come from files (what systemd's credentials are), and the
/// session key the instructions make works, whether the instruction's own
/// one-line hex or openssl's two-line base64 ends up in the file.
pub fn secrets_come_from_files_and_the_session_key_instructions_make_a_working_key() -> Result<(), libtest_mimic::Failed>
{
    let dir = temp_dir("secrets");
    let url = sqlite_url(&dir.join("gazette.db"));
    let migrated = production(&["migrate"], &[("GAZETTE_DATABASE__URL", &url)]);
    assert!(migrated.status.success(), "{}", text(&migrated.stderr));
    // The refusal names the command that makes a key.
    let refused = production(
        &["serve"],
        &[("GAZETTE_DATABASE__URL", &url), ("GAZETTE_SERVER__SESSION_KEY", "")],
    );
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    let instruction = stderr.split('`').nth(1).expect("a command in backquotes");
    assert_eq!(instruction, "openssl rand -hex 64");
    let url_file = dir.join("database_url");
    std::fs::write(&url_file, format!("{url}\n"))?;
    let password_file = dir.join("smtp_password");
    std::fs::write(&password_file, "relay-s3cret\n")?;
    for maker in [instruction, "openssl rand -base64 64"] {
        let made = std::process::Command::new("sh").args(["-c", maker]).output()?;
        assert!(made.status.success());
        let key_file = dir.join("session_key");
        std::fs::write(&key_file, &made.stdout)?;
        let files = [
            ("GAZETTE_SERVER__SESSION_KEY", ""),
            ("GAZETTE_SERVER__SESSION_KEY_FILE", key_file.to_str().unwrap()),
            ("GAZETTE_DATABASE__URL_FILE", url_file.to_str().unwrap()),
            ("GAZETTE_MAIL__SMTP__USERNAME", "mailer"),
            ("GAZETTE_MAIL__SMTP__TLS", "starttls"),
            ("GAZETTE_MAIL__SMTP__PASSWORD_FILE", password_file.to_str().unwrap()),
        ];
        let checked = production(&["config", "check"], &files);
        let stdout = text(&checked.stdout);
        assert!(checked.status.success(), "{maker}: {}", text(&checked.stderr));
        assert!(stdout.contains(&format!("# database: {url} answers")), "{stdout}");
        assert!(!stdout.contains("relay-s3cret"), "{stdout}");
        // The web role starts on that key and answers.
        let mut serve = gazette()
            .args(["serve", "--no-worker", "--no-scheduler"])
            .envs(PRODUCTION)
            .envs(files)
            .env("GAZETTE_SERVER__PORT", crate::helpers::free_port().to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let started = wait_for_line(serve.stderr.take().unwrap(), "Gazette is running");
        let _ = serve.kill();
        let _ = serve.wait();
        assert!(started.is_ok(), "{maker}: {started:?}");
    }
    // A secret and its file together: which one was meant?
    let both = production(
        &["config", "check"],
        &[
            ("GAZETTE_DATABASE__URL_FILE", url_file.to_str().unwrap()),
            ("GAZETTE_MAIL__SMTP__PASSWORD", "x"),
            ("GAZETTE_MAIL__SMTP__PASSWORD_FILE", password_file.to_str().unwrap()),
        ],
    );
    assert_eq!(both.status.code(), Some(2));
    assert!(text(&both.stderr).contains("mail.smtp.password and mail.smtp.password_file are both set"));
    let unreadable = production(
        &["config", "check"],
        &[("GAZETTE_DATABASE__URL_FILE", "/nonexistent/url")],
    );
    assert_eq!(unreadable.status.code(), Some(2));
    assert!(text(&unreadable.stderr).contains("database.url_file: cannot read /nonexistent/url"));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Reads lines until one contains `wanted`; the lines read so far if the
/// stream ends first.
fn wait_for_line(stream: impl std::io::Read, wanted: &str) -> Result<(), String> {
    use std::io::BufRead;
    let mut seen = String::new();
    for line in std::io::BufReader::new(stream).lines() {
        let line = line.map_err(|e| e.to_string())?;
        if line.contains(wanted) {
            return Ok(());
        }
        seen.push_str(&line);
        seen.push('\n');
    }
    Err(seen)
}

/// A default language without a catalogue stops every command, naming the
/// key and the languages there are.
pub fn a_default_language_without_a_catalogue_is_refused() -> Result<(), libtest_mimic::Failed> {
    for command in [&["config", "check"][..], &["serve"]] {
        let output = gazette()
            .args(command)
            .env("GAZETTE_SERVER__PORT", "0")
            .env("GAZETTE_SITE__DEFAULT_LANGUAGE", "de")
            .output()?;
        assert_eq!(output.status.code(), Some(2), "{command:?}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains("site.default_language") && stderr.contains("(en, ru)"),
            "{command:?}: {stderr}"
        );
    }
    Ok(())
}
