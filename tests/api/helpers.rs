//! One way to start the application for a test: `spawn_app`, on its own
//! database (a fresh SQLite file or PostgreSQL database) and with a real
//! SMTP server in the same process that records what it receives.

use std::future::Future;
use std::net::TcpListener;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

use gazette::app::{Application, Roles};
use gazette::config::Settings;
use gazette::db::Db;
use gazette::domain::AddressPolicy;
use gazette::mail::DkimSigner;
use gazette::with_pool;
use mail_parser::MessageParser;

pub use crate::smtp_server::{DropPoint, Outage, Received, SinkTls, SmtpSink};

pub type TestFn = fn(Backend) -> Pin<Box<dyn Future<Output = ()>>>;

/// Where a test's data lives: each test gets its own.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite { url: String },
    Postgres { url: String },
}

/// A test that takes longer is stuck; it fails instead of hanging the run.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Tests whose work grows with the project, with their own limit. The
/// upgrade test builds a database at every schema version and migrates
/// each to the newest (quadratic in the migrations): 39 s alone on
/// PostgreSQL at 18 migrations on this 2-core machine, over 60 s when the
/// whole suite runs beside it. The limit catches a hang, not slowness.
const LONGER: &[(&str, Duration)] = &[
    (
        "schema::a_database_filled_by_every_earlier_version_migrates_without_loss",
        Duration::from_secs(240),
    ),
    // Schemathesis runs its thousand-odd requests in well under a minute
    // alone, but shares 2 cores with the whole suite.
    (
        "json_api::schemathesis_finds_no_server_error_and_every_response_matches",
        Duration::from_secs(180),
    ),
];

fn time_limit(name: &str) -> Duration {
    LONGER
        .iter()
        .find(|(test, _)| *test == name)
        .map_or(TEST_TIMEOUT, |(_, limit)| *limit)
}

/// The environment variable that turns on the PostgreSQL half.
const POSTGRES_URL_VAR: &str = "GAZETTE_TEST_POSTGRES_URL";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Sqlite,
    Postgres,
}

pub struct BackendSpec(Kind);

impl Backend {
    pub fn all() -> [BackendSpec; 2] {
        [BackendSpec(Kind::Sqlite), BackendSpec(Kind::Postgres)]
    }

    /// For a test of what only PostgreSQL has.
    pub fn postgres() -> BackendSpec {
        BackendSpec(Kind::Postgres)
    }

    pub fn database_url(&self) -> &str {
        match self {
            Backend::Sqlite { url } | Backend::Postgres { url } => url,
        }
    }
}

impl Clone for BackendSpec {
    fn clone(&self) -> Self {
        BackendSpec(self.0)
    }
}

/// A test, named `sqlite::…` or `postgres::…`, that creates its database,
/// runs, and drops the database whatever happened.
pub fn trial(spec: BackendSpec, name: &str, test: TestFn) -> libtest_mimic::Trial {
    let kind = spec.0;
    let prefix = match kind {
        Kind::Sqlite => "sqlite",
        Kind::Postgres => "postgres",
    };
    let postgres_url = std::env::var(POSTGRES_URL_VAR).ok().filter(|u| !u.is_empty());
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let skip = kind == Kind::Postgres && postgres_url.is_none() && !in_ci;
    let limit = time_limit(name);
    let trial = libtest_mimic::Trial::test(format!("{prefix}::{name}"), move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let database = runtime.block_on(TestDatabase::create(kind, postgres_url.as_deref()))?;
        let backend = database.backend.clone();
        // Every test starts from the schema this build knows, as after
        // `gazette migrate`: the other commands refuse an empty database.
        if let Err(e) = runtime.block_on(migrate(&backend)) {
            database.drop_now();
            return Err(e.into());
        }
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            runtime.block_on(async {
                if tokio::time::timeout(limit, test(backend)).await.is_err() {
                    panic!("the test did not finish within {limit:?}");
                }
            })
        }));
        runtime.shutdown_timeout(Duration::from_secs(5));
        database.drop_now();
        outcome.map_err(|panic| {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the test panicked".into());
            message.into()
        })
    });
    if skip {
        trial
            .with_ignored_flag(true)
            .with_kind(format!("skipped: {POSTGRES_URL_VAR} is not set"))
    } else {
        trial
    }
}

