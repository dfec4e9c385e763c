//! `GET /metrics` on its own listener (`metrics.listen`), never the public
//! one: queue sizes and request counts are for the operator's monitoring,
//! not for readers or scanners. Here the recorded metrics meet the queue
//! counts read from the database.

use std::net::TcpListener;

use actix_web::{App, HttpResponse, HttpServer, web};

use crate::db::Db;
use crate::db::relay_status::{self, RelayStatus};
use crate::db::stats::{self, QueueStats};
use crate::metrics::{Gauges, Metrics, RelayFigures};

/// The metrics server on `listener`; it answers `/metrics` and 404 for
/// anything else, and stops when the application stops it.
pub fn serve(listener: TcpListener, metrics: web::Data<Metrics>, db: Db) -> std::io::Result<actix_web::dev::Server> {
    let db = web::Data::new(db);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(metrics.clone())
            .app_data(db.clone())
            .route("/metrics", web::get().to(exposition))
            .default_service(web::to(HttpResponse::NotFound))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .shutdown_timeout(1)
    .run();
    Ok(server)
}

/// What a process without the web role (`gazette worker`) serves on
/// `metrics.listen`: `render` gives its exposition (no database gauges:
/// those are `serve`'s).
pub fn serve_worker(
    listener: TcpListener,
    render: std::sync::Arc<dyn Fn() -> String + Send + Sync>,
) -> std::io::Result<actix_web::dev::Server> {
    let server = HttpServer::new(move || {
        let render = render.clone();
        App::new()
            .route(
                "/metrics",
                web::get().to(move || {
                    let text = render();
                    async move {
                        HttpResponse::Ok()
                            .content_type("text/plain; version=0.0.4; charset=utf-8")
                            .insert_header(("Cache-Control", "no-store"))
                            .body(text)
                    }
                }),
            )
            .default_service(web::to(HttpResponse::NotFound))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .shutdown_timeout(1)
    .run();
    Ok(server)
}

async fn exposition(db: web::Data<Db>, metrics: web::Data<Metrics>) -> HttpResponse {
    let read_gauges = || async {
        let QueueStats {
            transactional_waiting,
            digest_waiting,
            deliveries_by_status,
            inbound_by_kind,
        } = stats::queue_stats(&db).await?;
        let relays = relay_status::read(&db, chrono::Utc::now()).await?;
        let webhook_deliveries = every(
            crate::domain::WebhookDeliveryStatus::ALL.map(|s| s.as_str()),
            crate::db::webhooks::deliveries_by_status(&db).await?,
        );
        let webhook_attempts = every(
            crate::domain::WebhookOutcome::ALL.map(|o| o.as_str()),
            crate::db::webhooks::attempts_by_outcome(&db).await?,
        )
        .into_iter()
        .map(|(outcome, n)| {
            (
                if outcome == "retry" {
                    "retried".to_owned()
                } else {
                    outcome
                },
                n,
            )
        })
        .collect();
        Ok::<_, sqlx::Error>(Gauges {
            transactional: transactional_waiting,
            digest: digest_waiting,
            deliveries: deliveries_by_status,
            relays: relays.into_iter().map(figures).collect(),
            inbound: inbound_by_kind,
            webhook_deliveries,
            webhook_attempts,
        })
    };
    match metrics.render(read_gauges).await {
        Ok(text) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"))
            .body(text),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the queue for /metrics");
            HttpResponse::ServiceUnavailable().finish()
        }
    }
}

/// Every one of `names` with its count in `counted`, zero when missing.
fn every<const N: usize>(names: [&str; N], counted: Vec<(String, i64)>) -> Vec<(String, i64)> {
    names
        .iter()
        .map(|name| {
            let n = counted.iter().find(|(c, _)| c == name).map_or(0, |(_, n)| *n);
            ((*name).to_owned(), n)
        })
        .collect()
}

/// A relay's row as the exposition counts it.
fn figures(status: RelayStatus) -> RelayFigures {
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    RelayFigures {
        relay: status.relay,
        sent: count(status.sent),
        deferred: count(status.deferred),
        failed: count(status.failed),
        unreachable: count(status.unreachable),
        cooling_until: status.cooling_until,
    }
}
