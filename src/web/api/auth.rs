//! Who may call the API: every route but the OpenAPI document needs a
//! bearer token whose scope reaches the resource its path names, and each
//! token has its own rate limit. The whole API sits behind [`guard`], so a
//! new route cannot forget to ask for a token.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};

use super::ApiState;
use super::problem::{Kind, Problem};
use crate::db::api_tokens::{self, ActiveToken};
use crate::domain::{ApiScope, ApiToken};

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
        Some(token) => match api_tokens::find_active(&state.db, &token).await {
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
