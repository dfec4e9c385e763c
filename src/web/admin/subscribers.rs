//! `/admin/subscribers`: search and filter, one reader's record with their
//! consent, unsubscribe, erase (GDPR, after a confirmation page of its
//! own), a streamed CSV export of the current filter, bulk actions on the
//! readers ticked in the list (unsubscribe, erase, export), and CSV import
//! through [`crate::subscriber_csv`], the importer `gazette subscribers
//! import` uses.

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

use super::chrome::{Chrome, Section, html};
use super::confirm::{self, ConfirmPage, confirmed, unconfirmed};
use super::field_errors::FieldErrors;
use super::session::{self, Staff, StaffForm};
use super::{AdminState, MAX_IMPORT_BYTES};
use crate::db::issue_report;
use crate::db::subscriber_admin::{self, Filter, SubscriberRecord};
use crate::db::subscriber_events;
use crate::db::subscriber_import::Consent;
use crate::domain::SubscriberStatus;
use crate::links::paths;
use crate::subscriber_csv::{self, ImportEvent, ImportOptions, ImportReport, RejectedRow};
use crate::web::error::PageError;

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

/// Why a list or export filter makes no sense.
#[derive(Debug, thiserror::Error)]
enum FilterError {
    #[error("“{0}” is not a status: use pending, confirmed, unsubscribed or bounced")]
    Status(String),
    #[error("the search text is longer than 200 characters")]
    TooLong,
}

impl From<FilterError> for PageError {
    fn from(why: FilterError) -> Self {
        PageError::bad_request("That filter does not work", format!("Sorry: {why}."))
    }
}

impl ListQuery {
    fn filter(&self) -> Result<Filter, FilterError> {
        let status = match self.status.trim() {
            "" | "all" => None,
            raw => Some(SubscriberStatus::parse(raw).ok_or_else(|| FilterError::Status(raw.to_owned()))?),
        };
        if self.q.chars().count() > 200 {
            return Err(FilterError::TooLong);
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
) -> Result<HttpResponse, PageError> {
    let filter = query.filter()?;
    let page = query.page.unwrap_or(1).clamp(1, 1_000_000);
    let total = subscriber_admin::count(&state.db, &filter).await?;
    let found = subscriber_admin::list(&state.db, &filter, PAGE_SIZE, i64::from(page - 1) * PAGE_SIZE).await?;
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
    let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Subscribers);
    Ok(html(
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
    ))
}

/// The current filter as CSV, written page by page as it is read, so an
/// export of any size holds one page in memory.
pub async fn export(
    query: web::Query<ListQuery>,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let filter = query.filter()?;
    // The search text is typed by staff: escaped, like all outside text.
    let logged_query = crate::terminal::escape(&filter.query);
    tracing::info!(staff = %staff.email, query = %logged_query, status = ?filter.status, "subscriber export");
    let body = subscriber_csv::export_chunks(state.db.clone(), filter).map(|chunk| {
        chunk.map(Bytes::from).map_err(|e| {
            // The status line has gone out: cutting the body short is the
            // only way left to say it failed.
            tracing::error!(error = %crate::terminal::escape(&e.to_string()), "subscriber export broke off");
            actix_web::error::ErrorInternalServerError("the export broke off")
        })
    });
    let filename = format!("subscribers-{}.csv", Utc::now().format("%Y-%m-%d"));
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")))
        .streaming(body))
}

#[derive(Template)]
#[template(path = "web/admin/import.html")]
struct ImportPage {
    c: Chrome,
    report: Option<ImportReport>,
    rejected: Vec<RejectedRow>,
    errors: FieldErrors,
    csv: String,
}

pub async fn import_form(session: Session, staff: web::ReqData<Staff>, state: web::Data<AdminState>) -> HttpResponse {
    let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Subscribers);
    html(
        StatusCode::OK,
        &ImportPage {
            c,
            report: None,
            rejected: vec![],
            errors: FieldErrors::default(),
            csv: String::new(),
        },
    )
}

