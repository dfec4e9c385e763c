//! The public pages, one askama template each under `templates/web/`
//! (the pages about problems are [`super::error`]'s).

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, REFERRER_POLICY};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use crate::i18n::Language;
use crate::web::language;

/// Who the site is, as every public page's header and footer say it.
#[derive(Debug, Clone, Default)]
pub struct SiteFrame {
    /// The publication's name, the header's.
    pub name: String,
    /// Who runs it and answers for the readers' data (`site.publisher`).
    pub publisher: String,
    /// Where readers write about their data (`site.contact`).
    pub contact: String,
}

impl SiteFrame {
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        Self {
            name: settings.mail.publication(),
            publisher: settings.publisher(),
            contact: settings.contact(),
        }
    }
}

/// What the frame of every public page shows: the site's header and
/// footer, the page's language (`<html lang>`, every string), and the
/// language switch.
pub struct Chrome<'a> {
    pub site: &'a SiteFrame,
    pub lang: Language,
    pub switch: Vec<SwitchLink>,
}

/// One entry of the language switch: a link to this page in `tag`, or the
/// page's own language (`href` empty).
pub struct SwitchLink {
    pub href: String,
    pub tag: &'static str,
    pub name: String,
}

impl<'a> Chrome<'a> {
    /// The frame of a page in `lang` whose switch links to `path?query` in
    /// the other languages: the page itself for a GET, the form's page
    /// (`/`) for one that answers a POST.
    pub fn new(site: &'a SiteFrame, lang: Language, path: &str, query: &str) -> Self {
        let switch = Language::all()
            .map(|other| SwitchLink {
                href: match other == lang {
                    true => String::new(),
                    false => language::switch_href(path, query, other),
                },
                tag: other.tag(),
                name: other.own_name(),
            })
            .collect();
        Self { site, lang, switch }
    }

    /// The frame for the page `req` asked for, in `lang`.
    pub fn of(site: &'a SiteFrame, lang: Language, req: &HttpRequest) -> Self {
        match req.method() == actix_web::http::Method::GET {
            true => Self::new(site, lang, req.path(), req.query_string()),
            false => Self::new(site, lang, crate::links::paths::HOME, ""),
        }
    }

    /// Message `id` in the page's language.
    pub fn t(&self, id: &str) -> String {
        self.lang.text(id)
    }

    /// Message `id` with one text placeable.
    pub fn t1(&self, id: &str, name: &str, value: &str) -> String {
        self.lang.text1(id, name, value)
    }
}

#[derive(Template)]
#[template(path = "web/signup.html")]
pub struct SignupPage<'a> {
    pub chrome: Chrome<'a>,
    pub name: &'a str,
    pub email: &'a str,
    /// Whether the form asks for a name (`signup.ask_name`).
    pub ask_name: bool,
    pub latest: Option<LatestIssue>,
    /// What is wrong with the name, with the address, with the form as a
    /// whole, each in the page's language.
    pub name_error: Option<String>,
    pub email_error: Option<String>,
    pub form_error: Option<String>,
}

/// What the front page says besides the form: the latest issue, if any.
pub struct LatestIssue {
    pub week: String,
    pub subject: String,
    pub date: String,
}

/// The privacy notice, filled from the settings.
#[derive(Template)]
#[template(path = "web/privacy.html")]
pub struct PrivacyPage<'a> {
    pub chrome: Chrome<'a>,
    /// `retention.unconfirmed_reader_days`, `retention.mail_address_days`,
    /// `retention.delivery_months`; 0: kept.
    pub unconfirmed_days: u32,
    pub mail_address_days: u32,
    pub delivery_months: u32,
}

#[derive(Template)]
#[template(path = "web/check_inbox.html")]
pub struct CheckInboxPage<'a> {
    pub chrome: Chrome<'a>,
}

#[derive(Template)]
#[template(path = "web/confirm.html")]
pub struct ConfirmPage<'a> {
    pub chrome: Chrome<'a>,
    pub token: &'a str,
}

#[derive(Template)]
#[template(path = "web/confirmed.html")]
pub struct ConfirmedPage<'a> {
    pub chrome: Chrome<'a>,
}

#[derive(Template)]
#[template(path = "web/unsubscribe.html")]
pub struct UnsubscribePage<'a> {
    pub chrome: Chrome<'a>,
    pub token: &'a str,
    pub email: &'a str,
    /// The issue whose copy the link came from, carried to the POST.
    pub issue: Option<crate::domain::IssueWeek>,
}

#[derive(Template)]
#[template(path = "web/unsubscribed.html")]
pub struct UnsubscribedPage<'a> {
    pub chrome: Chrome<'a>,
    pub name: &'a str,
    pub email: &'a str,
}

/// The page a link to confirm a new address opens: the address, and the
/// button that confirms it.
#[derive(Template)]
#[template(path = "web/address_confirm.html")]
pub struct AddressConfirmPage<'a> {
    pub chrome: Chrome<'a>,
    pub token: &'a str,
    pub new_email: &'a str,
}

#[derive(Template)]
#[template(path = "web/address_changed.html")]
pub struct AddressChangedPage<'a> {
    pub chrome: Chrome<'a>,
    pub email: &'a str,
}

pub struct ArchiveEntry {
    pub week: String,
    /// The lead story's title (an older issue's subject).
    pub title: String,
    pub date: String,
    /// "7 stories", in the page's language.
    pub stories: String,
}

#[derive(Template)]
#[template(path = "web/archive.html")]
pub struct ArchivePage<'a> {
    pub chrome: Chrome<'a>,
    pub entries: Vec<ArchiveEntry>,
}

/// One past issue inside the site's layout.
#[derive(Template)]
#[template(path = "web/archive_issue.html")]
pub struct ArchivedIssuePage<'a> {
    pub chrome: Chrome<'a>,
    /// "The issue of 30 November 2026", in the page's language.
    pub heading: String,
    pub lead_title: &'a str,
    /// The stories, as the render made them (escaped there).
    pub stories_html: &'a str,
}

/// A page that explains something in a sentence or two and offers a way
/// on: mostly a problem ([`super::error::PageError`]).
#[derive(Template)]
#[template(path = "web/message.html")]
pub struct MessagePage<'a> {
    pub chrome: Chrome<'a>,
    pub title: &'a str,
    pub message: &'a str,
    pub offer_signup: bool,
}

/// Renders a template into an HTML response with `status`.
pub fn html(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "cannot render a page");
            HttpResponse::InternalServerError()
                .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
                .body("Something went wrong on our side. Please try again in a minute.")
        }
    }
}

/// A page about a secret link: never cached, never leaked in a Referer.
pub fn private(mut response: HttpResponse) -> HttpResponse {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, "no-store".parse().expect("static header"));
    headers.insert(REFERRER_POLICY, "no-referrer".parse().expect("static header"));
    response
}
