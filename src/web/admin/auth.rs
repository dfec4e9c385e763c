//! Logging in and out, and changing one's own password.

use std::net::{IpAddr, Ipv6Addr};

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::Utc;

use super::AdminState;
use super::chrome::{Chrome, Section, html};
use super::field_errors::FieldErrors;
use super::session::{self, Staff, StaffForm};
use crate::db::staff as staff_db;
use crate::domain::{AddressPolicy, StaffPassword, SubscriberEmail};
use crate::links::paths;
use crate::staff::Busy;
use crate::web::ClientAddr;
use crate::web::error::PageError;

#[derive(Template)]
#[template(path = "web/admin/login.html")]
struct LoginPage<'a> {
    c: Chrome,
    email: &'a str,
    error: Option<&'a str>,
}

pub async fn login_form(session: Session, state: web::Data<AdminState>) -> HttpResponse {
    if session::claims_login(&session) {
        return session::see_other(paths::ADMIN);
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

/// Where logins are logged, whatever module handles them: fail2ban's
/// filter names it.
const LOGIN_TARGET: &str = "gazette::login";

/// The one answer for an unknown address and a wrong password.
const WRONG: &str = "That email address and password do not match a staff account.";

/// The client a login comes from, as the login limits see it.
fn client_of(req: &HttpRequest) -> IpAddr {
    ClientAddr::of(req).map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |client| client.rate_limit_key())
}

pub async fn login(
    req: HttpRequest,
    form: Result<StaffForm, PageError>,
    session: Session,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let site = state.site.as_str();
    let client = client_of(&req);
    // The limit comes first: a client past it learns nothing of its form.
    if let Err(wait) = state.login_ip_limit.check(&client) {
        return Err(too_many(wait));
    }
    let fields = form?;
    let raw_email = fields.get("email").trim();
    let email = SubscriberEmail::parse(raw_email, AddressPolicy::LOOKUP).ok();
    // Text that is no address names no account; it is limited as typed,
    // cut to an address's length so the limits' memory stays small.
    let account = email
        .as_ref()
        .map(staff_db::account_key)
        .unwrap_or_else(|| raw_email.chars().take(254).collect::<String>().to_lowercase());
    if let Err(wait) = state.login_throttle.check(&account, client) {
        return Err(too_many(wait));
    }
    let password = fields.get("password").to_owned();
    let user = match &email {
        Some(email) => staff_db::find_by_email(&state.db, email).await?,
        None => None,
    };
    // An unknown address is checked against a dummy hash, so it costs the
    // same time as a wrong password and the answer gives nothing away.
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| state.dummy_hash.clone());
    let Ok(matches) = state.password_checks.verify(password, hash).await else {
        return Err(too_many(BUSY_WAIT));
    };
    match user {
        Some(user) if matches => {
            session::log_in(&session, &user, &state).await?;
            state.login_throttle.succeeded(&account, client);
            tracing::info!(
                target: LOGIN_TARGET,
                client = ClientAddr::of(&req).map(tracing::field::display),
                account = account.as_str(),
                "staff login succeeded"
            );
            Ok(session::see_other(paths::ADMIN))
        }
        _ => {
            state.login_throttle.failed(&account, client);
            // The form fail2ban's filter (deploy/fail2ban) reads: the
            // address first, then the account as outside text, which the
            // formatter quotes and escapes (a `"` or a newline in it cannot
            // end the field and start a line naming another address).
            tracing::warn!(
                target: LOGIN_TARGET,
                client = ClientAddr::of(&req).map(tracing::field::display),
                account = account.as_str(),
                "staff login failed"
            );
            let c = Chrome::new(site, &session, None);
            Ok(html(
                StatusCode::UNAUTHORIZED,
                &LoginPage {
                    c,
                    email: raw_email,
                    error: Some(WRONG),
                },
            ))
        }
    }
}

/// What a login refused because too many password checks were running
/// is told to wait.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

fn too_many(wait: std::time::Duration) -> PageError {
    let seconds = wait.as_secs().max(1);
    PageError::staff(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many login attempts",
        format!("There were too many login attempts in a short time. Please wait {seconds} seconds and try again."),
    )
    .retry_after(seconds)
}

pub async fn logout(_: StaffForm, session: Session, state: web::Data<AdminState>) -> Result<HttpResponse, PageError> {
    session::log_out(&session, &state).await?;
    Ok(session::to_login())
}

#[derive(Template)]
#[template(path = "web/admin/account.html")]
struct AccountPage {
    c: Chrome,
    errors: FieldErrors,
    min_chars: usize,
}

pub async fn account(session: Session, staff: web::ReqData<Staff>, state: web::Data<AdminState>) -> HttpResponse {
    let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Account);
    html(
        StatusCode::OK,
        &AccountPage {
            c,
            errors: FieldErrors::default(),
            min_chars: crate::domain::MIN_PASSWORD_CHARS,
        },
    )
}

pub async fn change_password(
    fields: StaffForm,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let site = state.site.as_str();
    let refuse = |errors: FieldErrors| {
        let c = Chrome::new(site, &session, Some(&staff)).in_section(Section::Account);
        Ok(html(
            StatusCode::BAD_REQUEST,
            &AccountPage {
                c,
                errors,
                min_chars: crate::domain::MIN_PASSWORD_CHARS,
            },
        ))
    };
    let Some(user) = staff_db::find_by_id(&state.db, staff.id).await? else {
        return Ok(session::to_login());
    };
    match state
        .password_checks
        .verify(fields.get("current").to_owned(), user.password_hash)
        .await
    {
        Ok(true) => {}
        Ok(false) => return refuse(FieldErrors::one("current", "The current password is not right.")),
        Err(Busy) => return Err(too_many(BUSY_WAIT)),
    }
    let new = match StaffPassword::parse(fields.get("new")) {
        Ok(new) => new,
        Err(why) => {
            return refuse(FieldErrors::one(
                "new",
                format!("The new password is not usable: {why}."),
            ));
        }
    };
    if fields.get("repeat") != new.expose() {
        return refuse(FieldErrors::one("repeat", "The two new passwords differ."));
    }
    let hash = match state.password_checks.hash(new).await {
        Err(Busy) => return Err(too_many(BUSY_WAIT)),
        Ok(hash) => hash.map_err(PageError::unexpected)?,
    };
    let Some(this_session) = session::current_key(&session) else {
        return Ok(session::to_login());
    };
    staff_db::set_password_by_id(&state.db, staff.id, &hash, Utc::now(), &this_session).await?;
    tracing::info!(staff = %staff.email, "staff password changed");
    session::flash(
        &session,
        "Your password is changed. Other sessions of your account have ended.",
    );
    Ok(session::see_other(paths::ADMIN_ACCOUNT))
}