pub async fn import(
    fields: StaffForm<MAX_IMPORT_BYTES>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let site = state.site.as_str();
    let csv = fields.get("csv").to_owned();
    let consent = if fields.get("consented") == "on" {
        Consent::ConfirmedElsewhere
    } else {
        Consent::OptIn
    };
    if csv.trim().is_empty() {
        let c = Chrome::new(site, &session, Some(&staff)).in_section(Section::Subscribers);
        let page = ImportPage {
            c,
            report: None,
            rejected: vec![],
            errors: FieldErrors::one("csv", "There are no rows to import: paste lines of email,name."),
            csv,
        };
        return Ok(html(StatusCode::BAD_REQUEST, &page));
    }
    let options = ImportOptions::new(
        consent,
        state.signup_policy.token_ttl,
        state.settings.subscriptions.address_policy(),
        state.settings.site.default_language,
    );
    let mut rejected = Vec::new();
    let input = std::io::Cursor::new(csv.into_bytes());
    let result = subscriber_csv::import(&state.db, input, options, |event| {
        if let ImportEvent::Rejected(row) = event {
            rejected.push(row.clone());
        }
    })
    .await;
    let report = result.map_err(|e| {
        PageError::staff(StatusCode::INTERNAL_SERVER_ERROR, "The import stopped", e.to_string()).caused_by(e)
    })?;
    if report.added > 0 && consent == Consent::OptIn {
        state.mail_wakeup.notify_one();
    }
    tracing::info!(staff = %staff.email, %report, "subscriber import");
    let c = Chrome::new(site, &session, Some(&staff)).in_section(Section::Subscribers);
    // Some rows did not import: say so in the status too.
    let status = if rejected.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(html(
        status,
        &ImportPage {
            c,
            report: Some(report),
            rejected,
            errors: FieldErrors::default(),
            csv: String::new(),
        },
    ))
}

