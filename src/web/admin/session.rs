//! Staff sessions: a row per session on the server (`staff_sessions`), the
//! signed and encrypted cookie that names it, the guard in front of every
//! admin route, idle and absolute expiry, and CSRF tokens.

use std::ops::Deref;

use actix_session::config::{BrowserSession, CookieContentSecurity};
use actix_session::storage::CookieSessionStore;
use actix_session::{Session, SessionExt, SessionMiddleware};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, web};
use chrono::Utc;
use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use rand::RngCore;
use uuid::Uuid;

use super::AdminState;
use crate::config::Settings;
use crate::db::staff as staff_db;
use crate::links::paths;
use crate::web::AppState;
use crate::web::error::PageError;
use crate::web::form::{self, Fields};

pub const COOKIE_NAME: &str = "gazette_admin";
/// The secret naming this session's row in `staff_sessions`.
const SESSION_SECRET: &str = "sid";
const LAST_SEEN: &str = "seen";
const CSRF: &str = "csrf";
const FLASH: &str = "flash";

/// The content security policy of admin pages: the site's, plus its own
/// script (live progress) and its own frames (the preview).
pub const ADMIN_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; \
                             connect-src 'self'; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                             base-uri 'none'";

/// The cookie: encrypted and signed (private), HttpOnly, SameSite=Lax,
/// Secure when the site is served over https, for `/admin` only, and gone
/// when the browser closes. Idle expiry is checked by [`guard`], on the
/// server side, because a cookie's own expiry is up to the browser.
pub fn middleware(key: &[u8], settings: &Settings) -> SessionMiddleware<CookieSessionStore> {
    SessionMiddleware::builder(CookieSessionStore::default(), Key::from(key))
        .cookie_name(COOKIE_NAME.into())
        .cookie_path(paths::ADMIN.into())
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_secure(settings.server.base_url.is_https())
        .cookie_content_security(CookieContentSecurity::Private)
        .session_lifecycle(BrowserSession::default())
        .build()
}

/// The staff member a request is made by, set by [`guard`].
#[derive(Debug, Clone)]
pub struct Staff {
    pub id: Uuid,
    pub email: String,
}

/// Stands in front of every admin route: refuses cross-site form posts,
/// sends requests without a live session to the login page, and gives
/// admin pages their security headers.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<AdminState>>()
        .cloned()
        .expect("AdminState is registered with the admin scope");
    if !matches!(*req.method(), Method::GET | Method::HEAD) && !same_origin(req.request()) {
        let refusal = PageError::staff(
            StatusCode::FORBIDDEN,
            "This form came from another site",
            "The staff area only accepts forms sent from its own pages. Open the page again and resubmit.",
        );
        return Ok(finish(req.error_response(refusal)));
    }
    let public = super::PUBLIC_PATHS.contains(&req.path());
    if !public {
        match current_staff(&req.get_session(), &state).await {
            Ok(Some(staff)) => {
                req.extensions_mut().insert(staff);
            }
            Ok(None) => return Ok(finish(req.into_response(to_login()))),
            Err(e) => return Ok(finish(req.error_response(PageError::unexpected(e)))),
        }
    }
    let response = next.call(req).await?.map_into_boxed_body();
    Ok(finish(response))
}

fn finish(mut response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(ADMIN_CSP));
    }
    // Staff pages show readers' personal data: never keep them in a cache.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub fn to_login() -> HttpResponse {
    see_other(paths::ADMIN_LOGIN)
}

/// Sends the browser on to `location`, one of [`paths`].
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// The staff member of a live session, after touching its idle clock;
/// `None` (and the cookie cleared) when there is none, it sat idle too
/// long, or its row is gone: logged out, ended by a password change, past
/// its absolute lifetime, or the account deleted.
async fn current_staff(session: &Session, state: &AdminState) -> Result<Option<Staff>, sqlx::Error> {
    let secret = session.get::<String>(SESSION_SECRET).ok().flatten();
    let seen = session.get::<i64>(LAST_SEEN).ok().flatten();
    let (Some(secret), Some(seen)) = (secret, seen) else {
        return Ok(None);
    };
    let now = Utc::now();
    let idle_limit = i64::from(state.settings.server.session_idle_minutes) * 60;
    if sat_idle_too_long(seen, now.timestamp(), idle_limit) {
        session.purge();
        return Ok(None);
    }
    let Some(user) = staff_db::session_user(&state.db, &row_key(&secret), now).await? else {
        session.purge();
        return Ok(None);
    };
    let _ = session.insert(LAST_SEEN, now.timestamp());
    Ok(Some(Staff {
        id: user.id,
        email: user.email,
    }))
}

/// The database's key for a session secret: its SHA-256.
fn row_key(secret: &str) -> staff_db::SessionKey {
    use sha2::Digest;
    staff_db::SessionKey(sha2::Sha256::digest(secret.as_bytes()).into())
}

/// This cookie's session row, if it names one.
pub fn current_key(session: &Session) -> Option<staff_db::SessionKey> {
    session
        .get::<String>(SESSION_SECRET)
        .ok()
        .flatten()
        .map(|secret| row_key(&secret))
}

