//! `/api/v1/subscribers`: readers added, read, listed, changed,
//! unsubscribed and erased by another system (a CMS, a CRM). A reader
//! added here is written like a signup on the form: pending with a
//! confirmation email, and the same answer whether the address is new or
//! known; `"confirmed": true` only with the caller's note of the consent.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::paging::{PageSizes, Paging};
use super::problem::{FieldCause, FieldProblem, Kind, Problem};
use super::{ApiState, Caller};
use crate::db::new_readers::NewReader;
use crate::db::signup_writer::RecordError;
use crate::db::subscriber_admin;
use crate::db::subscriber_api::{self, ApiSubscriber, PageFilter};
use crate::domain::{AddressPolicy, SubscriberEmail, SubscriberName, SubscriberStatus, Token};
use crate::i18n::Language;

/// Longest consent note, in characters.
const MAX_CONSENT_CHARS: usize = 500;
/// Readers per page: when the caller does not say, and at most.
const PAGE_SIZES: PageSizes = PageSizes { default: 50, max: 500 };

/// A reader to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscriber {
    /// The reader's address.
    #[schema(example = "ada@example.org")]
    pub email: String,
    /// The reader's name (may be empty).
    #[serde(default)]
    pub name: Option<String>,
    /// The language of every mail to them (`en`, `ru`); default: the site's.
    #[serde(default)]
    pub language: Option<String>,
    /// Add them confirmed, without a confirmation email: only with `consent`.
    #[serde(default)]
    pub confirmed: Option<bool>,
    /// Where and how the reader agreed to receive the digest; kept in their
    /// history. Required with `"confirmed": true`, refused otherwise.
    #[serde(default)]
    pub consent: Option<String>,
}

/// The same answer whatever the address's state, as on the form.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// The address as it was read.
    pub email: String,
}

/// A reader.
#[derive(Debug, Serialize, ToSchema)]
pub struct Subscriber {
    #[schema(format = Uuid)]
    pub id: String,
    pub email: String,
    pub name: String,
    /// `pending`, `confirmed`, `unsubscribed` or `bounced`.
    pub status: String,
    /// The language of every mail to them.
    pub language: String,
    #[schema(format = DateTime)]
    pub signed_up_at: String,
    #[schema(format = DateTime)]
    pub confirmed_at: Option<String>,
    #[schema(format = DateTime)]
    pub unsubscribed_at: Option<String>,
}

impl From<ApiSubscriber> for Subscriber {
    fn from(s: ApiSubscriber) -> Self {
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
        Self {
            id: s.id.to_string(),
            email: s.email,
            name: s.name,
            status: s.status.as_str().to_owned(),
            language: s.language,
            signed_up_at: time(s.signed_up_at),
            confirmed_at: s.confirmed_at.map(time),
            unsubscribed_at: s.unsubscribed_at.map(time),
        }
    }
}

/// A page of readers.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriberPage {
    pub subscribers: Vec<Subscriber>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// Which readers to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only readers in this state.
    #[param(pattern = "^(pending|confirmed|unsubscribed|bounced)$")]
    pub status: Option<String>,
    /// Only the reader with this address (however its domain is spelled).
    pub email: Option<String>,
    /// Readers per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u16>,
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
}

/// A change of name or language; a field left out is left as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriberChange {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
}

