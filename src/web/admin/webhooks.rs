//! `/admin/webhooks`: the endpoints Gazette posts its events to. A list
//! with a form to add one (its URL and events; its secret is shown once,
//! on the page that answers the form), disable, enable and delete; and an
//! endpoint's page with its recent attempts (status codes, errors, the
//! next try) and "resend" for each.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::AdminState;
use super::chrome::{Chrome, Section, html};
use super::session::{self, Staff, StaffForm};
use crate::db::webhooks::{self as ledger, Endpoint};
use crate::digest::fetch::FetchPolicy;
use crate::domain::{WebhookEndpointStatus, WebhookEvent};
use crate::links::paths;
use crate::web::error::PageError;
use crate::webhooks::register;

/// Attempts shown on an endpoint's page.
const ATTEMPTS_SHOWN: i64 = 50;

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub struct Row {
    pub id: String,
    pub url: String,
    pub events: String,
    pub enabled: bool,
    pub status: String,
    pub created: String,
}

impl Row {
    fn of(e: &Endpoint) -> Self {
        let status = match (&e.status, &e.disabled_reason) {
            (WebhookEndpointStatus::Enabled, _) => "enabled".to_owned(),
            (WebhookEndpointStatus::Disabled, Some(reason)) => format!("disabled: {reason}"),
            (WebhookEndpointStatus::Disabled, None) => "disabled".to_owned(),
        };
        Self {
            id: e.id.to_string(),
            url: e.url.clone(),
            events: e.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", "),
            enabled: e.status == WebhookEndpointStatus::Enabled,
            status,
            created: format!("{} by {}", when(e.created_at), e.created_by),
        }
    }
}

pub struct EventBox {
    pub word: &'static str,
    pub checked: bool,
}

