//! Signing up and confirming: `POST /subscriptions`, and the confirmation
//! link's page and button.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};

use crate::db::new_readers::NewReader;
use crate::db::signup_writer::RecordError;
use crate::db::subscribers::{self, TokenState};
use crate::domain::{SubscriberEmail, SubscriberName, Token};
use crate::web::error::{FormError, PageError};
use crate::web::form::{self, Form};
use crate::web::pages::{self, CheckInboxPage, ConfirmPage, ConfirmedPage, SignupPage};
use crate::web::{AppState, ClientAddr};

pub async fn signup_form(state: web::Data<AppState>) -> HttpResponse {
    pages::html(
        StatusCode::OK,
        &SignupPage {
            site: &state.site,
            name: "",
            email: "",
            errors: vec![],
        },
    )
}

pub async fn subscribe(
    req: HttpRequest,
    form: Result<Form, PageError>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let site = state.site.as_str();
    let client = ClientAddr::of(&req);
    if let Some(client) = client
        && let Err(wait) = state.signup_limit.check(&client.rate_limit_key())
    {
        let seconds = wait.as_secs().max(1);
        return Err(PageError::public(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many signups",
            format!(
                "We received too many signups from your network in a short time. Please try again in {seconds} seconds."
            ),
        )
        .retry_after(seconds));
    }
    let fields = match form {
        Ok(fields) => fields,
        // Text we cannot decode: the form again, empty, with the reason.
        Err(e) if e.form_error() == Some(&FormError::NotUtf8) => {
            let page = SignupPage {
                site,
                name: "",
                email: "",
                errors: vec![e.to_string()],
            };
            return Ok(pages::html(StatusCode::BAD_REQUEST, &page));
        }
        Err(e) => return Err(e),
    };
    let (raw_name, raw_email) = (fields.get("name"), fields.get("email"));
    let name = SubscriberName::parse(raw_name);
    let email = SubscriberEmail::parse(raw_email, state.address_policy);
    let (name, email) = match (name, email) {
        (Ok(name), Ok(email)) => (name, email),
        (name, email) => {
            let errors = [name.err().map(|e| e.to_string()), email.err().map(|e| e.to_string())];
            let page = SignupPage {
                site,
                name: raw_name,
                email: raw_email,
                errors: errors.into_iter().flatten().collect(),
            };
            return Ok(pages::html(StatusCode::BAD_REQUEST, &page));
        }
    };
    let reader = NewReader::to_confirm(
        &email,
        &name,
        client.map(|c| c.to_string()),
        "web form",
        Token::generate(),
    );
    match state.signups.record(reader).await {
        // The same page whatever the address's state: the response must not
        // tell a stranger whether someone is subscribed.
        Ok(()) => {
            super::observe::count(&req, |m| m.signup());
            Ok(pages::html(StatusCode::OK, &CheckInboxPage { site }))
        }
        Err(RecordError::CapReached { room_at }) => {
            super::observe::count(&req, |m| m.confirmation_withheld());
            Err(cap_reached(room_at))
        }
        Err(e) => Err(PageError::unexpected(e)),
    }
}

pub async fn confirm_page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let site = state.site.as_str();
    let token = match form::parse(req.query_string().as_bytes()) {
        Ok(fields) => Token::parse(fields.get("token")),
        Err(_) => None,
    };
    let token = token.ok_or_else(incomplete_link)?;
    // Reading only: mail scanners open links, and opening must not confirm.
    let page = match subscribers::token_state(&state.db, &token, Utc::now())
        .await
        .map_err(|e| PageError::unexpected(e).private())?
    {
        TokenState::Valid => pages::html(
            StatusCode::OK,
            &ConfirmPage {
                site,
                token: token.as_str(),
            },
        ),
        TokenState::AlreadyConfirmed => pages::html(StatusCode::OK, &ConfirmedPage { site }),
        state => return Err(link_problem(state)),
    };
    Ok(pages::private(page))
}

pub async fn confirm(req: HttpRequest, form: Form, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let site = state.site.as_str();
    let token = Token::parse(form.get("token")).ok_or_else(incomplete_link)?;
    let page = match subscribers::confirm(&state.db, &token, Utc::now())
        .await
        .map_err(|e| PageError::unexpected(e).private())?
    {
        TokenState::Valid => {
            tracing::info!("subscriber confirmed");
            super::observe::count(&req, |m| m.confirmation());
            pages::html(StatusCode::OK, &ConfirmedPage { site })
        }
        TokenState::AlreadyConfirmed => pages::html(StatusCode::OK, &ConfirmedPage { site }),
        state => return Err(link_problem(state)),
    };
    Ok(pages::private(page))
}

/// The answer while `limits.confirmations_per_hour` is reached: the same
/// for every address (nothing tells whether it is on the list), nothing
/// written, and when to come back.
fn cap_reached(room_at: DateTime<Utc>) -> PageError {
    let seconds = (room_at - Utc::now()).num_seconds().max(1);
    let minutes = (seconds + 59) / 60;
    let when = if minutes <= 1 {
        "in a minute".to_owned()
    } else {
        format!("in about {minutes} minutes")
    };
    PageError::public(
        StatusCode::SERVICE_UNAVAILABLE,
        "Signups are paused for a while",
        format!(
            "We have sent as many confirmation emails as we allow ourselves in an hour, so we are not \
             taking new signups right now. Nothing was saved. Please try again {when}."
        ),
    )
    .retry_after(seconds as u64)
}

fn incomplete_link() -> PageError {
    PageError::public(
        StatusCode::BAD_REQUEST,
        "This link is incomplete",
        "The confirmation link is missing part of its code; some mail programs cut long links. \
         Try copying the whole link from the email, or sign up again to get a new one.",
    )
    .offer_signup()
    .private()
}

fn link_problem(state: TokenState) -> PageError {
    let (status, title, message) = match state {
        TokenState::Expired => (
            StatusCode::GONE,
            "This link has expired",
            "Confirmation links work for a limited time, and this one is no longer valid. \
             Sign up again and we will send you a new link.",
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "We don't recognise this link",
            "This confirmation link is not valid: it may have been mistyped or replaced by a newer one. \
             Sign up again and we will send you a new link.",
        ),
    };
    PageError::public(status, title, message).offer_signup().private()
}
