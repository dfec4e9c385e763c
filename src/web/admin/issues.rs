//! `/admin/issues`: this week's preview exactly as readers get it, test
//! sends, "send now" (confirmed, and idempotent), and the progress of a
//! send with pause, resume, cancel and "retry failed".

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::Utc;
use uuid::Uuid;

use super::AdminState;
use super::pages::{self, Chrome, html};
use super::session::{self, Staff};
use crate::db::issues::{self, Control, IssueProgress};
use crate::db::{submissions, test_sends};
use crate::digest::dispatch::{self, Dispatched};
use crate::domain::IssueWeek;
use crate::domain::{AddressPolicy, SubscriberEmail};

/// An issue's progress as the pages show it.
pub struct ProgressView {
    pub week: String,
    pub subject: String,
    pub state: &'static str,
    pub total: i64,
    /// Sent, failed or skipped: nothing more will happen to these.
    pub settled: i64,
    /// Queued or being sent right now.
    pub queued: i64,
    pub sent: i64,
    pub failed: i64,
    pub skipped: i64,
    pub per_minute: i64,
}

impl From<IssueProgress> for ProgressView {
    fn from(p: IssueProgress) -> Self {
        Self {
            state: p.state(),
            total: p.total(),
            settled: p.sent + p.failed + p.skipped,
            queued: p.queued + p.sending,
            sent: p.sent,
            failed: p.failed,
            skipped: p.skipped,
            per_minute: p.sent_last_minute,
            week: p.week,
            subject: p.subject,
        }
    }
}

impl ProgressView {
    fn json(&self) -> String {
        // Numbers and one of four fixed words: nothing to escape.
        format!(
            r#"{{"week":"{}","state":"{}","total":{},"settled":{},"queued":{},"sent":{},"failed":{},"skipped":{},"per_minute":{}}}"#,
            self.week,
            self.state,
            self.total,
            self.settled,
            self.queued,
            self.sent,
            self.failed,
            self.skipped,
            self.per_minute
        )
    }
}

fn new_key() -> String {
    Uuid::new_v4().to_string()
}

#[derive(Template)]
#[template(path = "web/admin/issues.html")]
struct IssuesPage {
    c: Chrome,
    week: String,
    already_dispatched: bool,
    subject: Option<String>,
    articles: Vec<(String, String)>,
    text: String,
    recipients: i64,
    test_key: String,
    issues: Vec<ProgressView>,
}

pub async fn this_week(session: Session, staff: web::ReqData<Staff>, state: web::Data<AdminState>) -> HttpResponse {
    let site = state.site.as_str();
    let now = Utc::now();
    let preview = match dispatch::preview(&state.db, &state.settings, now).await {
        Ok(preview) => preview,
        Err(e) => {
            tracing::error!(error = %e, "admin: cannot build the preview");
            return pages::server_error(site);
        }
    };
    let issues = match issues::recent_progress(&state.db, now, 20).await {
        Ok(rows) => rows.into_iter().map(ProgressView::from).collect(),
        Err(e) => return pages::db_error(site, "read issues", e),
    };
    let snapshot = preview.snapshot.as_ref();
    let articles = preview
        .articles
        .iter()
        .take(snapshot.map(|s| s.articles).unwrap_or(0))
        .map(|a| (a.title.clone(), a.url.clone()))
        .collect();
    let c = Chrome::new(site, &session, Some(&staff));
    html(
        StatusCode::OK,
        &IssuesPage {
            c,
            week: preview.week.to_string(),
            already_dispatched: preview.already_dispatched,
            subject: snapshot.map(|s| s.subject.clone()),
            articles,
            text: snapshot.map(|s| s.preview().text).unwrap_or_default(),
            recipients: preview.recipients,
            test_key: new_key(),
            issues,
        },
    )
}

