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
    use super::sane_request_id;

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
