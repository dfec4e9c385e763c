//! `/admin/sources`: the feed sources Gazette polls (`gazette feeds …` in
//! the staff area): each with its last poll, result, articles added and
//! failing streak, and the language of its articles; a form to add one;
//! "poll now", "remove" and a language select for each.
//! Polls run in the background (a fetch may take seconds); the page
//! refreshes itself while one is running.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};

use super::AdminState;
use super::chrome::{Chrome, Section, html};
use super::language_select::{self, LanguageOption};
use super::session::{self, Staff, StaffForm};
use crate::db::feed_sources::{self, FeedSource, PollResult};
use crate::digest::poll::{AddError, Declared, Poller};
use crate::i18n::Language;
use crate::links::paths;
use crate::web::error::PageError;

pub struct Row {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub last_poll: String,
    /// `ok`, `not modified`, `failed`, `not polled yet` or `polling now`.
    pub result: String,
    pub added: i32,
    pub total_added: i64,
    pub rejected: i32,
    /// The failing streak and the last error; empty when it is not failing.
    pub failing: String,
    pub error: String,
    pub polling: bool,
    /// The language staff declared; none selected: the feed's own.
    pub languages: Vec<LanguageOption>,
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

impl Row {
    fn of(s: FeedSource, now: DateTime<Utc>) -> Self {
        let polling = s.is_being_polled(now);
        let languages = language_select::options(s.declared_language());
        let result = match (polling, s.last_result) {
            (true, _) => "polling now",
            (false, None) => "not polled yet",
            (false, Some(result)) => result.as_str(),
        };
        let since = s
            .failing_since
            .map(|t| format!(" since {}", when(t)))
            .unwrap_or_default();
        let failing = match s.failures {
            0 => String::new(),
            1 => format!("Failing: 1 failed poll{since}; next try {}.", when(s.next_poll_at)),
            n => format!(
                "Failing: {n} failed polls in a row{since}; next try {}.",
                when(s.next_poll_at)
            ),
        };
        let error = match s.last_result {
            Some(PollResult::Failed) => s.last_error.unwrap_or_default(),
            _ => String::new(),
        };
        Self {
            id: s.id,
            name: s.name,
            url: s.url,
            last_poll: s.last_polled_at.map_or_else(|| "never".to_owned(), when),
            result: result.to_owned(),
            added: s.last_added,
            total_added: s.total_added,
            rejected: s.last_rejected,
            failing,
            error,
            polling,
            languages,
        }
    }
}

#[derive(Template)]
#[template(path = "web/admin/sources.html")]
struct ListPage {
    c: Chrome,
    rows: Vec<Row>,
    polling: bool,
    poll_minutes: u32,
    errors: Vec<String>,
    url: String,
    name: String,
    /// The add form's select; none selected: the feed's own.
    languages: Vec<LanguageOption>,
}

async fn page(
    state: &AdminState,
    session: &Session,
    staff: &Staff,
    status: StatusCode,
    errors: Vec<String>,
    (url, name, language): (&str, &str, Option<Language>),
) -> Result<HttpResponse, PageError> {
    let now = Utc::now();
    let rows: Vec<Row> = feed_sources::list(&state.db)
        .await?
        .into_iter()
        .map(|s| Row::of(s, now))
        .collect();
    let c = Chrome::new(&state.site, session, Some(staff)).in_section(Section::Sources);
    Ok(html(
        status,
        &ListPage {
            c,
            polling: rows.iter().any(|r| r.polling),
            rows,
            poll_minutes: state.settings.feeds.poll_minutes,
            errors,
            url: url.to_owned(),
            name: name.to_owned(),
            languages: language_select::options(language),
        },
    ))
}

pub async fn list(
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    page(&state, &session, &staff, StatusCode::OK, vec![], ("", "", None)).await
}

fn poller(state: &AdminState) -> Poller {
    Poller::from_settings(state.db.clone(), &state.settings)
}

pub async fn add(
    fields: StaffForm,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let (url, name) = (fields.get("url").trim(), fields.get("name"));
    let language = match language_select::parse(fields.get("language")) {
        Ok(chosen) => chosen.or(None),
        Err(why) => {
            let errors = vec![format!("Language: {why}.")];
            return page(
                &state,
                &session,
                &staff,
                StatusCode::BAD_REQUEST,
                errors,
                (url, name, None),
            )
            .await;
        }
    };
    let poller = poller(&state);
    let source = match poller.add(url, Some(name), language).await {
        Ok(source) => source,
        Err(AddError::Database(e)) => return Err(PageError::unexpected(e)),
        Err(why) => {
            let errors = vec![format!("{}.", capitalised(&why.to_string()))];
            let values = (url, name, language);
            return page(&state, &session, &staff, StatusCode::BAD_REQUEST, errors, values).await;
        }
    };
    tracing::info!(staff = %staff.email, source = source.id, url = %source.url, "feed source added from the admin");
    poller.start_poll_now(source.id).await?;
    session::flash(
        &session,
        format!(
            "“{}” is added and being polled for the first time; this page shows the result when it is done.",
            source.name
        ),
    );
    Ok(session::see_other(paths::ADMIN_SOURCES))
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The source an address names.
async fn load(state: &AdminState, raw_id: &str) -> Result<FeedSource, PageError> {
    let not_found = || PageError::not_found("feed source");
    let id: i64 = raw_id.parse().map_err(|_| not_found())?;
    feed_sources::find(&state.db, id).await?.ok_or_else(not_found)
}

pub async fn poll(
    _: StaffForm,
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let source = load(&state, &path).await?;
    let message = match poller(&state).start_poll_now(source.id).await? {
        Some(_) => {
            tracing::info!(staff = %staff.email, source = source.id, "feed source polled from the admin");
            format!(
                "“{}” is being polled; this page shows the result when it is done.",
                source.name
            )
        }
        None => format!(
            "“{}” is being polled already; this page shows the result when it is done.",
            source.name
        ),
    };
    session::flash(&session, message);
    Ok(session::see_other(paths::ADMIN_SOURCES))
}

/// Declares the language of a source's articles, or goes back to the
/// feed's own (see [`Poller::declare_language`]).
pub async fn set_language(
    fields: StaffForm,
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let source = load(&state, &path).await?;
    let language = language_select::parse(fields.get("language"))
        .map_err(|why| {
            PageError::bad_request(
                "The language was not changed",
                format!("{}.", capitalised(&why.to_string())),
            )
        })?
        .or(None);
    let message = match poller(&state).declare_language(source.id, language).await? {
        Declared::Unknown => return Err(PageError::not_found("feed source")),
        Declared::Busy(source) => format!(
            "“{}” is being polled right now, so its language is left as it was; try again once the poll is done.",
            source.name
        ),
        Declared::Polling(source) => {
            tracing::info!(
                staff = %staff.email,
                source = source.id,
                language = language.map_or("the feed's own", Language::tag),
                "feed source language set from the admin"
            );
            match language {
                Some(language) => format!(
                    "“{}”: its articles are in {} from now on, whatever its feed says; articles you edited keep \
                     the language you gave them.",
                    source.name,
                    language.own_name()
                ),
                None => format!(
                    "“{}”: its articles take the language its feed declares; it is being polled so that those \
                     still in the feed are relabelled.",
                    source.name
                ),
            }
        }
    };
    session::flash(&session, message);
    Ok(session::see_other(paths::ADMIN_SOURCES))
}

pub async fn remove(
    _: StaffForm,
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let source = load(&state, &path).await?;
    if feed_sources::remove(&state.db, source.id).await?.is_some() {
        tracing::info!(staff = %staff.email, source = source.id, url = %source.url, "feed source removed from the admin");
    }
    session::flash(
        &session,
        format!(
            "“{}” is removed and no longer polled; the articles it brought stay.",
            source.name
        ),
    );
    Ok(session::see_other(paths::ADMIN_SOURCES))
}
