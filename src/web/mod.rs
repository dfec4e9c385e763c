//! The HTTP side: the public routes and the staff area, their state, and
//! the server that serves them on a listener. What else a process runs
//! (the database, the delivery worker, the scheduler) is built by
//! `crate::app`; this module uses none of them but the database.

mod address_change;
pub mod admin;
pub mod api;
mod archive;
mod clicks;
pub mod client_addr;
pub mod drain;
mod error;
mod form;
mod head;
mod health;
pub mod inbound_hooks;
pub mod language;
pub mod metrics_listener;
mod observe;
mod pages;
mod preferences;
mod rate_limit;
#[cfg(test)]
mod route_links;
mod subscriptions;
mod test_send;
mod unsubscribe;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpResponse, HttpServer, Route, web};
use tokio::sync::Notify;

use crate::config::{Settings, TrustedProxies};
use crate::db::Db;
use crate::db::signup_writer::SignupWriter;
use crate::db::subscribers::SignupPolicy;
use crate::links::Links;
use crate::metrics::Metrics;
pub use client_addr::ClientAddr;
pub use rate_limit::IpRateLimit;

/// What every handler can reach.
pub struct AppState {
    pub db: Db,
    pub site: pages::SiteFrame,
    /// `retention`: what the privacy notice says is kept how long.
    pub retention: crate::config::RetentionSettings,
    pub signup_limit: IpRateLimit,
    pub signups: SignupWriter,
    pub max_body_bytes: usize,
    pub links: Links,
    pub address_policy: crate::domain::AddressPolicy,
    /// `site.default_language`: see [`language`].
    pub default_language: crate::i18n::Language,
    /// `signup.ask_name`.
    pub ask_name: bool,
    /// `signup.welcome`.
    pub welcome: bool,
    /// How links to confirm a new address are issued.
    pub address_changes: crate::db::address_changes::ChangeRules,
    /// Wakes this process's delivery worker, if it has one, when a handler
    /// queues mail outside the signup writer.
    pub mail_wakeup: Arc<Notify>,
}

/// Why the web role's state could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum WebStateError {
    #[error("cannot prepare the staff login: {0}")]
    StaffLogin(#[from] crate::staff::HashError),
    #[error("inbound webhooks: {0}")]
    Hooks(String),
}

/// Everything the web server's handlers and middleware share, built once
/// per process; [`server`] serves it.
pub struct WebState {
    app: web::Data<AppState>,
    admin: web::Data<admin::AdminState>,
    metrics: web::Data<Metrics>,
    hooks: web::Data<inbound_hooks::Hooks>,
    api: web::Data<api::ApiState>,
    session_key: Vec<u8>,
    edge: Edge,
}

/// How long a login waits for a password check to start before its 429.
const PASSWORD_CHECK_WAIT: Duration = Duration::from_secs(2);

const CSS: &str = include_str!("../../static/site.css");
const ADMIN_JS: &str = include_str!("../../static/admin.js");
const FAVICON: &[u8] = include_bytes!("../../static/favicon.ico");

impl WebState {
    /// The state the settings describe, with the rate limits' janitors and
    /// the signup writer running. `mail_wakeup` wakes this process's
    /// delivery worker, if it has one, when a handler queues mail;
    /// `session_key` signs and encrypts the staff session cookie;
    /// `inbound`, the inbound pipeline, is needed when a provider webhook
    /// is configured ([`inbound_hooks::configured`]).
    pub async fn new(
        settings: &Settings,
        db: Db,
        mail_wakeup: Arc<Notify>,
        metrics: Arc<Metrics>,
        session_key: Vec<u8>,
        inbound: Option<crate::inbound::Inbound>,
    ) -> Result<Self, WebStateError> {
        let hooks = inbound_hooks::Hooks::from_settings(&settings.inbound, inbound).map_err(WebStateError::Hooks)?;
        let signup_limit = IpRateLimit::per_minute(settings.limits.signups_per_ip_per_minute);
        let signup_policy = SignupPolicy {
            token_ttl: chrono::Duration::hours(i64::from(settings.subscriptions.confirmation_ttl_hours)),
            mails_per_day: settings.subscriptions.confirmation_emails_per_day,
            confirmations_per_hour: settings.limits.confirmations_per_hour,
        };
        signup_limit.spawn_janitor();
        let api_tokens = api::TokenCache::default();
        let admin = admin_state(
            settings,
            &db,
            signup_policy,
            mail_wakeup.clone(),
            &metrics,
            api_tokens.clone(),
        )
        .await?;
        let app = web::Data::new(AppState {
            db: db.clone(),
            site: pages::SiteFrame::from_settings(settings),
            retention: settings.retention.clone(),
            signup_limit,
            signups: SignupWriter::start(db, signup_policy, mail_wakeup.clone()),
            max_body_bytes: settings.server.max_body_bytes,
            links: Links::new(settings.server.base_url.clone()),
            address_policy: settings.subscriptions.address_policy(),
            default_language: settings.site.default_language,
            ask_name: settings.signup.ask_name,
            welcome: settings.signup.welcome,
            address_changes: crate::db::address_changes::ChangeRules {
                token_ttl: signup_policy.token_ttl,
                per_day: signup_policy.mails_per_day,
            },
            mail_wakeup,
        });
        let api = web::Data::new(api::ApiState {
            db: app.db.clone(),
            signups: app.signups.clone(),
            tokens: api_tokens,
            address_policy: app.address_policy,
            default_language: app.default_language,
            rate_limit: rate_limit::KeyedRateLimit::per_minute(settings.limits.api_requests_per_token_per_minute),
            max_body_bytes: settings.server.max_body_bytes,
            fetch_policy: crate::digest::fetch::FetchPolicy::new(settings.feeds.allow_private_addresses),
            summary_max_chars: settings.digest.summary_max_chars,
            settings: admin.settings.clone(),
        });
        api.rate_limit.spawn_janitor();
        let edge = Edge {
            trusted_proxies: settings.server.trusted_proxies.clone(),
            body_timeout: form::BodyTimeout(Duration::from_secs(settings.server.body_timeout_seconds)),
        };
        Ok(Self {
            app,
            admin,
            metrics: web::Data::from(metrics),
            hooks: web::Data::new(hooks),
            api,
            session_key,
            edge,
        })
    }
}