struct TestDatabase {
    backend: Backend,
    cleanup: Cleanup,
}

enum Cleanup {
    Directory(PathBuf),
    PostgresDatabase { admin_url: String, name: String },
}

impl TestDatabase {
    async fn create(kind: Kind, postgres_url: Option<&str>) -> Result<Self, String> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        match kind {
            Kind::Sqlite => {
                let dir = std::env::temp_dir().join(format!("gazette-test-{id}"));
                std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                let url = format!("sqlite://{}/gazette.db", dir.display());
                Ok(Self {
                    backend: Backend::Sqlite { url },
                    cleanup: Cleanup::Directory(dir),
                })
            }
            Kind::Postgres => {
                let admin_url = postgres_url.ok_or_else(|| {
                    format!("CI=true, so the PostgreSQL tests must run, but {POSTGRES_URL_VAR} is not set")
                })?;
                let name = format!("gazette_test_{id}");
                let admin = admin_pool(admin_url).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&admin)
                    .await
                    .map_err(|e| format!("cannot create a test database on {admin_url}: {e}"))?;
                admin.close().await;
                let mut url = url::Url::parse(admin_url).map_err(|e| format!("{POSTGRES_URL_VAR}: {e}"))?;
                url.set_path(&name);
                Ok(Self {
                    backend: Backend::Postgres { url: url.to_string() },
                    cleanup: Cleanup::PostgresDatabase {
                        admin_url: admin_url.to_owned(),
                        name,
                    },
                })
            }
        }
    }

    fn drop_now(self) {
        match self.cleanup {
            Cleanup::Directory(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::PostgresDatabase { admin_url, name } => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    if let Ok(admin) = admin_pool(&admin_url).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .execute(&admin)
                        .await;
                        admin.close().await;
                    }
                });
            }
        }
    }
}

/// `gazette migrate`'s work on the test's database, through the library.
pub async fn migrate(backend: &Backend) -> Result<(), String> {
    let settings = test_settings(backend, 25);
    let db = gazette::app::database(&settings, gazette::app::Schema::Migrate)
        .await
        .map_err(|e| format!("cannot migrate the test database: {e}"))?;
    db.close().await;
    Ok(())
}

async fn admin_pool(url: &str) -> Result<sqlx::PgPool, String> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|e| format!("cannot reach PostgreSQL at {url}: {e}"))
}

/// Tests' addresses (staff, test sends) live at `gazette.test`: the
/// settings every test starts from allow `.test` domains, and so does this
/// policy for what a test parses itself.
pub const TEST_ADDRESSES: AddressPolicy = AddressPolicy {
    allow_test_domains: true,
    allow_special_use: false,
};

/// The base URL the app puts in its links; tests swap it for the real address.
pub const BASE_URL: &str = "http://gazette.test";

/// A running application and the SMTP server it sends to.
pub struct TestApp {
    pub address: String,
    /// Where `/metrics` is served (its own listener, port 0 in tests).
    pub metrics_address: Option<String>,
    pub db: Db,
    pub smtp: SmtpSink,
    pub client: reqwest::Client,
}

