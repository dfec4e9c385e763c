//! The JSON API under `/api/v1` (issue 18): readers, articles and issues
//! for other systems, behind bearer tokens ([`auth`]), answering problems
//! as RFC 9457 documents ([`problem`]), described by the OpenAPI document
//! [`openapi`] generates from the handlers themselves.
//!
//! Every route is listed once, in [`routes`]; the scope, the OpenAPI
//! document's test and the README read it.

mod articles;
mod auth;
mod issues;
pub mod openapi;
mod paging;
pub mod problem;
mod subscribers;
mod webhooks;

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{FromRequest, HttpMessage, HttpRequest, Route, web};
use uuid::Uuid;

use crate::db::Db;
use crate::db::api_tokens::ActiveToken;
use crate::db::signup_writer::SignupWriter;
use crate::web::rate_limit::KeyedRateLimit;
use problem::{Kind, Problem};

pub use auth::{OPENAPI_PATH, TOKEN_CACHE_TTL, TokenCache};

/// Where the API lives.
pub const PREFIX: &str = "/api/v1";

/// What the API's handlers reach.
pub struct ApiState {
    pub db: Db,
    /// The form's signup writer: a reader added here is written the same way.
    pub signups: SignupWriter,
    pub address_policy: crate::domain::AddressPolicy,
    pub default_language: crate::i18n::Language,
    /// Live tokens looked up lately, shared with the staff area.
    pub tokens: TokenCache,
    /// `limits.api_requests_per_token_per_minute`.
    pub rate_limit: KeyedRateLimit<Uuid>,
    /// The largest body a request may carry (`server.max_body_bytes`).
    pub max_body_bytes: usize,
    /// Where webhook endpoints may point (`feeds.allow_private_addresses`).
    pub fetch_policy: crate::digest::fetch::FetchPolicy,
    /// `digest.summary_max_chars`: the longest summary an article may have.
    pub summary_max_chars: usize,
    /// For the dry run of this week's issue.
    pub settings: std::sync::Arc<crate::config::Settings>,
}

/// The token a request came with (the guard let it through).
#[derive(Debug, Clone)]
pub struct Caller(ActiveToken);

impl Caller {
    /// The token's name, for the records of what it changed.
    pub fn name(&self) -> &str {
        &self.0.name
    }
}

impl FromRequest for Caller {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<ActiveToken>()
                .cloned()
                .map(Caller)
                .ok_or_else(|| Problem::new(Kind::Unauthorized)),
        )
    }
}

/// Every API route: method, path under [`PREFIX`], handler.
pub fn routes() -> Vec<(Method, &'static str, Route)> {
    vec![
        (Method::GET, "/openapi.json", web::get().to(openapi::document)),
        (Method::GET, "/subscribers", web::get().to(subscribers::list)),
        (Method::POST, "/subscribers", web::post().to(subscribers::create)),
        (Method::GET, "/subscribers/{id}", web::get().to(subscribers::show)),
        (Method::PATCH, "/subscribers/{id}", web::patch().to(subscribers::update)),
        (
            Method::DELETE,
            "/subscribers/{id}",
            web::delete().to(subscribers::erase),
        ),
        (
            Method::POST,
            "/subscribers/{id}/unsubscribe",
            web::post().to(subscribers::unsubscribe),
        ),
        (Method::GET, "/webhooks", web::get().to(webhooks::list)),
        (Method::POST, "/webhooks", web::post().to(webhooks::create)),
        (Method::DELETE, "/webhooks/{id}", web::delete().to(webhooks::delete)),
        (Method::GET, "/articles", web::get().to(articles::list)),
        (Method::POST, "/articles", web::post().to(articles::create)),
        (Method::GET, "/articles/{id}", web::get().to(articles::show)),
        (Method::PATCH, "/articles/{id}", web::patch().to(articles::update)),
        (
            Method::POST,
            "/articles/{id}/include",
            web::post().to(articles::include),
        ),
        (
            Method::POST,
            "/articles/{id}/exclude",
            web::post().to(articles::exclude),
        ),
        (Method::GET, "/issues", web::get().to(issues::list)),
        // Before `/issues/{week}`, which would take it for a week.
        (Method::GET, "/issues/dry-run", web::get().to(issues::dry_run)),
        (Method::GET, "/issues/{week}", web::get().to(issues::show)),
    ]
}

/// The routes as `(method, full path)`, for tests and documentation.
pub fn route_list() -> Vec<(Method, String)> {
    routes()
        .into_iter()
        .map(|(method, path, _)| (method, format!("{PREFIX}{path}")))
        .collect()
}

/// The `/api/v1` scope with every route, behind the token guard, its
/// problems written in the request's language; bodies, queries and paths
/// that cannot be read are problems too.
pub fn scope(max_body_bytes: usize) -> impl actix_web::dev::HttpServiceFactory + use<> {
    let mut scope = web::scope(PREFIX);
    for (_, path, route) in routes() {
        scope = scope.route(path, route);
    }
    scope
        .app_data(
            web::JsonConfig::default()
                .limit(max_body_bytes)
                .error_handler(|e, _| unreadable_body(e).into()),
        )
        .app_data(
            web::QueryConfig::default()
                .error_handler(|e, _| Problem::new(Kind::InvalidParameters).reason(e.to_string()).into()),
        )
        // A path segment that is no id names nothing.
        .app_data(web::PathConfig::default().error_handler(|_, _| Problem::new(Kind::NotFound).into()))
        .default_service(web::to(|| async {
            Err::<actix_web::HttpResponse, _>(Problem::new(Kind::NotFound))
        }))
        .wrap(actix_web::middleware::from_fn(auth::guard))
        .wrap(actix_web::middleware::from_fn(problem::localise))
}

fn unreadable_body(error: actix_web::error::JsonPayloadError) -> Problem {
    use actix_web::error::JsonPayloadError as E;
    match error {
        E::OverflowKnownLength { limit, .. } | E::Overflow { limit } => {
            Problem::new(Kind::TooLarge).count(i64::try_from(limit).unwrap_or(i64::MAX))
        }
        E::ContentType => Problem::new(Kind::UnsupportedMediaType),
        E::Deserialize(e) => Problem::new(Kind::UnreadableBody).reason(e.to_string()),
        other => Problem::new(Kind::UnreadableBody).reason(other.to_string()),
    }
}
