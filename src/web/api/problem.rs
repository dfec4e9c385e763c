//! What the JSON API answers when a request goes wrong: RFC 9457 problem
//! details (`application/problem+json`). Handlers return
//! `Result<_, Problem>` and use `?`; [`localise`], which wraps the API,
//! writes each problem's title and detail in the request's language (from
//! the catalogues, like every page) and logs the failure behind it, if any.
//! Outbound webhooks answer their own callers with the same type.

use std::error::Error as StdError;
use std::fmt;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{EmailError, NameError};
use crate::i18n::{Arg, Language};

pub const CONTENT_TYPE_PROBLEM: &str = "application/problem+json";

/// What went wrong, as a problem's `type` names it (`urn:gazette:problem:…`)
/// and its words' message ids (`api-…-title`, `api-…`) do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No token, or one that is unknown or revoked.
    Unauthorized,
    /// A token whose scope does not reach this resource.
    Forbidden,
    NotFound,
    /// A body that is not the JSON this operation takes.
    UnreadableBody,
    /// A body whose fields do not parse (see [`FieldProblem`]).
    InvalidFields,
    /// A query string or path this operation cannot read.
    InvalidParameters,
    TooLarge,
    UnsupportedMediaType,
    TooManyRequests,
    /// `limits.confirmations_per_hour` is reached.
    SignupsPaused,
    /// An article pushed at an address whose article staff edited.
    EditedByStaff,
    /// An article at the address was deleted in the staff area.
    DeletedByStaff,
    Unexpected,
}

impl Kind {
    fn slug(self) -> &'static str {
        match self {
            Kind::Unauthorized => "unauthorized",
            Kind::Forbidden => "forbidden",
            Kind::NotFound => "not-found",
            Kind::UnreadableBody => "unreadable-body",
            Kind::InvalidFields => "invalid-fields",
            Kind::InvalidParameters => "invalid-parameters",
            Kind::TooLarge => "too-large",
            Kind::UnsupportedMediaType => "unsupported-media-type",
            Kind::TooManyRequests => "too-many-requests",
            Kind::SignupsPaused => "signups-paused",
            Kind::EditedByStaff => "edited-by-staff",
            Kind::DeletedByStaff => "deleted-by-staff",
            Kind::Unexpected => "unexpected",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::UnreadableBody | Kind::InvalidParameters => StatusCode::BAD_REQUEST,
            Kind::InvalidFields => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Kind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Kind::SignupsPaused => StatusCode::SERVICE_UNAVAILABLE,
            Kind::EditedByStaff | Kind::DeletedByStaff => StatusCode::CONFLICT,
            Kind::Unexpected => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The title's and the detail's message ids.
    fn messages(self) -> (&'static str, &'static str) {
        match self {
            Kind::Unauthorized => ("api-unauthorized-title", "api-unauthorized"),
            Kind::Forbidden => ("api-forbidden-title", "api-forbidden"),
            Kind::NotFound => ("api-not-found-title", "api-not-found"),
            Kind::UnreadableBody => ("api-unreadable-body-title", "api-unreadable-body"),
            Kind::InvalidFields => ("api-invalid-fields-title", "api-invalid-fields"),
            Kind::InvalidParameters => ("api-invalid-parameters-title", "api-invalid-parameters"),
            Kind::TooLarge => ("api-too-large-title", "api-too-large"),
            Kind::UnsupportedMediaType => ("api-unsupported-media-type-title", "api-unsupported-media-type"),
            Kind::TooManyRequests => ("api-too-many-requests-title", "api-too-many-requests"),
            Kind::SignupsPaused => ("api-signups-paused-title", "api-signups-paused"),
            Kind::EditedByStaff => ("api-edited-by-staff-title", "api-edited-by-staff"),
            Kind::DeletedByStaff => ("api-deleted-by-staff-title", "api-deleted-by-staff"),
            Kind::Unexpected => ("api-unexpected-title", "api-unexpected"),
        }
    }
}

/// Why one field of a body was refused.
#[derive(Debug)]
pub enum FieldCause {
    Email(EmailError),
    Name(NameError),
    /// A message of the catalogues with no placeables.
    Message(&'static str),
    /// A message of the catalogues with one number, `$count`.
    Count(&'static str, i64),
}

#[derive(Debug)]
pub struct FieldProblem {
    pub field: &'static str,
    pub cause: FieldCause,
}

/// A problem, until [`localise`] writes it in the request's language.
#[derive(Debug)]
pub struct Problem {
    kind: Kind,
    /// Text the detail quotes (`$reason`): what the JSON parser said.
    reason: Option<String>,
    /// A number the detail quotes (`$count`).
    count: Option<i64>,
    fields: Vec<FieldProblem>,
    retry_after: Option<u64>,
    cause: Option<Box<dyn StdError + Send + Sync>>,
}

impl Problem {
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            reason: None,
            count: None,
            fields: Vec::new(),
            retry_after: None,
            cause: None,
        }
    }