/// Settings every test starts from: the checked-in defaults, this test's
/// database, port 0, SMTP to `smtp_port`, fast polling and retries.
pub fn test_settings(backend: &Backend, smtp_port: u16) -> Settings {
    let config_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    Settings::load_with(&config_dir, |builder| {
        builder
            .set_override("server.port", 0)
            .unwrap()
            .set_override("metrics.listen", "127.0.0.1:0")
            .unwrap()
            .set_override("server.base_url", BASE_URL)
            .unwrap()
            .set_override("database.url", backend.database_url())
            .unwrap()
            .set_override("mail.transport", "smtp")
            .unwrap()
            .set_override("mail.smtp.host", "127.0.0.1")
            .unwrap()
            .set_override("mail.smtp.port", smtp_port)
            .unwrap()
            .set_override("mail.smtp.timeout_seconds", 5)
            .unwrap()
            .set_override("mail.from", "The Test Gazette <news@gazette.test>")
            .unwrap()
            .set_override("delivery.poll_interval_ms", 100)
            .unwrap()
            .set_override("delivery.retry_base_seconds", 0.2)
            .unwrap()
            .set_override("delivery.retry_max_seconds", 60.0)
            .unwrap()
            .set_override("limits.signups_per_ip_per_minute", 0)
            .unwrap()
            .set_override("subscriptions.allow_test_domains", true)
            .unwrap()
            // Tests count the mail a reader gets; those about the welcome
            // email (tests/api/preferences.rs) turn it back on.
            .set_override("signup.welcome", false)
            .unwrap()
            // Tests that want the scheduler turn it on; a Friday-morning run
            // must not dispatch in the others.
            .set_override("schedule.enabled", false)
            .unwrap()
            // TEST_LOG=info (or any filter) shows the app's logs.
            .set_override("log.level", std::env::var("TEST_LOG").unwrap_or_else(|_| "off".into()))
            .unwrap()
    })
    .expect("test settings are valid")
}

