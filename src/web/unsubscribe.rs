//! Leaving the list: `GET /unsubscribe?token=…` shows a button and changes
//! nothing (mail scanners open links); `POST /unsubscribe` unsubscribes,
//! from the page's form (`token` in the body) or as an RFC 8058 one-click
//! POST to the List-Unsubscribe URL (`token` in the query, the body
//! `List-Unsubscribe=One-Click`, urlencoded or multipart, no cookies).
//! A digest's links also name their issue (`issue=2026-W48`), which the
//! reader's history keeps with their leaving; a value that is no week is
//! ignored, never refused: the link must still work.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;

use crate::db::subscribers::{self, LeftBy, LinkedReader};
use crate::domain::{IssueWeek, UnsubscribeToken};
use crate::web::AppState;
use crate::web::error::PageError;
use crate::web::form;
use crate::web::language::PageLanguage;
use crate::web::pages::{self, Chrome, MessagePage, UnsubscribePage, UnsubscribedPage};

pub async fn unsubscribe_page(
    req: HttpRequest,
    PageLanguage(lang): PageLanguage,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let chrome = Chrome::of(&state.site, lang, &req);
    let has_token = url::form_urlencoded::parse(req.query_string().as_bytes()).any(|(name, _)| name == "token");
    if !has_token {
        // The footer of the archive's web version links here: no one's token.
        return Ok(pages::html(
            StatusCode::OK,
            &MessagePage {
                title: &lang.text("unsubscribe-title"),
                message: &lang.text("unsubscribe-without-token"),
                chrome,
                offer_signup: false,
            },
        ));
    }
    let token = query_token(&req).ok_or_else(bad_link)?;
    let page = match subscribers::find_by_unsubscribe_token(&state.db, &token)
        .await
        .map_err(|e| PageError::unexpected(e).private())?
    {
        Some(reader) if reader.is_unsubscribed() => unsubscribed(chrome, &reader),
        Some(reader) => {
            let token = token.as_string();
            pages::html(
                StatusCode::OK,
                &UnsubscribePage {
                    chrome,
                    token: &token,
                    email: &reader.email,
                    issue: query_issue(&req),
                },
            )
        }
        None => return Err(unknown_link()),
    };
    Ok(pages::private(page))
}

pub async fn unsubscribe(
    req: HttpRequest,
    PageLanguage(lang): PageLanguage,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    // One-click POSTs carry the token in the URL and say nothing else we
    // need; the page's form carries it in the body.
    let (token, by, issue) = match query_token(&req) {
        Some(token) => {
            form::read_body(&req, body, state.max_body_bytes).await?;
            (Some(token), LeftBy::OneClick, query_issue(&req))
        }
        None => {
            let fields = form::read(&req, body, state.max_body_bytes).await?;
            let issue = IssueWeek::parse(fields.get("issue"));
            (UnsubscribeToken::parse(fields.get("token")), LeftBy::Page, issue)
        }
    };
    let token = token.ok_or_else(bad_link)?;
    match subscribers::unsubscribe(&state.db, &token, by, issue, Utc::now())
        .await
        .map_err(|e| PageError::unexpected(e).private())?
    {
        Some(reader) => {
            tracing::info!("subscriber unsubscribed");
            super::observe::count(&req, |m| m.unsubscribe());
            Ok(pages::private(unsubscribed(
                Chrome::of(&state.site, lang, &req),
                &reader,
            )))
        }
        None => Err(unknown_link()),
    }
}

fn query_issue(req: &HttpRequest) -> Option<IssueWeek> {
    let fields = form::parse(req.query_string().as_bytes()).ok()?;
    IssueWeek::parse(fields.get("issue"))
}

fn query_token(req: &HttpRequest) -> Option<UnsubscribeToken> {
    let fields = form::parse(req.query_string().as_bytes()).ok()?;
    UnsubscribeToken::parse(fields.get("token"))
}

fn unsubscribed(chrome: Chrome<'_>, reader: &LinkedReader) -> HttpResponse {
    pages::html(
        StatusCode::OK,
        &UnsubscribedPage {
            chrome,
            name: &reader.name,
            email: &reader.email,
        },
    )
}

pub(super) fn bad_link() -> PageError {
    PageError::public(
        StatusCode::BAD_REQUEST,
        "error-link-incomplete-title",
        "error-unsubscribe-link-incomplete",
    )
    .private()
}

pub(super) fn unknown_link() -> PageError {
    PageError::public(
        StatusCode::NOT_FOUND,
        "error-link-unknown-title",
        "error-unsubscribe-link-unknown",
    )
    .private()
}