/// Add a reader: pending with a confirmation email, or confirmed with a
/// consent note. The answer is the same whether the address is new,
/// pending or already on the list.
#[utoipa::path(
    post,
    path = "/api/v1/subscribers",
    operation_id = "createSubscriber",
    tag = "subscribers",
    request_body = NewSubscriber,
    responses((status = 202, description = "Recorded (or already on the list)", body = Accepted))
)]
pub async fn create(
    caller: Caller,
    body: web::Json<NewSubscriber>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, Problem> {
    let body = body.into_inner();
    let mut problems = Vec::new();
    let email = SubscriberEmail::parse(&body.email, state.address_policy)
        .map_err(|e| problems.push(field("email", FieldCause::Email(e))))
        .ok();
    let name = parse_name(body.name.as_deref().unwrap_or(""), &mut problems);
    let language = match body.language.as_deref() {
        None => Some(state.default_language),
        Some(tag) => parse_language(tag, &mut problems),
    };
    let consent = parse_consent(body.confirmed.unwrap_or(false), body.consent.as_deref(), &mut problems);
    let (Some(email), Some(name), Some(language), Ok(consent)) = (email, name, language, consent) else {
        return Err(Problem::fields(problems));
    };
    let source = format!("api ({})", caller.name());
    match consent {
        Some(note) => {
            let reader = NewReader::confirmed(&email, &name, language, &source);
            subscriber_api::add_confirmed(&state.db, &reader, &note, Utc::now()).await?;
        }
        None => {
            let reader = NewReader::to_confirm(&email, &name, language, None, &source, Token::generate());
            match state.signups.record(reader).await {
                Ok(()) => {}
                Err(RecordError::CapReached { room_at }) => {
                    let seconds = (room_at - Utc::now()).num_seconds().max(1);
                    return Err(Problem::new(Kind::SignupsPaused).retry_after(seconds as u64));
                }
                Err(e) => return Err(Problem::unexpected(e)),
            }
        }
    }
    Ok(HttpResponse::build(StatusCode::ACCEPTED).json(Accepted {
        email: email.as_str().to_owned(),
    }))
}

/// List readers in the order they were added, a page at a time; filter
/// by status, or find one by address.
#[utoipa::path(
    get,
    path = "/api/v1/subscribers",
    operation_id = "listSubscribers",
    tag = "subscribers",
    params(ListQuery),
    responses((status = 200, description = "A page of readers", body = SubscriberPage))
)]
pub async fn list(query: web::Query<ListQuery>, state: web::Data<ApiState>) -> Result<HttpResponse, Problem> {
    let query = query.into_inner();
    let invalid = |what: &str| Problem::new(Kind::InvalidParameters).reason(what);
    let status = match query.status.as_deref() {
        None => None,
        Some(raw) => Some(SubscriberStatus::parse(raw).ok_or_else(|| invalid("status"))?),
    };
    let email_key = match query.email.as_deref() {
        None => None,
        Some(raw) => Some(
            SubscriberEmail::parse(raw, AddressPolicy::LOOKUP)
                .map_err(|_| invalid("email"))?
                .dedupe_key(),
        ),
    };
    let paging = Paging::parse(query.limit, query.cursor.as_deref(), PAGE_SIZES, |raw| {
        Uuid::parse_str(raw).ok()
    })?;
    let filter = PageFilter { status, email_key };
    let readers = subscriber_api::page(&state.db, &filter, paging.after, paging.rows_to_read()).await?;
    let (readers, next_cursor) = paging.page(readers, |r| r.id.to_string());
    Ok(HttpResponse::Ok().json(SubscriberPage {
        subscribers: readers.into_iter().map(Subscriber::from).collect(),
        next_cursor,
    }))
}

/// One reader.
#[utoipa::path(
    get,
    path = "/api/v1/subscribers/{id}",
    operation_id = "showSubscriber",
    tag = "subscribers",
    params(("id" = uuid::Uuid, Path, description = "The reader's id")),
    responses((status = 200, description = "The reader", body = Subscriber))
)]
pub async fn show(id: web::Path<String>, state: web::Data<ApiState>) -> Result<HttpResponse, Problem> {
    let reader = subscriber_api::find(&state.db, path_id(&id)?)
        .await?
        .ok_or_else(|| Problem::new(Kind::NotFound))?;
    Ok(HttpResponse::Ok().json(Subscriber::from(reader)))
}

