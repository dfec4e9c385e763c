//! Confirming a new address: the link mailed to it opens
//! `GET /preferences/address?token=…`, which shows the address and a button
//! and changes nothing (mail scanners open links); `POST
//! /preferences/address` (form body `token`) makes the change. The request
//! itself is a form of the preferences page (`super::preferences`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;

use crate::db::address_changes::{self, LinkState};
use crate::domain::Token;
use crate::web::error::PageError;
use crate::web::form::{self, Form};
use crate::web::language::PageLanguage;
use crate::web::pages::{self, AddressChangedPage, AddressConfirmPage, Chrome};
use crate::web::{AppState, ClientAddr};

pub async fn confirm_page(
    req: HttpRequest,
    PageLanguage(lang): PageLanguage,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let token = form::parse(req.query_string().as_bytes())
        .ok()
        .and_then(|fields| Token::parse(fields.get("token")))
        .ok_or_else(incomplete_link)?;
    let chrome = Chrome::of(&state.site, lang, &req);
    let page = match address_changes::link_state(&state.db, &token, Utc::now())
        .await
        .map_err(|e| PageError::unexpected(e).private())?
    {
        LinkState::Open { new_email } => pages::html(
            StatusCode::OK,
            &AddressConfirmPage {
                chrome,
                token: token.as_str(),
                new_email: &new_email,
            },
        ),
        LinkState::Used { new_email } | LinkState::Changed { new_email } => changed(chrome, &new_email),
        refused => return Err(link_problem(refused)),
    };
    Ok(pages::private(page))
}

pub async fn confirm(
    req: HttpRequest,
    PageLanguage(lang): PageLanguage,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let token = Token::parse(form.get("token")).ok_or_else(incomplete_link)?;
    let ip = ClientAddr::of(&req).map(|client| client.to_string());
    let page = match address_changes::confirm(&state.db, &token, ip.as_deref(), Utc::now())
        .await
        .map_err(|e| PageError::unexpected(e).private())?
    {
        LinkState::Changed { new_email } => {
            tracing::info!("subscriber changed their address");
            changed(Chrome::of(&state.site, lang, &req), &new_email)
        }
        // Confirming twice is harmless: the change stands.
        LinkState::Used { new_email } => changed(Chrome::of(&state.site, lang, &req), &new_email),
        refused => return Err(link_problem(refused)),
    };
    Ok(pages::private(page))
}

fn changed(chrome: Chrome<'_>, email: &str) -> HttpResponse {
    pages::html(StatusCode::OK, &AddressChangedPage { chrome, email })
}

fn incomplete_link() -> PageError {
    PageError::public(
        StatusCode::BAD_REQUEST,
        "error-link-incomplete-title",
        "error-address-link-incomplete",
    )
    .private()
}

/// The page for a link that changes nothing, and why.
fn link_problem(state: LinkState) -> PageError {
    let (status, title, message) = match state {
        LinkState::Expired => (
            StatusCode::GONE,
            "error-link-expired-title",
            "error-address-link-expired",
        ),
        LinkState::ReaderLeft => (
            StatusCode::GONE,
            "error-address-reader-left-title",
            "error-address-reader-left",
        ),
        // Only the owner of the new address gets the link: telling them
        // their own address has a subscription reveals nothing new.
        LinkState::Taken => (StatusCode::CONFLICT, "error-address-taken-title", "error-address-taken"),
        _ => (
            StatusCode::NOT_FOUND,
            "error-link-unknown-title",
            "error-address-link-unknown",
        ),
    };
    let page = PageError::public(status, title, message).private();
    match state {
        LinkState::ReaderLeft | LinkState::Taken => page.offer_signup(),
        _ => page,
    }
}
