//! Signing up and confirming: `POST /subscriptions`, and the confirmation
//! link's page and button.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};

use crate::db::issues;
use crate::db::new_readers::NewReader;
use crate::db::signup_writer::RecordError;
use crate::db::subscribers::{self, TokenState};
use crate::domain::{EmailError, NameError, SubscriberEmail, SubscriberName, Token};
use crate::i18n::Language;
use crate::web::error::{FormError, PageError};
use crate::web::form::{self, Form};
use crate::web::language::PageLanguage;
use crate::web::pages::{
    self, CheckInboxPage, Chrome, ConfirmPage, ConfirmedPage, LatestIssue, PrivacyPage, SignupPage,
};
use crate::web::{AppState, ClientAddr};

/// The front page: what the reader will get, the form, the latest issue
/// and what is kept about them.
pub async fn signup_form(
    req: HttpRequest,
    PageLanguage(lang): PageLanguage,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let latest = issues::archive(&state.db, lang)
        .await?
        .into_iter()
        .next()
        .map(|issue| LatestIssue {
            subject: issue.title().to_owned(),
            week: issue.week,
            date: lang.long_date(issue.created_at.date_naive()),
        });
    Ok(pages::html(
        StatusCode::OK,
        &SignupPage {
            chrome: Chrome::of(&state.site, lang, &req),
            name: "",
            email: "",
            ask_name: state.ask_name,
            latest,
            name_error: None,
            email_error: None,
            form_error: None,
        },
    ))
}

/// `GET /privacy`: the privacy notice, with the retention the settings say.
pub async fn privacy(req: HttpRequest, PageLanguage(lang): PageLanguage, state: web::Data<AppState>) -> HttpResponse {
    pages::html(
        StatusCode::OK,
        &PrivacyPage {
            chrome: Chrome::of(&state.site, lang, &req),
            unconfirmed_days: state.retention.unconfirmed_reader_days,
            mail_address_days: state.retention.mail_address_days,
            delivery_months: state.retention.delivery_months,
        },
    )
}

pub async fn subscribe(
    req: HttpRequest,
    PageLanguage(asked): PageLanguage,
    form: Result<Form, PageError>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let client = ClientAddr::of(&req);
    if let Some(client) = client
        && let Err(wait) = state.signup_limit.check(&client.rate_limit_key())
    {
        let seconds = wait.as_secs().max(1);
        return Err(PageError::public(
            StatusCode::TOO_MANY_REQUESTS,
            "error-too-many-signups-title",
            "error-too-many-signups",
        )
        .arg("count", i64::try_from(seconds).unwrap_or(i64::MAX))
        .retry_after(seconds));
    }
    let page = |lang: Language| SignupPage {
        chrome: Chrome::of(&state.site, lang, &req),
        name: "",
        email: "",
        ask_name: state.ask_name,
        latest: None,
        name_error: None,
        email_error: None,
        form_error: None,
    };
    let fields = match form {
        Ok(fields) => fields,
        // Text we cannot decode: the form again, empty, with the reason.
        Err(e) if e.form_error() == Some(&FormError::NotUtf8) => {
            let page = SignupPage {
                form_error: Some(FormError::NotUtf8.message(asked)),
                ..page(asked)
            };
            return Ok(pages::html(StatusCode::BAD_REQUEST, &page));
        }
        Err(e) => return Err(e),
    };
    // The reader's language is the one of the page they signed up on,
    // which the form carries; a form without it, the request's.
    let lang = Language::parse(fields.get("language")).unwrap_or(asked);
    let (raw_name, raw_email) = (fields.get("name"), fields.get("email"));
    let name = match state.ask_name {
        true => SubscriberName::parse_optional(raw_name),
        false => SubscriberName::parse_optional(""),
    };
    let email = SubscriberEmail::parse(raw_email, state.address_policy);
    let (name, email) = match (name, email) {
        (Ok(name), Ok(email)) => (name, email),
        (name, email) => {
            let page = SignupPage {
                name: raw_name,
                email: raw_email,
                name_error: name.err().map(|e| name_error(lang, &e)),
                email_error: email.err().map(|e| email_error(lang, &e)),
                ..page(lang)
            };
            return Ok(pages::html(StatusCode::BAD_REQUEST, &page));
        }
    };
    let reader = NewReader::to_confirm(
        &email,
        &name,
        lang,
        client.map(|c| c.to_string()),
        "web form",
        Token::generate(),
    );
    match state.signups.record(reader).await {
        // The same page whatever the address's state: the response must not
        // tell a stranger whether someone is subscribed.
        Ok(()) => {
            super::observe::count(&req, |m| m.signup());
            Ok(pages::html(
                StatusCode::OK,
                &CheckInboxPage {
                    chrome: Chrome::of(&state.site, lang, &req),
                },
            ))
        }
        Err(RecordError::CapReached { room_at }) => {
            super::observe::count(&req, |m| m.confirmation_withheld());
            Err(cap_reached(room_at))
        }
        Err(e) => Err(PageError::unexpected(e)),
    }
}

