//! The composition root: builds what each role of a process needs from the
//! settings (the database, the delivery worker with its mailer and
//! composer, the scheduler, the web server, the metrics listener) and runs
//! them. `main` and the tests start the application the same way, through
//! [`Application::build`]; the roles meet only in the database and in the
//! shared library modules.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::config::{SessionKeyError, Settings};
use crate::db::{ConnectError, Db};
use crate::delivery::Worker;
use crate::mail::{Composer, DkimSigner, Mailer, MailerSetupError};
use crate::metrics::Metrics;
use crate::schedule::Scheduler;
use crate::web::{self, WebState, WebStateError};

/// Which roles this process plays.
#[derive(Debug, Clone, Copy)]
pub struct Roles {
    /// The public site and the staff area, with the weekly scheduler (unless
    /// `schedule.enabled` is off) and the metrics listener (when
    /// `metrics.listen` is set).
    pub web: bool,
    /// The delivery worker.
    pub worker: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Database(#[from] ConnectError),
    #[error(transparent)]
    Mail(#[from] MailerSetupError),
    #[error(transparent)]
    SessionKey(#[from] SessionKeyError),
    #[error(transparent)]
    Web(#[from] WebStateError),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: String, source: std::io::Error },
}

impl BuildError {
    /// The settings are wrong (not the machine or the network): restarting
    /// the process cannot help, so it exits as for any bad setting.
    pub fn is_configuration(&self) -> bool {
        matches!(self, Self::Mail(_) | Self::SessionKey(_))
    }
}

/// Opens the database the settings name and brings its schema up to date:
/// what every command that touches data starts with.
pub async fn database(settings: &Settings) -> Result<Db, ConnectError> {
    let db = Db::connect(&settings.database).await?;
    db.migrate().await?;
    Ok(db)
}

/// A process's roles, built and ready to run.
pub struct Application {
    port: u16,
    server: Option<actix_web::dev::Server>,
    metrics_port: Option<u16>,
    metrics_server: Option<actix_web::dev::Server>,
    worker: Option<Worker>,
    scheduler: Option<Scheduler>,
    db: Db,
}

impl Application {
    /// Opens the database (applying migrations), prepares the worker, binds
    /// the listeners (port 0 picks a free one); nothing runs until
    /// [`Application::run_until_stopped`]. `dkim` is the signer the
    /// settings' `mail.dkim` names, read before anything starts so a bad key
    /// stops the process at once; the worker signs with it.
    pub async fn build(settings: Settings, roles: Roles, dkim: Option<DkimSigner>) -> Result<Self, BuildError> {
        let db = database(&settings).await?;
        // Lets a handler that queued mail wake this process's worker at once.
        let mail_wakeup = Arc::new(Notify::new());
        let worker = if roles.worker {
            Some(worker(&settings, db.clone(), dkim, mail_wakeup.clone())?)
        } else {
            None
        };
        // The scheduler belongs to the web role (`gazette serve`); operators
        // turn it off per process with --no-scheduler or schedule.enabled.
        let scheduler = (roles.web && settings.schedule.enabled).then(|| Scheduler::new(db.clone(), settings.clone()));
        let metrics = Arc::new(Metrics::with_gauge_cache(Duration::from_secs(
            settings.metrics.cache_seconds,
        )));
        let (server, port) = if roles.web {
            let address = format!("{}:{}", settings.server.host, settings.server.port);
            let (listener, port) = bind(&address)?;
            let session_key = settings.session_key()?;
            let state = WebState::new(&settings, db.clone(), mail_wakeup, metrics.clone(), session_key).await?;
            let server = web::server(listener, state).map_err(|source| BuildError::Listen { address, source })?;
            (Some(server), port)
        } else {
            (None, 0)
        };
        // Bound after everything that can refuse to start, so a refusal
        // never depends on whether the metrics port is free.
        let (metrics_server, metrics_port) = match settings.metrics.listen.filter(|_| roles.web) {
            Some(address) => {
                let address = address.to_string();
                let (listener, port) = bind(&address)?;
                let server = web::metrics_listener::serve(listener, metrics.into(), db.clone())
                    .map_err(|source| BuildError::Listen { address, source })?;
                (Some(server), Some(port))
            }
            None => (None, None),
        };
        Ok(Self {
            port,
            server,
            metrics_port,
            metrics_server,
            worker,
            scheduler,
            db,
        })
    }

    /// The port the web server listens on (0 when this process has no web role).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `/metrics` is served on, when this process serves it.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Runs every role until the web server stops (SIGINT/SIGTERM) or, for a
    /// worker-only process, until a signal; then lets the worker finish its
    /// batch and the scheduler its dispatch, and closes the database.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (stop_worker, stopped) = watch::channel(false);
        let scheduler = self.scheduler.map(|s| tokio::spawn(s.run(stopped.clone())));
        let worker = self.worker.map(|w| tokio::spawn(w.run(stopped)));
        let metrics_server = self.metrics_server.map(|server| {
            let handle = server.handle();
            tokio::spawn(server);
            handle
        });
        let result = match self.server {
            Some(server) => server.await,
            None => shutdown_signal().await,
        };
        if let Some(metrics_server) = metrics_server {
            metrics_server.stop(true).await;
        }
        let _ = stop_worker.send(true);
        if let Some(worker) = worker {
            let _ = tokio::time::timeout(Duration::from_secs(30), worker).await;
        }
        if let Some(scheduler) = scheduler {
            // A dispatch in progress is one transaction: let it finish.
            let _ = tokio::time::timeout(Duration::from_secs(30), scheduler).await;
        }
        self.db.close().await;
        result
    }
}

/// The delivery worker the settings describe, sending through their
/// transport and signing with `dkim`.
fn worker(settings: &Settings, db: Db, dkim: Option<DkimSigner>, wakeup: Arc<Notify>) -> Result<Worker, BuildError> {
    let mailer = Mailer::from_settings(&settings.mail)?;
    let composer = Composer::from_settings(settings, dkim);
    Ok(Worker::new(
        db,
        mailer,
        composer,
        settings.delivery.clone(),
        Duration::from_secs(settings.mail.smtp.timeout_seconds),
        wakeup,
        crate::delivery::relay_identity(&settings.mail),
    ))
}

/// Binds `address` (port 0 picks a free port) and tells which port it got.
fn bind(address: &str) -> Result<(TcpListener, u16), BuildError> {
    let failed = |source| BuildError::Listen {
        address: address.to_owned(),
        source,
    };
    let listener = TcpListener::bind(address).map_err(failed)?;
    let port = listener.local_addr().map_err(failed)?.port();
    Ok((listener, port))
}

async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
