//! The HTTP side: one builder for the whole application, used the same way
//! by `gazette serve` and by every test.

pub mod admin;
mod archive;
pub mod client_addr;
mod form;
mod head;
mod health;
mod metrics_listener;
mod observe;
mod pages;
mod rate_limit;
mod subscriptions;
mod unsubscribe;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServiceRequest;
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{DefaultHeaders, Logger, from_fn};
use actix_web::{App, HttpResponse, HttpServer, Route, web};
use tokio::sync::{Notify, watch};

use crate::config::{BaseUrl, Settings};
use crate::db::signup_writer::SignupWriter;
use crate::db::subscribers::SignupPolicy;
use crate::db::{ConnectError, Db};
use crate::delivery::Worker;
use crate::mail::{Composer, Mailer};
use crate::schedule::Scheduler;
pub use client_addr::{ClientAddr, TrustedProxies};
pub use rate_limit::IpRateLimit;

/// What every handler can reach.
pub struct AppState {
    pub db: Db,
    pub site: String,
    pub signup_limit: IpRateLimit,
    pub signups: SignupWriter,
    pub max_body_bytes: usize,
    pub base_url: BaseUrl,
    pub address_policy: crate::domain::AddressPolicy,
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
    metrics_port: Option<u16>,
    metrics_server: Option<actix_web::dev::Server>,
    worker: Option<Worker>,
    scheduler: Option<Scheduler>,
    db: Db,
}

const CSS: &str = include_str!("../../static/site.css");
const ADMIN_JS: &str = include_str!("../../static/admin.js");
const FAVICON: &[u8] = include_bytes!("../../static/favicon.ico");