/// What the form says about a name it cannot take, in `lang`.
pub(super) fn name_error(lang: Language, error: &NameError) -> String {
    lang.text(match error {
        NameError::Empty => "name-empty",
        NameError::TooLong => "name-too-long",
        NameError::ControlCharacters => "name-control-characters",
    })
}

/// What a form says about an address it cannot take, in `lang` (the
/// preferences page's address form says the same).
pub(super) fn email_error(lang: Language, error: &EmailError) -> String {
    let id = match error {
        EmailError::Empty => "email-empty",
        EmailError::TooLong => "email-too-long",
        EmailError::LocalPartTooLong => "email-local-part-too-long",
        EmailError::DisplayName => "email-display-name",
        EmailError::IpLiteral => "email-ip-literal",
        EmailError::MissingTld => "email-missing-tld",
        EmailError::LocalPart => "email-local-part",
        EmailError::NonAsciiLocalPart => "email-non-ascii-local-part",
        EmailError::SpecialUseDomain(domain) => return lang.text1("email-special-use-domain", "domain", *domain),
        EmailError::Domain => "email-domain",
        EmailError::Malformed => "email-malformed",
    };
    lang.text(id)
}

pub async fn confirm_page(
    req: HttpRequest,
    PageLanguage(lang): PageLanguage,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let chrome = || Chrome::of(&state.site, lang, &req);
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
                chrome: chrome(),
                token: token.as_str(),
            },
        ),
        TokenState::AlreadyConfirmed => pages::html(StatusCode::OK, &ConfirmedPage { chrome: chrome() }),
        state => return Err(link_problem(state)),
    };
    Ok(pages::private(page))
}

pub async fn confirm(
    req: HttpRequest,
    PageLanguage(lang): PageLanguage,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let chrome = || Chrome::of(&state.site, lang, &req);
    let token = Token::parse(form.get("token")).ok_or_else(incomplete_link)?;
    let page = match subscribers::confirm(&state.db, &token, state.welcome, Utc::now())
        .await
        .map_err(|e| PageError::unexpected(e).private())?
    {
        TokenState::Valid => {
            tracing::info!("subscriber confirmed");
            super::observe::count(&req, |m| m.confirmation());
            pages::html(StatusCode::OK, &ConfirmedPage { chrome: chrome() })
        }
        TokenState::AlreadyConfirmed => pages::html(StatusCode::OK, &ConfirmedPage { chrome: chrome() }),
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
    PageError::public(
        StatusCode::SERVICE_UNAVAILABLE,
        "error-signups-paused-title",
        "error-signups-paused",
    )
    .arg("count", minutes)
    .retry_after(seconds as u64)
}

fn incomplete_link() -> PageError {
    PageError::public(
        StatusCode::BAD_REQUEST,
        "error-link-incomplete-title",
        "error-confirm-link-incomplete",
    )
    .offer_signup()
    .private()
}

fn link_problem(state: TokenState) -> PageError {
    let (status, title, message) = match state {
        TokenState::Expired => (StatusCode::GONE, "error-link-expired-title", "error-link-expired"),
        _ => (
            StatusCode::NOT_FOUND,
            "error-link-unknown-title",
            "error-confirm-link-unknown",
        ),
    };
    PageError::public(status, title, message).offer_signup().private()
}
