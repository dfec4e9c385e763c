//! Who may call the API: every route but the OpenAPI document needs a
//! bearer token whose scope reaches the resource its path names, and each
//! token has its own rate limit. The whole API sits behind [`guard`], so a
//! new route cannot forget to ask for a token. Live tokens are remembered
//! for a moment ([`TokenCache`]) rather than read on every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use uuid::Uuid;

use super::ApiState;
use super::problem::{Kind, Problem};
use crate::db::Db;
use crate::db::api_tokens::{self, ActiveToken};
use crate::domain::{ApiScope, ApiToken};

/// How long a live token found in the database is taken as live without
/// asking again: the longest a token revoked by another process (the CLI,
/// another `serve`) keeps working here. One indexed read per request was
/// most of the API's cost on SQLite (each read a hand-off to its single
/// connection, between the signup writer's batches: `bench/api`).
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(2);

/// The live tokens this process looked up in the last [`TOKEN_CACHE_TTL`],
/// by hash. Only live tokens are kept (an unknown one is asked for every
/// time, so a token made elsewhere works at once), so it holds at most the
/// tokens in use. Staff revoking a token here drop it at once ([`forget`]).
///
/// [`forget`]: TokenCache::forget
#[derive(Clone, Default)]
pub struct TokenCache(Arc<Mutex<Remembered>>);

#[derive(Default)]
struct Remembered {
    tokens: HashMap<Vec<u8>, (ActiveToken, Instant)>,
    /// Counts [`TokenCache::forget`] calls: a lookup that read the
    /// database before a revocation here must not put the token back.
    forgotten: u64,
}

impl TokenCache {
    /// The live token behind `token`: remembered, or read from `db`.
    pub async fn find(&self, db: &Db, token: &ApiToken) -> Result<Option<ActiveToken>, sqlx::Error> {
        let hash = token.hash();
        let forgotten = {
            let remembered = self.lock();
            if let Some((found, at)) = remembered.tokens.get(&hash)
                && at.elapsed() < TOKEN_CACHE_TTL
            {
                return Ok(Some(found.clone()));
            }
            remembered.forgotten
        };
        let found = api_tokens::find_active(db, token).await?;
        let mut remembered = self.lock();
        match &found {
            Some(live) if remembered.forgotten == forgotten => {
                remembered.tokens.insert(hash, (live.clone(), Instant::now()));
            }
            _ => {
                remembered.tokens.remove(&hash);
            }
        }
        Ok(found)
    }

    /// Drops the token with this id (staff revoked it in this process).
    pub fn forget(&self, id: Uuid) {
        let mut remembered = self.lock();
        remembered.forgotten += 1;
        remembered.tokens.retain(|_, (live, _)| live.id != id);
    }

    fn lock(&self) -> MutexGuard<'_, Remembered> {
        // Nothing here can panic half-way through a change.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The path of the OpenAPI document, the one route open to anyone.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// The resource a path under `/api/v1` names, by its first segment.
fn resource(path: &str) -> Option<ApiScope> {
    let first = path.strip_prefix("/api/v1/")?.split('/').next()?;
    match first {
        "subscribers" => Some(ApiScope::Subscribers),
        "articles" => Some(ApiScope::Articles),
        "issues" => Some(ApiScope::Issues),
        // An endpoint receives every reader's address: `all` only.
        "webhooks" => Some(ApiScope::All),
        _ => None,
    }
}

/// The token of `Authorization: Bearer …`, if the header holds one.
fn bearer(req: &ServiceRequest) -> Option<ApiToken> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| ApiToken::parse(token.trim()))?
}

/// Lets through requests with a live token whose scope reaches the path's
/// resource (401 without one, 403 with the wrong scope, 429 past the
/// token's limit); the token is in the request's extensions for handlers.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.path() == OPENAPI_PATH {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    }
    let state = req
        .app_data::<web::Data<ApiState>>()
        .cloned()
        .expect("the API's state is registered");
    let token = match bearer(&req) {
        Some(token) => match state.tokens.find(&state.db, &token).await {
            Ok(found) => found,
            Err(e) => return Ok(req.error_response(Problem::unexpected(e))),
        },
        None => None,
    };
    match admit(token, resource(req.path()), &state) {
        Ok(token) => {
            req.extensions_mut().insert(token);
            next.call(req).await.map(ServiceResponse::map_into_boxed_body)
        }
        // An answer rather than an error, so that [`super::problem::localise`]
        // sees it and writes it in the request's language.
        Err(problem) => Ok(req.error_response(problem)),
    }
}

/// Whether `token` may make a request about `needed` now.
fn admit(token: Option<ActiveToken>, needed: Option<ApiScope>, state: &ApiState) -> Result<ActiveToken, Problem> {
    let token = token.ok_or_else(|| Problem::new(Kind::Unauthorized))?;
    // A path naming no resource is a 404 for any valid token.
    if let Some(needed) = needed
        && !token.scope.covers(needed)
    {
        return Err(Problem::new(Kind::Forbidden).reason(needed.as_str()));
    }
    if let Err(wait) = state.rate_limit.check(&token.id) {
        return Err(Problem::new(Kind::TooManyRequests).retry_after(wait.as_secs()));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_segment_names_the_resource() {
        assert_eq!(resource("/api/v1/subscribers"), Some(ApiScope::Subscribers));
        assert_eq!(resource("/api/v1/articles/0192/include"), Some(ApiScope::Articles));
        assert_eq!(resource("/api/v1/issues/2026-W48"), Some(ApiScope::Issues));
        assert_eq!(resource("/api/v1/subscribersx"), None);
        assert_eq!(resource("/api/v2/issues"), None);
    }
}
