//! What an operator sees of the web role: a request id on every request
//! (in the response and in the request's log span), request counts by
//! route and status (served by [`super::metrics_listener`]).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, web};
use tracing::Instrument;

use crate::metrics::Metrics;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// An incoming id is kept when it is short and plain (it goes into log
/// lines and a response header); anything else gets a fresh uuid.
fn sane_request_id(raw: &str) -> bool {
    (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.path());
    let mut response = next.call(req).instrument(span).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(response)
}

/// Query parameters whose values are secrets (link tokens, CSRF tokens,
/// passwords): never written to a log.
const SECRET_PARAMETERS: &[&str] = &["token", "csrf", "password", "secret", "key", "code", "signature"];

/// The request line as the access log shows it: `GET /path?query HTTP/1.1`
/// with the value of every secret query parameter replaced by `***`.
pub fn loggable_request_line(req: &ServiceRequest) -> String {
    let uri = req.uri();
    let target = match uri.query() {
        Some(query) => format!("{}?{}", uri.path(), redact_query(query)),
        None => uri.path().to_owned(),
    };
    format!("{} {target} {:?}", req.method(), req.version())
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
            if !value.is_empty() && SECRET_PARAMETERS.iter().any(|secret| decoded.contains(secret)) {
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
        assert_eq!(redact_query("page=2&q=x&TOKEN=abc"), "page=2&q=x&TOKEN=***");
        assert_eq!(redact_query("%74oken=abc&csrf=1"), "%74oken=***&csrf=***");
        assert_eq!(
            redact_query("unsubscribe_token=a&password=b"),
            "unsubscribe_token=***&password=***"
        );
        assert_eq!(redact_query("token"), "token", "nothing to hide");
        assert_eq!(redact_query("q=tokens&status=confirmed"), "q=tokens&status=confirmed");
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
