//! The public pages, one askama template each under `templates/web/`
//! (the pages about problems are [`super::error`]'s).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, REFERRER_POLICY};
use askama::Template;

#[derive(Template)]
#[template(path = "web/signup.html")]
pub struct SignupPage<'a> {
    pub site: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    pub errors: Vec<String>,
}

#[derive(Template)]
#[template(path = "web/check_inbox.html")]
pub struct CheckInboxPage<'a> {
    pub site: &'a str,
}

#[derive(Template)]
#[template(path = "web/confirm.html")]
pub struct ConfirmPage<'a> {
    pub site: &'a str,
    pub token: &'a str,
}

#[derive(Template)]
#[template(path = "web/confirmed.html")]
pub struct ConfirmedPage<'a> {
    pub site: &'a str,
}

#[derive(Template)]
#[template(path = "web/unsubscribe.html")]
pub struct UnsubscribePage<'a> {
    pub site: &'a str,
    pub token: &'a str,
    pub email: &'a str,
}

#[derive(Template)]
#[template(path = "web/unsubscribed.html")]
pub struct UnsubscribedPage<'a> {
    pub site: &'a str,
    pub name: &'a str,
    pub email: &'a str,
}

pub struct ArchiveEntry {
    pub week: String,
    pub subject: String,
    pub date: String,
    pub articles: i32,
}

#[derive(Template)]
#[template(path = "web/archive.html")]
pub struct ArchivePage<'a> {
    pub site: &'a str,
    pub entries: Vec<ArchiveEntry>,
}

/// A page that explains something in a sentence or two and offers a way
/// on: mostly a problem ([`super::error::PageError`]).
#[derive(Template)]
#[template(path = "web/message.html")]
pub struct MessagePage<'a> {
    pub site: &'a str,
    pub title: &'a str,
    pub message: &'a str,
    pub offer_signup: bool,
}

/// Renders a template into an HTML response with `status`.
pub fn html(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "cannot render a page");
            HttpResponse::InternalServerError()
                .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
                .body("Something went wrong on our side. Please try again in a minute.")
        }
    }
}

/// A page about a secret link: never cached, never leaked in a Referer.
pub fn private(mut response: HttpResponse) -> HttpResponse {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, "no-store".parse().expect("static header"));
    headers.insert(REFERRER_POLICY, "no-referrer".parse().expect("static header"));
    response
}