/// The draft's HTML for the preview frame. It is the digest as mailed, so
/// its own inline styles are allowed, and nothing else: no script, no
/// forms (`sandbox`), and only our own admin pages may frame it.
pub async fn preview_html(state: web::Data<AdminState>) -> HttpResponse {
    let site = state.site.as_str();
    let preview = match dispatch::preview(&state.db, &state.settings, Utc::now()).await {
        Ok(preview) => preview,
        Err(e) => {
            tracing::error!(error = %e, "admin: cannot build the preview");
            return pages::server_error(site);
        }
    };
    let body = match preview.snapshot {
        Some(snapshot) => snapshot.preview().html,
        None => "<!DOCTYPE html><p>No articles for this week's issue yet.</p>".into(),
    };
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((
            CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; \
             frame-ancestors 'self'; sandbox",
        ))
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(body)
}

/// At most this many addresses per test send.
const MAX_TEST_RECIPIENTS: usize = 20;

fn parse_recipients(raw: &str, own: &str, policy: AddressPolicy) -> Result<Vec<SubscriberEmail>, String> {
    let raw = if raw.trim().is_empty() { own } else { raw };
    let mut recipients: Vec<SubscriberEmail> = Vec::new();
    for part in raw
        .split([',', ';', '\n', '\r', ' ', '\t'])
        .filter(|p| !p.trim().is_empty())
    {
        let email = SubscriberEmail::parse(part, policy).map_err(|e| format!("{}: {e}", part.trim()))?;
        if !recipients.iter().any(|r| r.dedupe_key() == email.dedupe_key()) {
            recipients.push(email);
        }
    }
    if recipients.len() > MAX_TEST_RECIPIENTS {
        return Err(format!("a test goes to at most {MAX_TEST_RECIPIENTS} addresses"));
    }
    Ok(recipients)
}