impl Application {
    /// Opens the database (applying migrations), binds the listener
    /// (port 0 picks a free one) and prepares the worker; nothing runs
    /// until [`Application::run_until_stopped`].
    pub async fn build(settings: Settings, roles: Roles) -> Result<Self, BuildError> {
        let db = Db::connect(&settings.database).await?;
        db.migrate().await?;
        let mail_wakeup = Arc::new(Notify::new());
        let worker = if roles.worker {
            let mailer = Mailer::from_settings(&settings.mail).map_err(|e| BuildError::Mail(e.to_string()))?;
            let composer = Composer::from_settings(&settings).map_err(|e| BuildError::Mail(e.to_string()))?;
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
        let metrics = web::Data::new(crate::metrics::Metrics::with_gauge_cache(Duration::from_secs(
            settings.metrics.cache_seconds,
        )));
        let (server, port) = if roles.web {
            let address = format!("{}:{}", settings.server.host, settings.server.port);
            let (listener, port) = bind(&address)?;
            let signup_limit = IpRateLimit::per_minute(settings.limits.signups_per_ip_per_minute);
            let signup_policy = SignupPolicy {
                token_ttl: chrono::Duration::hours(i64::from(settings.subscriptions.confirmation_ttl_hours)),
                mails_per_day: settings.subscriptions.confirmation_emails_per_day,
                confirmations_per_hour: settings.limits.confirmations_per_hour,
            };
            signup_limit.spawn_janitor();
            let admin = admin_state(
                &settings,
                &db,
                signup_policy,
                mail_wakeup.clone(),
                metrics.password_checks(),
            )
            .await?;
            let session_key = admin::session_key(&settings)?;
            let state = web::Data::new(AppState {
                db: db.clone(),
                site: settings.mail.publication(),
                signup_limit,
                signups: SignupWriter::start(db.clone(), signup_policy, mail_wakeup),
                max_body_bytes: settings.server.max_body_bytes,
                base_url: settings.server.base_url.clone(),
                address_policy: settings.subscriptions.address_policy(),
            });
            let edge = Edge {
                trusted_proxies: settings.server.trusted_proxies.clone(),
                body_timeout: form::BodyTimeout(Duration::from_secs(settings.server.body_timeout_seconds)),
            };
            (
                Some(
                    serve(listener, state, admin, session_key, metrics.clone(), edge).map_err(|source| {
                        BuildError::Listen {
                            address: "listener".into(),
                            source,
                        }
                    })?,
                ),
                port,
            )
        } else {
            (None, 0)
        };
        // Bound after everything that can refuse to start, so a refusal
        // never depends on whether the metrics port is free.
        let (metrics_server, metrics_port) = match settings.metrics.listen.filter(|_| roles.web) {
            Some(address) => {
                let (listener, port) = bind(&address.to_string())?;
                let server = metrics_listener::serve(listener, metrics.clone(), db.clone()).map_err(|source| {
                    BuildError::Listen {
                        address: address.to_string(),
                        source,
                    }
                })?;
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
    /// batch and closes the database.
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

/// How long a login waits for a password check to start before its 429.
const PASSWORD_CHECK_WAIT: Duration = Duration::from_secs(2);

/// What the staff area needs, with its login limits' janitor running.
async fn admin_state(
    settings: &Settings,
    db: &Db,
    signup_policy: SignupPolicy,
    mail_wakeup: Arc<Notify>,
    password_check_gauges: Arc<crate::metrics::PasswordCheckGauges>,
) -> Result<web::Data<admin::AdminState>, BuildError> {
    let random = uuid::Uuid::new_v4().to_string() + &uuid::Uuid::new_v4().to_string();
    let dummy = crate::domain::StaffPassword::parse(&random).expect("72 characters make a password");
    let dummy_hash = crate::staff::hash_password(dummy).await.map_err(BuildError::Mail)?;
    let login_ip_limit = IpRateLimit::per_minute(settings.limits.admin_logins_per_ip_per_minute);
    let login_throttle = admin::LoginThrottle::per_minute(settings.limits.admin_logins_per_account_per_minute);
    login_ip_limit.spawn_janitor();
    login_throttle.spawn_janitor();
    let password_checks = crate::staff::PasswordChecks::new(
        settings.limits.concurrent_password_checks as usize,
        PASSWORD_CHECK_WAIT,
        password_check_gauges,
    );
    Ok(web::Data::new(admin::AdminState {
        db: db.clone(),
        settings: Arc::new(settings.clone()),
        site: settings.mail.publication(),
        login_ip_limit,
        login_throttle,
        password_checks,
        dummy_hash,
        signup_policy,
        mail_wakeup,
        imports: crate::digest::import_job::ImportJobs::new(
            db.clone(),
            crate::digest::fetch::Fetcher::new(crate::digest::fetch::FetchPolicy::new(
                settings.feeds.allow_private_addresses,
            )),
            settings.digest.summary_max_chars,
        ),
    }))
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

/// What the public listener needs to read requests from the outside.
#[derive(Clone)]
struct Edge {
    trusted_proxies: TrustedProxies,
    body_timeout: form::BodyTimeout,
}

/// Every public route: method, path, handler (the staff area's are in
/// [`admin::routes`]). Each GET route answers HEAD too (see [`head`]).
pub fn routes() -> Vec<(Method, &'static str, Route)> {
    vec![
        (Method::GET, "/", web::get().to(subscriptions::signup_form)),
        (Method::POST, "/subscriptions", web::post().to(subscriptions::subscribe)),
        (
            Method::GET,
            "/subscriptions/confirm",
            web::get().to(subscriptions::confirm_page),
        ),
        (
            Method::POST,
            "/subscriptions/confirm",
            web::post().to(subscriptions::confirm),
        ),
        (
            Method::GET,
            "/unsubscribe",
            web::get().to(unsubscribe::unsubscribe_page),
        ),
        (Method::POST, "/unsubscribe", web::post().to(unsubscribe::unsubscribe)),
        (Method::GET, "/archive", web::get().to(archive::index)),
        (Method::GET, "/archive/feed.xml", web::get().to(archive::feed)),
        (Method::GET, "/archive/{week}", web::get().to(archive::issue)),
        (Method::GET, "/health_check", web::get().to(health::health_check)),
        (Method::GET, "/static/site.css", web::get().to(stylesheet)),
        (Method::GET, "/static/admin.js", web::get().to(admin_script)),
        (Method::GET, "/favicon.ico", web::get().to(favicon)),
    ]
}

/// The public routes as `(method, path)`, for tests and documentation.
pub fn route_list() -> Vec<(Method, String)> {
    routes()
        .into_iter()
        .map(|(method, path, _)| (method, path.to_owned()))
        .collect()
}

/// The access log's client: see [`ClientAddr`]; `-` without one.
fn logged_client(req: &ServiceRequest) -> String {
    ClientAddr::of(req.request()).map_or_else(|| "-".to_owned(), |c| c.to_string())
}

fn serve(
    listener: TcpListener,
    state: web::Data<AppState>,
    admin: web::Data<admin::AdminState>,
    session_key: Vec<u8>,
    metrics: web::Data<crate::metrics::Metrics>,
    edge: Edge,
) -> std::io::Result<actix_web::dev::Server> {
    let admin_settings = admin.settings.clone();
    let server = HttpServer::new(move || {
        let mut app = App::new()
            // Innermost, so the request counts still say HEAD.
            .wrap(from_fn(head::as_get))
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
            // `%r` would log the query, and with it link tokens: the request
            // line is written by `observe` with secret values left out.
            .wrap(
                Logger::new("%{client}xi \"%{request}xi\" %s %b %Dms request_id=%{x-request-id}o")
                    .custom_request_replace("client", logged_client)
                    .custom_request_replace("request", observe::loggable_request_line)
                    .exclude("/health_check"),
            )
            .app_data(state.clone())
            .app_data(metrics.clone())
            .app_data(edge.trusted_proxies.clone())
            .app_data(edge.body_timeout);
        for (_, path, route) in routes() {
            app = app.route(path, route);
        }
        app.app_data(admin.clone())
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

async fn favicon() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("image/x-icon")
        .insert_header(("Cache-Control", "public, max-age=86400"))
        .body(FAVICON)
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
