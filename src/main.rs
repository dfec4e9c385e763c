use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use gazette::config::Settings;
use gazette::db::{Db, redact};
use gazette::mail::Mailer;
use gazette::web::{Application, Roles};

/// Gazette: a self-hosted weekly newsletter with double opt-in.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Directory holding default.toml and $GAZETTE_ENV.toml.
    #[arg(long, global = true, env = "GAZETTE_CONFIG_DIR", default_value = "config")]
    config_dir: PathBuf,

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
    },
    /// Run only the delivery worker.
    Worker,
    /// Apply database migrations and exit.
    Migrate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(&cli.config_dir) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("gazette: {e}");
            return ExitCode::from(2);
        }
    };
    gazette::telemetry::init(&settings.log.level);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("gazette: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve { no_worker: false }) {
            Command::Serve { no_worker } => {
                run(
                    settings,
                    Roles {
                        web: true,
                        worker: !no_worker,
                    },
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
                )
                .await
            }
            Command::Migrate => migrate(settings).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gazette: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings, roles: Roles) -> anyhow::Result<()> {
    let app = Application::build(settings.clone(), roles).await?;
    tracing::info!(
        database = %redact(&settings.database.url),
        backend = app.db().backend(),
        "database ready (migrations applied)"
    );
    if roles.web {
        tracing::info!(
            "Gazette is running: open http://{}:{}/ (links in emails use {})",
            settings.server.host,
            app.port(),
            settings.server.base_url
        );
    }
    if roles.worker {
        tracing::info!("outgoing mail is {}", Mailer::describe(&settings.mail));
    }
    app.run_until_stopped().await?;
    tracing::info!("stopped");
    Ok(())
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let db = Db::connect(&settings.database).await?;
    db.migrate().await?;
    println!("migrations applied to {}", redact(&settings.database.url));
    db.close().await;
    Ok(())
}