/// Change a reader's name or language (recorded in their history).
#[utoipa::path(
    patch,
    path = "/api/v1/subscribers/{id}",
    operation_id = "updateSubscriber",
    tag = "subscribers",
    params(("id" = uuid::Uuid, Path, description = "The reader's id")),
    request_body = SubscriberChange,
    responses((status = 200, description = "The reader, changed", body = Subscriber))
)]
pub async fn update(
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<SubscriberChange>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, Problem> {
    let body = body.into_inner();
    let mut problems = Vec::new();
    let name = body.name.as_deref().map(|raw| parse_name(raw, &mut problems));
    let language = body.language.as_deref().map(|tag| parse_language(tag, &mut problems));
    if !problems.is_empty() {
        return Err(Problem::fields(problems));
    }
    let by = caller.name().to_owned();
    let reader = subscriber_api::update_details(
        &state.db,
        path_id(&id)?,
        name.flatten().as_ref(),
        language.flatten(),
        &by,
        Utc::now(),
    )
    .await?
    .ok_or_else(|| Problem::new(Kind::NotFound))?;
    Ok(HttpResponse::Ok().json(Subscriber::from(reader)))
}

/// Unsubscribe a reader on their behalf; repeating it changes nothing.
#[utoipa::path(
    post,
    path = "/api/v1/subscribers/{id}/unsubscribe",
    operation_id = "unsubscribeSubscriber",
    tag = "subscribers",
    params(("id" = uuid::Uuid, Path, description = "The reader's id")),
    responses((status = 200, description = "The reader, unsubscribed", body = Subscriber))
)]
pub async fn unsubscribe(id: web::Path<String>, state: web::Data<ApiState>) -> Result<HttpResponse, Problem> {
    subscriber_admin::unsubscribe(&state.db, path_id(&id)?, Utc::now()).await?;
    show(id, state).await
}

/// Erase a reader's personal data (GDPR art. 17): the row stays,
/// anonymous and unsubscribed, and is never shown again.
#[utoipa::path(
    delete,
    path = "/api/v1/subscribers/{id}",
    operation_id = "eraseSubscriber",
    tag = "subscribers",
    params(("id" = uuid::Uuid, Path, description = "The reader's id")),
    responses((status = 204, description = "Erased"))
)]
pub async fn erase(id: web::Path<String>, state: web::Data<ApiState>) -> Result<HttpResponse, Problem> {
    match subscriber_admin::erase(&state.db, path_id(&id)?, Utc::now()).await? {
        true => Ok(HttpResponse::NoContent().finish()),
        false => Err(Problem::new(Kind::NotFound)),
    }
}

/// The id in a path: anything else names nothing.
fn path_id(raw: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(raw).map_err(|_| Problem::new(Kind::NotFound))
}

fn field(field: &'static str, cause: FieldCause) -> FieldProblem {
    FieldProblem { field, cause }
}

fn parse_name(raw: &str, problems: &mut Vec<FieldProblem>) -> Option<SubscriberName> {
    SubscriberName::parse_optional(raw)
        .map_err(|e| problems.push(field("name", FieldCause::Name(e))))
        .ok()
}

fn parse_language(tag: &str, problems: &mut Vec<FieldProblem>) -> Option<Language> {
    let language = Language::parse(tag);
    if language.is_none() {
        problems.push(field("language", FieldCause::Message("api-language-unknown")));
    }
    language
}

/// The consent note a confirmed reader needs, `None` for one who must
/// confirm; `Err` (with the reason in `problems`) when the two disagree.
fn parse_consent(confirmed: bool, note: Option<&str>, problems: &mut Vec<FieldProblem>) -> Result<Option<String>, ()> {
    let note = note.map(str::trim);
    let refuse = |problems: &mut Vec<FieldProblem>, id| {
        problems.push(field("consent", FieldCause::Message(id)));
        Err(())
    };
    match (confirmed, note) {
        (false, None) => Ok(None),
        (false, Some(_)) => refuse(problems, "api-consent-without-confirmed"),
        (true, None) | (true, Some("")) => refuse(problems, "api-consent-missing"),
        (true, Some(note)) if note.chars().count() > MAX_CONSENT_CHARS => refuse(problems, "api-consent-too-long"),
        (true, Some(note)) if note.chars().any(char::is_control) => refuse(problems, "api-consent-control-characters"),
        (true, Some(note)) => Ok(Some(note.to_owned())),
    }
}
