//! Schema versions through the real binary: only `gazette migrate` (and
//! `serve` with `database.migrate_on_start`) changes the schema, the other
//! commands refuse a database that is behind or incompatibly ahead; a
//! database filled by every earlier schema version migrates without loss;
//! and the statements a release ran still prepare against the newest
//! schema (the rule that lets the previous release run during a rolling
//! upgrade).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use gazette::db::Db;
use gazette::db::schema::known_migrations;
use gazette::domain::SearchKey;
use gazette::with_pool;
use sqlx::{AssertSqlSafe, Executor, SqlSafeStr};

use crate::admin::StaffClient;
use crate::helpers::{Backend, ServeProcess, gazette_command, test_settings};

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

fn kind(backend: &Backend) -> &'static str {
    match backend {
        Backend::Sqlite { .. } => "sqlite",
        Backend::Postgres { .. } => "postgres",
    }
}

async fn open(backend: &Backend) -> Db {
    Db::connect(&test_settings(backend, 25).database)
        .await
        .expect("the test database opens")
}

/// Empties the test's database (the harness migrated it): no table left.
pub async fn reset(backend: &Backend) {
    match backend {
        Backend::Sqlite { url } => {
            let path = url.trim_start_matches("sqlite://");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
            }
        }
        Backend::Postgres { .. } => {
            let db = open(backend).await;
            with_pool!(&db, pool => {
                sqlx::raw_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public").execute(pool).await.unwrap();
            });
            db.close().await;
        }
    }
}