/// Whether a session last seen at `seen` has ended by `now` (seconds).
fn sat_idle_too_long(seen: i64, now: i64, idle_limit: i64) -> bool {
    now.saturating_sub(seen) > idle_limit
}

/// Starts a fresh session for a staff member who just logged in: a row
/// on the server that ends after `server.session_max_hours`, a new cookie
/// naming it (renewed, so nothing from before the login carries over) and
/// a new CSRF token.
pub async fn log_in(session: &Session, user: &staff_db::StaffUser, state: &AdminState) -> Result<(), sqlx::Error> {
    let secret = new_token();
    let now = Utc::now();
    let lifetime = chrono::Duration::hours(i64::from(state.settings.server.session_max_hours));
    staff_db::start_session(&state.db, &row_key(&secret), user.id, now, now + lifetime).await?;
    session.renew();
    session.clear();
    let _ = session.insert(SESSION_SECRET, secret);
    let _ = session.insert(LAST_SEEN, now.timestamp());
    let _ = session.insert(CSRF, new_token());
    Ok(())
}

/// Ends this session on the server and clears its cookie, so a copy of the
/// cookie made before opens nothing.
pub async fn log_out(session: &Session, state: &AdminState) -> Result<(), sqlx::Error> {
    if let Some(key) = current_key(session) {
        staff_db::end_session(&state.db, &key).await?;
    }
    session.purge();
    Ok(())
}

/// Whether the cookie claims a login (the guard checks it on the server).
pub fn claims_login(session: &Session) -> bool {
    session.get::<String>(SESSION_SECRET).ok().flatten().is_some()
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    crate::domain::lower_hex(&bytes)
}

/// This session's CSRF token, created on first use.
pub fn csrf_token(session: &Session) -> String {
    match session.get::<String>(CSRF).ok().flatten() {
        Some(token) => token,
        None => {
            let token = new_token();
            let _ = session.insert(CSRF, &token);
            token
        }
    }
}

/// A message for the next page this session opens.
pub fn flash(session: &Session, message: impl Into<String>) {
    let _ = session.insert(FLASH, message.into());
}

pub fn take_flash(session: &Session) -> Option<String> {
    session.remove_as::<String>(FLASH).and_then(Result::ok)
}

/// Whether a form post comes from our own pages: `Origin` (when the
/// browser sends one) must be this site, and `Sec-Fetch-Site` (likewise)
/// must say so. Clients that send neither header still need the token.
fn same_origin(req: &HttpRequest) -> bool {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site")
        && !matches!(site.to_str(), Ok("same-origin" | "none"))
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let app = req
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered with the app");
    if origin == origin_of(app.links.home()) {
        return true;
    }
    // Reached directly by another name (an address on the intranet): the
    // Host this connection asked for. Not `connection_info()`, which would
    // believe X-Forwarded-Host from any peer; behind a proxy the browser's
    // origin is the public one, `server.base_url`.
    let scheme = if req.app_config().secure() { "https" } else { "http" };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    host.is_some_and(|host| origin == format!("{scheme}://{host}"))
}

/// `https://example.org` of `https://example.org/some/path`.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// A state-changing staff form of at most `LIMIT` bytes, read strictly
/// (see [`form::read`]), whose CSRF token matches the session's; a handler
/// that takes one runs only for such a form. A missing or wrong token is
/// refused with a 403 and nothing changed.
pub struct StaffForm<const LIMIT: usize = 4096>(Fields);

impl<const LIMIT: usize> Deref for StaffForm<LIMIT> {
    type Target = Fields;

    fn deref(&self) -> &Fields {
        &self.0
    }
}

impl<const LIMIT: usize> FromRequest for StaffForm<LIMIT> {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let (req, payload) = (req.clone(), payload.take());
        async move {
            let fields = form::read(&req, payload, LIMIT).await?;
            let expected = req.get_session().get::<String>(CSRF).ok().flatten();
            let given = fields.get("csrf");
            if !expected.is_some_and(|expected| constant_time_eq(expected.as_bytes(), given.as_bytes())) {
                return Err(PageError::staff(
                    StatusCode::FORBIDDEN,
                    "This form has expired",
                    "The form was missing its security token, or it came from an older session. \
                     Nothing was changed. Go back, reload the page and try again.",
                ));
            }
            Ok(StaffForm(fields))
        }
        .boxed_local()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_once_it_sat_idle_past_the_limit() {
        assert!(!sat_idle_too_long(1_000, 1_000 + 3600, 3600));
        assert!(sat_idle_too_long(1_000, 1_000 + 3601, 3600));
        assert!(
            !sat_idle_too_long(1_000, 900, 3600),
            "a clock that stepped back keeps the session"
        );
    }

    #[test]
    fn origins_drop_the_path() {
        assert_eq!(origin_of("https://news.example.org/x/y"), "https://news.example.org");
        assert_eq!(origin_of("http://127.0.0.1:8000"), "http://127.0.0.1:8000");
    }

    #[test]
    fn tokens_compare_by_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