/// What the staff area needs, with its login limits' janitor running.
async fn admin_state(
    settings: &Settings,
    db: &Db,
    signup_policy: SignupPolicy,
    mail_wakeup: Arc<Notify>,
    metrics: &Metrics,
    api_tokens: api::TokenCache,
) -> Result<web::Data<admin::AdminState>, WebStateError> {
    let random = uuid::Uuid::new_v4().to_string() + &uuid::Uuid::new_v4().to_string();
    let dummy = crate::domain::StaffPassword::parse(&random).expect("72 characters make a password");
    let dummy_hash = crate::staff::hash_password(dummy).await?;
    let login_ip_limit = IpRateLimit::per_minute(settings.limits.admin_logins_per_ip_per_minute);
    let login_throttle = admin::LoginThrottle::per_minute(settings.limits.admin_logins_per_account_per_minute);
    login_ip_limit.spawn_janitor();
    login_throttle.spawn_janitor();
    let password_checks = crate::staff::PasswordChecks::new(
        settings.limits.concurrent_password_checks as usize,
        PASSWORD_CHECK_WAIT,
        metrics.password_checks(),
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
        api_tokens,
        imports: crate::digest::import_job::ImportJobs::new(
            db.clone(),
            crate::digest::fetch::Fetcher::new(crate::digest::fetch::FetchPolicy::new(
                settings.feeds.allow_private_addresses,
            )),
            crate::digest::import::FeedRules::from_settings(settings),
        ),
    }))
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
        (Method::GET, "/privacy", web::get().to(subscriptions::privacy)),
        (Method::GET, "/test-send", web::get().to(test_send::explanation)),
        (
            Method::GET,
            "/preferences",
            web::get().to(preferences::preferences_page),
        ),
        (
            Method::POST,
            "/preferences",
            web::post().to(preferences::change_preferences),
        ),
        (
            Method::GET,
            "/preferences/address",
            web::get().to(address_change::confirm_page),
        ),
        (
            Method::POST,
            "/preferences/address",
            web::post().to(address_change::confirm),
        ),
        (Method::GET, "/archive", web::get().to(archive::index)),
        (Method::GET, "/archive/feed.xml", web::get().to(archive::feed)),
        (Method::GET, "/archive/{week}", web::get().to(archive::issue)),
        (Method::GET, "/c/{week}/{position}", web::get().to(clicks::follow)),
        (Method::GET, "/health_check", web::get().to(health::health_check)),
        (Method::GET, "/static/site.css", web::get().to(stylesheet)),
        (Method::GET, "/static/admin.js", web::get().to(admin_script)),
        (Method::GET, "/favicon.ico", web::get().to(favicon)),
        (Method::POST, "/inbound/mailgun", web::post().to(inbound_hooks::mailgun)),
        (
            Method::POST,
            "/inbound/postmark",
            web::post().to(inbound_hooks::postmark),
        ),
        (Method::POST, "/inbound/ses", web::post().to(inbound_hooks::ses)),
    ]
}

/// The public routes as `(method, path)`, for tests and documentation.
pub fn route_list() -> Vec<(Method, String)> {
    routes()
        .into_iter()
        .map(|(method, path, _)| (method, path.to_owned()))
        .collect()
}

/// The web server on `listener`, every route of [`routes`] and the staff
/// area's; it runs once awaited (or spawned) and stops on SIGINT/SIGTERM.
pub fn server(listener: TcpListener, web_state: WebState) -> std::io::Result<actix_web::dev::Server> {
    let WebState {
        app: state,
        admin,
        metrics,
        hooks,
        api,
        session_key,
        edge,
    } = web_state;
    let admin_settings = admin.settings.clone();
    let server = HttpServer::new(move || {
        let mut app = App::new()
            // Innermost, so the request counts still say HEAD.
            .wrap(from_fn(head::as_get))
            // Inside `request_id`, so a logged cause carries the request's id.
            .wrap(from_fn(error::render))
            .wrap(from_fn(language::remember_choice))
            .wrap(from_fn(observe::count_requests))
            // Outside the others: the access log sees the status they set.
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
            // Outermost, so no response escapes it.
            .wrap(from_fn(drain::close_connections_when_stopping))
            .app_data(state.clone())
            .app_data(metrics.clone())
            .app_data(hooks.clone())
            .app_data(edge.trusted_proxies.clone())
            .app_data(edge.body_timeout);
        for (_, path, route) in routes() {
            app = app.route(path, route);
        }
        app.app_data(admin.clone())
            .service(admin::scope(&session_key, &admin_settings))
            .app_data(api.clone())
            .service(api::scope(api.max_body_bytes))
            .default_service(web::to(not_found))
    })
    .listen(listener)?
    .shutdown_timeout(10)
    // `crate::app` handles SIGTERM and SIGINT: it drains before it stops.
    .disable_signals()
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

async fn not_found() -> Result<HttpResponse, error::PageError> {
    Err(error::PageError::public(
        StatusCode::NOT_FOUND,
        "error-not-found-title",
        "error-not-found",
    ))
}
