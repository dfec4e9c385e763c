//! `GET /c/{week}/{position}`: a story link of an issue sent with
//! `tracking.clicks = "aggregate"`. It leads to the story, and adds one to
//! the link's count when a person followed it. The link is the same for
//! every reader and nothing about the request is kept, so a count says how
//! often a story was read from the issue, never by whom.
//!
//! Mail scanners and link previews fetch links before (or without) anyone
//! clicking; they are told apart by what browsers send on a navigation a
//! person started: `Sec-Fetch-User: ?1` (Fetch Metadata, sent by Chromium,
//! Firefox and Safari only for user-activated navigations), or, from a
//! browser too old for Fetch Metadata, a browser's own headers (a browser's
//! `User-Agent`, an `Accept` asking for HTML, an `Accept-Language`) and no
//! sign of a prefetch or of automation.

use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::db::link_clicks;
use crate::domain::IssueWeek;
use crate::web::AppState;
use crate::web::error::PageError;

/// Words in a `User-Agent` that only automation writes.
const AUTOMATION: &[&str] = &[
    "bot",
    "crawler",
    "spider",
    "scanner",
    "preview",
    "headless",
    "python",
    "curl",
    "wget",
    "go-http",
    "java/",
    "okhttp",
    "libwww",
    "http-client",
    "barracuda",
    "proofpoint",
    "mimecast",
    "safelinks",
];

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Whether a request for a counted link is a person's click.
pub fn is_a_persons_click(headers: &HeaderMap) -> bool {
    let agent = header(headers, "user-agent").to_ascii_lowercase();
    if agent.is_empty() || AUTOMATION.iter().any(|word| agent.contains(word)) {
        return false;
    }
    let prefetch = ["purpose", "sec-purpose", "x-purpose", "x-moz"]
        .iter()
        .any(|name| header(headers, name).to_ascii_lowercase().contains("prefetch"))
        || header(headers, "sec-purpose")
            .to_ascii_lowercase()
            .contains("prerender");
    if prefetch {
        return false;
    }
    if !header(headers, "sec-fetch-mode").is_empty() {
        // A browser that sends Fetch Metadata says whether a person started it.
        return header(headers, "sec-fetch-user") == "?1" && header(headers, "sec-fetch-mode") == "navigate";
    }
    agent.starts_with("mozilla/")
        && header(headers, "accept").contains("text/html")
        && !header(headers, "accept-language").is_empty()
}

pub async fn follow(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let (week, position) = path.into_inner();
    let found = match (IssueWeek::parse(&week), position.parse::<i32>()) {
        (Some(week), Ok(position)) if position > 0 => link_clicks::target(&state.db, week, position)
            .await?
            .map(|url| (week, position, url)),
        _ => None,
    };
    let Some((week, position, url)) = found else {
        return Err(PageError::not_found("link"));
    };
    if is_a_persons_click(req.headers()) {
        link_clicks::count(&state.db, week, position).await?;
    }
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    const CHROME: &str =
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36";

    #[test]
    fn a_persons_navigation_counts_and_scanners_prefetches_and_previews_do_not() {
        let click = [
            ("user-agent", CHROME),
            ("sec-fetch-mode", "navigate"),
            ("sec-fetch-user", "?1"),
            ("accept", "text/html,*/*"),
        ];
        assert!(is_a_persons_click(&headers(&click)));
        // The same browser, not started by a person (a prefetch, a preview).
        assert!(!is_a_persons_click(&headers(&[click[0], click[1], click[3]])));
        assert!(!is_a_persons_click(&headers(&[
            click[0],
            click[1],
            click[2],
            ("sec-purpose", "prefetch")
        ])));
        // An old browser without Fetch Metadata: its own headers.
        assert!(is_a_persons_click(&headers(&[
            (
                "user-agent",
                "Mozilla/5.0 (iPhone; CPU iPhone OS 15_0 like Mac OS X) Version/15.0 Mobile Safari/604.1"
            ),
            ("accept", "text/html,application/xhtml+xml"),
            ("accept-language", "ru-RU,ru;q=0.9"),
        ])));
        // Scanners and tools.
        for agent in [
            "",
            "python-requests/2.32",
            "curl/8.5",
            "Mozilla/5.0 (compatible; Barracuda Sentinel)",
            "Mozilla/5.0 (compatible; Googlebot/2.1)",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36",
        ] {
            assert!(
                !is_a_persons_click(&headers(&[
                    ("user-agent", agent),
                    ("accept", "text/html"),
                    ("accept-language", "en"),
                ])),
                "{agent}"
            );
        }
        assert!(!is_a_persons_click(&headers(&[
            ("user-agent", CHROME),
            ("accept", "*/*")
        ])));
    }
}
