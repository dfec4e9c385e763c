//! `/admin/subscribers`: search and filter, one reader's record with their
//! consent, unsubscribe, erase (GDPR), a streamed CSV export of the current
//! filter, and CSV import through [`crate::subscriber_csv`], the importer
//! `gazette subscribers import` uses.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Deserialize;
use uuid::Uuid;

use super::pages::{self, Chrome, html};
use super::session::{self, Staff};
use super::{AdminState, MAX_IMPORT_BYTES};
use crate::db::subscriber_admin::{self, Filter, SubscriberRecord};
use crate::db::subscriber_import::Consent;
use crate::domain::SubscriberStatus;
use crate::subscriber_csv::{self, ImportEvent, ImportOptions, ImportReport, RejectedRow};

const PAGE_SIZE: i64 = 50;

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    page: Option<u32>,
}

impl ListQuery {
    /// The filter, or the reason it makes no sense.
    fn filter(&self) -> Result<Filter, String> {
        let status =
            match self.status.trim() {
                "" | "all" => None,
                raw => Some(SubscriberStatus::parse(raw).ok_or_else(|| {
                    format!("“{raw}” is not a status: use pending, confirmed, unsubscribed or bounced")
                })?),
            };
        if self.q.chars().count() > 200 {
            return Err("the search text is longer than 200 characters".into());
        }
        Ok(Filter {
            query: self.q.trim().to_owned(),
            status,
        })
    }
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

pub struct Row {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub status: String,
    pub signed_up: String,
}

#[derive(Template)]
#[template(path = "web/admin/subscribers.html")]
struct ListPage {
    c: Chrome,
    q: String,
    status: String,
    statuses: [&'static str; 4],
    rows: Vec<Row>,
    total: i64,
    page: u32,
    pages: i64,
}

pub async fn list(
    query: web::Query<ListQuery>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> HttpResponse {
    let site = state.site.as_str();
    let filter = match query.filter() {
        Ok(filter) => filter,
        Err(why) => return pages::bad_request(site, "That filter does not work", &format!("Sorry: {why}.")),
    };
    let page = query.page.unwrap_or(1).clamp(1, 1_000_000);
    let total = match subscriber_admin::count(&state.db, &filter).await {
        Ok(total) => total,
        Err(e) => return pages::db_error(site, "count subscribers", e),
    };
    let found = match subscriber_admin::list(&state.db, &filter, PAGE_SIZE, i64::from(page - 1) * PAGE_SIZE).await {
        Ok(found) => found,
        Err(e) => return pages::db_error(site, "list subscribers", e),
    };
    let rows = found
        .into_iter()
        .map(|s| Row {
            id: s.id,
            email: s.email,
            name: s.name,
            status: s.status.to_string(),
            signed_up: when(Some(s.signed_up_at)),
        })
        .collect();
    let c = Chrome::new(site, &session, Some(&staff));
    html(
        StatusCode::OK,
        &ListPage {
            c,
            q: filter.query.clone(),
            status: filter.status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
            statuses: SubscriberStatus::ALL.map(SubscriberStatus::as_str),
            rows,
            total,
            page,
            pages: ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1),
        },
    )
}

/// The current filter as CSV, written page by page as it is read, so an
/// export of any size holds one page in memory.
pub async fn export(
    query: web::Query<ListQuery>,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> HttpResponse {
    let filter = match query.filter() {
        Ok(filter) => filter,
        Err(why) => return pages::bad_request(&state.site, "That filter does not work", &format!("Sorry: {why}.")),
    };
    tracing::info!(staff = %staff.email, query = %filter.query, status = ?filter.status, "subscriber export");
    let body = subscriber_csv::export_chunks(state.db.clone(), filter).map(|chunk| {
        chunk.map(Bytes::from).map_err(|e| {
            // The status line has gone out: cutting the body short is the
            // only way left to say it failed.
            tracing::error!(error = %e, "subscriber export broke off");
            actix_web::error::ErrorInternalServerError("the export broke off")
        })
    });
    let filename = format!("subscribers-{}.csv", Utc::now().format("%Y-%m-%d"));
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")))
        .streaming(body)
}

#[derive(Template)]
#[template(path = "web/admin/import.html")]
struct ImportPage {
    c: Chrome,
    report: Option<ImportReport>,
    rejected: Vec<RejectedRow>,
    errors: Vec<String>,
    csv: String,
}

pub async fn import_form(session: Session, staff: web::ReqData<Staff>, state: web::Data<AdminState>) -> HttpResponse {
    let c = Chrome::new(&state.site, &session, Some(&staff));
    html(
        StatusCode::OK,
        &ImportPage {
            c,
            report: None,
            rejected: vec![],
            errors: vec![],
            csv: String::new(),
        },
    )
}

pub async fn import(
    req: HttpRequest,
    body: web::Payload,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> HttpResponse {
    let site = state.site.as_str();
    let fields = match session::read_form(&req, body, &session, MAX_IMPORT_BYTES, site).await {
        Ok(fields) => fields,
        Err(page) => return page,
    };
    let csv = fields.get("csv").to_owned();
    let consent = if fields.get("consented") == "on" {
        Consent::ConfirmedElsewhere
    } else {
        Consent::OptIn
    };
    if csv.trim().is_empty() {
        let c = Chrome::new(site, &session, Some(&staff));
        let page = ImportPage {
            c,
            report: None,
            rejected: vec![],
            errors: vec!["There are no rows to import: paste lines of email,name.".into()],
            csv,
        };
        return html(StatusCode::BAD_REQUEST, &page);
    }
    let options = ImportOptions::new(
        consent,
        state.signup_policy.token_ttl,
        state.settings.subscriptions.address_policy(),
    );
    let mut rejected = Vec::new();
    let input = std::io::Cursor::new(csv.into_bytes());
    let result = subscriber_csv::import(&state.db, input, options, |event| {
        if let ImportEvent::Rejected(row) = event {
            rejected.push(row.clone());
        }
    })
    .await;
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            tracing::error!(error = %e, "admin: subscriber import failed");
            return pages::message(
                site,
                StatusCode::INTERNAL_SERVER_ERROR,
                "The import stopped",
                &e.to_string(),
            );
        }
    };
    if report.added > 0 && consent == Consent::OptIn {
        state.mail_wakeup.notify_one();
    }
    tracing::info!(staff = %staff.email, %report, "subscriber import");
    let c = Chrome::new(site, &session, Some(&staff));
    // Some rows did not import: say so in the status too.
    let status = if rejected.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    html(
        status,
        &ImportPage {
            c,
            report: Some(report),
            rejected,
            errors: vec![],
            csv: String::new(),
        },
    )
}

#[derive(Template)]
#[template(path = "web/admin/subscriber.html")]
struct ViewPage {
    c: Chrome,
    s: SubscriberRecord,
    signed_up: String,
    history: Vec<(String, &'static str)>,
}

async fn load(state: &AdminState, raw_id: &str) -> Result<SubscriberRecord, HttpResponse> {
    let site = state.site.as_str();
    let Ok(id) = Uuid::parse_str(raw_id) else {
        return Err(pages::not_found(site, "subscriber"));
    };
    match subscriber_admin::find(&state.db, id).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(pages::not_found(site, "subscriber")),
        Err(e) => Err(pages::db_error(site, "read a subscriber", e)),
    }
}

pub async fn view(
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> HttpResponse {
    let s = match load(&state, &path).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    let mut history: Vec<(DateTime<Utc>, &'static str)> = vec![(s.created_at, "first signed up")];
    if s.signed_up_at != s.created_at {
        history.push((s.signed_up_at, "signed up again (latest consent)"));
    }
    history.extend(s.confirmed_at.map(|t| (t, "confirmed")));
    history.extend(s.unsubscribed_at.map(|t| (t, "unsubscribed")));
    history.extend(s.erased_at.map(|t| (t, "personal data erased")));
    history.sort_by_key(|(t, _)| *t);
    let history = history.into_iter().map(|(t, what)| (when(Some(t)), what)).collect();
    let c = Chrome::new(&state.site, &session, Some(&staff));
    let signed_up = when(Some(s.signed_up_at));
    html(
        StatusCode::OK,
        &ViewPage {
            c,
            s,
            signed_up,
            history,
        },
    )
}

pub async fn unsubscribe(
    req: HttpRequest,
    body: web::Payload,
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> HttpResponse {
    let site = state.site.as_str();
    if let Err(page) = session::read_form(&req, body, &session, 4096, site).await {
        return page;
    }
    let s = match load(&state, &path).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    match subscriber_admin::unsubscribe(&state.db, s.id, Utc::now()).await {
        Ok(changed) => {
            tracing::info!(staff = %staff.email, subscriber = %s.id, "unsubscribed by staff");
            session::flash(
                &session,
                if changed {
                    "The reader is unsubscribed."
                } else {
                    "The reader was already unsubscribed."
                },
            );
            session::see_other(&format!("/admin/subscribers/{}", s.id))
        }
        Err(e) => pages::db_error(site, "unsubscribe a reader", e),
    }
}

pub async fn erase(
    req: HttpRequest,
    body: web::Payload,
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> HttpResponse {
    let site = state.site.as_str();
    let fields = match session::read_form(&req, body, &session, 4096, site).await {
        Ok(fields) => fields,
        Err(page) => return page,
    };
    let s = match load(&state, &path).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    if fields.get("confirm") != "on" {
        return pages::bad_request(
            site,
            "Nothing was erased",
            "Tick the box that confirms the erasure: it cannot be undone.",
        );
    }
    match subscriber_admin::erase(&state.db, s.id, Utc::now()).await {
        Ok(_) => {
            // The log names the row, never the person.
            tracing::info!(staff = %staff.email, subscriber = %s.id, "personal data erased");
            session::flash(
                &session,
                "The reader's personal data is erased; they count only as an anonymous number now.",
            );
            session::see_other("/admin/subscribers")
        }
        Err(e) => pages::db_error(site, "erase a reader", e),
    }
}
