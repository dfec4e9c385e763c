//! Every page that says a request went wrong, public or staff, and the
//! errors it tells of ([`PageError`], with [`FormError`] for a body that
//! is no readable form): handlers return `Result<HttpResponse, PageError>`
//! and use `?`, and this module is the one place such a page is written
//! and its cause logged.
//!
//! A page names the site and speaks the reader's language, which an error
//! made deep inside a handler does not know. So a [`PageError`]'s own
//! response ([`ResponseError`]) carries the status, the headers and a
//! plain-text fallback, and [`render`], which wraps the whole application,
//! writes the page into it with the site's name, in the request's language
//! (public pages say what went wrong by message id, see [`crate::i18n`];
//! the staff area is in English), keeping every header the layers between
//! them added.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web};
use askama::Template;

use crate::i18n::{Arg, Language};
use crate::links::paths;
use crate::web::AppState;
use crate::web::pages::{Chrome, MessagePage, SiteFrame, private};

/// Which frame a page about a problem is drawn in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// The public site's; `offer_signup` puts a "Sign up again" button
    /// where the way back to the front page would be.
    Public { offer_signup: bool },
    /// The staff area's, with the way back to the dashboard.
    Staff,
}

/// What went wrong with a request, as a page tells it.
#[derive(Debug)]
pub struct PageError {
    kind: Kind,
    /// The page is about a secret link: never cached, never in a Referer.
    private: bool,
}

#[derive(Debug)]
enum Kind {
    /// A failure on our side. The page says only that; the cause goes to
    /// the log.
    Unexpected(Box<dyn StdError + Send + Sync>),
    /// A body that could not be read as a form.
    Form(FormError),
    /// A problem the page explains in a sentence or two.
    Notice {
        frame: Frame,
        status: StatusCode,
        title: Words,
        message: Words,
        /// The placeables of a title or message given by id.
        args: Vec<(&'static str, OwnedArg)>,
        retry_after: Option<u64>,
        /// A failure on our side the page tells of in its own words.
        cause: Option<Box<dyn StdError + Send + Sync>>,
    },
}

type Text = Cow<'static, str>;

/// A title or sentence: the staff area's own English words, or a message
/// of the catalogues, written in the request's language when the page is.
#[derive(Debug)]
enum Words {
    Text(Text),
    Message(&'static str),
}

/// A placeable's value, kept until the page is written.
#[derive(Debug, Clone)]
enum OwnedArg {
    Text(String),
    Number(i64),
}

impl PageError {
    /// Something failed on our side: the reader or staff member gets the
    /// server-error page, and the cause is logged once by [`render`].
    pub fn unexpected(cause: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::new(Kind::Unexpected(cause.into()))
    }

    /// A public page about a problem: its title and sentence are message
    /// ids of the catalogues, their placeables given with [`Self::arg`].
    pub fn public(status: StatusCode, title: &'static str, message: &'static str) -> Self {
        Self::notice(
            Frame::Public { offer_signup: false },
            status,
            Words::Message(title),
            Words::Message(message),
        )
    }

    /// A staff page about a problem.
    pub fn staff(status: StatusCode, title: impl Into<Text>, message: impl Into<Text>) -> Self {
        Self::notice(
            Frame::Staff,
            status,
            Words::Text(title.into()),
            Words::Text(message.into()),
        )
    }

    /// A number for the placeable `name` of a public page's words.
    pub fn arg(mut self, name: &'static str, value: i64) -> Self {
        if let Kind::Notice { args, .. } = &mut self.kind {
            args.push((name, OwnedArg::Number(value)));
        }
        self
    }

    /// A text for the placeable `name` of a public page's words.
    pub fn arg_text(mut self, name: &'static str, value: impl Into<String>) -> Self {
        if let Kind::Notice { args, .. } = &mut self.kind {
            args.push((name, OwnedArg::Text(value.into())));
        }
        self
    }

    /// The staff page for an address naming no `what` (an article, an issue…).
    pub fn not_found(what: &str) -> Self {
        Self::staff(
            StatusCode::NOT_FOUND,
            format!("No such {what}"),
            format!("There is no {what} at this address. It may have been deleted; go back to the list."),
        )
    }

    /// The staff page for a request that cannot be carried out as sent.
    pub fn bad_request(title: impl Into<Text>, why: impl Into<Text>) -> Self {
        Self::staff(StatusCode::BAD_REQUEST, title, why)
    }

    /// On a public page: offers to sign up again.
    pub fn offer_signup(mut self) -> Self {
        if let Kind::Notice { frame, .. } = &mut self.kind {
            *frame = Frame::Public { offer_signup: true };
        }
        self
    }

    /// Tells the client when to try again (`Retry-After`, at least a second).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        if let Kind::Notice { retry_after, .. } = &mut self.kind {
            *retry_after = Some(seconds.max(1));
        }
        self
    }

    /// Keeps the failure the page tells of, for the log.
    pub fn caused_by(mut self, error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        if let Kind::Notice { cause, .. } = &mut self.kind {
            *cause = Some(error.into());
        }
        self
    }

