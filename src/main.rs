use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use gazette::app::{Application, BuildError, Roles, Schema};
use gazette::config::{ConfigError, SessionKeyError, Settings, config_dir, redact};
use gazette::db::ConnectError;
use gazette::digest::fetch::{FetchPolicy, Fetcher};
use gazette::digest::import::{Counts, FeedRules, PlainTextDetails, import_file};
use gazette::domain::{AddressPolicy, MIN_PASSWORD_CHARS, StaffPassword, SubscriberEmail, SubscriberStatus};
use gazette::mail::{DkimSigner, Mailer, MailerSetupError};
use gazette::terminal::escape;

/// Prints a line of a command's output. When the reader has stopped
/// reading (`gazette config check | head`), the command ends quietly, as a
/// pipe's writer should, instead of panicking on the closed pipe.
macro_rules! say {
    ($($arg:tt)*) => {
        print_line(format_args!($($arg)*))
    };
}

fn print_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("gazette: cannot write to standard output: {e}");
            std::process::exit(1);
        }
    }
}

/// Gazette: a self-hosted weekly newsletter with double opt-in.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Directory holding default.toml and $GAZETTE_ENV.toml [default:
    /// /etc/gazette when it exists, else ./config].
    #[arg(long, global = true, env = "GAZETTE_CONFIG_DIR")]
    config_dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web server and the delivery worker (the default).
    Serve {
        /// Do not run the delivery worker in this process.
        #[arg(long)]
        no_worker: bool,
        /// Do not run the weekly dispatch scheduler in this process.
        #[arg(long)]
        no_scheduler: bool,
    },
    /// Run only the delivery worker.
    Worker,
    /// Apply database migrations and exit (the only command that does,
    /// with `serve` when database.migrate_on_start is set).
    Migrate {
        /// Change nothing: list applied and pending migrations, and flag
        /// ones this binary does not know and ones whose file changed.
        #[arg(long)]
        status: bool,
    },
    /// Build this ISO week's digest and queue it for every confirmed reader.
    Dispatch {
        /// Print the subject, the articles and the recipient count; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Keep the schedule for a systemd timer or cron (needs
        /// schedule.enabled = false): dispatch the last run schedule.cron
        /// names, as of its time, if its week has no issue and it is within
        /// schedule.grace_hours; otherwise say why nothing is due. Safe to
        /// run as often as you like.
        #[arg(long, conflicts_with = "dry_run")]
        scheduled: bool,
    },
    /// Manage staff accounts (the password is read from stdin, or prompted for).
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Manage the articles digests are made from.
    Articles {
        #[command(subcommand)]
        command: ArticlesCommand,
    },
    /// Feed sources: feeds registered once, which `gazette serve` polls by
    /// itself every feeds.poll_minutes and once more before the scheduled
    /// dispatch.
    Feeds {
        #[command(subcommand)]
        command: FeedsCommand,
    },
    /// Import subscribers from CSV, or export them as CSV.
    Subscribers {
        #[command(subcommand)]
        command: SubscribersCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Write a consistent copy of the SQLite database to FILE while the
    /// service runs (never over an existing file). PostgreSQL: pg_dump, see
    /// the README's "Backups".
    Backup {
        /// The new backup file.
        file: PathBuf,
    },
    /// Replace the SQLite database with a backup made by `gazette backup`,
    /// after checking it; refused while a process has the database open
    /// (stop the service first). The replaced database is kept beside it.
    Restore {
        /// The backup file.
        file: PathBuf,
    },
    /// Remove what the `retention` settings no longer keep (old delivery
    /// rows, summarised per issue; addresses in old mail; never-confirmed
    /// readers; old outbox files) and print how many of each.
    Prune {
        /// Print what would be removed; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Tokens of the JSON API (/api/v1).
    ApiTokens {
        #[command(subcommand)]
        command: ApiTokensCommand,
    },
    /// Inbound mail: bounces, complaints, auto-replies.
    Inbound {
        #[command(subcommand)]
        command: InboundCommand,
    },
}

#[derive(Subcommand)]
enum InboundCommand {
    /// Read saved messages (.eml) as the inbound pipeline would and print
    /// one line per file: `FILE: KIND ADDRESS STATUS REASON` (`-` where the
    /// message does not say). ADDRESS is the reader's when
    /// `mail.bounce_domain` is set and the database names them by the
    /// message's return path or unsubscribe address (it is only read),
    /// else the address the message gives. Exits 1 when a file could not
    /// be read, after printing the others.
    Classify {
        /// The message files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ApiTokensCommand {
    /// Make a token and print it: it is shown this once (only its hash is
    /// kept), so give it to the system that will use it now.
    Create {
        /// What the token is for ("CMS", "CRM sync").
        name: String,
        /// What it may reach.
        #[arg(long, default_value = "all", value_parser = parse_scope)]
        scope: gazette::domain::ApiScope,
    },
    /// List the tokens: id, name, scope, made when and by whom, revoked
    /// when (or `-`), one tab-separated line each.
    List,
    /// Revoke a token by its id: requests with it get 401 from now on.
    Revoke {
        /// The token's id (from `api-tokens list`).
        id: uuid::Uuid,
    },
}

fn parse_scope(raw: &str) -> Result<gazette::domain::ApiScope, String> {
    gazette::domain::ApiScope::parse(raw).ok_or_else(|| "one of subscribers, articles, issues, all".to_owned())
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration (exit 2 naming the first bad key) and
    /// print every effective value, secrets masked.
    Check,
}

#[derive(Subcommand)]
enum SubscribersCommand {
    /// Import readers from a CSV file with the columns `email,name` (a
    /// header row is optional; `-` reads standard input). Without
    /// --confirmed each new reader gets a confirmation email, as after a
    /// signup on the web form. Readers already on the list are left as they
    /// are; rejected rows are reported with their line number.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// The readers consented elsewhere: add them confirmed, send no
        /// email, and confirm those still pending.
        #[arg(long)]
        confirmed: bool,
    },
    /// Write subscribers to standard output as CSV (email, name, status,
    /// source, created_at, confirmed_at, unsubscribed_at).
    Export {
        /// Only subscribers with this status: pending, confirmed,
        /// unsubscribed or bounced.
        #[arg(long, value_parser = parse_status)]
        status: Option<SubscriberStatus>,
    },
}

fn parse_status(raw: &str) -> Result<SubscriberStatus, String> {
    SubscriberStatus::parse(raw)
        .ok_or_else(|| format!("`{raw}` is not a subscriber status; use pending, confirmed, unsubscribed or bounced"))
}

fn parse_language(raw: &str) -> Result<gazette::i18n::Language, String> {
    gazette::i18n::Language::parse(raw).ok_or_else(|| {
        let known: Vec<&str> = gazette::i18n::Language::all().map(|l| l.tag()).collect();
        format!(
            "`{}` is not a language Gazette has a catalogue for ({})",
            raw.escape_debug(),
            known.join(", ")
        )
    })
}

#[derive(Subcommand)]
enum StaffCommand {
    /// Create a staff user.
    Add {
        /// The staff member's email address (their login).
        email: String,
    },
    /// Set a new password for a staff user.
    Passwd {
        /// The staff member's email address.
        email: String,
    },
}

#[derive(Subcommand)]
enum ArticlesCommand {
    /// Import feeds (RSS, Atom or JSON Feed) from files or URLs, or one
    /// plain-text article (first line the title, then the body). Prints a
    /// line per feed; exits non-zero if any could not be imported.
    Import {
        /// The feeds' files or http(s) URLs, or the article's file.
        #[arg(required = true, num_args = 1.., value_name = "FEED")]
        feeds: Vec<String>,
        /// Canonical address of a plain-text article (required for one).
        #[arg(long)]
        url: Option<String>,
        /// Author of a plain-text article.
        #[arg(long)]
        author: Option<String>,
        /// Publication time of a plain-text article (RFC 3339); default now.
        #[arg(long)]
        published: Option<String>,
    },
}

#[derive(Subcommand)]
enum FeedsCommand {
    /// Register a feed (RSS, Atom or JSON Feed) by its http(s) address and
    /// poll it once; its articles carry the source's name.
    Add {
        /// The feed's http:// or https:// address.
        url: String,
        /// The name the digest shows [default: the feed's own title, else
        /// the address's host].
        #[arg(long)]
        name: Option<String>,
        /// The language its articles are in, whatever the feed says (a tag:
        /// en, ru) [default: the language the feed declares, if any].
        #[arg(long, value_parser = parse_language)]
        language: Option<gazette::i18n::Language>,
    },
    /// List the sources: id, name, address, last poll, last result,
    /// articles added (last poll / in all) and the failing streak, one
    /// tab-separated line each.
    List,
    /// Remove a source; the articles it brought stay.
    Remove {
        /// The source's id (`gazette feeds list`).
        id: i64,
    },
    /// Put a source's articles in a digest section (an article's own
    /// section, set by staff, wins); without NAME, in none.
    Section {
        /// The source's id (`gazette feeds list`).
        id: i64,
        /// The section's name ("World", "Business").
        name: Option<String>,
    },
    /// Poll now, whether due or not: every source, or the one with this id.
    /// Exits 1 when a poll failed.
    Poll {
        /// The source's id (`gazette feeds list`); all sources without it.
        id: Option<i64>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve {
        no_worker: false,
        no_scheduler: false,
    });
    let loaded = config_dir(cli.config_dir).and_then(|dir| {
        let settings = Settings::load(&dir)?;
        // Only `gazette migrate` (and `restore`, from a backup) makes a new
        // database in production; config check reports a missing one itself.
        // `inbound classify` looks readers up only when it can: it works
        // without a database.
        if !matches!(command, Command::Config { .. } | Command::Inbound { .. }) {
            let makes_it = matches!(command, Command::Migrate { status: false } | Command::Restore { .. });
            settings.check_database_exists(makes_it)?;
        }
        Ok((dir, settings))
    });
    let (config_dir, mut settings) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("gazette: {}", escape(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    // The DKIM key is read before anything starts: a key that cannot be
    // read or parsed stops the process with one line naming it, like any
    // other bad setting, instead of surfacing at the first send. It is read
    // only here; the worker signs with this signer.
    let sends_mail = matches!(
        command,
        Command::Serve { .. } | Command::Worker | Command::Config { .. }
    );
    let dkim = if sends_mail {
        match DkimSigner::from_settings(&settings.mail.dkim) {
            Ok(signer) => signer,
            Err(e) => {
                eprintln!("gazette: invalid configuration: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    gazette::telemetry::init_with(&settings.log.level, settings.log.format);
    // A role's last word goes to its log in the log's format: a collector
    // reading JSON lines would otherwise drop the reason it stopped.
    let json_role = settings.log.format == gazette::config::LogFormat::Json
        && matches!(command, Command::Serve { .. } | Command::Worker);
    // `gazette worker` waits on sockets almost all the time: one thread
    // drives every connection with fewer wake-ups across threads (a copy
    // cost 20–23 µs of the worker's CPU instead of 28–35 with a thread a
    // core, BENCHMARKS.md), and what needs cores, an RSA signature, goes to
    // the blocking pool (`delivery::Shared::compose`). The web role keeps a
    // thread a core for its requests.
    let mut runtime = match command {
        Command::Worker => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("gazette: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        if !sends_mail {
            // Which configuration and database a command from a shell or
            // cron acts on, so acting on the wrong one cannot pass unseen
            // (serve, worker and config check report it in their own output).
            eprintln!(
                "gazette: configuration {}; database {}",
                escape(&settings.origin().to_string()),
                escape(&redact(&settings.database.url))
            );
        }
        match command {
            Command::Serve {
                no_worker,
                no_scheduler,
            } => {
                settings.schedule.enabled &= !no_scheduler;
                run(
                    settings,
                    Roles {
                        web: true,
                        worker: !no_worker,
                    },
                    dkim,
                )
                .await
            }
            Command::Worker => {
                run(
                    settings,
                    Roles {
                        web: false,
                        worker: true,
                    },
                    dkim,
                )
                .await
            }
            Command::Migrate { status } => migrate(settings, status).await,
            Command::Dispatch { scheduled: true, .. } => dispatch_scheduled(settings).await,
            Command::Dispatch { dry_run, .. } => dispatch(settings, dry_run).await,
            Command::Staff { command } => staff(settings, command).await,
            Command::Articles {
                command:
                    ArticlesCommand::Import {
                        feeds,
                        url,
                        author,
                        published,
                    },
            } => import_articles(settings, &feeds, PlainTextDetails { url, author, published }).await,
            Command::Feeds { command } => feeds(settings, command).await,
            Command::ApiTokens { command } => api_tokens(settings, command).await,
            Command::Subscribers {
                command: SubscribersCommand::Import { file, confirmed },
            } => import_subscribers(settings, &file, confirmed).await,
            Command::Subscribers {
                command: SubscribersCommand::Export { status },
            } => export_subscribers(settings, status).await,
            Command::Config {
                command: ConfigCommand::Check,
            } => config_check(&config_dir, &settings, dkim.as_ref()).await,
            Command::Backup { file } => backup(settings, &file).await,
            Command::Restore { file } => restore(settings, &file).await,
            Command::Prune { dry_run } => prune(settings, dry_run).await,
            Command::Inbound {
                command: InboundCommand::Classify { files },
            } => inbound_classify(&settings, &files).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if json_role {
                tracing::error!(error = %format!("{e:#}"), "stopped by an error");
            } else {
                // Errors may quote what a file or a server said.
                eprintln!("gazette: {}", escape(&format!("{e:#}")));
            }
            // A bad setting exits 2 like any other (systemd's
            // RestartPreventExitStatus=2 stops restarting it); anything
            // else may pass, and exits 1.
            let misconfigured = e.downcast_ref::<BuildError>().is_some_and(BuildError::is_configuration)
                || e.downcast_ref::<MailerSetupError>().is_some()
                || e.downcast_ref::<ConfigError>().is_some()
                || e.downcast_ref::<SessionKeyError>().is_some()
                || e.downcast_ref::<ConnectError>()
                    .is_some_and(|e| e.is_configuration() || e.is_schema_refusal())
                || e.downcast_ref::<gazette::schedule::BuiltInSchedulerIsOn>().is_some();
            if misconfigured {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn run(settings: Settings, roles: Roles, dkim: Option<DkimSigner>) -> anyhow::Result<()> {
    let app = Application::build(settings.clone(), roles, dkim).await?;
    tracing::info!(
        configuration = %settings.origin(),
        environment = settings.environment(),
        database = %redact(&settings.database.url),
        backend = app.db().backend(),
        "database ready (schema checked or migrated)"
    );
    if roles.web {
        tracing::info!(
            "Gazette is running: open http://{}:{}/ (links in emails use {})",
            settings.server.host,
            app.port(),
            settings.server.base_url
        );
    }
    if let (Some(address), Some(port)) = (settings.metrics.listen, app.metrics_port()) {
        let bound = std::net::SocketAddr::new(address.ip(), port);
        tracing::info!("metrics: http://{bound}/metrics");
    }
    if roles.worker {
        tracing::info!("outgoing mail is {}", Mailer::describe(&settings.mail));
    }
    if roles.web && gazette::db::staff::count(app.db()).await? == 0 {
        tracing::warn!(
            "no staff user yet: create one with `gazette staff add you@example.org` (it asks for a password)"
        );
    }
    app.run_until_stopped().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Runs every check a start would (the settings loaded, so they are
/// valid; the mail transport; the session key in production), prints the
/// layered values and the DKIM record to publish when signing is on, and
/// last tries the database, which may be down while the rest is right.
async fn config_check(
    config_dir: &std::path::Path,
    settings: &Settings,
    dkim: Option<&DkimSigner>,
) -> anyhow::Result<()> {
    let values = Settings::effective(config_dir)?;
    Mailer::check_settings(&settings.mail)?;
    if settings.is_production() {
        settings.session_key()?;
    }
    settings.check_database_exists(false)?;
    say!(
        "# configuration is valid (GAZETTE_ENV={}); effective values, secrets masked:",
        settings.environment()
    );
    say!("# read from {}", escape(&settings.origin().to_string()));
    for (key, value) in values {
        say!("{key} = {value:?}");
    }
    if let Some(signer) = dkim {
        // Zone-file syntax; a TXT string holds at most 255 characters, so a
        // long (RSA) record is split into several, which DNS joins again.
        let record = signer.dns_record();
        let strings: Vec<String> = record
            .as_bytes()
            .chunks(255)
            .map(|chunk| format!("\"{}\"", String::from_utf8_lossy(chunk)))
            .collect();
        say!("# DKIM is on: publish this TXT record in DNS");
        say!("{}. IN TXT {}", signer.dns_name(), strings.join(" "));
    }
    let url = redact(&settings.database.url);
    match settings.database.sqlite_file() {
        Some(file) if !file.exists() => say!(
            "# database: {} does not exist yet (`gazette migrate` or `gazette serve` creates it)",
            escape(&file.display().to_string())
        ),
        _ => {
            let db = gazette::db::Db::connect(&settings.database).await?;
            let status = match db.ping().await {
                Ok(()) => gazette::db::schema::SchemaStatus::read(&db)
                    .await
                    .map_err(anyhow::Error::from),
                Err(e) => Err(anyhow::anyhow!("the database at {url} does not answer: {e}")),
            };
            db.close().await;
            let status = status?;
            say!("# database: {} answers", escape(&url));
            say!(
                "# schema: {}",
                schema_verdict(&status, settings.database.migrate_on_start)?
            );
        }
    }
    Ok(())
}

/// What the database's schema means for starting this binary: the same
/// verdict serve and worker reach, except that pending migrations are
/// fine when serve applies them itself.
fn schema_verdict(status: &gazette::db::schema::SchemaStatus, migrate_on_start: bool) -> anyhow::Result<String> {
    use gazette::db::schema::{Compatibility, SchemaError};
    let latest = status.latest_known();
    match status.check() {
        Ok(Compatibility::Current) => Ok(format!("version {latest:04}, as this binary expects")),
        Ok(Compatibility::AheadCompatible { unknown }) => Ok(format!(
            "ahead of this binary ({} migrations it does not know), still compatible with it",
            unknown.len()
        )),
        Err(SchemaError::Empty | SchemaError::Behind { .. }) if migrate_on_start => Ok(format!(
            "behind this binary ({} pending); `gazette serve` applies them at start (database.migrate_on_start), \
             a worker waits for that",
            status.pending().len()
        )),
        Err(refused) => Err(ConnectError::from(gazette::db::schema::SchemaAccessError::from(refused)).into()),
    }
}

async fn migrate(settings: Settings, status: bool) -> anyhow::Result<()> {
    use gazette::db::schema::SchemaStatus;
    if status {
        let db = gazette::db::Db::connect(&settings.database).await?;
        let read = SchemaStatus::read(&db).await;
        db.close().await;
        say!("database: {}", redact(&settings.database.url));
        for line in gazette::db::schema::status_lines(&read?) {
            say!("{line}");
        }
        return Ok(());
    }
    let db = gazette::app::database(&settings, Schema::Migrate).await?;
    let read = SchemaStatus::read(&db).await;
    db.close().await;
    let read = read?;
    let version = read.applied.last().map_or(0, |m| m.version);
    let newer = match version > read.latest_known() {
        true => format!(
            " (a newer release's; this binary knows up to {:04})",
            read.latest_known()
        ),
        false => String::new(),
    };
    say!(
        "migrations applied to {}: schema version {version:04}{newer}",
        redact(&settings.database.url)
    );
    Ok(())
}

async fn import_articles(settings: Settings, feeds: &[String], details: PlainTextDetails) -> anyhow::Result<()> {
    let plain_text = details.url.is_some() || details.author.is_some() || details.published.is_some();
    if plain_text && feeds.len() > 1 {
        anyhow::bail!("--url, --author and --published describe one plain-text article: give one FILE with them");
    }
    let db = gazette::app::database(&settings, Schema::Check).await?;
    let fetcher = Fetcher::new(FetchPolicy::new(settings.feeds.allow_private_addresses));
    let rules = FeedRules::from_settings(&settings);
    let mut failed = 0;
    for feed in feeds {
        let progress = |done: usize, total: usize| {
            if total >= 200 && (done.is_multiple_of(100) || done == total) {
                eprintln!("imported {done}/{total} entries");
            }
        };
        match import_file(&db, feed, &details, &fetcher, rules, progress).await {
            Ok(report) => {
                for rejection in &report.rejected {
                    eprintln!(
                        "rejected {}",
                        escape(&format!("{}: {}", rejection.entry, rejection.reason))
                    );
                }
                for warning in &report.warnings {
                    eprintln!("warning {}", escape(&format!("{}: {}", warning.entry, warning.message)));
                }
                say!("{}: {}", escape(feed), Counts::from(&report));
            }
            // One feed that cannot be imported does not stop the others.
            Err(e) if feeds.len() > 1 => {
                eprintln!("gazette: {}", escape(&e.to_string()));
                failed += 1;
            }
            Err(e) => {
                db.close().await;
                return Err(anyhow::Error::msg(e));
            }
        }
    }
    db.close().await;
    match failed {
        0 => Ok(()),
        1 => anyhow::bail!("1 of {} feeds was not imported", feeds.len()),
        n => anyhow::bail!("{n} of {} feeds were not imported", feeds.len()),
    }
}

async fn feeds(settings: Settings, command: FeedsCommand) -> anyhow::Result<()> {
    let db = gazette::app::database(&settings, Schema::Check).await?;
    let done = feeds_on(&db, &settings, command).await;
    db.close().await;
    done
}

async fn feeds_on(db: &gazette::db::Db, settings: &Settings, command: FeedsCommand) -> anyhow::Result<()> {
    use gazette::db::feed_sources;
    use gazette::digest::poll::Poller;
    let poller = Poller::from_settings(db.clone(), settings);
    let unknown = |id: i64| anyhow::anyhow!("there is no source {id} (`gazette feeds list` shows them)");
    let line = |polled: &gazette::digest::poll::Polled| match &polled.source {
        Some(source) => say!(
            "source {} “{}” ({}): {}",
            source.id,
            escape(&source.name),
            escape(&source.url),
            escape(&polled.summary())
        ),
        None => say!("source {}: {}", polled.id, escape(&polled.summary())),
    };
    match command {
        FeedsCommand::Add { url, name, language } => {
            let source = poller
                .add(&url, name.as_deref(), language)
                .await
                .map_err(anyhow::Error::msg)?;
            let declared = source
                .declared_language()
                .map(|l| format!(", its articles in {l} whatever the feed says"))
                .unwrap_or_default();
            say!(
                "source {} added: “{}” ({}){declared}",
                source.id,
                escape(&source.name),
                escape(&source.url)
            );
            let polled = poller.poll_now(source.id).await?;
            line(&polled);
            if polled.failed() {
                say!(
                    "the source stays registered and is polled again later; `gazette feeds remove {}` removes it",
                    source.id
                );
            }
        }
        FeedsCommand::List => {
            let sources = feed_sources::list(db).await?;
            if sources.is_empty() {
                say!("no feed sources yet; `gazette feeds add URL` registers one");
                return Ok(());
            }
            let now = chrono::Utc::now();
            let when = |at: chrono::DateTime<chrono::Utc>| at.format("%Y-%m-%d %H:%M UTC").to_string();
            say!("id\tname\turl\tlast poll\tlast result\tadded (last/total)\tfailing");
            for s in &sources {
                let result = match (s.is_being_polled(now), s.last_result, &s.last_error) {
                    (true, _, _) => "being polled now".to_owned(),
                    (false, None, _) => "not polled yet".to_owned(),
                    (false, Some(result), Some(error)) => format!("{}: {error}", result.as_str()),
                    (false, Some(result), None) => result.as_str().to_owned(),
                };
                let failing = match s.failures {
                    0 => "-".to_owned(),
                    n => format!(
                        "{n} in a row{}, next try {}",
                        s.failing_since
                            .map(|t| format!(" since {}", when(t)))
                            .unwrap_or_default(),
                        when(s.next_poll_at)
                    ),
                };
                say!(
                    "{}\t{}\t{}\t{}\t{}\t{}/{}\t{}",
                    s.id,
                    escape(&s.name),
                    escape(&s.url),
                    s.last_polled_at.map_or_else(|| "never".to_owned(), when),
                    escape(&result),
                    s.last_added,
                    s.total_added,
                    failing
                );
            }
        }
        FeedsCommand::Remove { id } => {
            let source = feed_sources::remove(db, id).await?.ok_or_else(|| unknown(id))?;
            say!(
                "source {id} “{}” ({}) removed; the articles it brought stay",
                escape(&source.name),
                escape(&source.url)
            );
        }
        FeedsCommand::Section { id, name } => {
            let section = gazette::domain::SectionName::parse(name.as_deref().unwrap_or_default())?;
            let source = feed_sources::set_section(db, id, section.as_ref().map(|s| s.as_str()))
                .await?
                .ok_or_else(|| unknown(id))?;
            match section {
                Some(section) => say!(
                    "source {id} “{}”: its articles are in the section “{}”",
                    escape(&source.name),
                    escape(section.as_str())
                ),
                None => say!("source {id} “{}”: its articles are in no section", escape(&source.name)),
            }
        }
        FeedsCommand::Poll { id: Some(id) } => {
            let polled = poller.poll_now(id).await?;
            if polled.source.is_none() {
                return Err(unknown(id));
            }
            line(&polled);
            anyhow::ensure!(!polled.failed(), "the poll of source {id} failed");
        }
        FeedsCommand::Poll { id: None } => {
            let all = poller.poll_all_now(line).await?;
            if all.is_empty() {
                say!("no feed sources yet; `gazette feeds add URL` registers one");
            }
            let failed = all.iter().filter(|p| p.failed()).count();
            anyhow::ensure!(failed == 0, "{failed} of {} polls failed", all.len());
        }
    }
    Ok(())
}

async fn import_subscribers(settings: Settings, file: &std::path::Path, confirmed: bool) -> anyhow::Result<()> {
    use gazette::db::subscriber_import::Consent;
    use gazette::subscriber_csv::{self, ImportEvent, ImportOptions};
    let input: Box<dyn std::io::Read + Send> = if file.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        let opened = std::fs::File::open(file).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", file.display()))?;
        Box::new(opened)
    };
    let db = gazette::app::database(&settings, Schema::Check).await?;
    let consent = if confirmed {
        Consent::ConfirmedElsewhere
    } else {
        Consent::OptIn
    };
    let token_ttl = chrono::Duration::hours(i64::from(settings.subscriptions.confirmation_ttl_hours));
    const PROGRESS_EVERY: u64 = 100_000;
    let mut next_progress = PROGRESS_EVERY;
    let result = subscriber_csv::import(
        &db,
        input,
        ImportOptions::new(
            consent,
            token_ttl,
            settings.subscriptions.address_policy(),
            settings.site.default_language,
        ),
        |event| match event {
            ImportEvent::Rejected(row) => eprintln!("rejected {}", escape(&row.to_string())),
            ImportEvent::Progress(report) if report.rows >= next_progress => {
                eprintln!("read {report}");
                next_progress = report.rows + PROGRESS_EVERY;
            }
            ImportEvent::Progress(_) => {}
        },
    )
    .await;
    db.close().await;
    let report = result?;
    say!("{}: {report}", file.display());
    Ok(())
}

async fn export_subscribers(settings: Settings, status: Option<SubscriberStatus>) -> anyhow::Result<()> {
    use gazette::subscriber_csv::{self, ExportError};
    let db = gazette::app::database(&settings, Schema::Check).await?;
    let stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let result = subscriber_csv::export(&db, status, stdout).await;
    db.close().await;
    match result {
        Ok(_) => Ok(()),
        // `gazette subscribers export | head`: the reader has seen enough.
        Err(ExportError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn dispatch(settings: Settings, dry_run: bool) -> anyhow::Result<()> {
    use gazette::digest::dispatch::{self, Dispatched};
    let db = gazette::app::database(&settings, Schema::Check).await?;
    let now = chrono::Utc::now();
    if !dry_run {
        let done = dispatch::dispatch(&db, &settings, now).await;
        db.close().await;
        // One line a log collector can read, whatever happened.
        match done? {
            Dispatched::Queued {
                week,
                recipients,
                articles,
            } => {
                say!("{week}: issue queued for {recipients} readers ({articles} articles)")
            }
            Dispatched::AlreadyDispatched { week } => say!("{week}: already dispatched; nothing queued"),
            Dispatched::NothingNew { week, since } => say!(
                "{week}: no articles published since {}; nothing to send",
                since.format("%-d %B %Y %H:%M UTC")
            ),
        }
        return Ok(());
    }
    let preview = dispatch::preview(&db, &settings, now).await;
    db.close().await;
    let preview = preview?;
    let since = preview.since.format("%-d %B %Y %H:%M UTC");
    if preview.already_dispatched {
        say!(
            "{}: already dispatched; nothing would be queued (dry run)",
            preview.week
        );
        return Ok(());
    }
    let Some(issue) = preview.issue else {
        say!(
            "{}: no articles published since {since}; nothing would be sent (dry run)",
            preview.week
        );
        return Ok(());
    };
    say!("{} (dry run: nothing written, nothing sent)", preview.week);
    say!("Subject: {}", escape(&issue.subject));
    say!(
        "Articles ({} of {}, newest first, published since {since}):",
        issue.articles,
        preview.articles.len()
    );
    for article in &preview.articles[..issue.articles] {
        say!("  - {}", escape(&article.title));
        for line in gazette::digest::render::wrap(&article.summary, 70).lines() {
            say!("      {}", escape(line));
        }
    }
    say!(
        "Recipients: {} confirmed subscribers, paused ones left out",
        preview.recipients
    );
    Ok(())
}

/// `gazette dispatch --scheduled`: what a timer or cron runs when the
/// built-in scheduler is off. One line on stdout, exit 0, whatever was due.
async fn dispatch_scheduled(settings: Settings) -> anyhow::Result<()> {
    use gazette::digest::dispatch::Dispatched;
    use gazette::schedule::{self, ScheduledRun};
    // Before the database: two clocks are a configuration error.
    schedule::external_scheduling_allowed(&settings.schedule)?;
    let db = gazette::app::database(&settings, Schema::Check).await?;
    let now = chrono::Utc::now();
    let staff_times = schedule::send_scheduled_issues(&db, &settings, now).await;
    let done = schedule::run_due(&db, &settings, now).await;
    db.close().await;
    let zone = settings.schedule.timezone.0;
    let local = |at: chrono::DateTime<chrono::Utc>| at.with_timezone(&zone).format("%a %-d %b %Y %H:%M %Z").to_string();
    for send in staff_times? {
        match send.outcome {
            Some(outcome) => match outcome? {
                Dispatched::Queued {
                    week,
                    recipients,
                    articles,
                } => say!(
                    "{week}: issue queued for {recipients} readers ({articles} articles) at the time staff chose, {}",
                    local(send.send_at)
                ),
                Dispatched::AlreadyDispatched { week } => say!("{week}: already dispatched; nothing queued"),
                Dispatched::NothingNew { week, .. } => say!(
                    "{week}: no articles for the time staff chose, {}; nothing to send",
                    local(send.send_at)
                ),
            },
            None => say!(
                "{}: the time staff chose, {}, was missed more than schedule.grace_hours ago; not sent",
                send.week,
                local(send.send_at)
            ),
        }
    }
    let next = match settings.schedule.next_after(now) {
        Some(at) => format!("next run {}", local(at)),
        None => "no later run".to_owned(),
    };
    match done? {
        ScheduledRun::NeverDue => say!(
            "schedule.cron `{}` has not matched yet; nothing due ({next})",
            settings.schedule.cron.as_str()
        ),
        ScheduledRun::AlreadyDone { at, week } => {
            say!(
                "{week}: already dispatched for the run of {}; nothing due ({next})",
                local(at)
            )
        }
        ScheduledRun::LeftToStaff { at, week, send_at } => say!(
            "{week}: staff scheduled this issue for {}; the run of {} leaves it to that time",
            local(send_at),
            local(at)
        ),
        ScheduledRun::Skipped { at, week } => say!(
            "{week}: the run of {} was missed more than schedule.grace_hours ({}) ago; skipped ({next})",
            local(at),
            settings.schedule.grace_hours
        ),
        ScheduledRun::Dispatched { at, outcome } => match outcome {
            Dispatched::Queued {
                week,
                recipients,
                articles,
            } => say!(
                "{week}: issue queued for {recipients} readers ({articles} articles) for the run of {}",
                local(at)
            ),
            Dispatched::AlreadyDispatched { week } => say!("{week}: already dispatched; nothing queued"),
            Dispatched::NothingNew { week, since } => say!(
                "{week}: no articles published between {} and the run of {}; nothing to send",
                local(since),
                local(at)
            ),
        },
    }
    Ok(())
}

async fn api_tokens(settings: Settings, command: ApiTokensCommand) -> anyhow::Result<()> {
    use gazette::db::api_tokens;
    use gazette::domain::{ApiToken, ApiTokenName};
    let db = gazette::app::database(&settings, Schema::Check).await?;
    let now = chrono::Utc::now();
    let done = async {
        match command {
            ApiTokensCommand::Create { name, scope } => {
                let name = ApiTokenName::parse(&name)?;
                let token = ApiToken::generate();
                let id = api_tokens::create(&db, &name, scope, &token, "cli", now).await?;
                eprintln!("token {id} ({scope}) made; it is shown this once:");
                say!("{}", token.as_str());
            }
            ApiTokensCommand::List => {
                for t in api_tokens::list(&db).await? {
                    let revoked = t.revoked_at.map_or("-".to_owned(), |at| at.to_rfc3339());
                    say!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        t.id,
                        escape(&t.name),
                        t.scope,
                        t.created_at.to_rfc3339(),
                        escape(&t.created_by),
                        revoked
                    );
                }
            }
            ApiTokensCommand::Revoke { id } => {
                anyhow::ensure!(
                    api_tokens::revoke(&db, id, now).await?,
                    "there is no live token {id} (`gazette api-tokens list` lists them)"
                );
                say!(
                    "token {id} revoked; running servers refuse it within {} s",
                    gazette::web::api::TOKEN_CACHE_TTL.as_secs()
                );
            }
        }
        anyhow::Ok(())
    }
    .await;
    db.close().await;
    done
}

async fn staff(settings: Settings, command: StaffCommand) -> anyhow::Result<()> {
    let (StaffCommand::Add { email } | StaffCommand::Passwd { email }) = &command;
    // A new staff address is mailed (test sends); an existing one is only looked up.
    let policy = match command {
        StaffCommand::Add { .. } => settings.subscriptions.address_policy(),
        StaffCommand::Passwd { .. } => AddressPolicy::LOOKUP,
    };
    let email = SubscriberEmail::parse(email, policy).map_err(|e| anyhow::anyhow!("`{email}`: {e}"))?;
    let password = read_password(matches!(command, StaffCommand::Add { .. }))?;
    let password = StaffPassword::parse(&password).map_err(anyhow::Error::msg)?;
    let db = gazette::app::database(&settings, Schema::Check).await?;
    let hash = gazette::staff::hash_password(password)
        .await
        .map_err(anyhow::Error::msg)?;
    let now = chrono::Utc::now();
    let done = match command {
        StaffCommand::Add { .. } => gazette::db::staff::add(&db, &email, &hash, now).await,
        StaffCommand::Passwd { .. } => gazette::db::staff::set_password(&db, &email, &hash, now).await,
    };
    db.close().await;
    match (command, done?) {
        (StaffCommand::Add { .. }, true) => say!("staff user {email} added"),
        (StaffCommand::Add { .. }, false) => {
            anyhow::bail!("a staff user {email} exists already; `gazette staff passwd {email}` sets a new password")
        }
        (StaffCommand::Passwd { .. }, true) => say!("password of {email} changed"),
        (StaffCommand::Passwd { .. }, false) => anyhow::bail!("there is no staff user {email}"),
    }
    Ok(())
}

/// A password from the terminal (typed twice, not echoed) or, when stdin
/// is not a terminal, its first line: never from the command line, where
/// other users could read it in the process list.
fn read_password(new_account: bool) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal};
    if std::io::stdin().is_terminal() {
        let what = if new_account { "Password" } else { "New password" };
        let first = rpassword::prompt_password(format!("{what} (at least {MIN_PASSWORD_CHARS} characters): "))?;
        let again = rpassword::prompt_password("The same password again: ")?;
        anyhow::ensure!(first == again, "the two passwords differ; nothing was changed");
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

async fn backup(settings: Settings, file: &std::path::Path) -> anyhow::Result<()> {
    use gazette::maintenance::{self, MaintenanceError};
    // PostgreSQL is not opened at all: pg_dump does that job.
    if !settings.database.url.starts_with("sqlite:") {
        return Err(MaintenanceError::Postgres.into());
    }
    let db = gazette::app::database(&settings, Schema::Check).await?;
    let done = maintenance::backup(&db, file).await;
    db.close().await;
    let backup = done?;
    say!(
        "backup written to {}: {} bytes, {}",
        escape(&backup.path.display().to_string()),
        backup.bytes,
        backup.contents
    );
    Ok(())
}

async fn restore(settings: Settings, file: &std::path::Path) -> anyhow::Result<()> {
    let restored = gazette::maintenance::restore(&settings.database, file).await?;
    say!(
        "restored {} into {}: {}",
        escape(&file.display().to_string()),
        escape(&restored.database.display().to_string()),
        restored.contents
    );
    let latest = gazette::maintenance::latest_schema_version();
    if restored.contents.schema_version < latest {
        say!(
            "its schema is older than this Gazette's ({latest}): `gazette migrate`, or the next start, brings it up to date"
        );
    }
    if let Some(replaced) = restored.replaced {
        say!(
            "the database it replaced is kept as {} (delete it once the restore is checked)",
            escape(&replaced.display().to_string())
        );
    }
    Ok(())
}

async fn prune(settings: Settings, dry_run: bool) -> anyhow::Result<()> {
    use gazette::maintenance;
    let db = gazette::app::database(&settings, Schema::Check).await?;
    let now = chrono::Utc::now();
    let done = if dry_run {
        maintenance::prune_preview(&db, &settings, now).await
    } else {
        maintenance::prune(&db, &settings, now, None).await
    };
    db.close().await;
    let pruned = done?;
    let retention = &settings.retention;
    let kept = |n: u32, unit: &str| match n {
        0 => "kept forever".to_owned(),
        n => format!("older than {n} {unit}"),
    };
    let (verb, tail) = if dry_run {
        ("would remove", " (dry run: nothing changed)")
    } else {
        ("removed", "")
    };
    say!("prune {verb}{tail}:");
    say!(
        "deliveries: {} rows of {} issues, summarised per issue ({})",
        pruned.delivery_rows,
        pruned.delivery_issues,
        kept(retention.delivery_months, "months")
    );
    say!(
        "mail addresses: {} ({})",
        pruned.mail_addresses,
        kept(retention.mail_address_days, "days")
    );
    say!(
        "unconfirmed readers: {} ({})",
        pruned.unconfirmed_readers,
        kept(retention.unconfirmed_reader_days, "days")
    );
    say!(
        "outbox files: {} in {} ({})",
        pruned.outbox_files,
        escape(&settings.mail.outbox_dir.display().to_string()),
        kept(retention.outbox_days, "days")
    );
    say!(
        "deleted articles: {} ({})",
        pruned.deleted_articles,
        kept(retention.deleted_article_days, "days")
    );
    Ok(())
}

/// `gazette inbound classify FILE…`: what each message says, one line per
/// file. With `mail.bounce_domain` set, the database is asked who a return
/// path or unsubscribe address names (looking only), so the line shows the
/// reader's address, as the pipeline would find them; without it, or when
/// the database cannot be opened (said once on standard error), the line
/// shows the address the message gives. The file name and the address come
/// from outside (a file name may hold control characters, the address is
/// what a stranger wrote), so both are escaped for the terminal. An
/// unreadable file is named on standard error and the rest are still read;
/// the command then exits 1.
async fn inbound_classify(settings: &Settings, files: &[PathBuf]) -> anyhow::Result<()> {
    use gazette::db::inbound as stored;
    use gazette::domain::InboundSource;
    use gazette::inbound::{Reason, apply};
    let lookup = match settings.mail.bounce_domain.trim() {
        "" => None,
        domain => match reader_lookup(settings, domain).await {
            Ok(lookup) => lookup,
            Err(e) => {
                eprintln!(
                    "gazette: {}; the addresses below are the ones the messages give",
                    escape(&format!("{e:#}"))
                );
                None
            }
        },
    };
    let mut unreadable = 0;
    for file in files {
        let name = file.display().to_string();
        let raw = match std::fs::read(file) {
            Ok(raw) => raw,
            Err(e) => {
                eprintln!("gazette: {}: {e}", escape(&name));
                unreadable += 1;
                continue;
            }
        };
        let report = gazette::inbound::classify::message(&raw, &[]);
        let paths = lookup.as_ref().map(|(_, paths)| paths);
        let key = apply::reader_key(paths, InboundSource::Smtp, &report);
        let (kind, reason) = apply::kind_and_reason(&key, &report);
        let reader = match &lookup {
            Some((db, _)) => stored::named_reader(db, &key).await?,
            None => None,
        };
        let address = reader.map(|r| r.email).or(report.recipient);
        let or_dash = |value: Option<&str>| {
            value
                .filter(|v| !v.is_empty())
                .map_or("-".to_owned(), |v| escape(v).into_owned())
        };
        let reason = match reason {
            Reason::Undefined => "-",
            reason => reason.as_str(),
        };
        say!(
            "{}: {} {} {} {}",
            escape(&name),
            kind.as_str(),
            or_dash(address.as_deref()),
            or_dash(report.status_code.as_deref()),
            reason
        );
    }
    if let Some((db, _)) = lookup {
        db.close().await;
    }
    match unreadable {
        0 => Ok(()),
        n => Err(anyhow::anyhow!("{n} of {} files could not be read", files.len())),
    }
}

/// The database and the return paths it keys, for looking readers up;
/// `None` when no process has made the key yet (no mail went out with a
/// return path). Opening it creates nothing.
async fn reader_lookup(
    settings: &Settings,
    domain: &str,
) -> anyhow::Result<Option<(gazette::db::Db, gazette::mail::verp::ReturnPaths)>> {
    let db = gazette::app::database(settings, Schema::Check)
        .await
        .map_err(|e| anyhow::anyhow!("cannot look readers up in the database: {e}"))?;
    match gazette::db::inbound::existing_return_path_secret(&db).await {
        Ok(Some(secret)) => Ok(Some((db, gazette::mail::verp::ReturnPaths::new(domain, &secret)))),
        Ok(None) => {
            db.close().await;
            Ok(None)
        }
        Err(e) => {
            db.close().await;
            Err(anyhow::anyhow!(
                "cannot read the return-path key from the database: {e}"
            ))
        }
    }
}