#[derive(Template)]
#[template(path = "web/admin/subscriber.html")]
struct ViewPage {
    c: Chrome,
    s: SubscriberRecord,
    signed_up: String,
    history: Vec<(String, &'static str)>,
    /// Bounces, complaints and unsubscribes by mail, newest first.
    events: Vec<EventRow>,
    /// The issues queued for them, newest first, and what became of each
    /// copy.
    issues: Vec<ReceivedRow>,
}

pub struct ReceivedRow {
    pub week: String,
    pub subject: String,
    pub status: &'static str,
    pub sent_at: String,
}

pub struct EventRow {
    pub at: String,
    pub kind: String,
    pub detail: String,
    pub inbound_message_id: Option<Uuid>,
    pub week: Option<String>,
}

/// The most events a reader's page lists.
const EVENTS_SHOWN: i64 = 100;

/// The reader an address names.
async fn load(state: &AdminState, raw_id: &str) -> Result<SubscriberRecord, PageError> {
    let not_found = || PageError::not_found("subscriber");
    let id = Uuid::parse_str(raw_id).map_err(|_| not_found())?;
    subscriber_admin::find(&state.db, id).await?.ok_or_else(not_found)
}

pub async fn view(
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let s = load(&state, &path).await?;
    let mut history: Vec<(DateTime<Utc>, &'static str)> = vec![(s.created_at, "first signed up")];
    if s.signed_up_at != s.created_at {
        history.push((s.signed_up_at, "signed up again (latest consent)"));
    }
    history.extend(s.confirmed_at.map(|t| (t, "confirmed")));
    history.extend(s.unsubscribed_at.map(|t| (t, "unsubscribed")));
    history.extend(s.erased_at.map(|t| (t, "personal data erased")));
    history.sort_by_key(|(t, _)| *t);
    let history = history.into_iter().map(|(t, what)| (when(Some(t)), what)).collect();
    let events = subscriber_events::for_subscriber(&state.db, s.id, EVENTS_SHOWN)
        .await?
        .into_iter()
        .map(|e| EventRow {
            at: when(Some(e.at)),
            kind: e.kind.replace('_', " "),
            detail: e.detail,
            inbound_message_id: e.inbound_message_id,
            week: e.week,
        })
        .collect();
    let issues = issue_report::received_by(&state.db, s.id, EVENTS_SHOWN)
        .await?
        .into_iter()
        .map(|r| ReceivedRow {
            week: r.week,
            subject: r.subject,
            status: r.status.as_str(),
            sent_at: when(r.sent_at),
        })
        .collect();
    let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Subscribers);
    let signed_up = when(Some(s.signed_up_at));
    Ok(html(
        StatusCode::OK,
        &ViewPage {
            c,
            s,
            signed_up,
            history,
            events,
            issues,
        },
    ))
}

pub async fn unsubscribe(
    _: StaffForm,
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let s = load(&state, &path).await?;
    let changed = subscriber_admin::unsubscribe(&state.db, s.id, Utc::now()).await?;
    tracing::info!(staff = %staff.email, subscriber = %s.id, "unsubscribed by staff");
    session::flash(
        &session,
        if changed {
            "The reader is unsubscribed."
        } else {
            "The reader was already unsubscribed."
        },
    );
    Ok(session::see_other(&paths::admin_subscriber(s.id)))
}

fn erase_consequences(n: usize) -> Vec<String> {
    let (their, them) = if n == 1 {
        ("this reader's", "them")
    } else {
        ("these readers'", "them")
    };
    vec![
        format!(
            "The address, name, signup IP and consent record of {their} go for good, with the mail queued for \
             {them} and their changes of address. This cannot be undone."
        ),
        "What stays is an anonymous row with its dates, so that counts and past issues' figures still add up."
            .to_owned(),
    ]
}

/// "Erase this reader's personal data?"
pub async fn confirm_erase(
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let s = load(&state, &path).await?;
    if s.erased_at.is_some() {
        session::flash(&session, "This reader's personal data is already erased.");
        return Ok(session::see_other(&paths::admin_subscriber(s.id)));
    }
    let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Subscribers);
    Ok(ConfirmPage {
        c,
        question: "Erase this reader's personal data?".into(),
        consequences: erase_consequences(1),
        items: vec![format!("{} <{}>", s.name, s.email)],
        texts: vec![],
        action: format!("{}/erase", paths::admin_subscriber(s.id)),
        hidden: vec![],
        button: "Yes, erase for good".into(),
        danger: true,
        back: paths::admin_subscriber(s.id),
        back_label: "No, back to the reader".into(),
    }
    .respond())
}

pub async fn erase(
    fields: StaffForm,
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let s = load(&state, &path).await?;
    if !confirmed(&fields) {
        return Err(unconfirmed(
            "erased",
            &format!("{}/erase", paths::admin_subscriber(s.id)),
        ));
    }
    subscriber_admin::erase(&state.db, s.id, Utc::now()).await?;
    // The log names the row, never the person.
    tracing::info!(staff = %staff.email, subscriber = %s.id, "personal data erased");
    session::flash(
        &session,
        "The reader's personal data is erased; they count only as an anonymous number now.",
    );
    Ok(session::see_other(paths::ADMIN_SUBSCRIBERS))
}