pub async fn send_test(
    req: HttpRequest,
    body: web::Payload,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> HttpResponse {
    let site = state.site.as_str();
    let fields = match session::read_form(&req, body, &session, 16 * 1024, site).await {
        Ok(fields) => fields,
        Err(page) => return page,
    };
    let recipients = match parse_recipients(
        fields.get("recipients"),
        &staff.email,
        state.settings.subscriptions.address_policy(),
    ) {
        Ok(recipients) => recipients,
        Err(why) => {
            return pages::bad_request(site, "The test cannot be sent", &format!("Check the addresses: {why}."));
        }
    };
    let Ok(key) = Uuid::parse_str(fields.get("key")) else {
        return pages::bad_request(
            site,
            "The test cannot be sent",
            "The form is incomplete; reload the page.",
        );
    };
    let now = Utc::now();
    let preview = match dispatch::preview(&state.db, &state.settings, now).await {
        Ok(preview) => preview,
        Err(e) => {
            tracing::error!(error = %e, "admin: cannot build the preview");
            return pages::server_error(site);
        }
    };
    let Some(snapshot) = preview.snapshot else {
        return pages::bad_request(
            site,
            "Nothing to send yet",
            "This week's issue has no articles, so there is nothing to test. Add or import articles first.",
        );
    };
    match submissions::first_use(&state.db, &format!("test:{key}"), "test send", now).await {
        Ok(true) => {}
        Ok(false) => {
            session::flash(&session, "That test was already sent; it went out once.");
            return session::see_other("/admin/issues");
        }
        Err(e) => return pages::db_error(site, "record a submission", e),
    }
    if let Err(e) = test_sends::queue(&state.db, &snapshot, &recipients, now).await {
        return pages::db_error(site, "queue a test send", e);
    }
    state.mail_wakeup.notify_one();
    let to: Vec<&str> = recipients.iter().map(SubscriberEmail::as_str).collect();
    tracing::info!(staff = %staff.email, to = ?to, "test send queued");
    session::flash(
        &session,
        format!("A test of this week's issue is on its way to {}.", to.join(", ")),
    );
    session::see_other("/admin/issues")
}

#[derive(Template)]
#[template(path = "web/admin/send.html")]
struct ConfirmSendPage {
    c: Chrome,
    week: String,
    subject: String,
    articles: usize,
    recipients: i64,
    key: String,
}

pub async fn confirm_send(session: Session, staff: web::ReqData<Staff>, state: web::Data<AdminState>) -> HttpResponse {
    let site = state.site.as_str();
    let preview = match dispatch::preview(&state.db, &state.settings, Utc::now()).await {
        Ok(preview) => preview,
        Err(e) => {
            tracing::error!(error = %e, "admin: cannot build the preview");
            return pages::server_error(site);
        }
    };
    if preview.already_dispatched {
        return session::see_other(&format!("/admin/issues/{}", preview.week));
    }
    let Some(snapshot) = preview.snapshot else {
        return pages::bad_request(
            site,
            "Nothing to send yet",
            "This week's issue has no articles. Add or import articles first.",
        );
    };
    let c = Chrome::new(site, &session, Some(&staff));
    html(
        StatusCode::OK,
        &ConfirmSendPage {
            c,
            week: preview.week.to_string(),
            subject: snapshot.subject,
            articles: snapshot.articles,
            recipients: preview.recipients,
            key: new_key(),
        },
    )
}

/// Queues this week's issue. The form's idempotency key makes a double
/// click or a resubmitted form act once; the week's issue is unique too.
pub async fn send_now(
    req: HttpRequest,
    body: web::Payload,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> HttpResponse {
    let site = state.site.as_str();
    let fields = match session::read_form(&req, body, &session, 4096, site).await {
        Ok(fields) => fields,
        Err(page) => return page,
    };
    let Ok(key) = Uuid::parse_str(fields.get("key")) else {
        return pages::bad_request(
            site,
            "The issue was not sent",
            "The form is incomplete; open the send page again.",
        );
    };
    let now = Utc::now();
    let week = state.settings.schedule.issue_week(now);
    match submissions::first_use(&state.db, &format!("send:{key}"), "send now", now).await {
        Ok(true) => {}
        Ok(false) => {
            session::flash(&session, "This send was already submitted; the issue is queued once.");
            return session::see_other(&format!("/admin/issues/{week}"));
        }
        Err(e) => return pages::db_error(site, "record a submission", e),
    }
    match dispatch::dispatch(&state.db, &state.settings, now).await {
        Ok(Dispatched::Queued {
            week,
            recipients,
            articles,
        }) => {
            tracing::info!(staff = %staff.email, %week, recipients, articles, "issue queued from the admin");
            state.mail_wakeup.notify_one();
            session::flash(
                &session,
                format!("{week} is queued for {recipients} readers ({articles} articles)."),
            );
            session::see_other(&format!("/admin/issues/{week}"))
        }
        Ok(Dispatched::AlreadyDispatched { week }) => {
            session::flash(
                &session,
                format!("{week} had already been sent; nothing was queued again."),
            );
            session::see_other(&format!("/admin/issues/{week}"))
        }
        Ok(Dispatched::NothingNew { .. }) => pages::bad_request(
            site,
            "Nothing to send",
            "No articles were published since the last issue, so no issue was queued.",
        ),
        Err(e) => {
            tracing::error!(error = %e, "admin: cannot dispatch");
            pages::server_error(site)
        }
    }
}

#[derive(Template)]
#[template(path = "web/admin/issue.html")]
struct IssuePage {
    c: Chrome,
    p: ProgressView,
}

async fn find(state: &AdminState, raw_week: &str) -> Result<(Uuid, ProgressView), HttpResponse> {
    let site = state.site.as_str();
    let Some(week) = IssueWeek::parse(raw_week) else {
        return Err(pages::not_found(site, "issue"));
    };
    match issues::progress(&state.db, week, Utc::now()).await {
        Ok(Some(progress)) => Ok((progress.id, progress.into())),
        Ok(None) => Err(pages::not_found(site, "issue")),
        Err(e) => Err(pages::db_error(site, "read an issue", e)),
    }
}

pub async fn issue(
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> HttpResponse {
    match find(&state, &path).await {
        Ok((_, p)) => {
            let c = Chrome::new(&state.site, &session, Some(&staff));
            html(StatusCode::OK, &IssuePage { c, p })
        }
        Err(page) => page,
    }
}

/// The counts as JSON, for the progress page's script.
pub async fn progress_json(path: web::Path<String>, state: web::Data<AdminState>) -> HttpResponse {
    match find(&state, &path).await {
        Ok((_, p)) => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, "application/json"))
            .body(p.json()),
        Err(page) => page,
    }
}

/// What staff can do to a send.
#[derive(Debug, Clone, Copy)]
enum Action {
    Pause,
    Resume,
    Cancel,
    RetryFailed,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Cancel => "cancel",
            Action::RetryFailed => "retry",
        }
    }

    fn done(self) -> &'static str {
        match self {
            Action::Pause => "Sending is paused; copies already in flight still finish.",
            Action::Resume => "Sending resumed.",
            Action::Cancel => "The send is cancelled; readers not yet mailed will not get it.",
            Action::RetryFailed => "The failed copies are queued again.",
        }
    }
}

