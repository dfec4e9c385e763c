//! The HTTP side: one builder for the whole application, used the same way
//! by `gazette serve` and by every test.

pub mod admin;
mod archive;
mod form;
mod health;
mod observe;
mod pages;
mod rate_limit;
mod subscriptions;
mod unsubscribe;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::middleware::{DefaultHeaders, Logger, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};
use tokio::sync::{Notify, watch};

use crate::config::{BaseUrl, Settings};
use crate::db::signup_writer::SignupWriter;
use crate::db::subscribers::SignupPolicy;
use crate::db::{ConnectError, Db};
use crate::delivery::Worker;
use crate::mail::{Composer, Mailer};
use crate::schedule::Scheduler;
pub use rate_limit::{AccountRateLimit, IpRateLimit};

/// What every handler can reach.
pub struct AppState {
    pub db: Db,
    pub site: String,
    pub signup_limit: IpRateLimit,
    pub signups: SignupWriter,
    pub max_body_bytes: usize,
    pub base_url: BaseUrl,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Database(#[from] ConnectError),
    #[error("{0}")]
    Mail(String),
    #[error(transparent)]
    SessionKey(#[from] admin::SessionKeyError),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: String, source: std::io::Error },
}

/// Which roles this process plays.
#[derive(Debug, Clone, Copy)]
pub struct Roles {
    pub web: bool,
    pub worker: bool,
}

pub struct Application {
    port: u16,
    server: Option<actix_web::dev::Server>,
    worker: Option<Worker>,
    scheduler: Option<Scheduler>,
    db: Db,
}

const CSS: &str = include_str!("../../static/site.css");
const ADMIN_JS: &str = include_str!("../../static/admin.js");

impl Application {
    /// Opens the database (applying migrations), binds the listener
    /// (port 0 picks a free one) and prepares the worker; nothing runs
    /// until [`Application::run_until_stopped`].
    pub async fn build(settings: Settings, roles: Roles) -> Result<Self, BuildError> {
        let db = Db::connect(&settings.database).await?;
        db.migrate().await?;
        let mail_wakeup = Arc::new(Notify::new());
        let worker = if roles.worker {
            let mailer = Mailer::from_settings(&settings.mail).map_err(BuildError::Mail)?;
            let composer = Composer::from_settings(&settings).map_err(BuildError::Mail)?;
            Some(Worker::new(
                db.clone(),
                mailer,
                composer,
                settings.delivery.clone(),
                Duration::from_secs(settings.mail.smtp.timeout_seconds),
                mail_wakeup.clone(),
            ))
        } else {
            None
        };
        // The scheduler belongs to the web role (`gazette serve`); operators
        // turn it off per process with --no-scheduler or schedule.enabled.
        let scheduler = (roles.web && settings.schedule.enabled).then(|| Scheduler::new(db.clone(), settings.clone()));
        let (server, port) = if roles.web {
            let address = format!("{}:{}", settings.server.host, settings.server.port);
            let listener = TcpListener::bind(&address).map_err(|source| BuildError::Listen {
                address: address.clone(),
                source,
            })?;
            let port = listener
                .local_addr()
                .map_err(|source| BuildError::Listen { address, source })?
                .port();
            let signup_limit = IpRateLimit::per_minute(settings.limits.signups_per_ip_per_minute);
            let signup_policy = SignupPolicy {
                token_ttl: chrono::Duration::hours(i64::from(settings.subscriptions.confirmation_ttl_hours)),
                mails_per_day: settings.subscriptions.confirmation_emails_per_day,
            };
            signup_limit.spawn_janitor();
            let admin = admin_state(&settings, &db, signup_policy, mail_wakeup.clone()).await?;
            let session_key = admin::session_key(&settings)?;
            let state = web::Data::new(AppState {
                db: db.clone(),
                site: settings.mail.publication(),
                signup_limit,
                signups: SignupWriter::start(db.clone(), signup_policy, mail_wakeup),
                max_body_bytes: settings.server.max_body_bytes,
                base_url: settings.server.base_url.clone(),
            });
            (
                Some(
                    serve(listener, state, admin, session_key).map_err(|source| BuildError::Listen {
                        address: "listener".into(),
                        source,
                    })?,
                ),
                port,
            )
        } else {
            (None, 0)
        };
        Ok(Self {
            port,
            server,
            worker,
            scheduler,
            db,
        })
    }

    /// The port the web server listens on (0 when this process has no web role).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Runs every role until the web server stops (SIGINT/SIGTERM) or, for a
    /// worker-only process, until a signal; then lets the worker finish its
    /// batch and closes the database.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (stop_worker, stopped) = watch::channel(false);
        let scheduler = self.scheduler.map(|s| tokio::spawn(s.run(stopped.clone())));
        let worker = self.worker.map(|w| tokio::spawn(w.run(stopped)));
        let result = match self.server {
            Some(server) => server.await,
            None => shutdown_signal().await,
        };
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

/// What the staff area needs, with its login limits' janitor running.
async fn admin_state(
    settings: &Settings,
    db: &Db,
    signup_policy: SignupPolicy,
    mail_wakeup: Arc<Notify>,
) -> Result<web::Data<admin::AdminState>, BuildError> {
    let random = uuid::Uuid::new_v4().to_string() + &uuid::Uuid::new_v4().to_string();
    let dummy = crate::domain::StaffPassword::parse(&random).expect("72 characters make a password");
    let dummy_hash = crate::staff::hash_password(dummy).await.map_err(BuildError::Mail)?;
    let login_ip_limit = IpRateLimit::per_minute(settings.limits.admin_logins_per_ip_per_minute);
    let login_account_limit = AccountRateLimit::per_minute(settings.limits.admin_logins_per_account_per_minute);
    login_ip_limit.spawn_janitor();
    login_account_limit.spawn_janitor();
    Ok(web::Data::new(admin::AdminState {
        db: db.clone(),
        settings: Arc::new(settings.clone()),
        site: settings.mail.publication(),
        login_ip_limit,
        login_account_limit,
        dummy_hash,
        signup_policy,
        mail_wakeup,
        imports: crate::digest::import_job::ImportJobs::new(
            db.clone(),
            crate::digest::fetch::Fetcher::new(crate::digest::fetch::AddressPolicy::new(
                settings.feeds.allow_private_addresses,
            )),
            settings.digest.summary_max_chars,
        ),
    }))
}

fn serve(
    listener: TcpListener,
    state: web::Data<AppState>,
    admin: web::Data<admin::AdminState>,
    session_key: Vec<u8>,
) -> std::io::Result<actix_web::dev::Server> {
    let admin_settings = admin.settings.clone();
    let metrics = web::Data::new(crate::metrics::Metrics::default());
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(observe::count_requests))
            // Inside the Logger, so the Logger's line can show the id it set.
            .wrap(from_fn(observe::request_id))
            .wrap(
                DefaultHeaders::new()
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Referrer-Policy", "same-origin"))
                    .add((
                        "Content-Security-Policy",
                        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                         frame-ancestors 'none'; base-uri 'none'",
                    )),
            )
            .wrap(Logger::new("%a \"%r\" %s %b %Dms request_id=%{x-request-id}o").exclude("/health_check"))
            .app_data(state.clone())
            .app_data(metrics.clone())
            .route("/", web::get().to(subscriptions::signup_form))
            .route("/subscriptions", web::post().to(subscriptions::subscribe))
            .route("/subscriptions/confirm", web::get().to(subscriptions::confirm_page))
            .route("/subscriptions/confirm", web::post().to(subscriptions::confirm))
            .route("/unsubscribe", web::get().to(unsubscribe::unsubscribe_page))
            .route("/unsubscribe", web::post().to(unsubscribe::unsubscribe))
            .route("/archive", web::get().to(archive::index))
            .route("/archive/feed.xml", web::get().to(archive::feed))
            .route("/archive/{week}", web::get().to(archive::issue))
            .route("/health_check", web::get().to(health::health_check))
            .route("/metrics", web::get().to(observe::metrics))
            .route("/static/site.css", web::get().to(stylesheet))
            .route("/static/admin.js", web::get().to(admin_script))
            .app_data(admin.clone())
            .service(admin::scope(&session_key, &admin_settings))
            .default_service(web::to(not_found))
    })
    .listen(listener)?
    .shutdown_timeout(10)
    .run();
    Ok(server)
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(CSS)
}

async fn admin_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(ADMIN_JS)
}

async fn not_found(state: web::Data<AppState>) -> HttpResponse {
    pages::message(
        &state.site,
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no page at this address. It may have moved, or the link may be mistyped.",
        false,
    )
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