    /// The failure behind this error, when it is ours.
    fn cause(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        match &self.kind {
            Kind::Unexpected(cause) | Kind::Notice { cause: Some(cause), .. } => Some(cause.as_ref()),
            _ => None,
        }
    }

    /// Marks the page as one about a secret link (see [`private`]).
    pub fn private(mut self) -> Self {
        self.private = true;
        self
    }

    /// The form error this is, when it is one.
    pub fn form_error(&self) -> Option<&FormError> {
        match &self.kind {
            Kind::Form(e) => Some(e),
            _ => None,
        }
    }

    fn new(kind: Kind) -> Self {
        Self { kind, private: false }
    }

    fn notice(frame: Frame, status: StatusCode, title: Words, message: Words) -> Self {
        Self::new(Kind::Notice {
            frame,
            status,
            title,
            message,
            args: Vec::new(),
            retry_after: None,
            cause: None,
        })
    }

    /// The frame, title and sentence of the page, drawn in the frame of
    /// `area` (the staff area or the public site) unless the error chose
    /// its own; a public page's in `lang`.
    fn words(&self, area: Frame, lang: Language) -> (Frame, String, String) {
        match &self.kind {
            Kind::Unexpected(_) => match area {
                Frame::Staff => (
                    area,
                    "Something went wrong".into(),
                    "Something went wrong on our side and the change may not have been saved. Please try again \
                     in a minute; the server log has the details."
                        .into(),
                ),
                Frame::Public { .. } => (area, lang.text("error-unexpected-title"), lang.text("error-unexpected")),
            },
            Kind::Form(e) => match area {
                Frame::Staff => (area, "The form could not be read".into(), e.to_string()),
                Frame::Public { .. } => (area, lang.text("form-unreadable-title"), e.message(lang)),
            },
            Kind::Notice {
                frame,
                title,
                message,
                args,
                ..
            } => {
                let args: Vec<(&str, Arg<'_>)> = args
                    .iter()
                    .map(|(name, value)| {
                        let value = match value {
                            OwnedArg::Text(text) => Arg::Text(text),
                            OwnedArg::Number(n) => Arg::Number(*n),
                        };
                        (*name, value)
                    })
                    .collect();
                let write = |words: &Words| match words {
                    Words::Text(text) => text.to_string(),
                    Words::Message(id) => lang.text_with(id, &args),
                };
                (*frame, write(title), write(message))
            }
        }
    }

    /// The whole page, for a site called `site`, in `lang`; a public
    /// page's language switch leads to the page `req` asked for.
    fn page(
        &self,
        site: &SiteFrame,
        area: Frame,
        lang: Language,
        req: &actix_web::HttpRequest,
    ) -> askama::Result<String> {
        let (frame, title, message) = self.words(area, lang);
        match frame {
            Frame::Public { offer_signup } => MessagePage {
                chrome: Chrome::of(site, lang, req),
                title: &title,
                message: &message,
                offer_signup,
            }
            .render(),
            Frame::Staff => StaffMessagePage {
                site: &site.name,
                title: &title,
                message: &message,
            }
            .render(),
        }
    }
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Unexpected(cause) => write!(f, "{cause}"),
            Kind::Form(e) => write!(f, "{e}"),
            Kind::Notice { .. } => f.write_str(&self.words(Frame::Staff, Language::ENGLISH).1),
        }
    }
}

impl StdError for PageError {}

impl From<FormError> for PageError {
    fn from(e: FormError) -> Self {
        Self::new(Kind::Form(e))
    }
}

impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> Self {
        Self::unexpected(e)
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match &self.kind {
            Kind::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Kind::Form(e) => e.status(),
            Kind::Notice { status, .. } => *status,
        }
    }

    /// The status and headers; the body is plain text until [`render`]
    /// puts the page in.
    fn error_response(&self) -> HttpResponse {
        let (_, title, message) = self.words(Frame::Public { offer_signup: false }, Language::ENGLISH);
        let mut response = HttpResponse::build(self.status_code())
            .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
            .body(format!("{title}\n\n{message}\n"));
        if let Kind::Notice {
            retry_after: Some(seconds),
            ..
        } = &self.kind
        {
            response.headers_mut().insert(RETRY_AFTER, (*seconds).into());
        }
        // After a timeout the rest of the body may still be trickling in:
        // the connection ends rather than reading it.
        if matches!(self.kind, Kind::Form(FormError::TimedOut(_))) {
            response.head_mut().set_connection_type(ConnectionType::Close);
        }
        if self.private {
            response = private(response);
        }
        response
    }
}

/// The staff area's page about a problem.
#[derive(Template)]
#[template(path = "web/admin/message.html")]
struct StaffMessagePage<'a> {
    site: &'a str,
    title: &'a str,
    message: &'a str,
}

