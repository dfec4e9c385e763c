//! A reader's preferences page: `GET /preferences?token=…` shows it and
//! changes nothing (mail scanners open links); `POST /preferences` (the
//! page's forms: `token`, `action` and the action's fields) changes one
//! thing. The token is the reader's unsubscribe token, so the page is
//! exactly as secret as the unsubscribe link, needs no session and no
//! CSRF token: a forged POST needs the secret, which already lets its
//! holder leave. Bad and missing tokens get `/unsubscribe`'s pages.
//!
//! A new address is the one change the page does not make itself: it
//! records the request and mails a link to the new address, whose page
//! (`super::address_change`) makes the change once it is opened.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};

use crate::db::address_changes::{self, ChangeRequest, Requested};
use crate::db::preferences::{self, Change, Preferences};
use crate::domain::{NameError, SubscriberEmail, SubscriberName, Token, UnsubscribeToken};
use crate::i18n::{Arg, Language};
use crate::web::error::PageError;
use crate::web::form;
use crate::web::language::PageLanguage;
use crate::web::pages::{self, Chrome, MessagePage, UnsubscribedPage};
use crate::web::subscriptions::email_error;
use crate::web::{AppState, ClientAddr};
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
    address: AddressForm<'a>,
}

/// What the new-address form shows: what was typed and what is wrong with
/// it, or where a change stands, in the page's language.
#[derive(Default)]
struct AddressForm<'a> {
    value: &'a str,
    error: Option<String>,
    status: Option<String>,
}

impl<'a> AddressForm<'a> {
    fn refused(value: &'a str, error: String) -> Self {
        Self {
            value,
            error: Some(error),
            status: None,
        }
    }

    fn status(status: String) -> Self {
        Self {
            status: Some(status),
            ..Self::default()
        }
    }

    /// The form of a reader who may have a change waiting for its link.
    async fn of(state: &AppState, reader: &Preferences, lang: Language) -> Result<Self, PageError> {
        let open = address_changes::open_request(&state.db, reader.id, Utc::now())
            .await
            .map_err(|e| PageError::unexpected(e).private())?;
        Ok(match open {
            Some((new_email, until)) => Self::status(lang.text_with(
                "preferences-address-pending",
                &[
                    ("email", Arg::Text(&new_email)),
                    ("date", Arg::Text(&lang.long_date(until.date_naive()))),
                ],
            )),
            None => Self::default(),
        })
    }
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
    let address = AddressForm::of(&state, &reader, lang).await?;
    Ok(pages::private(page(
        chrome,
        &token,
        &reader,
        false,
        address,
        StatusCode::OK,
    )))
}

pub async fn change_preferences(
    req: HttpRequest,
    PageLanguage(lang): PageLanguage,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let fields = form::read(&req, body, state.max_body_bytes).await?;
    let token = UnsubscribeToken::parse(fields.get("token")).ok_or_else(bad_link)?;
    if fields.get("action") == "address" {
        return change_address(&req, lang, &state, &token, fields.get("email")).await;
    }
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
    let address = AddressForm::of(&state, &reader, lang).await?;
    Ok(pages::private(page(
        chrome,
        &token,
        &reader,
        true,
        address,
        StatusCode::OK,
    )))
}

/// The address form's POST: records the request and queues the link to
/// the new address, then shows the page again saying where things stand.
/// The answer is the same whether or not another reader has the address
/// (the confirmation refuses it); the reader's own address is theirs to
/// be told about.
async fn change_address(
    req: &HttpRequest,
    lang: Language,
    state: &AppState,
    token: &UnsubscribeToken,
    raw: &str,
) -> Result<HttpResponse, PageError> {
    let find = || async {
        preferences::find(&state.db, token)
            .await
            .map_err(|e| PageError::unexpected(e).private())?
            .ok_or_else(unknown_link)
    };
    let reader = find().await?;
    let chrome = Chrome::of(&state.site, lang, req);
    let answer =
        |reader: &Preferences, address, status| Ok(pages::private(page(chrome, token, reader, false, address, status)));
    if reader.is_unsubscribed() {
        return answer(&reader, AddressForm::default(), StatusCode::OK);
    }
    let new_email = match SubscriberEmail::parse(raw, state.address_policy) {
        Ok(email) => email,
        Err(e) => {
            let refused = AddressForm::refused(raw, email_error(lang, &e));
            return answer(&reader, refused, StatusCode::BAD_REQUEST);
        }
    };
    let request = ChangeRequest {
        new_email,
        ip: ClientAddr::of(req).map(|client| client.to_string()),
        token: Token::generate(),
    };
    let requested = address_changes::request(&state.db, token, &request, state.address_changes, Utc::now())
        .await
        .map_err(|e| PageError::unexpected(e).private())?
        .ok_or_else(unknown_link)?;
    let new_email = request.new_email.as_str();
    match requested {
        Requested::Queued => {
            state.mail_wakeup.notify_one();
            tracing::info!("subscriber asked to change their address");
            let sent = lang.text_with(
                "preferences-address-sent",
                &[("email", Arg::Text(new_email)), ("current", Arg::Text(&reader.email))],
            );
            answer(&reader, AddressForm::status(sent), StatusCode::OK)
        }
        Requested::SameAddress => {
            let same = lang.text1("preferences-address-same", "email", new_email);
            answer(&reader, AddressForm::refused(raw, same), StatusCode::BAD_REQUEST)
        }
        Requested::DailyCapReached => {
            let cap = lang.text1("preferences-address-too-many", "count", state.address_changes.per_day);
            answer(&reader, AddressForm::refused(raw, cap), StatusCode::TOO_MANY_REQUESTS)
        }
        // The reader left since the page read them: it says so.
        Requested::ReaderLeft => answer(&find().await?, AddressForm::default(), StatusCode::OK),
    }
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

fn page(
    chrome: Chrome<'_>,
    token: &UnsubscribeToken,
    reader: &Preferences,
    saved: bool,
    address: AddressForm<'_>,
    status: StatusCode,
) -> HttpResponse {
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
        status,
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
            address,
        },
    )
}

fn invalid(why: &'static str) -> PageError {
    PageError::public(StatusCode::BAD_REQUEST, "error-preferences-invalid-title", why)
}
