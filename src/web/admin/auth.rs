//! Logging in and out, and changing one's own password.

use std::net::{IpAddr, Ipv6Addr};

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::RETRY_AFTER;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::Utc;

use super::AdminState;
use super::pages::{self, Chrome, html};
use super::session::{self, Staff};
use crate::db::staff as staff_db;
use crate::domain::{AddressPolicy, StaffPassword, SubscriberEmail};
use crate::staff::Busy;
use crate::web::ClientAddr;

#[derive(Template)]
#[template(path = "web/admin/login.html")]
struct LoginPage<'a> {
    c: Chrome,
    email: &'a str,
    error: Option<&'a str>,
}

pub async fn login_form(session: Session, state: web::Data<AdminState>) -> HttpResponse {
    if session::claims_login(&session) {
        return session::see_other("/admin");
    }
    let c = Chrome::new(&state.site, &session, None);
    html(
        StatusCode::OK,
        &LoginPage {
            c,
            email: "",
            error: None,
        },
    )
}

/// The one answer for an unknown address and a wrong password.
const WRONG: &str = "That email address and password do not match a staff account.";

/// The client a login comes from, as the login limits see it.
fn client_of(req: &HttpRequest) -> IpAddr {
    ClientAddr::of(req).map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |client| client.rate_limit_key())
}

pub async fn login(
    req: HttpRequest,
    body: web::Payload,
    session: Session,
    state: web::Data<AdminState>,
) -> HttpResponse {
    let site = state.site.as_str();
    let client = client_of(&req);
    if let Err(wait) = state.login_ip_limit.check(&client) {
        return too_many(site, wait);
    }
    let fields = match session::read_form(&req, body, &session, 4096, site).await {
        Ok(fields) => fields,
        Err(page) => return page,
    };
    let raw_email = fields.get("email").trim();
    let email = SubscriberEmail::parse(raw_email, AddressPolicy::LOOKUP).ok();
    // Text that is no address names no account; it is limited as typed,
    // cut to an address's length so the limits' memory stays small.
    let account = email
        .as_ref()
        .map(staff_db::account_key)
        .unwrap_or_else(|| raw_email.chars().take(254).collect::<String>().to_lowercase());
    if let Err(wait) = state.login_throttle.check(&account, client) {
        return too_many(site, wait);
    }
    let password = fields.get("password").to_owned();
    let user = match &email {
        Some(email) => match staff_db::find_by_email(&state.db, email).await {
            Ok(user) => user,
            Err(e) => return pages::db_error(site, "look up a staff user", e),
        },
        None => None,
    };
    // An unknown address is checked against a dummy hash, so it costs the
    // same time as a wrong password and the answer gives nothing away.
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| state.dummy_hash.clone());
    let Ok(matches) = state.password_checks.verify(password, hash).await else {
        return too_many(site, BUSY_WAIT);
    };
    match user {
        Some(user) if matches => {
            if let Err(e) = session::log_in(&session, &user, &state).await {
                return pages::db_error(site, "start a staff session", e);
            }
            state.login_throttle.succeeded(&account, client);
            tracing::info!(staff = %user.email, "staff login");
            session::see_other("/admin")
        }
        _ => {
            state.login_throttle.failed(&account, client);
            tracing::info!("staff login refused");
            let c = Chrome::new(site, &session, None);
            html(
                StatusCode::UNAUTHORIZED,
                &LoginPage {
                    c,
                    email: raw_email,
                    error: Some(WRONG),
                },
            )
        }
    }
}

/// What a login refused because too many password checks were running
/// is told to wait.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

fn too_many(site: &str, wait: std::time::Duration) -> HttpResponse {
    let seconds = wait.as_secs().max(1);
    let mut page = pages::message(
        site,
        StatusCode::TOO_MANY_REQUESTS,
        "Too many login attempts",
        &format!("There were too many login attempts in a short time. Please wait {seconds} seconds and try again."),
    );
    page.headers_mut().insert(RETRY_AFTER, seconds.into());
    page
}

pub async fn logout(
    req: HttpRequest,
    body: web::Payload,
    session: Session,
    state: web::Data<AdminState>,
) -> HttpResponse {
    if let Err(page) = session::read_form(&req, body, &session, 4096, &state.site).await {
        return page;
    }
    if let Err(e) = session::log_out(&session, &state).await {
        return pages::db_error(&state.site, "end a staff session", e);
    }
    session::to_login()
}

#[derive(Template)]
#[template(path = "web/admin/account.html")]
struct AccountPage {
    c: Chrome,
    errors: Vec<String>,
    min_chars: usize,
}

pub async fn account(session: Session, staff: web::ReqData<Staff>, state: web::Data<AdminState>) -> HttpResponse {
    let c = Chrome::new(&state.site, &session, Some(&staff));
    html(
        StatusCode::OK,
        &AccountPage {
            c,
            errors: vec![],
            min_chars: crate::domain::MIN_PASSWORD_CHARS,
        },
    )
}

pub async fn change_password(
    req: HttpRequest,
    body: web::Payload,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> HttpResponse {
    let site = state.site.as_str();
    let fields = match session::read_form(&req, body, &session, 4096, site).await {
        Ok(fields) => fields,
        Err(page) => return page,
    };
    let refuse = |errors: Vec<String>| {
        let c = Chrome::new(site, &session, Some(&staff));
        html(
            StatusCode::BAD_REQUEST,
            &AccountPage {
                c,
                errors,
                min_chars: crate::domain::MIN_PASSWORD_CHARS,
            },
        )
    };
    let user = match staff_db::find_by_id(&state.db, staff.id).await {
        Ok(Some(user)) => user,
        Ok(None) => return session::to_login(),
        Err(e) => return pages::db_error(site, "read a staff user", e),
    };
    match state
        .password_checks
        .verify(fields.get("current").to_owned(), user.password_hash)
        .await
    {
        Ok(true) => {}
        Ok(false) => return refuse(vec!["The current password is not right.".into()]),
        Err(Busy) => return too_many(site, BUSY_WAIT),
    }
    let new = match StaffPassword::parse(fields.get("new")) {
        Ok(new) => new,
        Err(why) => return refuse(vec![format!("The new password is not usable: {why}.")]),
    };
    if fields.get("repeat") != new.expose() {
        return refuse(vec!["The two new passwords differ.".into()]);
    }
    let hash = match state.password_checks.hash(new).await {
        Err(Busy) => return too_many(site, BUSY_WAIT),
        Ok(Ok(hash)) => hash,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot hash a password");
            return pages::server_error(site);
        }
    };
    let Some(this_session) = session::current_key(&session) else {
        return session::to_login();
    };
    if let Err(e) = staff_db::set_password_by_id(&state.db, staff.id, &hash, Utc::now(), &this_session).await {
        return pages::db_error(site, "store a password", e);
    }
    tracing::info!(staff = %staff.email, "staff password changed");
    session::flash(
        &session,
        "Your password is changed. Other sessions of your account have ended.",
    );
    session::see_other("/admin/account")
}
