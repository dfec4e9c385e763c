use actix_web::{HttpResponse, web};

use crate::web::AppState;

/// 200 only when the database answers, so a load balancer stops sending
/// readers to an instance that cannot record their signup.
pub async fn health_check(state: web::Data<AppState>) -> HttpResponse {
    match state.db.ping().await {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("ok\n"),
        Err(e) => {
            tracing::warn!(error = %e, "health check: the database does not answer");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain; charset=utf-8")
                .body("database unavailable\n")
        }
    }
}
