//! What an operator sees of the web role: a request id on every request
//! (in the response, in the request's log span and on its access-log
//! event), one access-log event per request with structured fields, and
//! request counts by route and status (served by [`super::metrics_listener`]).

use std::time::Instant;

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Uri;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, web};
use tracing::Instrument;

use super::ClientAddr;
use crate::config::TrustedProxies;
use crate::metrics::Metrics;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Where the access-log events go: one target of their own, so a filter
/// (`RUST_LOG=gazette::access=off`) or a collector can pick them out.
const ACCESS_TARGET: &str = "gazette::access";

/// An incoming id is kept when it is short and plain (it goes into log
/// lines and a response header); anything else gets a fresh uuid.
fn sane_request_id(raw: &str) -> bool {
    (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The `X-Request-Id` a trusted proxy set (nginx's `$request_id`), so its
/// log and ours share the id. Anyone else's is ignored: a client could
/// otherwise give its requests the id of someone else's and muddle the
/// trail an operator follows.
fn forwarded_request_id(req: &ServiceRequest) -> Option<String> {
    let peer = req.peer_addr()?.ip().to_canonical();
    if !req.app_data::<TrustedProxies>()?.contains(peer) {
        return None;
    }
    let id = req.headers().get(&REQUEST_ID)?.to_str().ok()?;
    sane_request_id(id).then(|| id.to_owned())
}

/// Gives each request its id (the response's `X-Request-Id`, and a
/// `request` span around its handling, so every event logged meanwhile
/// carries it), then logs the request once answered: one event at
/// `gazette::access` with the fields `method`, `path` (with the query,
/// secrets left out: [`loggable_target`]), `status`, `bytes` (when known),
/// `latency_ms` (until the response head is ready), `client` (see
/// [`ClientAddr`]) and `request_id`. Health checks are not logged.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = forwarded_request_id(&req).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = req.method().clone();
    let logged = req.path() != "/health_check";
    let target = logged.then(|| loggable_target(req.uri()));
    let client = ClientAddr::of(req.request());
    let span = tracing::info_span!("request", request_id = %id, method = %method, path = req.path());
    let result = next.call(req).instrument(span).await;
    let (status, bytes) = match &result {
        Ok(response) => (
            response.status(),
            match response.response().body().size() {
                BodySize::Sized(n) => Some(n),
                _ => None,
            },
        ),
        Err(error) => (error.as_response_error().status_code(), None),
    };
    if let Some(target) = target {
        // Microseconds, shown as milliseconds: 0.731, not 0.7310000000000001.
        let latency_ms = started.elapsed().as_micros() as f64 / 1000.0;
        tracing::info!(
            target: ACCESS_TARGET,
            method = %method,
            path = target.as_str(),
            status = status.as_u16(),
            bytes,
            latency_ms,
            client = client.map(tracing::field::display),
            request_id = %id,
            "request"
        );
    }
    let mut response = result?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(response)
}

/// Query parameters whose values are secrets, matched anywhere in the name
/// (`token`, `unsubscribe_token`, `csrf_token`, `api_key`, …): link
/// tokens, CSRF tokens, passwords, keys, codes and signatures. A log is
/// read by more people, and kept longer, than the links were meant for.
const SECRET_PARAMETERS: &[&str] = &["token", "csrf", "password", "secret", "key", "code", "signature"];

/// Query parameters whose values may be a reader's personal data, matched
/// as whole names: an address, a name, or the staff's search text (which
/// usually is an address). Erasing a reader must not leave them in logs.
const PERSONAL_PARAMETERS: &[&str] = &["email", "name", "q"];

/// The request target as the access log shows it: the path, and the query
/// with the value of every secret or personal parameter replaced by `***`.
pub fn loggable_target(uri: &Uri) -> String {
    match uri.query() {
        Some(query) => format!("{}?{}", uri.path(), redact_query(query)),
        None => uri.path().to_owned(),
    }
}

/// `a=1&token=abc` → `a=1&token=***`, whatever the parameter's case or
/// percent-encoding; the rest is kept as it came.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decoded: String = url::form_urlencoded::parse(name.as_bytes())
                .map(|(k, _)| k.into_owned())
                .collect();
            let decoded = decoded.to_ascii_lowercase();
            let hidden = SECRET_PARAMETERS.iter().any(|secret| decoded.contains(secret))
                || PERSONAL_PARAMETERS.contains(&decoded.as_str());
            if !value.is_empty() && hidden {
                format!("{name}=***")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Counts each answered request by its route pattern (known after routing),
/// so `/archive/2026-W48` and `/archive/2026-W47` are one series.
pub async fn count_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    // Methods are a closed set here, so a client cannot mint new series.
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "HEAD" => "HEAD",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        metrics.http_request(method, &route, response.status().as_u16());
    }
    Ok(response)
}

/// Counts an event of the request's application, when it has metrics.
pub fn count(req: &HttpRequest, event: impl FnOnce(&Metrics)) {
    if let Some(metrics) = req.app_data::<web::Data<Metrics>>() {
        event(metrics);
    }
}

#[cfg(test)]
mod tests {
    use super::{redact_query, sane_request_id};

    #[test]
    fn secret_query_values_never_reach_the_access_log() {
        assert_eq!(redact_query("token=abc123"), "token=***");
        assert_eq!(redact_query("page=2&sort=x&TOKEN=abc"), "page=2&sort=x&TOKEN=***");
        assert_eq!(redact_query("%74oken=abc&csrf=1"), "%74oken=***&csrf=***");
        assert_eq!(
            redact_query("unsubscribe_token=a&password=b"),
            "unsubscribe_token=***&password=***"
        );
        assert_eq!(redact_query("token"), "token", "nothing to hide");
        assert_eq!(redact_query("status=tokens&page=2"), "status=tokens&page=2");
    }

    #[test]
    fn personal_query_values_never_reach_the_access_log() {
        assert_eq!(
            redact_query("q=ada%40example.com&status=confirmed"),
            "q=***&status=confirmed"
        );
        assert_eq!(redact_query("Email=ada@example.com&name=Ada"), "Email=***&name=***");
        // Whole names only: `quality` or `username_hint` are not personal.
        assert_eq!(redact_query("quality=high&page=2"), "quality=high&page=2");
    }

    #[test]
    fn only_short_plain_request_ids_are_kept() {
        assert!(sane_request_id("3f2a-9b_c.1:2"));
        assert!(!sane_request_id(""));
        assert!(!sane_request_id(&"a".repeat(65)));
        assert!(!sane_request_id("a b"));
        assert!(!sane_request_id("<script>"));
        assert!(!sane_request_id("é"));
    }
}
