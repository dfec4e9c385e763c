//! The staff area under `/admin`: login, the dashboard, articles, feed
//! sources, issues, subscribers and the mail that came back (inbound).
//!
//! Every route is listed once, in [`routes`]; the whole scope sits behind
//! [`session::guard`], which sends anonymous requests to the login page, so
//! a new route cannot forget to ask for a session. Every state-changing
//! handler takes its form as a [`session::StaffForm`], which checks the
//! CSRF token before the handler runs.

mod api_tokens;
mod articles;
mod auth;
mod chrome;
mod confirm;
mod dashboard;
mod draft;
mod field_errors;
mod inbound;
mod issue_report;
mod issues;
mod language_select;
pub mod session;
mod sources;
mod subscribers;
mod throttle;
mod webhooks;

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::{Route, web};
use tokio::sync::Notify;

use crate::config::Settings;
use crate::db::Db;
use crate::db::subscribers::SignupPolicy;
use crate::links::paths;
use crate::web::IpRateLimit;
use crate::web::error::PageError;

pub use throttle::LoginThrottle;

/// What admin handlers reach besides the public [`crate::web::AppState`].
pub struct AdminState {
    pub db: Db,
    pub settings: Arc<Settings>,
    pub site: String,
    pub login_ip_limit: IpRateLimit,
    /// Failed logins per (account, client), and per account for clients
    /// that failed: see [`throttle`].
    pub login_throttle: LoginThrottle,
    /// Password hashing and checking, a few at a time.
    pub password_checks: crate::staff::PasswordChecks,
    /// A hash of a random password: unknown addresses are checked against
    /// it, so they take as long as a wrong password.
    pub dummy_hash: String,
    pub signup_policy: SignupPolicy,
    /// Wakes the delivery worker in this process when mail is queued.
    pub mail_wakeup: Arc<Notify>,
    /// The API's live tokens, which a revocation here drops at once.
    pub api_tokens: crate::web::api::TokenCache,
    /// Feed imports by URL, run in the background.
    pub imports: crate::digest::import_job::ImportJobs,
}

/// The largest CSV an import page accepts (the form is urlencoded text).
pub const MAX_IMPORT_BYTES: usize = 2 * 1024 * 1024;