/// Runs the real `gazette ARGS…` on the test's database.
async fn gazette(backend: &Backend, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = gazette_command();
    command
        .args(args)
        .env("GAZETTE_DATABASE__URL", backend.database_url())
        .env("GAZETTE_SERVER__PORT", "0")
        .env("GAZETTE_LOG__LEVEL", "warn");
    for (name, value) in env {
        command.env(name, value);
    }
    tokio::task::spawn_blocking(move || command.output().expect("gazette runs"))
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn said(output: &Output) -> String {
    format!("{}{}", text(&output.stdout), text(&output.stderr))
}

/// sqlx's migrator over the migration files, as the binary embeds them.
async fn migrator(backend: &Backend) -> sqlx::migrate::Migrator {
    let dir = Path::new(MANIFEST).join("migrations").join(kind(backend));
    sqlx::migrate::Migrator::new(dir)
        .await
        .expect("the migration files read")
}

/// Applies migrations up to `version` with sqlx, as an earlier release
/// would have, each followed by its seed file when `seed` is set.
pub async fn build_at(backend: &Backend, version: i64, seed: bool) {
    let migrator = migrator(backend).await;
    let db = open(backend).await;
    for step in migrator.iter().map(|m| m.version).filter(|v| *v <= version) {
        with_pool!(&db, pool => migrator.run_to(step, pool).await.expect("an earlier migration applies"));
        if seed {
            let sql = seed_file(backend, step);
            with_pool!(&db, pool => {
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(pool)
                    .await
                    .map(|_| ())
                    .unwrap_or_else(|e| panic!("seed {step:04} does not apply: {e}"))
            });
        }
    }
    db.close().await;
}

/// The seed of migration `version`: realistic rows in what it added.
fn seed_file(backend: &Backend, version: i64) -> String {
    let path = seed_path(backend, version);
    std::fs::read_to_string(&path).unwrap_or_else(|_| {
        let description = known_migrations(kind(backend))
            .into_iter()
            .find(|m| m.version == version)
            .map(|m| m.description)
            .unwrap_or_default();
        panic!(
            "{} is missing: every migration needs a seed that inserts realistic rows into what it adds, \
             so that the upgrade from every version is tested with data; write it for migration {version:04} \
             ({description}) on {} (see tests/fixtures/schema/README.md)",
            path.strip_prefix(MANIFEST).unwrap_or(&path).display(),
            kind(backend)
        )
    })
}

fn seed_path(backend: &Backend, version: i64) -> PathBuf {
    Path::new(MANIFEST)
        .join("tests/fixtures/schema")
        .join(kind(backend))
        .join(format!("{version:04}.sql"))
}

/// Rows per table (the migration bookkeeping left aside).
async fn counts(db: &Db) -> BTreeMap<String, i64> {
    let list = db.pick(&[
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_%' ESCAPE '\\'",
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' AND table_name NOT LIKE '\\_%'",
    ]);
    let tables: Vec<String> = with_pool!(db, pool => sqlx::query_scalar(list).fetch_all(pool).await.unwrap());
    let mut counts = BTreeMap::new();
    for table in tables {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let n: i64 =
            with_pool!(db, pool => sqlx::query_scalar(AssertSqlSafe(sql.clone())).fetch_one(pool).await.unwrap());
        counts.insert(table, n);
    }
    counts
}

async fn rows(db: &Db, sql: &'static str) -> BTreeSet<(String, String, String)> {
    with_pool!(db, pool => sqlx::query_as(sql).fetch_all(pool).await.unwrap())
        .into_iter()
        .collect()
}

/// Readers and articles whose search key is not the one this release
/// makes of them: `gazette migrate` fills in the keys of rows written
/// before there were any (`db::search_keys::backfill`).
async fn rows_without_their_search_key(db: &Db) -> Vec<String> {
    let readers: Vec<(String, String, bool, Option<String>)> = with_pool!(db, pool => {
        sqlx::query_as("SELECT email, name, erased_at IS NOT NULL, search_key FROM subscribers")
            .fetch_all(pool)
            .await
            .unwrap()
    });
    let articles: Vec<(String, String, Option<String>)> = with_pool!(db, pool => {
        sqlx::query_as("SELECT url, title, search_key FROM articles").fetch_all(pool).await.unwrap()
    });
    let readers = readers.into_iter().filter_map(|(email, name, erased, key)| {
        let wanted = match erased {
            true => SearchKey::of_erased_reader(),
            false => SearchKey::of_reader(&email, &name),
        };
        (key.as_deref() != Some(wanted.as_str())).then(|| format!("reader {email}: {key:?}"))
    });
    let articles = articles.into_iter().filter_map(|(url, title, key)| {
        (key.as_deref() != Some(SearchKey::of_article(&title).as_str())).then(|| format!("article {url}: {key:?}"))
    });
    readers.chain(articles).collect()
}

pub async fn a_database_filled_by_every_earlier_version_migrates_without_loss(backend: Backend) {
    let known = known_migrations(kind(&backend));
    let latest = known.iter().map(|m| m.version).max().expect("migrations");
    // Every migration has its seed, the newest too: the next migration's
    // upgrade test needs it.
    for m in &known {
        seed_file(&backend, m.version);
    }
    for version in known.iter().map(|m| m.version) {
        reset(&backend).await;
        build_at(&backend, version, true).await;
        let db = open(&backend).await;
        let before = counts(&db).await;
        let readers = rows(
            &db,
            "SELECT email, name, status FROM subscribers WHERE email NOT LIKE 'erased-%'",
        )
        .await;
        let articles = match version >= 2 {
            true => rows(&db, "SELECT url, title, summary FROM articles").await,
            false => BTreeSet::new(),
        };
        let issues: BTreeSet<(String, String, String)> = match version >= 5 {
            true => rows(&db, "SELECT week, subject, status FROM issues").await,
            false => BTreeSet::new(),
        };
        db.close().await;

        let migrated = gazette(&backend, &["migrate"], &[]).await;
        assert!(migrated.status.success(), "from {version:04}: {}", said(&migrated));
        assert!(
            text(&migrated.stdout).contains(&format!("schema version {latest:04}")),
            "from {version:04}: {}",
            said(&migrated)
        );
        let db = open(&backend).await;
        let after = counts(&db).await;
        for (table, n) in &before {
            assert_eq!(after.get(table), Some(n), "from {version:04}: rows of {table}");
        }
        if version >= 2 {
            assert_eq!(
                rows(&db, "SELECT url, title, summary FROM articles").await,
                articles,
                "from {version:04}"
            );
        }
        // Articles staff deleted (0026) are out of the list, restorable.
        let shown: BTreeSet<(String, String, String)> = match version >= 2 {
            true => rows(&db, "SELECT url, title, summary FROM articles WHERE deleted_at IS NULL").await,
            false => BTreeSet::new(),
        };
        let unkeyed = rows_without_their_search_key(&db).await;
        assert!(unkeyed.is_empty(), "from {version:04}: {unkeyed:?}");
        let cancelled: BTreeSet<String> = with_pool!(&db, pool => {
            sqlx::query_scalar("SELECT week FROM issues WHERE cancelled_at IS NOT NULL").fetch_all(pool).await.unwrap()
        })
        .into_iter()
        .collect();
        db.close().await;

        // Readers, through the export.
        let export = gazette(&backend, &["subscribers", "export"], &[]).await;
        assert!(export.status.success(), "from {version:04}: {}", said(&export));
        let exported: BTreeSet<(String, String, String)> = text(&export.stdout)
            .lines()
            .skip(1)
            .map(|line| {
                let cells: Vec<&str> = line.split(',').collect();
                (cells[0].to_owned(), cells[1].to_owned(), cells[2].to_owned())
            })
            .collect();
        assert_eq!(exported, readers, "from {version:04}: the readers exported");

        // Issues through the archive, articles through the staff area.
        if version >= 4 {
            let serve = ServeProcess::start(&backend, &[]).await;
            let client = reqwest::Client::new();
            for (week, subject, _) in &issues {
                let page = client
                    .get(format!("{}/archive/{week}", serve.base))
                    .send()
                    .await
                    .unwrap();
                if cancelled.contains(week) {
                    assert_eq!(page.status(), 404, "from {version:04}: cancelled {week}");
                    continue;
                }
                assert_eq!(page.status(), 200, "from {version:04}: /archive/{week}");
                let body = page.text().await.unwrap();
                let title = subject.rsplit(": ").next().unwrap();
                assert!(body.contains(title), "from {version:04}: {week} shows {title}:\n{body}");
            }
            let mut staff = StaffClient::at(&serve.base);
            let login = staff.log_in("editor@example.org", "correct horse battery staple").await;
            assert_eq!(login.status(), 303, "from {version:04}: the seeded editor logs in");
            let page = staff.page("/admin/articles").await;
            for (_, title, _) in &shown {
                assert!(page.contains(title), "from {version:04}: /admin/articles lists {title}");
            }
        }
    }
}

pub async fn only_migrate_changes_the_schema_and_other_commands_refuse_a_mismatch(backend: Backend) {
    let latest = known_migrations(kind(&backend))
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap();
    let refused_for_being_behind = |output: &Output, what: &str| {
        assert_eq!(output.status.code(), Some(2), "{what}: {}", said(output));
        assert!(
            said(output).contains("run `gazette migrate`"),
            "{what}: {}",
            said(output)
        );
    };
    // An empty database: every command but migrate (and a serve told to
    // migrate) refuses, and changes nothing.
    reset(&backend).await;
    let no_migrate = [("GAZETTE_DATABASE__MIGRATE_ON_START", "false")];
    for args in [
        &["subscribers", "export"][..],
        &["dispatch", "--dry-run"],
        &["dispatch"],
        &["articles", "import", "tests/fixtures/central-asia.rss"],
        &["worker"],
        &["serve", "--no-scheduler"],
    ] {
        let output = gazette(&backend, args, &no_migrate).await;
        refused_for_being_behind(&output, &args.join(" "));
        assert!(said(&output).contains("no Gazette schema yet"), "{}", said(&output));
    }
    let db = open(&backend).await;
    assert!(counts(&db).await.is_empty(), "a refused command created tables");
    db.close().await;

    // Half way: `migrate --status` lists what is applied and what is not.
    build_at(&backend, 5, false).await;
    let status = gazette(&backend, &["migrate", "--status"], &[]).await;
    assert!(status.status.success(), "{}", said(&status));
    let listing = text(&status.stdout);
    assert!(
        listing.lines().any(|l| l.trim_start().starts_with("0005  applied 20")),
        "{listing}"
    );
    assert!(
        listing.lines().any(|l| l.trim_start().starts_with("0006  pending")),
        "{listing}"
    );
    assert!(listing.contains("pending (0006, "), "{listing}");
    let behind = gazette(&backend, &["dispatch", "--dry-run"], &[]).await;
    refused_for_being_behind(&behind, "dispatch --dry-run");
    assert!(said(&behind).contains("behind this binary"), "{}", said(&behind));
    // `serve` with migrate_on_start (the embedded default) migrates.
    let serve = ServeProcess::start(&backend, &[]).await;
    drop(serve);
    let current = gazette(&backend, &["subscribers", "export"], &no_migrate).await;
    assert!(current.status.success(), "{}", said(&current));

    // A newer release added migration 9001, an expand one: this binary
    // runs, warns, and leaves it alone.
    let db = open(&backend).await;
    with_pool!(&db, pool => {
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9001, 'a newer release adds a column', TRUE, $1, 1)",
        )
        .bind(vec![0u8; 48])
        .execute(pool)
        .await
        .map(|_| ())
        .unwrap()
    });
    db.close().await;
    for args in [&["subscribers", "export"][..], &["migrate"]] {
        let output = gazette(&backend, args, &[]).await;
        assert!(output.status.success(), "{}: {}", args.join(" "), said(&output));
        assert!(
            said(&output).contains("migrations this binary does not know (9001)"),
            "{}",
            said(&output)
        );
    }
    let status = text(&gazette(&backend, &["migrate", "--status"], &[]).await.stdout);
    assert!(
        status.contains("9001  applied") && status.contains("NOT KNOWN to this binary"),
        "{status}"
    );
    assert!(
        status.contains("ahead of this binary (9001), and compatible"),
        "{status}"
    );

    // …and 9002, a contract migration that needs binaries knowing 9002.
    let checksum = match kind(&backend) {
        "sqlite" => "X'00'",
        _ => "'\\x00'::bytea",
    };
    let newer = format!(
        "CREATE TABLE _gazette_contract_migrations (version BIGINT PRIMARY KEY NOT NULL, requires BIGINT NOT NULL);
         INSERT INTO _gazette_contract_migrations VALUES (9002, 9002);
         INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (9002, 'a newer release drops a column', TRUE, {checksum}, 1)"
    );
    let db = open(&backend).await;
    with_pool!(&db, pool => sqlx::raw_sql(AssertSqlSafe(newer.clone())).execute(pool).await.map(|_| ()).unwrap());
    db.close().await;
    for args in [
        &["subscribers", "export"][..],
        &["migrate"],
        &["worker"],
        &["serve", "--no-scheduler"],
    ] {
        let output = gazette(&backend, args, &[]).await;
        assert_eq!(output.status.code(), Some(2), "{}: {}", args.join(" "), said(&output));
        assert!(
            said(&output).contains(&format!(
                "requires a binary that knows migration 9002 or later, and this one knows up to {latest:04}"
            )),
            "{}",
            said(&output)
        );
    }

    // An applied migration whose file changed since is refused, and shown.
    let db = open(&backend).await;
    with_pool!(&db, pool => {
        sqlx::query("DELETE FROM _gazette_contract_migrations").execute(pool).await.map(|_| ()).unwrap()
    });
    with_pool!(&db, pool => {
        sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = 3")
            .bind(vec![1u8; 48])
            .execute(pool)
            .await
            .map(|_| ())
            .unwrap()
    });
    db.close().await;
    let changed = gazette(&backend, &["subscribers", "export"], &[]).await;
    assert_eq!(changed.status.code(), Some(2), "{}", said(&changed));
    assert!(said(&changed).contains("migration 0003 differs"), "{}", said(&changed));
    let status = text(&gazette(&backend, &["migrate", "--status"], &[]).await.stdout);
    assert!(status.contains("CHANGED"), "{status}");
}