pub async fn spawn_app(backend: &Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts the app with a fresh SMTP sink; `customise` may change settings.
pub async fn spawn_app_with(backend: &Backend, customise: impl FnOnce(&mut Settings)) -> TestApp {
    let smtp = SmtpSink::start();
    let mut settings = test_settings(backend, smtp.port);
    customise(&mut settings);
    start(settings, smtp).await
}

/// Starts the app sending to `smtp`, a sink the test set up.
pub async fn spawn_app_with_smtp(backend: &Backend, smtp: SmtpSink, customise: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings(backend, smtp.port);
    customise(&mut settings);
    start(settings, smtp).await
}

/// Starts the app against an SMTP port where nothing listens yet; the
/// returned port can be handed to [`SmtpSink::start_on`] later.
pub async fn spawn_app_with_smtp_down(backend: &Backend, customise: impl FnOnce(&mut Settings)) -> (TestApp, u16) {
    let port = free_port();
    let mut settings = test_settings(backend, port);
    customise(&mut settings);
    (start(settings, SmtpSink::not_running(port)).await, port)
}

async fn start(settings: Settings, smtp: SmtpSink) -> TestApp {
    start_roles(
        settings,
        smtp,
        Roles {
            web: true,
            worker: true,
        },
    )
    .await
}

/// Starts only the web role, as `gazette serve --no-worker` does: mail
/// waits in the database for a worker process.
pub async fn spawn_web_only(backend: &Backend) -> TestApp {
    let smtp = SmtpSink::start();
    let settings = test_settings(backend, smtp.port);
    start_roles(
        settings,
        smtp,
        Roles {
            web: true,
            worker: false,
        },
    )
    .await
}

async fn start_roles(settings: Settings, smtp: SmtpSink, roles: Roles) -> TestApp {
    gazette::telemetry::init(&settings.log.level);
    // As `gazette serve` does: the key is read once, before the app starts.
    let dkim = DkimSigner::from_settings(&settings.mail.dkim).expect("the DKIM key reads");
    let app = Application::build(settings, roles, dkim).await.expect("the app starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_address = app.metrics_port().map(|port| format!("http://127.0.0.1:{port}"));
    let db = app.db().clone();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        address,
        metrics_address,
        db,
        smtp,
        client,
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("GET")
    }

    /// `GET /metrics` on the metrics listener.
    pub async fn scrape_metrics(&self) -> reqwest::Response {
        let address = self.metrics_address.as_ref().expect("the app serves metrics");
        self.client
            .get(format!("{address}/metrics"))
            .send()
            .await
            .expect("GET /metrics")
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .form(fields)
            .send()
            .await
            .expect("POST")
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn sign_up(&self, name: &str, email: &str) -> reqwest::Response {
        self.post_form("/subscriptions", &[("name", name), ("email", email)])
            .await
    }

    /// Follows a link from an email: it must point at the configured base
    /// URL, and is opened on this app's real address.
    pub async fn open_link(&self, link: &str) -> reqwest::Response {
        let path = link
            .strip_prefix(BASE_URL)
            .unwrap_or_else(|| panic!("{link} is not on {BASE_URL}"));
        self.get(path).await
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        with_pool!(&self.db, pool => sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql))
    }

    /// Waits (at most 30 s) until the one issue is marked sent and no
    /// transactional mail is left unsent.
    pub async fn wait_until_the_issue_and_all_mail_are_sent(&self) {
        wait_until(
            Duration::from_secs(30),
            "the issue and the confirmations to be sent",
            || async {
                self.count("SELECT COUNT(*) FROM issues WHERE status = 'sent'").await == 1
                    && self
                        .count("SELECT COUNT(*) FROM outgoing_mail WHERE status <> 'sent'")
                        .await
                        == 0
            },
        )
        .await;
    }

    pub async fn subscriber_status(&self, email_key: &str) -> Option<String> {
        with_pool!(&self.db, pool => {
            sqlx::query_scalar("SELECT status FROM subscribers WHERE email_key = $1")
                .bind(email_key)
                .fetch_optional(pool)
                .await
                .unwrap()
        })
    }

    /// The reader's unsubscribe token, as their digests carry it.
    pub async fn unsubscribe_token(&self, email_key: &str) -> String {
        let (id, secret): (uuid::Uuid, Vec<u8>) = with_pool!(&self.db, pool => {
            sqlx::query_as("SELECT id, unsubscribe_secret FROM subscribers WHERE email_key = $1")
                .bind(email_key)
                .fetch_one(pool)
                .await
                .unwrap()
        });
        gazette::domain::UnsubscribeToken::from_parts(id, &secret)
            .unwrap()
            .as_string()
    }

    /// Waits until the queue has no message left to send.
    pub async fn wait_for_empty_queue(&self) {
        wait_until(Duration::from_secs(10), "the outgoing queue to drain", || async {
            self.count("SELECT COUNT(*) FROM outgoing_mail WHERE status IN ('queued', 'sending')")
                .await
                == 0
        })
        .await;
    }
}

/// The URL of a new SQLite database in the temporary directory, made and
/// migrated by the real `gazette migrate`: for commands that only check
/// the schema, and for production, which makes no database by itself.
pub fn migrated_sqlite_database() -> String {
    let url = format!(
        "sqlite://{}/gazette-{}.db",
        std::env::temp_dir().display(),
        uuid::Uuid::new_v4().simple()
    );
    let migrated = gazette_command()
        .arg("migrate")
        .env("GAZETTE_DATABASE__URL", &url)
        .output()
        .expect("the gazette binary runs");
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    url
}

/// Signs Ada up on the site at `base` (a `gazette serve` without a
/// worker) and reads her confirmation token from the queue.
pub async fn sign_up_ada_on(backend: &Backend, client: &reqwest::Client, base: &str) -> String {
    let signup = client
        .post(format!("{base}/subscriptions"))
        .form(&[("name", "Ada"), ("email", "ada@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 200);
    let db = Db::connect(&test_settings(backend, 25).database).await.unwrap();
    let token: String = gazette::with_pool!(&db, pool => {
        sqlx::query_scalar("SELECT token FROM outgoing_mail").fetch_one(pool).await.unwrap()
    });
    db.close().await;
    token
}

/// The real `gazette` binary, run from the crate's folder as an operator
/// would. Its metrics listener takes a free port: the default (9100) would
/// collide between tests running at once.
pub fn gazette_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gazette"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        // The checkout's, even on a machine with an /etc/gazette.
        .env("GAZETTE_CONFIG_DIR", "config")
        .env("GAZETTE_METRICS__LISTEN", "127.0.0.1:0");
    command
}

/// `gazette serve --no-worker --no-scheduler` (or other arguments) on this
/// test's database and a free port, answering requests, with every line it
/// prints (stderr and stdout, each in order) on `lines`. Killed when dropped.
pub struct ServeProcess {
    child: std::process::Child,
    pub base: String,
    pub lines: std::sync::mpsc::Receiver<String>,
}

impl ServeProcess {
    pub async fn start(backend: &Backend, env: &[(&str, &str)]) -> Self {
        Self::start_as(backend, &["serve", "--no-worker", "--no-scheduler"], env).await
    }

    /// `gazette ARGS`, which must serve the web role.
    pub async fn start_as(backend: &Backend, args: &[&str], env: &[(&str, &str)]) -> Self {
        use std::io::{BufRead, BufReader, Read};
        use std::process::Stdio;
        let port = free_port();
        let mut command = gazette_command();
        command
            .args(args)
            .env("GAZETTE_DATABASE__URL", backend.database_url())
            .env("GAZETTE_SERVER__PORT", port.to_string());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gazette serve starts");
        let (line_tx, lines) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let line_tx = line_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if line_tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let base = format!("http://127.0.0.1:{port}");
        let health = format!("{base}/health_check");
        wait_until(Duration::from_secs(20), "gazette serve to answer", || async {
            reqwest::get(&health).await.is_ok_and(|r| r.status() == 200)
        })
        .await;
        Self { child, base, lines }
    }

    /// The first line printed from now on that contains `wanted`, waiting
    /// at most `limit`.
    pub fn line_containing(&self, wanted: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(wanted) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Sends SIGTERM, as systemd stops a unit, and waits for the process to
    /// exit; it must within 15 s.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "serve did not stop within 15 s of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// What tests read from a message the SMTP server received.
impl Received {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        MessageParser::default().parse(&self.raw).expect("a parsable message")
    }

    pub fn text(&self) -> String {
        self.parsed().body_text(0).expect("a text part").into_owned()
    }

    pub fn html(&self) -> String {
        self.parsed().body_html(0).expect("an HTML part").into_owned()
    }

    /// Whether it is a reader's copy of an issue: only those carry the
    /// one-click unsubscribe header (RFC 8058).
    pub fn is_digest(&self) -> bool {
        self.parsed().header("List-Unsubscribe-Post").is_some()
    }

    /// The confirmation link, which both parts must carry.
    pub fn confirmation_link(&self) -> String {
        let text = self.text();
        let start = text.find(BASE_URL).expect("a link in the text part");
        let link: String = text[start..].chars().take_while(|c| !c.is_whitespace()).collect();
        assert!(link.contains("/subscriptions/confirm?token="), "{link}");
        assert!(
            self.html().contains(&format!("href=\"{link}\"")),
            "the HTML part links to {link}"
        );
        link
    }
}

/// A `gazette worker` process of the real binary, configured through the
/// environment like an operator would; killed if the test drops it.
pub struct WorkerProcess(std::process::Child);

impl WorkerProcess {
    pub fn start(backend: &Backend, smtp_port: u16) -> Self {
        Self::start_with(backend, smtp_port, &[])
    }

    /// Like [`WorkerProcess::start`], with more environment variables
    /// (which win over the ones it sets).
    pub fn start_with(backend: &Backend, smtp_port: u16, env: &[(&str, &str)]) -> Self {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_gazette"))
            .arg("worker")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("GAZETTE_DATABASE__URL", backend.database_url())
            .env("GAZETTE_MAIL__TRANSPORT", "smtp")
            .env("GAZETTE_MAIL__SMTP__HOST", "127.0.0.1")
            .env("GAZETTE_MAIL__SMTP__PORT", smtp_port.to_string())
            .env("GAZETTE_MAIL__FROM", "The Test Gazette <news@gazette.test>")
            .env("GAZETTE_SERVER__BASE_URL", BASE_URL)
            .env("GAZETTE_DELIVERY__POLL_INTERVAL_MS", "100")
            .env(
                "GAZETTE_LOG__LEVEL",
                std::env::var("TEST_LOG").unwrap_or_else(|_| "off".into()),
            )
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("gazette worker starts");
        Self(child)
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub async fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.0.id().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the worker did not stop within 15 s of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