/// The selection of the list: unsubscribe, erase (after the confirmation
/// page) or download as CSV.
pub async fn bulk(
    fields: StaffForm<{ 64 * 1024 }>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let ids = confirm::ids(&fields)?;
    confirm::check_selection(&ids, paths::ADMIN_SUBSCRIBERS)?;
    match fields.get("action") {
        "unsubscribe" => {
            let now = Utc::now();
            let mut n = 0;
            for id in &ids {
                if subscriber_admin::unsubscribe(&state.db, *id, now).await? {
                    n += 1;
                }
            }
            tracing::info!(staff = %staff.email, readers = n, "unsubscribed by staff (bulk)");
            session::flash(
                &session,
                match n {
                    1 => "1 reader is unsubscribed.".to_owned(),
                    n => format!("{n} readers are unsubscribed."),
                },
            );
            Ok(session::see_other(paths::ADMIN_SUBSCRIBERS))
        }
        "erase" => Ok(session::see_other(&format!(
            "{}/erase?{}",
            paths::ADMIN_SUBSCRIBERS,
            confirm::ids_query(&ids)
        ))),
        "export" => {
            let body = subscriber_csv::export_selected(&state.db, &ids).await?;
            tracing::info!(staff = %staff.email, readers = ids.len(), "subscriber export (selection)");
            let filename = format!("subscribers-selected-{}.csv", Utc::now().format("%Y-%m-%d"));
            Ok(HttpResponse::Ok()
                .insert_header((CONTENT_TYPE, "text/csv; charset=utf-8"))
                .insert_header((CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")))
                .body(body))
        }
        other => Err(PageError::bad_request(
            "Nothing was done",
            format!("“{other}” is not something this list does: choose unsubscribe, erase or export."),
        )),
    }
}

/// The readers of a selection that are still there to erase.
async fn to_erase(state: &AdminState, ids: &[Uuid]) -> Result<Vec<SubscriberRecord>, PageError> {
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(s) = subscriber_admin::find(&state.db, *id).await?
            && s.erased_at.is_none()
        {
            found.push(s);
        }
    }
    Ok(found)
}

/// "Erase these readers' personal data?", for the list's selection.
pub async fn confirm_erase_many(
    req: actix_web::HttpRequest,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let ids = confirm::ids_in_query(req.query_string())?;
    confirm::check_selection(&ids, paths::ADMIN_SUBSCRIBERS)?;
    let found = to_erase(&state, &ids).await?;
    if found.is_empty() {
        session::flash(&session, "The selected readers' personal data is already erased.");
        return Ok(session::see_other(paths::ADMIN_SUBSCRIBERS));
    }
    let n = found.len();
    let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Subscribers);
    Ok(ConfirmPage {
        c,
        question: if n == 1 {
            "Erase this reader's personal data?".into()
        } else {
            format!("Erase the personal data of these {n} readers?")
        },
        consequences: erase_consequences(n),
        items: found.iter().map(|s| format!("{} <{}>", s.name, s.email)).collect(),
        texts: vec![],
        action: format!("{}/erase", paths::ADMIN_SUBSCRIBERS),
        hidden: found.iter().map(|s| ("id".to_owned(), s.id.to_string())).collect(),
        button: if n == 1 {
            "Yes, erase for good".into()
        } else {
            format!("Yes, erase these {n} readers for good")
        },
        danger: true,
        back: paths::ADMIN_SUBSCRIBERS.into(),
        back_label: "No, back to the subscribers".into(),
    }
    .respond())
}

pub async fn erase_many(
    fields: StaffForm<{ 64 * 1024 }>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let ids = confirm::ids(&fields)?;
    confirm::check_selection(&ids, paths::ADMIN_SUBSCRIBERS)?;
    if !confirmed(&fields) {
        return Err(unconfirmed(
            "erased",
            &format!("{}/erase?{}", paths::ADMIN_SUBSCRIBERS, confirm::ids_query(&ids)),
        ));
    }
    let now = Utc::now();
    let mut n = 0;
    for id in &ids {
        if subscriber_admin::erase(&state.db, *id, now).await? {
            n += 1;
        }
    }
    // The log names how many, never the people.
    tracing::info!(staff = %staff.email, readers = n, "personal data erased (bulk)");
    session::flash(
        &session,
        match n {
            1 => "1 reader's personal data is erased.".to_owned(),
            n => format!("The personal data of {n} readers is erased."),
        },
    );
    Ok(session::see_other(paths::ADMIN_SUBSCRIBERS))
}
