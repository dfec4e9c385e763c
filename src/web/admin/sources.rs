//! `/admin/sources`: the feed sources Gazette polls (`gazette feeds …` in
//! the staff area): each with its last poll, result, articles added and
//! failing streak; a form to add one; "poll now" and "remove" buttons.
//! Polls run in the background (a fetch may take seconds); the page
//! refreshes itself while one is running.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};

use super::AdminState;
use super::chrome::{Chrome, html};
use super::session::{self, Staff, StaffForm};
use crate::db::feed_sources::{self, FeedSource, PollResult};
use crate::digest::poll::{AddError, Poller};
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
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

impl Row {
    fn of(s: FeedSource, now: DateTime<Utc>) -> Self {
        let polling = s.is_being_polled(now);
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
}

async fn page(
    state: &AdminState,
    session: &Session,
    staff: &Staff,
    status: StatusCode,
    errors: Vec<String>,
    (url, name): (&str, &str),
) -> Result<HttpResponse, PageError> {
    let now = Utc::now();
    let rows: Vec<Row> = feed_sources::list(&state.db)
        .await?
        .into_iter()
        .map(|s| Row::of(s, now))
        .collect();
    let c = Chrome::new(&state.site, session, Some(staff));
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
        },
    ))
}

pub async fn list(
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    page(&state, &session, &staff, StatusCode::OK, vec![], ("", "")).await
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
    let poller = poller(&state);
    let source = match poller.add(url, Some(name)).await {
        Ok(source) => source,
        Err(AddError::Database(e)) => return Err(PageError::unexpected(e)),
        Err(why) => {
            let errors = vec![format!("{}.", capitalised(&why.to_string()))];
            return page(&state, &session, &staff, StatusCode::BAD_REQUEST, errors, (url, name)).await;
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