/// Every admin route: method, path under `/admin`, handler. Registration
/// and the test that checks each route needs a session both read this.
pub fn routes() -> Vec<(Method, &'static str, Route)> {
    vec![
        (Method::GET, "", web::get().to(dashboard::page)),
        (Method::GET, "/login", web::get().to(auth::login_form)),
        (Method::POST, "/login", web::post().to(auth::login)),
        (Method::POST, "/logout", web::post().to(auth::logout)),
        (Method::GET, "/account", web::get().to(auth::account)),
        (Method::POST, "/account/password", web::post().to(auth::change_password)),
        (Method::GET, "/articles", web::get().to(articles::list)),
        (Method::GET, "/articles/new", web::get().to(articles::new_form)),
        (Method::POST, "/articles", web::post().to(articles::create)),
        (Method::POST, "/articles/import", web::post().to(articles::import_feed)),
        (
            Method::GET,
            "/articles/imports/{id}",
            web::get().to(articles::import_progress),
        ),
        (Method::POST, "/articles/bulk", web::post().to(articles::bulk)),
        (Method::GET, "/articles/deleted", web::get().to(articles::deleted)),
        (
            Method::GET,
            "/articles/delete",
            web::get().to(articles::confirm_delete_many),
        ),
        (Method::POST, "/articles/delete", web::post().to(articles::delete_many)),
        (Method::GET, "/articles/{id}", web::get().to(articles::edit_form)),
        (Method::POST, "/articles/{id}", web::post().to(articles::save)),
        (
            Method::GET,
            "/articles/{id}/regenerate",
            web::get().to(articles::confirm_regenerate),
        ),
        (
            Method::POST,
            "/articles/{id}/regenerate",
            web::post().to(articles::regenerate),
        ),
        (
            Method::GET,
            "/articles/{id}/delete",
            web::get().to(articles::confirm_delete),
        ),
        (Method::POST, "/articles/{id}/delete", web::post().to(articles::delete)),
        (
            Method::POST,
            "/articles/{id}/restore",
            web::post().to(articles::restore),
        ),
        (
            Method::POST,
            "/articles/{id}/summaries/{version}/restore",
            web::post().to(articles::restore_summary),
        ),
        (Method::GET, "/sources", web::get().to(sources::list)),
        (Method::POST, "/sources", web::post().to(sources::add)),
        (Method::POST, "/sources/{id}/poll", web::post().to(sources::poll)),
        (
            Method::POST,
            "/sources/{id}/language",
            web::post().to(sources::set_language),
        ),
        (Method::POST, "/sources/{id}/delete", web::post().to(sources::remove)),
        (Method::GET, "/webhooks", web::get().to(webhooks::list)),
        (Method::POST, "/webhooks", web::post().to(webhooks::add)),
        (Method::GET, "/webhooks/{id}", web::get().to(webhooks::show)),
        (
            Method::POST,
            "/webhooks/{id}/disable",
            web::post().to(webhooks::disable),
        ),
        (Method::POST, "/webhooks/{id}/enable", web::post().to(webhooks::enable)),
        (Method::POST, "/webhooks/{id}/delete", web::post().to(webhooks::delete)),
        (Method::POST, "/webhooks/{id}/resend", web::post().to(webhooks::resend)),
        (Method::GET, "/issues", web::get().to(issues::this_week)),
        (Method::GET, "/issues/preview.html", web::get().to(issues::preview_html)),
        (Method::POST, "/issues/test", web::post().to(issues::send_test)),
        (Method::POST, "/issues/shape", web::post().to(draft::save_shape)),
        (Method::POST, "/issues/order", web::post().to(draft::reorder)),
        (Method::POST, "/issues/section", web::post().to(draft::set_section)),
        (Method::POST, "/issues/sections", web::post().to(draft::order_sections)),
        (Method::POST, "/issues/schedule", web::post().to(draft::schedule)),
        (Method::GET, "/issues/send", web::get().to(issues::confirm_send)),
        (Method::POST, "/issues/send", web::post().to(issues::send_now)),
        (Method::GET, "/issues/{week}", web::get().to(issues::issue)),
        (
            Method::GET,
            "/issues/{week}/recipients",
            web::get().to(issue_report::recipients),
        ),
        (
            Method::GET,
            "/issues/{week}/recipients.csv",
            web::get().to(issue_report::recipients_csv),
        ),
        (
            Method::GET,
            "/issues/{week}/progress",
            web::get().to(issues::progress_json),
        ),
        (Method::POST, "/issues/{week}/pause", web::post().to(issues::pause)),
        (Method::POST, "/issues/{week}/resume", web::post().to(issues::resume)),
        (
            Method::GET,
            "/issues/{week}/cancel",
            web::get().to(issues::confirm_cancel),
        ),
        (Method::POST, "/issues/{week}/cancel", web::post().to(issues::cancel)),
        (
            Method::POST,
            "/issues/{week}/retry",
            web::post().to(issues::retry_failed),
        ),
        (Method::GET, "/inbound", web::get().to(inbound::list)),
        (Method::GET, "/api-tokens", web::get().to(api_tokens::list)),
        (Method::POST, "/api-tokens", web::post().to(api_tokens::create)),
        (
            Method::POST,
            "/api-tokens/{id}/revoke",
            web::post().to(api_tokens::revoke),
        ),
        (Method::GET, "/inbound/{id}", web::get().to(inbound::view)),
        (Method::GET, "/subscribers", web::get().to(subscribers::list)),
        (
            Method::GET,
            "/subscribers/export.csv",
            web::get().to(subscribers::export),
        ),
        (
            Method::GET,
            "/subscribers/import",
            web::get().to(subscribers::import_form),
        ),
        (Method::POST, "/subscribers/import", web::post().to(subscribers::import)),
        (Method::POST, "/subscribers/bulk", web::post().to(subscribers::bulk)),
        (
            Method::GET,
            "/subscribers/erase",
            web::get().to(subscribers::confirm_erase_many),
        ),
        (
            Method::POST,
            "/subscribers/erase",
            web::post().to(subscribers::erase_many),
        ),
        (Method::GET, "/subscribers/{id}", web::get().to(subscribers::view)),
        (
            Method::POST,
            "/subscribers/{id}/unsubscribe",
            web::post().to(subscribers::unsubscribe),
        ),
        (
            Method::GET,
            "/subscribers/{id}/erase",
            web::get().to(subscribers::confirm_erase),
        ),
        (
            Method::POST,
            "/subscribers/{id}/erase",
            web::post().to(subscribers::erase),
        ),
    ]
}

/// The routes as `(method, full path)`, for tests and documentation.
pub fn route_list() -> Vec<(Method, String)> {
    routes()
        .into_iter()
        .map(|(method, path, _)| (method, format!("{}{path}", paths::ADMIN)))
        .collect()
}

/// The paths anyone may open without a session.
pub const PUBLIC_PATHS: &[&str] = &[paths::ADMIN_LOGIN];

/// The `/admin` scope with every route, behind the session guard, inside
/// the session cookie's middleware.
pub fn scope(key: &[u8], settings: &Settings) -> impl actix_web::dev::HttpServiceFactory + use<> {
    let mut scope = web::scope(paths::ADMIN);
    for (_, path, route) in routes() {
        scope = scope.route(path, route);
    }
    scope
        .app_data(web::QueryConfig::default().error_handler(bad_query))
        .wrap(actix_web::middleware::from_fn(session::guard))
        .wrap(session::middleware(key, settings))
}

/// A search or page link with a value that makes no sense (`?page=abc`):
/// a page that says so, not the framework's plain-text error.
fn bad_query(_: actix_web::error::QueryPayloadError, _: &actix_web::HttpRequest) -> actix_web::Error {
    PageError::bad_request(
        "That address does not work",
        "A value in the address is not what this page expects (a page number must be a whole number). \
         Go back and use the page's own links and forms.",
    )
    .into()
}
