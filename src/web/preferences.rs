//! A reader's preferences page: `GET /preferences?token=…` shows it and
//! changes nothing (mail scanners open links); `POST /preferences` (the
//! page's forms: `token`, `action` and the action's fields) changes one
//! thing. The token is the reader's unsubscribe token, so the page is
//! exactly as secret as the unsubscribe link, needs no session and no
//! CSRF token: a forged POST needs the secret, which already lets its
//! holder leave. Bad and missing tokens get `/unsubscribe`'s pages.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};

use crate::db::preferences::{self, Change, Preferences};
use crate::domain::{NameError, SubscriberName, UnsubscribeToken};
use crate::i18n::Language;
use crate::web::AppState;
use crate::web::error::PageError;
use crate::web::form;
use crate::web::language::PageLanguage;
use crate::web::pages::{self, Chrome, MessagePage, UnsubscribedPage};
// The same pages as `/unsubscribe`'s for a bad or unknown link: it is the
// same link.
use crate::web::unsubscribe::{bad_link, unknown_link};

/// The longest pause a reader may choose, in weeks.
const MAX_PAUSE_WEEKS: u8 = 8;

#[derive(Template)]
#[template(path = "web/preferences.html")]
struct PreferencesPage<'a> {
    chrome: Chrome<'a>,
    token: &'a str,
    email: &'a str,
    name: &'a str,
    languages: Vec<LanguageOption>,
    /// "Paused until …", in the page's language, while paused.
    paused_until: Option<String>,
    pause_lengths: Vec<(u8, String)>,
    /// The page answers a change that was saved.
    saved: bool,
}

struct LanguageOption {
    tag: &'static str,
    name: String,
    selected: bool,
}

pub async fn preferences_page(
    req: HttpRequest,
    PageLanguage(lang): PageLanguage,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let chrome = Chrome::of(&state.site, lang, &req);
    let has_token = url::form_urlencoded::parse(req.query_string().as_bytes()).any(|(name, _)| name == "token");
    if !has_token {
        return Ok(pages::private(pages::html(
            StatusCode::OK,
            &MessagePage {
                title: &lang.text("preferences-title"),
                message: &lang.text("preferences-without-token"),
                chrome,
                offer_signup: false,
            },
        )));
    }
    let token = form::parse(req.query_string().as_bytes())
        .ok()
        .and_then(|fields| UnsubscribeToken::parse(fields.get("token")))
        .ok_or_else(bad_link)?;
    let reader = preferences::find(&state.db, &token)
        .await
        .map_err(|e| PageError::unexpected(e).private())?
        .ok_or_else(unknown_link)?;
    Ok(pages::private(page(chrome, &token, &reader, false)))
}

pub async fn change_preferences(
    req: HttpRequest,
    PageLanguage(lang): PageLanguage,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let fields = form::read(&req, body, state.max_body_bytes).await?;
    let token = UnsubscribeToken::parse(fields.get("token")).ok_or_else(bad_link)?;
    let now = Utc::now();
    let change = parse_change(&fields, now).map_err(|why| invalid(why).private())?;
    let reader = preferences::apply(&state.db, &token, &change, now)
        .await
        .map_err(|e| PageError::unexpected(e).private())?
        .ok_or_else(unknown_link)?;
    if change == Change::Unsubscribe {
        tracing::info!("subscriber unsubscribed from the preferences page");
        super::observe::count(&req, |m| m.unsubscribe());
    }
    // The answer to a new language is already in it.
    let lang = match &change {
        Change::Details { language, .. } => *language,
        _ => lang,
    };
    let chrome = Chrome::of(&state.site, lang, &req);
    Ok(pages::private(page(chrome, &token, &reader, true)))
}

/// The change the form asks for, or the catalogue id of why it cannot be
/// made.
fn parse_change(fields: &form::Fields, now: DateTime<Utc>) -> Result<Change, &'static str> {
    match fields.get("action") {
        "save" => {
            let name = SubscriberName::parse_optional(fields.get("name")).map_err(|e| name_error(&e))?;
            let wanted = fields.get("language").trim();
            let language = Language::all()
                .find(|language| language.tag() == wanted)
                .ok_or("error-preferences-language")?;
            Ok(Change::Details { name, language })
        }
        "pause" => {
            let weeks = fields
                .get("weeks")
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|weeks| (1..=MAX_PAUSE_WEEKS).contains(weeks))
                .ok_or("error-preferences-pause")?;
            Ok(Change::Pause {
                until: now + chrono::Duration::weeks(i64::from(weeks)),
            })
        }
        "resume" => Ok(Change::Resume),
        "unsubscribe" => Ok(Change::Unsubscribe),
        _ => Err("error-preferences-action"),
    }
}

fn name_error(error: &NameError) -> &'static str {
    match error {
        NameError::Empty => "name-empty",
        NameError::TooLong => "name-too-long",
        NameError::ControlCharacters => "name-control-characters",
    }
}

fn page(chrome: Chrome<'_>, token: &UnsubscribeToken, reader: &Preferences, saved: bool) -> HttpResponse {
    if reader.is_unsubscribed() {
        return pages::html(
            StatusCode::OK,
            &UnsubscribedPage {
                chrome,
                name: &reader.name,
                email: &reader.email,
            },
        );
    }
    let lang = chrome.lang;
    let stored = Language::parse(&reader.language);
    let token = token.as_string();
    pages::html(
        StatusCode::OK,
        &PreferencesPage {
            languages: Language::all()
                .map(|language| LanguageOption {
                    tag: language.tag(),
                    name: language.own_name(),
                    selected: Some(language) == stored,
                })
                .collect(),
            paused_until: reader
                .paused_at(Utc::now())
                .map(|until| lang.text1("preferences-paused-until", "date", &lang.long_date(until.date_naive()))),
            pause_lengths: (1..=MAX_PAUSE_WEEKS)
                .map(|weeks| (weeks, lang.text1("preferences-pause-weeks", "count", i64::from(weeks))))
                .collect(),
            chrome,
            token: &token,
            email: &reader.email,
            name: &reader.name,
            saved,
        },
    )
}

fn invalid(why: &'static str) -> PageError {
    PageError::public(StatusCode::BAD_REQUEST, "error-preferences-invalid-title", why)
}