fn event_boxes(checked: &[String]) -> Vec<EventBox> {
    WebhookEvent::ALL
        .into_iter()
        .map(|e| EventBox {
            word: e.as_str(),
            checked: checked.iter().any(|c| c == e.as_str()),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "web/admin/webhooks.html")]
struct ListPage {
    c: Chrome,
    rows: Vec<Row>,
    errors: Vec<String>,
    url: String,
    events: Vec<EventBox>,
    /// Set on the page that answers a successful add: shown this once.
    created: Option<Created>,
}

pub struct Created {
    pub url: String,
    pub secret: String,
}

async fn page(
    state: &AdminState,
    session: &Session,
    staff: &Staff,
    status: StatusCode,
    errors: Vec<String>,
    (url, events): (&str, &[String]),
    created: Option<Created>,
) -> Result<HttpResponse, PageError> {
    let rows = ledger::list(&state.db).await?.iter().map(Row::of).collect();
    let c = Chrome::new(&state.site, session, Some(staff)).in_section(Section::Webhooks);
    Ok(html(
        status,
        &ListPage {
            c,
            rows,
            errors,
            url: url.to_owned(),
            events: event_boxes(events),
            created,
        },
    ))
}

pub async fn list(
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    page(&state, &session, &staff, StatusCode::OK, vec![], ("", &[]), None).await
}

pub async fn add(
    fields: StaffForm,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let url = fields.get("url").trim();
    let events: Vec<String> = WebhookEvent::ALL
        .into_iter()
        .filter(|e| !fields.get(&format!("event:{}", e.as_str())).is_empty())
        .map(|e| e.as_str().to_owned())
        .collect();
    let policy = FetchPolicy::new(state.settings.feeds.allow_private_addresses);
    let by = staff.email.to_string();
    match register(&state.db, policy, url, &events, &by).await? {
        Ok((_, secret)) => {
            let created = Created {
                url: url.to_owned(),
                secret: secret.as_str().to_owned(),
            };
            page(
                &state,
                &session,
                &staff,
                StatusCode::OK,
                vec![],
                ("", &[]),
                Some(created),
            )
            .await
        }
        Err(why) => {
            let errors = vec![format!("{}.", capitalised(&why.to_string()))];
            page(
                &state,
                &session,
                &staff,
                StatusCode::BAD_REQUEST,
                errors,
                (url, &events),
                None,
            )
            .await
        }
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

async fn load(state: &AdminState, raw_id: &str) -> Result<Endpoint, PageError> {
    let not_found = || PageError::not_found("webhook endpoint");
    let id = Uuid::parse_str(raw_id).map_err(|_| not_found())?;
    ledger::find(&state.db, id).await?.ok_or_else(not_found)
}

pub struct AttemptRow {
    pub event_id: String,
    pub event: String,
    pub attempt: i32,
    pub at: String,
    pub outcome: String,
    pub status_code: String,
    pub error: String,
    pub next: String,
}

#[derive(Template)]
#[template(path = "web/admin/webhook.html")]
struct ShowPage {
    c: Chrome,
    endpoint: Row,
    attempts: Vec<AttemptRow>,
}

pub async fn show(
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let endpoint = load(&state, &path).await?;
    let attempts = ledger::recent_attempts(&state.db, endpoint.id, ATTEMPTS_SHOWN)
        .await?
        .into_iter()
        .map(|a| AttemptRow {
            event_id: a.event_id.to_string(),
            event: a.kind.as_str().to_owned(),
            attempt: a.attempt,
            at: when(a.at),
            outcome: a.outcome.as_str().to_owned(),
            status_code: a.status_code.map_or_else(|| "none".to_owned(), |c| c.to_string()),
            error: a.error.unwrap_or_default(),
            next: a.next_attempt_at.map(when).unwrap_or_default(),
        })
        .collect();
    let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Webhooks);
    Ok(html(
        StatusCode::OK,
        &ShowPage {
            c,
            endpoint: Row::of(&endpoint),
            attempts,
        },
    ))
}

async fn set_status(
    path: &str,
    session: &Session,
    staff: &Staff,
    state: &AdminState,
    status: WebhookEndpointStatus,
) -> Result<HttpResponse, PageError> {
    let endpoint = load(state, path).await?;
    let reason = format!("by {}", staff.email);
    let changed = ledger::set_status(&state.db, endpoint.id, status, Some(&reason), Utc::now()).await?;
    if changed {
        tracing::info!(staff = %staff.email, endpoint = %endpoint.id, url = %endpoint.url, status = %status,
            "webhook endpoint status set from the admin");
    }
    let message = match status {
        WebhookEndpointStatus::Enabled => format!("{} is enabled: it is sent new events.", endpoint.url),
        WebhookEndpointStatus::Disabled => format!(
            "{} is disabled: it is sent nothing until you enable it again.",
            endpoint.url
        ),
    };
    session::flash(session, message);
    Ok(session::see_other(paths::ADMIN_WEBHOOKS))
}

pub async fn disable(
    _: StaffForm,
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    set_status(&path, &session, &staff, &state, WebhookEndpointStatus::Disabled).await
}

pub async fn enable(
    _: StaffForm,
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    set_status(&path, &session, &staff, &state, WebhookEndpointStatus::Enabled).await
}

pub async fn delete(
    _: StaffForm,
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let endpoint = load(&state, &path).await?;
    if ledger::delete(&state.db, endpoint.id).await? {
        tracing::info!(staff = %staff.email, endpoint = %endpoint.id, url = %endpoint.url,
            "webhook endpoint deleted from the admin");
    }
    session::flash(
        &session,
        format!("{} is deleted, with its deliveries and attempts.", endpoint.url),
    );
    Ok(session::see_other(paths::ADMIN_WEBHOOKS))
}

/// Sends the event of one attempt to the endpoint again (form field
/// `event`), with another day of retries.
pub async fn resend(
    fields: StaffForm,
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let endpoint = load(&state, &path).await?;
    let event = Uuid::parse_str(fields.get("event"))
        .map_err(|_| PageError::bad_request("Nothing was resent", "The form did not name an event."))?;
    let now = Utc::now();
    let give_up_at = now + chrono::Duration::hours(i64::from(state.settings.webhooks.give_up_hours));
    let message = if ledger::resend(&state.db, endpoint.id, event, now, give_up_at).await? {
        tracing::info!(staff = %staff.email, endpoint = %endpoint.id, event = %event, "webhook resent from the admin");
        "The event is queued again for this endpoint; its attempt shows here in a few seconds.".to_owned()
    } else {
        "That event is being sent right now, or is no longer in the ledger: nothing was queued.".to_owned()
    };
    session::flash(&session, message);
    Ok(session::see_other(&format!(
        "{}/{}",
        paths::ADMIN_WEBHOOKS,
        endpoint.id
    )))
}
