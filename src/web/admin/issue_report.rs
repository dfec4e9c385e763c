//! An issue's recipients, one by one: `GET /admin/issues/{week}/recipients`
//! (searchable by address or name, filtered by the copy's state, a page at
//! a time in address order) and `GET /admin/issues/{week}/recipients.csv`
//! (the same selection, streamed page by page).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Deserialize;
use uuid::Uuid;

use super::AdminState;
use super::chrome::{Chrome, Section, html};
use super::session::Staff;
use crate::db::Db;
use crate::db::issue_report::{self, Recipient, RecipientFilter};
use crate::db::issues;
use crate::domain::{DeliveryStatus, IssueWeek};
use crate::subscriber_csv::for_spreadsheet;
use crate::web::error::PageError;

/// Recipients on one page, and per query of an export.
const PAGE_SIZE: i64 = 100;
const EXPORT_PAGE: i64 = 1_000;

/// The states a copy can be in, for the filter.
const STATES: [DeliveryStatus; 5] = [
    DeliveryStatus::Queued,
    DeliveryStatus::Sending,
    DeliveryStatus::Sent,
    DeliveryStatus::Failed,
    DeliveryStatus::Skipped,
];

#[derive(Debug, Deserialize)]
pub struct RecipientsQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    /// The last address of the page before.
    #[serde(default)]
    after: String,
}

impl RecipientsQuery {
    fn filter(&self) -> Result<RecipientFilter, PageError> {
        let status = match self.status.as_str() {
            "" => None,
            raw => Some(DeliveryStatus::parse(raw).ok_or_else(|| {
                PageError::bad_request(
                    "Unknown state",
                    format!(
                        "`{}` is not a state a copy can be in: use one of {}.",
                        crate::terminal::escape(raw),
                        STATES.map(DeliveryStatus::as_str).join(", ")
                    ),
                )
            })?),
        };
        if self.q.chars().count() > 200 {
            return Err(PageError::bad_request(
                "Search too long",
                "Search for at most 200 characters.",
            ));
        }
        Ok(RecipientFilter {
            query: self.q.trim().to_owned(),
            status,
        })
    }
}

struct RecipientRow {
    id: Uuid,
    email: String,
    name: String,
    status: &'static str,
    attempts: i32,
    sent_at: String,
    last_error: String,
}

impl From<Recipient> for RecipientRow {
    fn from(r: Recipient) -> Self {
        Self {
            id: r.subscriber_id,
            email: r.email,
            name: r.name,
            status: r.status.as_str(),
            attempts: r.attempts,
            sent_at: when(r.sent_at),
            last_error: r.last_error.unwrap_or_default(),
        }
    }
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "web/admin/issue_recipients.html")]
struct RecipientsPage {
    c: Chrome,
    week: String,
    q: String,
    status: String,
    statuses: [&'static str; 5],
    rows: Vec<RecipientRow>,
    /// Where the next page starts, when there is one.
    next: Option<String>,
}

async fn issue_id(db: &Db, raw_week: &str) -> Result<(Uuid, IssueWeek), PageError> {
    let week = IssueWeek::parse(raw_week).ok_or_else(|| PageError::not_found("issue"))?;
    let progress = issues::progress(db, week, Utc::now())
        .await?
        .ok_or_else(|| PageError::not_found("issue"))?;
    Ok((progress.id, week))
}

pub async fn recipients(
    path: web::Path<String>,
    query: web::Query<RecipientsQuery>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let (id, week) = issue_id(&state.db, &path).await?;
    let filter = query.filter()?;
    let after = (!query.after.is_empty()).then_some(query.after.as_str());
    // One more than a page says whether there is a next one.
    let mut found = issue_report::recipients(&state.db, id, &filter, after, PAGE_SIZE + 1).await?;
    let next = match found.len() as i64 > PAGE_SIZE {
        true => {
            found.truncate(PAGE_SIZE as usize);
            found.last().map(|r| r.email_key.clone())
        }
        false => None,
    };
    let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Issues);
    Ok(html(
        StatusCode::OK,
        &RecipientsPage {
            c,
            week: week.to_string(),
            q: filter.query,
            status: filter.status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
            statuses: STATES.map(DeliveryStatus::as_str),
            rows: found.into_iter().map(RecipientRow::from).collect(),
            next,
        },
    ))
}

/// The export's columns.
const CSV_HEADER: [&str; 6] = ["email", "name", "state", "attempts", "sent_at", "last_error"];

pub async fn recipients_csv(
    path: web::Path<String>,
    query: web::Query<RecipientsQuery>,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let (id, week) = issue_id(&state.db, &path).await?;
    let filter = query.filter()?;
    tracing::info!(staff = %staff.email, %week, "issue recipients export");
    enum Next {
        Header,
        After(Option<String>),
        Done,
    }
    let db = state.db.clone();
    let body = futures_util::stream::unfold(Next::Header, move |next| {
        let (db, filter) = (db.clone(), filter.clone());
        async move {
            match next {
                Next::Header => Some((Ok(csv_rows([CSV_HEADER.map(str::to_owned)])), Next::After(None))),
                Next::After(after) => {
                    match issue_report::recipients(&db, id, &filter, after.as_deref(), EXPORT_PAGE).await {
                        Ok(page) if page.is_empty() => None,
                        Ok(page) => {
                            let next = match page.len() as i64 == EXPORT_PAGE {
                                true => Next::After(page.last().map(|r| r.email_key.clone())),
                                false => Next::Done,
                            };
                            Some((Ok(csv_rows(page.into_iter().map(record))), next))
                        }
                        Err(e) => Some((Err(e), Next::Done)),
                    }
                }
                Next::Done => None,
            }
        }
    })
    .map(|chunk: Result<Vec<u8>, sqlx::Error>| {
        chunk.map(Bytes::from).map_err(|e| {
            // The status line has gone out: cutting the body short is the
            // only way left to say it failed.
            tracing::error!(error = %crate::terminal::escape(&e.to_string()), "recipients export broke off");
            actix_web::error::ErrorInternalServerError("the export broke off")
        })
    });
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((
            CONTENT_DISPOSITION,
            format!("attachment; filename=\"recipients-{week}.csv\""),
        ))
        .streaming(body))
}

/// A recipient under [`CSV_HEADER`]; every cell defused for spreadsheets.
fn record(r: Recipient) -> [String; 6] {
    [
        r.email,
        r.name,
        r.status.as_str().to_owned(),
        r.attempts.to_string(),
        r.sent_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        r.last_error.unwrap_or_default(),
    ]
    .map(|cell| for_spreadsheet(&cell))
}

fn csv_rows(records: impl IntoIterator<Item = [String; 6]>) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for record in records {
        // Writing to a Vec cannot fail.
        let _ = writer.write_record(record);
    }
    writer.into_inner().unwrap_or_default()
}
