//! The composition root: builds what each role of a process needs from the
//! settings (the database, the delivery worker with its mailer and
//! composer, the scheduler, the feed poller, the web server, the metrics
//! listener) and runs
//! them. `main` and the tests start the application the same way, through
//! [`Application::build`]; the roles meet only in the database and in the
//! shared library modules.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::config::{SessionKeyError, Settings};
use crate::db::schema::{SchemaAccessError, SchemaError};
use crate::db::{ConnectError, Db};
use crate::delivery::Worker;
use crate::digest::poll::Poller;
use crate::inbound::{self, Inbound};
use crate::mail::{Composer, DkimSigner, Mailer, MailerSetupError};
use crate::maintenance::DailyPrune;
use crate::metrics::Metrics;
use crate::schedule::Scheduler;
use crate::web::{self, WebState, WebStateError};
use crate::webhooks::Sender;

/// Which roles this process plays.
#[derive(Debug, Clone, Copy)]
pub struct Roles {
    /// The public site and the staff area, with the weekly scheduler (unless
    /// `schedule.enabled` is off), the feed poller (unless
    /// `feeds.poll_minutes` is 0) and the metrics listener (when
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
    #[error("inbound mail: {0}")]
    Inbound(String),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: String, source: std::io::Error },
}

impl BuildError {
    /// The settings are wrong (not the machine or the network): restarting
    /// the process cannot help, so it exits as for any bad setting.
    pub fn is_configuration(&self) -> bool {
        matches!(self, Self::Mail(_) | Self::SessionKey(_))
            // A schema that does not match the binary needs `gazette
            // migrate` or another binary: restarting would only loop.
            || matches!(self, Self::Database(e) if e.is_schema_refusal())
    }
}

/// What opening the database does about its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Apply the migrations the database lacks: `gazette migrate`, and
    /// `serve` with `database.migrate_on_start`.
    Migrate,
    /// Change nothing; refuse a database that is behind this binary, or
    /// ahead of it and incompatible (see `db::schema`).
    Check,
}

/// Opens the database the settings name, and migrates or checks its schema:
/// what every command that touches data starts with.
pub async fn database(settings: &Settings, schema: Schema) -> Result<Db, ConnectError> {
    // A check never leaves an empty SQLite file behind (a command run from
    // the wrong directory would otherwise make one there).
    if schema == Schema::Check && settings.database.sqlite_file().is_some_and(|file| !file.exists()) {
        return Err(ConnectError::Schema(SchemaAccessError::Refused(SchemaError::Empty)));
    }
    let db = Db::connect(&settings.database).await?;
    let ready = match schema {
        Schema::Migrate => db.migrate().await,
        Schema::Check => db.check_schema().await,
    };
    if let Err(e) = ready {
        db.close().await;
        return Err(e);
    }
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
    pruner: Option<DailyPrune>,
    poller: Option<Poller>,
    webhook_sender: Option<Sender>,
    inbound_listener: Option<inbound::smtp_listener::Listener>,
    inbound_listener_port: Option<u16>,
    imap_poller: Option<inbound::imap::Poller>,
    /// Set when a way in for inbound mail runs: messages a crash left
    /// stored but unread are applied at start.
    inbound: Option<Inbound>,
    db: Db,
}