/// Why a request body could not be read as a form.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormError {
    #[error("The form is too large (at most {0} bytes).")]
    TooLarge(usize),
    #[error("The form must be sent as application/x-www-form-urlencoded.")]
    WrongContentType,
    #[error("The form could not be read: it is not valid UTF-8 text.")]
    NotUtf8,
    #[error("The form could not be read: the connection broke off.")]
    Incomplete,
    #[error("The form took too long to arrive (more than {0} seconds). Please try again.")]
    TimedOut(u64),
}

impl FormError {
    /// What a public page says about it, in `lang`.
    pub fn message(&self, lang: Language) -> String {
        match self {
            FormError::TooLarge(bytes) => lang.text1("form-too-large", "count", *bytes),
            FormError::WrongContentType => lang.text("form-wrong-content-type"),
            FormError::NotUtf8 => lang.text("form-not-utf8"),
            FormError::Incomplete => lang.text("form-incomplete"),
            FormError::TimedOut(seconds) => {
                lang.text1("form-timed-out", "count", i64::try_from(*seconds).unwrap_or(i64::MAX))
            }
        }
    }

    /// The status a page about this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            FormError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            FormError::WrongContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            FormError::NotUtf8 | FormError::Incomplete => StatusCode::BAD_REQUEST,
            FormError::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
        }
    }
}

/// Whether `path` is in the staff area, whose pages have the staff frame.
fn is_staff_area(path: &str) -> bool {
    path.strip_prefix(paths::ADMIN)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Writes the page of every [`PageError`] answer, and logs the failure
/// behind it, if any, once, inside the request's span (which carries its
/// request id). Other answers pass untouched.
pub async fn render(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let response = next.call(req).await?.map_into_boxed_body();
    let Some(error) = response.response().error().and_then(|e| e.as_error::<PageError>()) else {
        return Ok(response);
    };
    if let Some(cause) = error.cause() {
        // The cause may quote outside text (an address, a feed's words):
        // written with its control characters made visible.
        tracing::error!(error = %crate::terminal::escape(&chain(cause)), "the request failed");
    }
    let request = response.request();
    let site = request
        .app_data::<web::Data<AppState>>()
        .map(|state| state.site.clone())
        .unwrap_or_default();
    let area = if is_staff_area(request.path()) {
        Frame::Staff
    } else {
        Frame::Public { offer_signup: false }
    };
    let page = error.page(&site, area, super::language::of_request(request), request);
    Ok(response.map_body(|head, body| match page {
        Ok(page) => {
            head.headers
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            BoxBody::new(page)
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot render an error page");
            body
        }
    }))
}

/// `error: its source: its source's source…`
fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        // Many errors repeat their source in their own message.
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_staff_area_is_admin_and_below() {
        assert!(is_staff_area("/admin"));
        assert!(is_staff_area("/admin/issues/2026-W48"));
        assert!(!is_staff_area("/administrator"));
        assert!(!is_staff_area("/archive"));
    }

    fn weekly() -> SiteFrame {
        SiteFrame {
            name: "Weekly".into(),
            publisher: "Weekly Ltd".into(),
            contact: "privacy@weekly.example".into(),
        }
    }

    fn request() -> actix_web::HttpRequest {
        actix_web::test::TestRequest::get().uri("/somewhere").to_http_request()
    }

    #[test]
    fn a_server_error_page_never_shows_its_cause() {
        let error = PageError::unexpected(String::from("secret detail"));
        for area in [Frame::Staff, Frame::Public { offer_signup: false }] {
            let page = error.page(&weekly(), area, Language::ENGLISH, &request()).unwrap();
            assert!(page.contains("Something went wrong"), "{page}");
            assert!(!page.contains("secret detail"), "{page}");
        }
        assert_eq!(error.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn notices_keep_their_frame_status_and_retry_after() {
        let error = PageError::public(
            StatusCode::TOO_MANY_REQUESTS,
            "error-too-many-signups-title",
            "error-too-many-signups",
        )
        .arg("count", 7)
        .retry_after(0);
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers().get(RETRY_AFTER).unwrap(), "1");
        let page = error
            .page(&weekly(), Frame::Staff, Language::ENGLISH, &request())
            .unwrap();
        assert!(page.contains("Back to the front page"), "{page}");
        assert!(page.contains("Please try again in 7 seconds."), "{page}");
    }

    #[test]
    fn a_public_page_is_written_in_the_requests_language() {
        let russian = Language::parse("ru").unwrap();
        let error = PageError::public(StatusCode::NOT_FOUND, "error-not-found-title", "error-not-found");
        let page = error
            .page(&weekly(), Frame::Public { offer_signup: false }, russian, &request())
            .unwrap();
        assert!(page.contains("<html lang=\"ru\">"), "{page}");
        assert!(page.contains("Страница не найдена"), "{page}");
        assert!(
            page.contains("href=\"/somewhere?lang=en\""),
            "the switch leads back here: {page}"
        );
        assert_eq!(error.to_string(), "Page not found", "logs stay in English");
    }
}