    /// A failure on our side; the cause goes to the log, never to the client.
    pub fn unexpected(cause: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            cause: Some(cause.into()),
            ..Self::new(Kind::Unexpected)
        }
    }

    /// A body whose fields do not parse, each with its reason.
    pub fn fields(fields: Vec<FieldProblem>) -> Self {
        Self {
            fields,
            ..Self::new(Kind::InvalidFields)
        }
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub fn count(mut self, count: i64) -> Self {
        self.count = Some(count);
        self
    }

    /// Tells the client when to try again (`Retry-After`, at least a second).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        let seconds = seconds.max(1);
        self.retry_after = Some(seconds);
        self.count.get_or_insert(i64::try_from(seconds).unwrap_or(i64::MAX));
        self
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The problem document, in `lang`.
    pub fn document(&self, lang: Language) -> ProblemDocument {
        let mut args: Vec<(&str, Arg<'_>)> = Vec::new();
        if let Some(reason) = &self.reason {
            args.push(("reason", Arg::Text(reason)));
        }
        if let Some(count) = self.count {
            args.push(("count", Arg::Number(count)));
        }
        let (title, detail) = self.kind.messages();
        ProblemDocument {
            kind: format!("urn:gazette:problem:{}", self.kind.slug()),
            title: lang.text(title),
            status: self.kind.status().as_u16(),
            detail: lang.text_with(detail, &args),
            errors: self
                .fields
                .iter()
                .map(|f| FieldError {
                    field: f.field.to_owned(),
                    detail: field_message(lang, &f.cause),
                })
                .collect(),
        }
    }

    fn body(&self, lang: Language) -> String {
        serde_json::to_string(&self.document(lang)).expect("a problem document serialises")
    }
}

/// RFC 9457 problem details.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Problem)]
pub struct ProblemDocument {
    /// What kind of problem this is: `urn:gazette:problem:` and a name.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The fields of the body that were refused, each with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's name in the body.
    pub field: String,
    pub detail: String,
}

/// What the catalogues say about a refused field, in `lang`.
fn field_message(lang: Language, cause: &FieldCause) -> String {
    match cause {
        FieldCause::Email(e) => crate::web::subscriptions::email_error(lang, e),
        FieldCause::Name(e) => crate::web::subscriptions::name_error(lang, e),
        FieldCause::Message(id) => lang.text(id),
        FieldCause::Count(id, count) => lang.text_with(id, &[("count", Arg::Number(*count))]),
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.document(Language::ENGLISH).title)
    }
}

impl StdError for Problem {}

impl From<sqlx::Error> for Problem {
    fn from(e: sqlx::Error) -> Self {
        Self::unexpected(e)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        self.kind.status()
    }

    /// The document in English; [`localise`] writes it again in the
    /// request's language.
    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((CONTENT_TYPE, CONTENT_TYPE_PROBLEM));
        if let Some(seconds) = self.retry_after {
            response.insert_header((RETRY_AFTER, seconds));
        }
        if self.kind == Kind::Unauthorized {
            response.insert_header((WWW_AUTHENTICATE, "Bearer"));
        }
        response.body(self.body(Language::ENGLISH))
    }
}

/// Writes every [`Problem`] answer in the request's language, and logs the
/// failure behind it, if any, once.
pub async fn localise(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let response = next.call(req).await?.map_into_boxed_body();
    let Some(problem) = response.response().error().and_then(|e| e.as_error::<Problem>()) else {
        return Ok(response);
    };
    if let Some(cause) = &problem.cause {
        tracing::error!(error = %crate::terminal::escape(&cause.to_string()), "an API request failed");
    }
    let body = problem.body(crate::web::language::of_request(response.request()));
    Ok(response.map_body(|head, _| {
        head.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_PROBLEM));
        BoxBody::new(body)
    }))
}