impl Application {
    /// Opens the database (applying migrations for a web process with
    /// `database.migrate_on_start`, checking the schema otherwise), prepares the worker, binds
    /// the listeners (port 0 picks a free one); nothing runs until
    /// [`Application::run_until_stopped`]. `dkim` is the signer the
    /// settings' `mail.dkim` names, read before anything starts so a bad key
    /// stops the process at once; the worker signs with it.
    pub async fn build(settings: Settings, roles: Roles, dkim: Option<DkimSigner>) -> Result<Self, BuildError> {
        // Everything the settings alone can refuse is checked before the
        // database is opened (or, for SQLite, created).
        let mailer = roles
            .worker
            .then(|| Mailer::from_settings(&settings.mail))
            .transpose()?;
        let session_key = roles.web.then(|| settings.session_key()).transpose()?;
        // Only the web role migrates, and only when told to: on several
        // machines, `gazette migrate` is run once, by hand, before restarts.
        let schema = match roles.web && settings.database.migrate_on_start {
            true => Schema::Migrate,
            false => Schema::Check,
        };
        let db = database(&settings, schema).await?;
        // Lets a handler that queued mail wake this process's worker at once.
        let mail_wakeup = Arc::new(Notify::new());
        // `gazette worker` serves its own metrics (its sends and relays).
        let worker_metrics = mailer.clone().filter(|_| !roles.web);
        let worker = mailer.map(|mailer| worker(&settings, db.clone(), mailer, dkim, mail_wakeup.clone()));
        // Webhooks go out from wherever mail does.
        let webhook_sender = roles.worker.then(|| Sender::from_settings(db.clone(), &settings));
        // The scheduler belongs to the web role (`gazette serve`); operators
        // turn it off per process with --no-scheduler or schedule.enabled.
        let scheduler = (roles.web && settings.schedule.enabled).then(|| Scheduler::new(db.clone(), settings.clone()));
        // Retention runs beside the scheduler, in `gazette serve` only.
        let pruner = (roles.web && settings.retention.daily).then(|| DailyPrune::new(db.clone(), settings.clone()));
        // So does the feed poller; `feeds.poll_minutes = 0` turns it off
        // (`gazette feeds poll` from cron instead). Any number of processes
        // may run it: each source is claimed by one at a time.
        let poller =
            (roles.web && settings.feeds.poll_minutes > 0).then(|| Poller::from_settings(db.clone(), &settings));
        let metrics = Arc::new(Metrics::with_gauge_cache(Duration::from_secs(
            settings.metrics.cache_seconds,
        )));
        let (inbound_listener, inbound_listener_port, imap_poller, inbound) =
            inbound_roles(&settings, roles, &db).await?;
        let (server, port) = if let Some(session_key) = session_key {
            let (listener, port, address) = match inherited_listener()? {
                Some((listener, port)) => (listener, port, "the socket systemd passed".to_owned()),
                None => {
                    let address = format!("{}:{}", settings.server.host, settings.server.port);
                    let (listener, port) = bind(&address)?;
                    (listener, port, address)
                }
            };
            let state = WebState::new(
                &settings,
                db.clone(),
                mail_wakeup,
                metrics.clone(),
                session_key,
                inbound.clone(),
            )
            .await?;
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
            None => match (settings.metrics.listen, worker_metrics) {
                // A worker beside a `serve` on one machine finds the default
                // port taken: it sends all the same, and says how to fix it.
                (Some(address), Some(mailer)) => match bind(&address.to_string()) {
                    Ok((listener, port)) => {
                        let render = move || crate::metrics::render_worker(&mailer.relay_figures());
                        let server =
                            web::metrics_listener::serve_worker(listener, Arc::new(render)).map_err(|source| {
                                BuildError::Listen {
                                    address: address.to_string(),
                                    source,
                                }
                            })?;
                        (Some(server), Some(port))
                    }
                    Err(e) => {
                        tracing::warn!(%address, error = %e,
                            "the worker serves no metrics: metrics.listen is taken (by `gazette serve`?); \
                             give the worker its own, e.g. GAZETTE_METRICS__LISTEN=127.0.0.1:9101");
                        (None, None)
                    }
                },
                _ => (None, None),
            },
        };
        Ok(Self {
            port,
            server,
            metrics_port,
            metrics_server,
            worker,
            scheduler,
            pruner,
            poller,
            webhook_sender,
            inbound_listener,
            inbound_listener_port,
            imap_poller,
            inbound,
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

    /// The port of the inbound SMTP/LMTP listener, when one runs.
    pub fn inbound_listener_port(&self) -> Option<u16> {
        self.inbound_listener_port
    }

    /// Runs every role until the web server stops (SIGINT/SIGTERM) or, for a
    /// worker-only process, until a signal; then lets the worker finish its
    /// batch, the scheduler its dispatch and the poller its polls in
    /// progress, and closes the database.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (stop_worker, stopped) = watch::channel(false);
        let scheduler = self.scheduler.map(|s| tokio::spawn(s.run(stopped.clone())));
        let pruner = self.pruner.map(|p| tokio::spawn(p.run(stopped.clone())));
        let poller = self.poller.map(|p| tokio::spawn(p.run(stopped.clone())));
        let webhook_sender = self.webhook_sender.map(|s| tokio::spawn(s.run(stopped.clone())));
        if let Some(inbound) = &self.inbound {
            match inbound.process_received().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(messages = n, "applied inbound mail left unread by the last run"),
                Err(e) => tracing::warn!(error = %e, "could not apply the inbound mail left unread by the last run"),
            }
        }
        let inbound_listener = self.inbound_listener.map(|l| tokio::spawn(l.run(stopped.clone())));
        let imap_poller = self.imap_poller.map(|p| tokio::spawn(p.run(stopped.clone())));
        let worker = self.worker.map(|w| tokio::spawn(w.run(stopped)));
        let metrics_server = self.metrics_server.map(|server| {
            let handle = server.handle();
            tokio::spawn(server);
            handle
        });
        let result = match self.server {
            Some(server) => serve_until_signal(server).await,
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
        if let Some(pruner) = pruner {
            // It stops between issues; each issue's summary is one transaction.
            let _ = tokio::time::timeout(Duration::from_secs(30), pruner).await;
        }
        if let Some(poller) = poller {
            // It claims no new source once stopped; a fetch gives up within
            // 30 seconds, and a claim left behind runs out by itself.
            let _ = tokio::time::timeout(Duration::from_secs(30), poller).await;
        }
        // Its requests give up within webhooks.timeout_seconds; a claim left
        // behind runs out by itself.
        for task in [inbound_listener, imap_poller, webhook_sender].into_iter().flatten() {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
        self.db.close().await;
        result
    }
}

/// The ways in for inbound mail that `gazette serve` runs: the SMTP/LMTP
/// listener (`inbound.smtp_listen`) and the IMAP poller
/// (`inbound.imap_url`), each when configured; the pipeline is built for
/// them and for the provider webhooks the web server serves.
#[allow(clippy::type_complexity)]
async fn inbound_roles(
    settings: &Settings,
    roles: Roles,
    db: &Db,
) -> Result<
    (
        Option<inbound::smtp_listener::Listener>,
        Option<u16>,
        Option<inbound::imap::Poller>,
        Option<Inbound>,
    ),
    BuildError,
> {
    let wanted = roles.web
        && (settings.inbound.smtp_listen.is_some()
            || !settings.inbound.imap_url.trim().is_empty()
            || web::inbound_hooks::configured(&settings.inbound));
    if !wanted {
        return Ok((None, None, None, None));
    }
    let pipeline = Inbound::new(db.clone(), settings)
        .await
        .map_err(|e| BuildError::Inbound(e.to_string()))?;
    let (listener, port) = match settings.inbound.smtp_listen {
        Some(address) => {
            let (listener, port) = bind(&address.to_string())?;
            (
                Some(
                    inbound::smtp_listener::Listener::new(listener, pipeline.clone())
                        .with_limits(inbound::smtp_listener::Limits::from_settings(&settings.inbound)),
                ),
                Some(port),
            )
        }
        None => (None, None),
    };
    let imap =
        inbound::imap::Poller::from_settings(&settings.inbound, pipeline.clone()).map_err(BuildError::Inbound)?;
    Ok((listener, port, imap, Some(pipeline)))
}

/// The delivery worker the settings describe, sending through `mailer`
/// and signing with `dkim`.
fn worker(settings: &Settings, db: Db, mailer: Mailer, dkim: Option<DkimSigner>, wakeup: Arc<Notify>) -> Worker {
    let composer = Composer::from_settings(settings, dkim);
    Worker::new(
        db,
        mailer,
        composer,
        settings.delivery.clone(),
        // The slowest relay's: a message may go to any of them.
        Duration::from_secs(
            (settings.mail.relay_list().iter())
                .map(|relay| relay.smtp.timeout_seconds)
                .max()
                .unwrap_or(settings.mail.smtp.timeout_seconds),
        ),
        wakeup,
    )
}

/// How long the accept thread gets to hand the connections it took to a
/// worker before the workers are told to stop: actix drops connections
/// still queued for a stopping worker, which would reset them unanswered.
const ACCEPT_SETTLE: Duration = Duration::from_millis(200);

/// Runs the web server until SIGTERM or SIGINT, then stops it without
/// losing a request: every response from then on closes its connection
/// (`web::drain`), accepting stops, the connections already accepted are
/// served, and what waits in the listening socket's backlog is left there
/// for the next process when systemd holds the socket (`gazette-serve.socket`).
async fn serve_until_signal(server: actix_web::dev::Server) -> std::io::Result<()> {
    let handle = server.handle();
    let mut running = tokio::spawn(server);
    let joined =
        |r: Result<std::io::Result<()>, tokio::task::JoinError>| r.unwrap_or_else(|e| Err(std::io::Error::other(e)));
    tokio::select! {
        served = &mut running => return joined(served),
        signal = shutdown_signal() => signal?,
    }
    tracing::info!("stopping: finishing the requests in progress");
    web::drain::begin();
    handle.pause().await;
    tokio::time::sleep(ACCEPT_SETTLE).await;
    handle.stop(true).await;
    joined(running.await)
}

/// The listening socket systemd passed to this process (socket activation:
/// `LISTEN_PID` is this process and `LISTEN_FDS` counts the sockets from
/// file descriptor 3 on), with its port; `None` when there is none, and
/// the process binds `server.host:server.port` itself. A socket that is not
/// one listening TCP socket is refused, naming what was wrong.
fn inherited_listener() -> Result<Option<(TcpListener, u16)>, BuildError> {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::sync::atomic::{AtomicBool, Ordering};
    /// fd 3 is taken once: a second `Application` in this process binds.
    static TAKEN: AtomicBool = AtomicBool::new(false);
    const SD_LISTEN_FDS_START: i32 = 3;

    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|pid| pid.trim().parse::<u32>().ok())
        .is_some_and(|pid| pid == std::process::id());
    if !for_us || TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(None);
    }
    let refused = |why: String| BuildError::Listen {
        address: "the socket systemd passed (LISTEN_FDS)".to_owned(),
        source: std::io::Error::other(why),
    };
    let count = std::env::var("LISTEN_FDS").unwrap_or_default();
    if count.trim() != "1" {
        return Err(refused(format!(
            "expected one listening socket, got LISTEN_FDS={count:?}; give gazette-serve.socket one ListenStream="
        )));
    }
    // SAFETY: LISTEN_PID names this process, so fd 3 was open when it
    // started and is owned by nothing else in it: descriptors are handed
    // out lowest first, so no file or socket opened since can be 3, and
    // TAKEN makes this the only place that takes it.
    let inherited = unsafe { OwnedFd::from_raw_fd(SD_LISTEN_FDS_START) };
    let socket = socket2::Socket::from(inherited);
    let failed = |e: std::io::Error| refused(e.to_string());
    let is_tcp = socket.r#type().map_err(failed)? == socket2::Type::STREAM
        && socket.local_addr().map_err(failed)?.as_socket().is_some();
    if !is_tcp || !socket.is_listener().map_err(failed)? {
        return Err(refused(
            "fd 3 is not a listening TCP socket; use ListenStream=ADDRESS:PORT".to_owned(),
        ));
    }
    // systemd passes the socket without close-on-exec.
    socket.set_cloexec(true).map_err(failed)?;
    let listener = TcpListener::from(socket);
    let port = listener.local_addr().map_err(failed)?.port();
    Ok(Some((listener, port)))
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
