//! What every admin page shares: the frame around it (`Chrome`) and the
//! pages that explain a problem.

use actix_session::Session;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;

use super::session::{self, Staff};
use crate::web::form::FormError;

pub use crate::web::pages::html;

/// The frame of an admin page: the site's name, the staff member (empty on
/// the login page), the CSRF token for the logout button, and a message
/// left by the previous action.
pub struct Chrome {
    pub site: String,
    pub staff: String,
    pub csrf: String,
    pub flash: Option<String>,
}

impl Chrome {
    pub fn new(site: &str, session: &Session, staff: Option<&Staff>) -> Self {
        Self {
            site: site.to_owned(),
            staff: staff.map(|s| s.email.clone()).unwrap_or_default(),
            csrf: session::csrf_token(session),
            flash: session::take_flash(session),
        }
    }
}

#[derive(Template)]
#[template(path = "web/admin/message.html")]
struct MessagePage<'a> {
    site: &'a str,
    title: &'a str,
    message: &'a str,
}

/// A page that says what went wrong in a sentence or two.
pub fn message(site: &str, status: StatusCode, title: &str, message: &str) -> HttpResponse {
    html(status, &MessagePage { site, title, message })
}

pub fn server_error(site: &str) -> HttpResponse {
    message(
        site,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Something went wrong on our side and the change may not have been saved. Please try again in a minute; \
         the server log has the details.",
    )
}

pub fn not_found(site: &str, what: &str) -> HttpResponse {
    message(
        site,
        StatusCode::NOT_FOUND,
        &format!("No such {what}"),
        &format!("There is no {what} at this address. It may have been deleted; go back to the list."),
    )
}

pub fn bad_request(site: &str, title: &str, why: &str) -> HttpResponse {
    message(site, StatusCode::BAD_REQUEST, title, why)
}

pub fn form_error(site: &str, error: FormError) -> HttpResponse {
    let page = message(site, error.status(), "The form could not be read", &error.to_string());
    error.finish(page)
}

/// Logs a database error and answers with the server-error page.
pub fn db_error(site: &str, what: &str, e: sqlx::Error) -> HttpResponse {
    tracing::error!(error = %e, "admin: cannot {what}");
    server_error(site)
}