/// The statements of a release, recorded (see [`record_statements_if_asked`]).
struct Recorded {
    schema: i64,
    statements: Vec<String>,
}

fn recorded(backend: &Backend) -> Recorded {
    let path = Path::new(MANIFEST)
        .join("tests/schema/statements")
        .join(format!("{}.sql", kind(backend)));
    let file = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema = file
        .lines()
        .find_map(|l| l.strip_prefix("-- schema: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("a `-- schema: NNNN` line");
    let statements = file
        .lines()
        .filter(|l| !l.starts_with("--") && !l.trim().is_empty())
        .map(|l| l.trim_end_matches(';').to_owned())
        .collect();
    Recorded { schema, statements }
}

pub async fn the_recorded_releases_statements_prepare_against_the_newest_schema(backend: Backend) {
    let known = known_migrations(kind(&backend));
    let recorded = recorded(&backend);
    assert!(
        recorded.statements.len() > 50,
        "only {} statements recorded",
        recorded.statements.len()
    );
    // A contract migration may declare the recorded release unsupported;
    // then the record is out of date and must be made again.
    if let Some(m) = known.iter().find(|m| m.contract.is_some_and(|r| r > recorded.schema)) {
        panic!(
            "migration {:04} is a contract migration that binaries knowing only {:04} cannot run with: \
             record the statements of this release again (README, \"Upgrading\")",
            m.version, recorded.schema
        );
    }
    // The harness migrated the database to this build's newest schema.
    let db = open(&backend).await;
    let mut failures = Vec::new();
    for statement in &recorded.statements {
        let prepared = match &db {
            Db::Sqlite(pool) => pool
                .prepare(AssertSqlSafe(statement.clone()).into_sql_str())
                .await
                .map(|_| ()),
            Db::Postgres(pool) => prepare_postgres(pool, statement).await,
        };
        if let Err(e) = prepared {
            failures.push(format!("{e}\n    in: {statement}"));
        }
    }
    db.close().await;
    assert!(
        failures.is_empty(),
        "{} of the {} statements recorded at schema {:04} no longer prepare against the newest schema: \
         a migration removed or renamed what the previous release uses (expand/contract: README, \"Upgrading\"):\n{}",
        failures.len(),
        recorded.statements.len(),
        recorded.schema,
        failures.join("\n")
    );
}

/// Prepares on PostgreSQL, which must know every parameter's type: one
/// the statement never uses (bound, but left out of the text) is given
/// `text` (OID 25), as the bind would give it one; any other error stands.
async fn prepare_postgres(pool: &sqlx::PgPool, statement: &str) -> Result<(), sqlx::Error> {
    use sqlx::postgres::PgTypeInfo;
    use sqlx::postgres::types::Oid;
    let mut types: Vec<PgTypeInfo> = Vec::new();
    loop {
        let sql = AssertSqlSafe(statement.to_owned()).into_sql_str();
        let error = match pool.prepare_with(sql, &types).await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let unused = error
            .as_database_error()
            .filter(|e| e.code().as_deref() == Some("42P18"))
            .and_then(|e| {
                e.message()
                    .split('$')
                    .nth(1)?
                    .split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse::<usize>()
                    .ok()
            });
        let Some(n) = unused.filter(|n| *n >= 1 && *n <= 100) else {
            return Err(error);
        };
        if types.len() < n {
            types.resize(n, PgTypeInfo::with_oid(Oid(0)));
        }
        if types[n - 1] == PgTypeInfo::with_oid(Oid(25)) {
            return Err(error);
        }
        types[n - 1] = PgTypeInfo::with_oid(Oid(25));
    }
}

/// With `GAZETTE_RECORD_STATEMENTS=tests/schema/statements/sqlite.sql`
/// (or `postgres.sql`) set, records every statement the application runs
/// during this test run into that file, replacing it; run one backend's
/// tests at a time (`-- sqlite::` or `-- postgres::`). The statements are
/// sqlx's own `sqlx::query` events, so they are the code's, not a list
/// kept by hand. Statements the tests themselves write are left out, and
/// so are the migrations' and the migration bookkeeping's.
pub fn record_statements_if_asked() {
    let Some(path) = std::env::var_os("GAZETTE_RECORD_STATEMENTS") else {
        return;
    };
    recording::install(PathBuf::from(path));
}

mod recording {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    use tracing::field::{Field, Visit};
    use tracing_subscriber::Layer;
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;

    struct Recorder {
        path: PathBuf,
        backend: &'static str,
        seen: Mutex<BTreeSet<String>>,
        source: String,
        tests: String,
    }

    pub fn install(path: PathBuf) {
        let backend = match path.file_stem().and_then(|s| s.to_str()) {
            Some("postgres") => "postgres",
            _ => "sqlite",
        };
        let manifest = Path::new(super::MANIFEST);
        let recorder = Recorder {
            path,
            backend,
            seen: Mutex::new(BTreeSet::new()),
            source: normalized(&source_files(&manifest.join("src"))),
            // The migrations' statements are the schema's, not the release's.
            tests: normalized(&(source_files(&manifest.join("tests")) + &source_files(&manifest.join("migrations")))),
        };
        let filter = Targets::new().with_target("sqlx::query", tracing::Level::TRACE);
        let subscriber = tracing_subscriber::registry().with(recorder.with_filter(filter));
        tracing::subscriber::set_global_default(subscriber).expect("no subscriber yet");
    }

    /// The Rust and SQL files under `dir` (the tests' seeds are SQL).
    fn source_files(dir: &Path) -> String {
        let mut all = String::new();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                all.push_str(&source_files(&path));
            } else if path.extension().is_some_and(|e| e == "rs" || e == "sql") && !path.starts_with(self_dir()) {
                all.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
                all.push('\n');
            }
        }
        all
    }

    /// The recorded statements themselves are not a source.
    fn self_dir() -> PathBuf {
        Path::new(super::MANIFEST).join("tests/schema")
    }

    fn normalized(sql: &str) -> String {
        sql.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// `(?, ?), (?, ?), …` as one row, and `IN (?, ?, …)` as one value, so
    /// that batches of different sizes record as one statement.
    fn collapsed(sql: &str) -> String {
        let mut sql = sql.to_owned();
        while let Some(at) = sql.find("IN (?, ?") {
            let end = at + sql[at..].find(')').unwrap();
            sql.replace_range(at..=end, "IN (?)");
        }
        loop {
            let mut changed = false;
            let mut search = 0;
            while let Some(found) = sql[search..].find("(?") {
                let start = search + found;
                let Some(len) = sql[start..].find(')') else { break };
                let group = sql[start..=start + len].to_owned();
                let repeat = format!("{group}, {group}");
                if sql[start..].starts_with(&repeat) {
                    sql.replace_range(start..start + repeat.len(), &group);
                    changed = true;
                } else {
                    search = start + 1;
                }
            }
            if !changed {
                return sql;
            }
        }
    }

    fn keep(statement: &str) -> bool {
        let first = statement.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        matches!(first.as_str(), "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "WITH")
            && ![
                "_sqlx_migrations",
                "_gazette_contract_migrations",
                "sqlite_master",
                "information_schema",
            ]
            .iter()
            .any(|t| statement.contains(t))
    }

    impl Recorder {
        fn record(&self, sql: &str) {
            let mut seen = self.seen.lock().unwrap();
            let before = seen.len();
            for statement in sql.split(';').map(normalized).filter(|s| keep(s)) {
                // The tests' own queries are not the release's.
                if self.tests.contains(&statement) && !self.source.contains(&statement) {
                    continue;
                }
                seen.insert(collapsed(&statement));
            }
            if seen.len() == before {
                return;
            }
            let schema = gazette::db::schema::known_migrations(self.backend)
                .iter()
                .map(|m| m.version)
                .max()
                .unwrap_or(0);
            let mut file = format!(
                "-- The SQL statements Gazette ran on {} during `cargo test --test api -- {}::`,\n\
                 -- recorded from sqlx's `sqlx::query` events by GAZETTE_RECORD_STATEMENTS\n\
                 -- (README, \"Upgrading\"). One statement a line; the schema they ran on:\n\
                 -- schema: {schema:04}\n",
                self.backend, self.backend
            );
            for statement in seen.iter() {
                file.push_str(statement);
                file.push_str(";\n");
            }
            std::fs::write(&self.path, file).expect("the statements file is writable");
        }
    }

    #[derive(Default)]
    struct Statement {
        summary: String,
        full: String,
    }

    impl Visit for Statement {
        fn record_str(&mut self, field: &Field, value: &str) {
            match field.name() {
                "summary" => self.summary = value.to_owned(),
                "db.statement" => self.full = value.to_owned(),
                _ => {}
            }
        }

        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if matches!(field.name(), "summary" | "db.statement") {
                let shown = format!("{value:?}");
                let unquoted = shown
                    .strip_prefix('"')
                    .and_then(|s| s.strip_suffix('"'))
                    .map(|s| s.replace("\\n", "\n").replace("\\\"", "\""))
                    .unwrap_or(shown);
                self.record_str(field, &unquoted);
            }
        }
    }

    impl<S: tracing::Subscriber> Layer<S> for Recorder {
        fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            let mut statement = Statement::default();
            event.record(&mut statement);
            let sql = match statement.full.trim() {
                "" => statement.summary,
                full => full.to_owned(),
            };
            self.record(&sql);
        }
    }
}
