//! `/admin/issues`: this week's preview exactly as readers get it, test
//! sends, "send now" (confirmed, and idempotent), and the progress of a
//! send with pause, resume, cancel and "retry failed".

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::AdminState;
use super::chrome::{Chrome, Section, html};
use super::field_errors::FieldErrors;
use super::session::{self, Staff, StaffForm};
use crate::db::issue_report::{self, Aftermath};
use crate::db::issues::{self, Control, IssueProgress};
use crate::db::{link_clicks, submissions, test_sends};
use crate::digest::dispatch::{self, Dispatched, Preview};
use crate::domain::{AddressPolicy, SubscriberEmail};
use crate::domain::{IssueState, IssueWeek};
use crate::links::paths;
use crate::web::error::PageError;

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
    /// What staff can do to the send now.
    pub actions: Vec<Action>,
}

impl From<IssueProgress> for ProgressView {
    fn from(p: IssueProgress) -> Self {
        Self {
            actions: Action::ALL.into_iter().filter(|a| a.offered(&p)).collect(),
            state: p.state().as_str(),
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
    /// Whether the issue's page offers `verb` (an [`Action`]'s).
    pub fn offers(&self, verb: &str) -> bool {
        self.actions.iter().any(|a| a.verb() == verb)
    }

    fn json(&self) -> String {
        let actions: Vec<String> = self.actions.iter().map(|a| format!(r#""{}""#, a.verb())).collect();
        // Numbers and fixed words: nothing to escape.
        format!(
            r#"{{"week":"{}","state":"{}","total":{},"settled":{},"queued":{},"sent":{},"failed":{},"skipped":{},"per_minute":{},"actions":[{}]}}"#,
            self.week,
            self.state,
            self.total,
            self.settled,
            self.queued,
            self.sent,
            self.failed,
            self.skipped,
            self.per_minute,
            actions.join(",")
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
    /// The week being shaped: this week's, or next week's once this
    /// week's has gone out.
    week: String,
    /// This week's issue has gone out (`sent_week`).
    already_dispatched: bool,
    sent_week: String,
    subject: Option<String>,
    articles: Vec<DraftArticle>,
    text: String,
    recipients: i64,
    test_key: String,
    forms: DeskForms,
    /// The schedule's zone, as the "send at" field is read in it.
    timezone: String,
    /// The sections of the draft's stories, in the digest's order.
    sections: Vec<String>,
    /// When the draft is scheduled to go out, in the schedule's zone.
    scheduled: Option<String>,
    /// When the weekly schedule fires next, in the schedule's zone.
    next_weekly: Option<String>,
    issues: Vec<ProgressView>,
}

/// One story of the draft, in its order: its title leads to its staff
/// page, where it is edited.
struct DraftArticle {
    id: Uuid,
    title: String,
    url: String,
    /// The first line of its summary.
    summary_line: String,
    /// Its section (its own or its source's); empty: none.
    section: String,
}

/// The forms of the issues page as a refused submission shows them again:
/// what was given and what is wrong with it. Fresh ones are the defaults.
#[derive(Default)]
pub(super) struct DeskForms {
    pub test: TestForm,
    pub shape: ShapeForm,
    pub schedule: ScheduleForm,
}

/// The test send's form as the page shows it: the addresses given (empty:
/// the staff member's own), and what is wrong with them.
#[derive(Default)]
pub(super) struct TestForm {
    recipients: Option<String>,
    errors: FieldErrors,
}

/// The issue's words as given in a refused submission.
#[derive(Default)]
pub(super) struct ShapeForm {
    pub given: Option<ShapeFields>,
    pub errors: FieldErrors,
}

pub(super) struct ShapeFields {
    pub subject: String,
    pub preheader: String,
    pub note: String,
}

/// The "send at" field as given in a refused submission.
#[derive(Default)]
pub(super) struct ScheduleForm {
    pub send_at: Option<String>,
    pub errors: FieldErrors,
}

/// This week's issue as it would go out now.
pub(super) async fn preview(state: &AdminState, now: DateTime<Utc>) -> Result<Preview, PageError> {
    dispatch::preview(&state.db, &state.settings, now)
        .await
        .map_err(PageError::unexpected)
}

pub async fn this_week(
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    issues_page(&state, &session, &staff, StatusCode::OK, DeskForms::default()).await
}

pub(super) async fn issues_page(
    state: &AdminState,
    session: &Session,
    staff: &Staff,
    status: StatusCode,
    mut forms: DeskForms,
) -> Result<HttpResponse, PageError> {
    let now = Utc::now();
    let preview = preview(state, now).await?;
    let issues = issues::recent_progress(&state.db, now, 20)
        .await?
        .into_iter()
        .map(ProgressView::from)
        .collect();
    let issue = preview.issue.as_ref();
    let in_issue = &preview.articles[..issue.map_or(0, |s| s.articles.min(preview.articles.len()))];
    let articles = in_issue
        .iter()
        .map(|a| DraftArticle {
            id: a.id,
            title: a.title.clone(),
            url: a.url.clone(),
            summary_line: a.summary.lines().next().unwrap_or_default().to_owned(),
            section: a.section.clone().unwrap_or_default(),
        })
        .collect();
    if forms.shape.given.is_none() {
        forms.shape.given = Some(ShapeFields {
            subject: issue.map(|s| s.subject.clone()).unwrap_or_default(),
            preheader: preview.draft.preheader.clone().unwrap_or_default(),
            note: preview.draft.editor_note.clone(),
        });
    }
    let schedule = &state.settings.schedule;
    let in_zone = |at: DateTime<Utc>| {
        at.with_timezone(&schedule.timezone.0)
            .format("%A %-d %B %Y, %H:%M")
            .to_string()
    };
    let c = Chrome::new(&state.site, session, Some(staff)).in_section(Section::Issues);
    Ok(html(
        status,
        &IssuesPage {
            c,
            week: preview.draft_week.to_string(),
            already_dispatched: preview.already_dispatched,
            sent_week: preview.week.to_string(),
            subject: issue.map(|s| s.subject.clone()),
            articles,
            text: issue
                .map(|s| {
                    s.preview(state.settings.site.default_language.greeting().nameless())
                        .text
                })
                .unwrap_or_default(),
            recipients: preview.recipients,
            test_key: new_key(),
            forms,
            sections: {
                // The lead stands first whatever its section: its section
                // is listed where the other stories put it.
                let mut sections: Vec<String> = Vec::new();
                for a in preview.articles.iter().skip(1).chain(preview.articles.first()) {
                    if let Some(section) = &a.section
                        && !sections.contains(section)
                    {
                        sections.push(section.clone());
                    }
                }
                sections
            },
            timezone: schedule.timezone.0.name().to_owned(),
            scheduled: preview.draft.send_at.map(in_zone),
            next_weekly: schedule.next_run(now).map(in_zone),
            issues,
        },
    ))
}

/// The draft's HTML for the preview frame. It is the digest as mailed, so
/// its own inline styles are allowed, and nothing else: no script, no
/// forms (`sandbox`), and only our own admin pages may frame it.
pub async fn preview_html(state: web::Data<AdminState>) -> Result<HttpResponse, PageError> {
    let preview = preview(&state, Utc::now()).await?;
    let body = match preview.issue {
        Some(issue) => {
            issue
                .preview(state.settings.site.default_language.greeting().nameless())
                .html
        }
        None => "<!DOCTYPE html><p>No articles for this week's issue yet.</p>".into(),
    };
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((
            CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; \
             frame-ancestors 'self'; sandbox",
        ))
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(body))
}

/// At most this many addresses per test send.
const MAX_TEST_RECIPIENTS: usize = 20;

/// Why a test send's address list was refused.
#[derive(Debug, thiserror::Error)]
enum RecipientsError {
    #[error("{given}: {reason}")]
    Address {
        given: String,
        reason: crate::domain::EmailError,
    },
    #[error("a test goes to at most {MAX_TEST_RECIPIENTS} addresses")]
    TooMany,
}

fn parse_recipients(raw: &str, own: &str, policy: AddressPolicy) -> Result<Vec<SubscriberEmail>, RecipientsError> {
    let raw = if raw.trim().is_empty() { own } else { raw };
    let mut recipients: Vec<SubscriberEmail> = Vec::new();
    for part in raw
        .split([',', ';', '\n', '\r', ' ', '\t'])
        .filter(|p| !p.trim().is_empty())
    {
        let email = SubscriberEmail::parse(part, policy).map_err(|reason| RecipientsError::Address {
            given: part.trim().to_owned(),
            reason,
        })?;
        if !recipients.iter().any(|r| r.dedupe_key() == email.dedupe_key()) {
            recipients.push(email);
        }
    }
    if recipients.len() > MAX_TEST_RECIPIENTS {
        return Err(RecipientsError::TooMany);
    }
    Ok(recipients)
}

pub async fn send_test(
    fields: StaffForm<{ 16 * 1024 }>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let recipients = match parse_recipients(
        fields.get("recipients"),
        &staff.email,
        state.settings.subscriptions.address_policy(),
    ) {
        Ok(recipients) => recipients,
        Err(why) => {
            let test = TestForm {
                recipients: Some(fields.get("recipients").to_owned()),
                errors: FieldErrors::one("recipients", format!("Check the addresses: {why}.")),
            };
            let forms = DeskForms {
                test,
                ..DeskForms::default()
            };
            return issues_page(&state, &session, &staff, StatusCode::BAD_REQUEST, forms).await;
        }
    };
    let Ok(key) = Uuid::parse_str(fields.get("key")) else {
        return Err(PageError::bad_request(
            "The test cannot be sent",
            "The form is incomplete; reload the page.",
        ));
    };
    let now = Utc::now();
    let Some(issue) = preview(&state, now).await?.issue else {
        return Err(PageError::bad_request(
            "Nothing to send yet",
            "This week's issue has no articles, so there is nothing to test. Add or import articles first.",
        ));
    };
    if !submissions::first_use(&state.db, &format!("test:{key}"), "test send", now).await? {
        session::flash(&session, "That test was already sent; it went out once.");
        return Ok(session::see_other(paths::ADMIN_ISSUES));
    }
    test_sends::queue(&state.db, &issue, &recipients, now).await?;
    state.mail_wakeup.notify_one();
    let to: Vec<&str> = recipients.iter().map(SubscriberEmail::as_str).collect();
    tracing::info!(staff = %staff.email, to = ?to, "test send queued");
    session::flash(
        &session,
        format!("A test of this week's issue is on its way to {}.", to.join(", ")),
    );
    Ok(session::see_other(paths::ADMIN_ISSUES))
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

pub async fn confirm_send(
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let preview = preview(&state, Utc::now()).await?;
    if preview.already_dispatched {
        return Ok(session::see_other(&paths::admin_issue(preview.week)));
    }
    let Some(issue) = preview.issue else {
        return Err(PageError::bad_request(
            "Nothing to send yet",
            "This week's issue has no articles. Add or import articles first.",
        ));
    };
    let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Issues);
    Ok(html(
        StatusCode::OK,
        &ConfirmSendPage {
            c,
            week: preview.week.to_string(),
            subject: issue.subject,
            articles: issue.articles,
            recipients: preview.recipients,
            key: new_key(),
        },
    ))
}

/// Queues this week's issue. The form's idempotency key makes a double
/// click or a resubmitted form act once; the week's issue is unique too.
pub async fn send_now(
    fields: StaffForm,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let Ok(key) = Uuid::parse_str(fields.get("key")) else {
        return Err(PageError::bad_request(
            "The issue was not sent",
            "The form is incomplete; open the send page again.",
        ));
    };
    let now = Utc::now();
    let week = state.settings.schedule.issue_week(now);
    if !submissions::first_use(&state.db, &format!("send:{key}"), "send now", now).await? {
        session::flash(&session, "This send was already submitted; the issue is queued once.");
        return Ok(session::see_other(&paths::admin_issue(week)));
    }
    match dispatch::dispatch(&state.db, &state.settings, now)
        .await
        .map_err(PageError::unexpected)?
    {
        Dispatched::Queued {
            week,
            recipients,
            articles,
        } => {
            tracing::info!(staff = %staff.email, %week, recipients, articles, "issue queued from the admin");
            state.mail_wakeup.notify_one();
            session::flash(
                &session,
                format!("{week} is queued for {recipients} readers ({articles} articles)."),
            );
            Ok(session::see_other(&paths::admin_issue(week)))
        }
        Dispatched::AlreadyDispatched { week } => {
            session::flash(
                &session,
                format!("{week} had already been sent; nothing was queued again."),
            );
            Ok(session::see_other(&paths::admin_issue(week)))
        }
        Dispatched::NothingNew { .. } => Err(PageError::bad_request(
            "Nothing to send",
            "No articles were published since the last issue, so no issue was queued.",
        )),
    }
}

#[derive(Template)]
#[template(path = "web/admin/issue.html")]
struct IssuePage {
    c: Chrome,
    p: ProgressView,
    /// What followed the send.
    a: AftermathView,
    /// People's clicks per story, where the issue counted them.
    clicks: Vec<link_clicks::LinkClicks>,
}

/// What followed an issue's send, as its page shows it.
struct AftermathView {
    last_sent_at: String,
    deferred: i64,
    bounced: i64,
    complained: i64,
    unsubscribed: i64,
}

impl From<Aftermath> for AftermathView {
    fn from(a: Aftermath) -> Self {
        Self {
            last_sent_at: a
                .last_sent_at
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default(),
            deferred: a.deferred,
            bounced: a.bounced,
            complained: a.complained,
            unsubscribed: a.unsubscribed,
        }
    }
}

/// The issue of the week in an address, with its id and progress.
async fn find(state: &AdminState, raw_week: &str) -> Result<(Uuid, IssueWeek, ProgressView), PageError> {
    let week = IssueWeek::parse(raw_week).ok_or_else(|| PageError::not_found("issue"))?;
    let progress = issues::progress(&state.db, week, Utc::now())
        .await?
        .ok_or_else(|| PageError::not_found("issue"))?;
    Ok((progress.id, week, progress.into()))
}

pub async fn issue(
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let (id, week, p) = find(&state, &path).await?;
    let a = issue_report::aftermath(&state.db, id).await?.into();
    let clicks = link_clicks::for_issue(&state.db, week).await?;
    let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Issues);
    Ok(html(StatusCode::OK, &IssuePage { c, p, a, clicks }))
}

/// The counts as JSON, for the progress page's script.
pub async fn progress_json(path: web::Path<String>, state: web::Data<AdminState>) -> Result<HttpResponse, PageError> {
    let (_, _, p) = find(&state, &path).await?;
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .body(p.json()))
}

/// What staff can do to a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pause,
    Resume,
    Cancel,
    RetryFailed,
}

impl Action {
    const ALL: [Self; 4] = [Self::Pause, Self::Resume, Self::Cancel, Self::RetryFailed];

    fn verb(self) -> &'static str {
        match self {
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Cancel => "cancel",
            Action::RetryFailed => "retry",
        }
    }

    /// Whether the issue's page offers this for an issue as it is now. It
    /// mirrors what `db::issues` lets through: pausing or cancelling needs
    /// copies still waiting in the queue, so neither is offered once the
    /// last copy has left, even before the worker marks the issue sent
    /// (cancelling then would take from the archive an issue every reader
    /// got).
    fn offered(self, p: &IssueProgress) -> bool {
        let state = p.state();
        match self {
            Action::Pause => state == IssueState::Sending && p.queued > 0,
            Action::Resume => state == IssueState::Paused,
            Action::Cancel => matches!(state, IssueState::Sending | IssueState::Paused) && p.queued > 0,
            Action::RetryFailed => state == IssueState::Sent && p.failed > 0,
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

    /// Why nothing was done to the issue of `week`, as it is now.
    fn refused(self, week: IssueWeek, p: &ProgressView) -> String {
        let verb = self.verb();
        match (self, p.state) {
            (Action::Pause | Action::Cancel, "sent") => {
                format!("Nothing to {verb}: {week} has been sent, and no copy is left to send.")
            }
            (Action::Pause | Action::Cancel, "sending") => {
                format!("Nothing to {verb}: no copy of {week} is left waiting; the last ones are on their way.")
            }
            (Action::RetryFailed, "sent") => format!("Nothing to retry: no copy of {week} failed."),
            (_, state) => format!("Nothing to {verb}: the issue is {state}."),
        }
    }
}

/// Does `action` to the issue of the week in an address, when its state
/// allows; otherwise changes nothing and says why. Either way the issue's
/// page follows, with the outcome in its flash.
async fn control(
    session: Session,
    state: web::Data<AdminState>,
    raw_week: &str,
    action: Action,
) -> Result<HttpResponse, PageError> {
    let (id, week, _) = find(&state, raw_week).await?;
    let now = Utc::now();
    let result = match action {
        Action::Pause => issues::pause(&state.db, id, now).await?,
        Action::Resume => issues::resume(&state.db, id, now).await?,
        Action::Cancel => issues::cancel(&state.db, id, now).await?,
        Action::RetryFailed => match issues::retry_failed(&state.db, id, now).await? {
            0 => Control::NotApplicable,
            _ => Control::Done,
        },
    };
    let message = match result {
        Control::Done => {
            if matches!(action, Action::Resume | Action::RetryFailed) {
                state.mail_wakeup.notify_one();
            }
            action.done().to_owned()
        }
        // The state as it is after the refusal: the page the form was on
        // may be older than the last copy's send.
        Control::NotApplicable => action.refused(week, &find(&state, raw_week).await?.2),
    };
    session::flash(&session, message);
    Ok(session::see_other(&paths::admin_issue(week)))
}

pub async fn pause(
    _: StaffForm,
    path: web::Path<String>,
    session: Session,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    control(session, state, &path, Action::Pause).await
}

pub async fn resume(
    _: StaffForm,
    path: web::Path<String>,
    session: Session,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    control(session, state, &path, Action::Resume).await
}

/// "Cancel the send?": how many copies stay unsent (issue 17, part 4).
pub async fn confirm_cancel(
    path: web::Path<String>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let (_, week, p) = find(&state, &path).await?;
    if !p.actions.contains(&Action::Cancel) {
        session::flash(&session, Action::Cancel.refused(week, &p));
        return Ok(session::see_other(&paths::admin_issue(week)));
    }
    let c = Chrome::new(&state.site, &session, Some(&staff)).in_section(Section::Issues);
    Ok(super::confirm::ConfirmPage {
        c,
        question: format!("Cancel the send of {week}?"),
        consequences: vec![
            match p.queued {
                1 => format!(
                    "The 1 copy not yet sent is not sent: that reader will not get “{}”. The {} already sent stay \
                     sent.",
                    p.subject, p.sent
                ),
                n => format!(
                    "The {n} copies not yet sent are not sent: those readers will not get “{}”. The {} already \
                     sent stay sent.",
                    p.subject, p.sent
                ),
            },
            "A cancelled send cannot be resumed.".to_owned(),
        ],
        items: vec![],
        texts: vec![],
        action: format!("{}/cancel", paths::admin_issue(week)),
        hidden: vec![],
        button: "Yes, cancel the send".into(),
        danger: true,
        back: paths::admin_issue(week),
        back_label: "No, back to the issue".into(),
    }
    .respond())
}

pub async fn cancel(
    fields: StaffForm,
    path: web::Path<String>,
    session: Session,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    if !super::confirm::confirmed(&fields) {
        let (_, week, _) = find(&state, &path).await?;
        return Err(super::confirm::unconfirmed(
            "cancelled",
            &format!("{}/cancel", paths::admin_issue(week)),
        ));
    }
    control(session, state, &path, Action::Cancel).await
}

pub async fn retry_failed(
    _: StaffForm,
    path: web::Path<String>,
    session: Session,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    control(session, state, &path, Action::RetryFailed).await
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
                .to_string()
                .starts_with("nope")
        );
    }
}
