use std::time::Duration;

use actix_web::{HttpResponse, web};

use crate::web::AppState;

/// How long the database gets to answer. While it restarts, the pool would
/// wait its whole acquire timeout for a connection; the load balancer must
/// hear about the outage before its own check times out.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// 200 only when the database answers, so a load balancer stops sending
/// readers to an instance that cannot record their signup.
pub async fn health_check(state: web::Data<AppState>) -> HttpResponse {
    let why = match tokio::time::timeout(ANSWER_WITHIN, state.db.ping()).await {
        Ok(Ok(())) => {
            return HttpResponse::Ok()
                .content_type("text/plain; charset=utf-8")
                .body("ok\n");
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {ANSWER_WITHIN:?}"),
    };
    tracing::warn!(error = %why, "health check: the database does not answer");
    HttpResponse::ServiceUnavailable()
        .content_type("text/plain; charset=utf-8")
        .body("database unavailable\n")
}
