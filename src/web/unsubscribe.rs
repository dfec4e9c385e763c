//! Leaving the list: `GET /unsubscribe?token=…` shows a button and changes
//! nothing (mail scanners open links); `POST /unsubscribe` unsubscribes,
//! from the page's form (`token` in the body) or as an RFC 8058 one-click
//! POST to the List-Unsubscribe URL (`token` in the query, the body
//! `List-Unsubscribe=One-Click`, urlencoded or multipart, no cookies).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;

use crate::db::subscribers::{self, LinkedReader};
use crate::domain::UnsubscribeToken;
use crate::web::AppState;
use crate::web::error::PageError;
use crate::web::form;
use crate::web::pages::{self, MessagePage, UnsubscribePage, UnsubscribedPage};

pub async fn unsubscribe_page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let site = state.site.as_str();
    if req.query_string().is_empty() {
        // The footer of the archive's web version links here: no one's token.
        return Ok(pages::html(
            StatusCode::OK,
            &MessagePage {
                site,
                title: "Unsubscribe",
                message: "To unsubscribe, use the link at the bottom of any issue in your inbox: it is yours alone, \
                          and one click on it is enough.",
                offer_signup: false,
            },
        ));
    }
    let token = query_token(&req).ok_or_else(bad_link)?;
    let page = match subscribers::find_by_unsubscribe_token(&state.db, &token)
        .await
        .map_err(|e| PageError::unexpected(e).private())?
    {
        Some(reader) if reader.is_unsubscribed() => unsubscribed(site, &reader),
        Some(reader) => {
            let token = token.as_string();
            pages::html(
                StatusCode::OK,
                &UnsubscribePage {
                    site,
                    token: &token,
                    email: &reader.email,
                },
            )
        }
        None => return Err(unknown_link()),
    };
    Ok(pages::private(page))
}

pub async fn unsubscribe(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let site = state.site.as_str();
    // One-click POSTs carry the token in the URL and say nothing else we
    // need; the page's form carries it in the body.
    let token = match query_token(&req) {
        Some(token) => {
            form::read_body(&req, body, state.max_body_bytes).await?;
            Some(token)
        }
        None => UnsubscribeToken::parse(form::read(&req, body, state.max_body_bytes).await?.get("token")),
    };
    let token = token.ok_or_else(bad_link)?;
    match subscribers::unsubscribe(&state.db, &token, Utc::now())
        .await
        .map_err(|e| PageError::unexpected(e).private())?
    {
        Some(reader) => {
            tracing::info!("subscriber unsubscribed");
            super::observe::count(&req, |m| m.unsubscribe());
            Ok(pages::private(unsubscribed(site, &reader)))
        }
        None => Err(unknown_link()),
    }
}

fn query_token(req: &HttpRequest) -> Option<UnsubscribeToken> {
    let fields = form::parse(req.query_string().as_bytes()).ok()?;
    UnsubscribeToken::parse(fields.get("token"))
}

fn unsubscribed(site: &str, reader: &LinkedReader) -> HttpResponse {
    pages::html(
        StatusCode::OK,
        &UnsubscribedPage {
            site,
            name: &reader.name,
            email: &reader.email,
        },
    )
}

fn bad_link() -> PageError {
    PageError::public(
        StatusCode::BAD_REQUEST,
        "This link is incomplete",
        "The unsubscribe link is missing part of its code; some mail programs cut long links. \
         Copy the whole link from the email, or use the unsubscribe link in any other issue.",
    )
    .private()
}

fn unknown_link() -> PageError {
    PageError::public(
        StatusCode::NOT_FOUND,
        "We don't recognise this link",
        "This unsubscribe link does not belong to any reader: it may have been mistyped, \
         or the address was erased from our list.",
    )
    .private()
}
