//! `/api/v1/webhooks`: the endpoints Gazette posts its events to, listed,
//! registered and deleted by another system. Only a token of scope `all`
//! reaches them: an endpoint receives every reader's address.

use actix_web::{HttpResponse, web};
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::problem::{FieldCause, FieldProblem, Kind, Problem};
use super::{ApiState, Caller};
use crate::db::webhooks::{self as ledger, Endpoint};
use crate::webhooks::{RegisterError, register};

/// An endpoint to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where the events are posted (http or https, a public address).
    #[schema(example = "https://crm.example.org/hooks/gazette")]
    pub url: String,
    /// The events it wants: `subscriber.created`, `subscriber.confirmed`,
    /// `subscriber.unsubscribed`, `subscriber.bounced`,
    /// `subscriber.complained`, `issue.sent`.
    pub events: Vec<String>,
}

/// A registered endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct Webhook {
    #[schema(format = Uuid)]
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    /// `enabled` or `disabled`.
    pub status: String,
    /// Why it is disabled (staff, or a 410 answer).
    pub disabled_reason: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<Endpoint> for Webhook {
    fn from(e: Endpoint) -> Self {
        Self {
            id: e.id.to_string(),
            url: e.url,
            events: e.events.iter().map(|e| e.as_str().to_owned()).collect(),
            status: e.status.as_str().to_owned(),
            disabled_reason: e.disabled_reason,
            created_at: e.created_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        }
    }
}

/// A new endpoint, with its signing secret: shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// `whsec_` and base64: verify each request's `webhook-signature` with it
    /// (Standard Webhooks).
    pub secret: String,
}

/// The registered endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<Webhook>,
}

/// List the webhook endpoints.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    responses((status = 200, description = "Every endpoint", body = WebhookList))
)]
pub async fn list(state: web::Data<ApiState>) -> Result<HttpResponse, Problem> {
    let webhooks = ledger::list(&state.db).await?.into_iter().map(Webhook::from).collect();
    Ok(HttpResponse::Ok().json(WebhookList { webhooks }))
}

/// Register a webhook endpoint; the answer holds its secret, shown once.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    request_body = NewWebhook,
    responses((status = 201, description = "Registered", body = CreatedWebhook))
)]
pub async fn create(
    caller: Caller,
    body: web::Json<NewWebhook>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, Problem> {
    let by = format!("API token {}", caller.name());
    let body = body.into_inner();
    let (id, secret) = match register(&state.db, state.fetch_policy, &body.url, &body.events, &by).await? {
        Ok(registered) => registered,
        Err(e) => {
            let (field, message) = match e {
                RegisterError::BadUrl => ("url", "api-webhook-url-invalid"),
                RegisterError::Refused => ("url", "api-webhook-url-refused"),
                RegisterError::NoEvents => ("events", "api-webhook-events-empty"),
                RegisterError::UnknownEvent(_) => ("events", "api-webhook-event-unknown"),
            };
            return Err(Problem::fields(vec![FieldProblem {
                field,
                cause: FieldCause::Message(message),
            }]));
        }
    };
    let endpoint = ledger::find(&state.db, id)
        .await?
        .ok_or_else(|| Problem::new(Kind::NotFound))?;
    Ok(HttpResponse::Created().json(CreatedWebhook {
        webhook: Webhook::from(endpoint),
        secret: secret.as_str().to_owned(),
    }))
}

/// Delete a webhook endpoint, with its deliveries.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = uuid::Uuid, Path, description = "The endpoint's id")),
    responses((status = 204, description = "Deleted"))
)]
pub async fn delete(id: web::Path<String>, state: web::Data<ApiState>) -> Result<HttpResponse, Problem> {
    let id = Uuid::parse_str(&id).map_err(|_| Problem::new(Kind::NotFound))?;
    match ledger::delete(&state.db, id).await? {
        true => {
            tracing::info!(endpoint = %id, at = %Utc::now(), "webhook endpoint deleted through the API");
            Ok(HttpResponse::NoContent().finish())
        }
        false => Err(Problem::new(Kind::NotFound)),
    }
}