async fn control(
    req: HttpRequest,
    body: web::Payload,
    session: Session,
    state: web::Data<AdminState>,
    raw_week: &str,
    action: Action,
) -> HttpResponse {
    let site = state.site.as_str();
    if let Err(page) = session::read_form(&req, body, &session, 4096, site).await {
        return page;
    }
    let (id, p) = match find(&state, raw_week).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let now = Utc::now();
    let result = match action {
        Action::Pause => issues::pause(&state.db, id, now).await,
        Action::Resume => issues::resume(&state.db, id, now).await,
        Action::Cancel => issues::cancel(&state.db, id, now).await,
        Action::RetryFailed => issues::retry_failed(&state.db, id, now)
            .await
            .map(|n| if n > 0 { Control::Done } else { Control::NotApplicable }),
    };
    let message = match result {
        Err(e) => return pages::db_error(site, action.verb(), e),
        Ok(Control::Done) => {
            if matches!(action, Action::Resume | Action::RetryFailed) {
                state.mail_wakeup.notify_one();
            }
            action.done().to_owned()
        }
        Ok(Control::NotApplicable) => format!("Nothing to {}: the issue is {}.", action.verb(), p.state),
    };
    session::flash(&session, message);
    session::see_other(&format!("/admin/issues/{}", p.week))
}

pub async fn pause(
    req: HttpRequest,
    body: web::Payload,
    path: web::Path<String>,
    session: Session,
    state: web::Data<AdminState>,
) -> HttpResponse {
    control(req, body, session, state, &path, Action::Pause).await
}

pub async fn resume(
    req: HttpRequest,
    body: web::Payload,
    path: web::Path<String>,
    session: Session,
    state: web::Data<AdminState>,
) -> HttpResponse {
    control(req, body, session, state, &path, Action::Resume).await
}

pub async fn cancel(
    req: HttpRequest,
    body: web::Payload,
    path: web::Path<String>,
    session: Session,
    state: web::Data<AdminState>,
) -> HttpResponse {
    control(req, body, session, state, &path, Action::Cancel).await
}

pub async fn retry_failed(
    req: HttpRequest,
    body: web::Payload,
    path: web::Path<String>,
    session: Session,
    state: web::Data<AdminState>,
) -> HttpResponse {
    control(req, body, session, state, &path, Action::RetryFailed).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_recipients_default_to_the_staff_member_and_are_checked() {
        let own = parse_recipients("  ", "me@example.org", AddressPolicy::default()).unwrap();
        assert_eq!(own.len(), 1);
        assert_eq!(own[0].as_str(), "me@example.org");
        let list = parse_recipients(
            "a@example.org, b@example.org\nA@example.org",
            "me@example.org",
            AddressPolicy::default(),
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        assert!(
            parse_recipients("a@example.org, nope", "me@example.org", AddressPolicy::default())
                .unwrap_err()
                .starts_with("nope")
        );
    }
}
