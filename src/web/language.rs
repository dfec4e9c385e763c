//! Which language a public page is in: the reader's own choice (the
//! language switch on every page: `?lang=ru`, then remembered in a
//! cookie), else what their browser asks for (`Accept-Language`), else
//! `site.default_language`.
//!
//! The switch links to the page itself with `lang` set, so a page behind a
//! secret link keeps its link (and its `token` stays out of the access log,
//! which hides that parameter), and no redirect target has to be trusted.

use std::future::{Ready, ready};

use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{ACCEPT_LANGUAGE, HeaderValue, VARY};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, web};

use crate::i18n::Language;
use crate::web::AppState;

/// The cookie the switch leaves: the tag, nothing else.
pub const COOKIE: &str = "lang";
/// The query parameter the switch's links carry.
pub const PARAMETER: &str = "lang";

/// The language `req` asks for: `?lang=`, the cookie, `Accept-Language`,
/// then the site's default. Values that name no catalogue are passed over.
pub fn of_request(req: &HttpRequest) -> Language {
    chosen(req.query_string())
        .or_else(|| req.cookie(COOKIE).and_then(|c| Language::parse(c.value())))
        .or_else(|| {
            req.headers()
                .get(ACCEPT_LANGUAGE)
                .and_then(|h| h.to_str().ok())
                .and_then(Language::from_accept_language)
        })
        .unwrap_or_else(|| {
            req.app_data::<web::Data<AppState>>()
                .map_or(Language::ENGLISH, |state| state.default_language)
        })
}

/// The language a query string's `lang` names, if any.
fn chosen(query: &str) -> Option<Language> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == PARAMETER)
        .and_then(|(_, value)| Language::parse(&value))
}

/// A handler's argument: the page's language.
#[derive(Debug, Clone, Copy)]
pub struct PageLanguage(pub Language);

impl FromRequest for PageLanguage {
    type Error = std::convert::Infallible;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(PageLanguage(of_request(req))))
    }
}

/// Remembers a reader's choice from the switch (`?lang=` naming a
/// language) in a cookie for a year, and marks every answer as varying
/// with the headers the language comes from, so no cache hands one
/// reader's language to another.
pub async fn remember_choice(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let choice = chosen(req.query_string());
    let mut response = next.call(req).await?;
    if let Some(language) = choice {
        let cookie = Cookie::build(COOKIE, language.tag())
            .path("/")
            .max_age(actix_web::cookie::time::Duration::days(365))
            .same_site(SameSite::Lax)
            .http_only(true)
            .finish();
        if let Err(e) = response.response_mut().add_cookie(&cookie) {
            tracing::warn!(error = %e, "cannot remember the reader's language");
        }
    }
    response
        .headers_mut()
        .append(VARY, HeaderValue::from_static("Accept-Language, Cookie"));
    Ok(response)
}

/// `path?query` with `lang` set to `language` (any earlier `lang` dropped):
/// the switch's link to this page in another language.
pub fn switch_href(path: &str, query: &str, language: Language) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if name != PARAMETER {
            out.append_pair(&name, &value);
        }
    }
    out.append_pair(PARAMETER, language.tag());
    format!("{path}?{}", out.finish())
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn russian() -> Language {
        Language::parse("ru").unwrap()
    }

    #[test]
    fn the_switch_beats_the_cookie_which_beats_the_browser() {
        let req = TestRequest::get()
            .uri("/?lang=ru")
            .cookie(Cookie::new(COOKIE, "en"))
            .insert_header((ACCEPT_LANGUAGE, "en"))
            .to_http_request();
        assert_eq!(of_request(&req), russian());
        let req = TestRequest::get()
            .cookie(Cookie::new(COOKIE, "ru"))
            .insert_header((ACCEPT_LANGUAGE, "en"))
            .to_http_request();
        assert_eq!(of_request(&req), russian());
        let req = TestRequest::get()
            .insert_header((ACCEPT_LANGUAGE, "ru-RU,ru;q=0.9,en;q=0.8"))
            .to_http_request();
        assert_eq!(of_request(&req), russian());
    }

    #[test]
    fn unknown_values_fall_through_to_the_default() {
        let req = TestRequest::get()
            .uri("/?lang=xx")
            .cookie(Cookie::new(COOKIE, "<script>"))
            .insert_header((ACCEPT_LANGUAGE, "de-DE"))
            .to_http_request();
        assert_eq!(of_request(&req), Language::ENGLISH);
    }

    #[test]
    fn the_switch_keeps_the_rest_of_the_query() {
        assert_eq!(
            switch_href("/subscriptions/confirm", "token=a%2Bb&lang=en", russian()),
            "/subscriptions/confirm?token=a%2Bb&lang=ru"
        );
        assert_eq!(switch_href("/", "", russian()), "/?lang=ru");
    }
}
