//! `HEAD` on every `GET` route (RFC 9110 §9.3.2): a HEAD request is routed
//! as the GET it asks about, and the HTTP layer, which remembers the
//! request was HEAD, sends the headers (with the GET's length) and no body.
//! Done once here, so no route can forget it.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;

pub async fn as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}
