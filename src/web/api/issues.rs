//! `/api/v1/issues`: the issues sent (or being sent) with their state and
//! delivery counts, as the staff area's issue pages show them, and a dry
//! run of this week's issue: what `gazette dispatch --dry-run` and the
//! staff preview compute, written nowhere.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::paging::{PageSizes, Paging};
use super::problem::{Kind, Problem};
use crate::db::issue_report::{self, Aftermath};
use crate::db::issues::{self, IssueProgress};
use crate::digest::dispatch;
use crate::domain::IssueWeek;

/// Issues per page: when the caller does not say, and at most.
const PAGE_SIZES: PageSizes = PageSizes { default: 20, max: 100 };

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// What became of an issue's copies so far.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryCounts {
    /// Copies in all.
    pub total: i64,
    /// Waiting in the queue (some after a temporary failure: `deferred`).
    pub queued: i64,
    /// With a worker right now.
    pub sending: i64,
    pub sent: i64,
    /// Given up on.
    pub failed: i64,
    /// Not sent: the reader left or bounced before their copy's turn.
    pub skipped: i64,
    /// Sent in the last minute.
    pub sent_last_minute: i64,
}

impl From<&IssueProgress> for DeliveryCounts {
    fn from(p: &IssueProgress) -> Self {
        Self {
            total: p.total(),
            queued: p.queued,
            sending: p.sending,
            sent: p.sent,
            failed: p.failed,
            skipped: p.skipped,
            sent_last_minute: p.sent_last_minute,
        }
    }
}

/// An issue as lists show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssueSummary {
    /// Its ISO week, which names it.
    #[schema(example = "2026-W48")]
    pub week: String,
    pub subject: String,
    /// `sending`, `paused`, `cancelled` or `sent`.
    #[schema(pattern = "^(sending|paused|cancelled|sent)$")]
    pub status: String,
    /// Articles in it.
    pub articles: i32,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub deliveries: DeliveryCounts,
}

impl From<IssueProgress> for IssueSummary {
    fn from(p: IssueProgress) -> Self {
        Self {
            deliveries: DeliveryCounts::from(&p),
            status: p.state().as_str().to_owned(),
            week: p.week,
            subject: p.subject,
            articles: p.article_count,
            created_at: time(p.created_at),
        }
    }
}

/// What readers did because of an issue.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssueAftermath {
    /// When its last copy went out.
    #[schema(format = DateTime)]
    pub last_sent_at: Option<String>,
    /// Copies waiting for another try after a temporary failure.
    pub deferred: i64,
    /// Readers whose copy bounced for good.
    pub bounced: i64,
    /// Readers who reported it as spam.
    pub complained: i64,
    /// Readers who left through its link or list headers.
    pub unsubscribed: i64,
}

impl From<Aftermath> for IssueAftermath {
    fn from(a: Aftermath) -> Self {
        Self {
            last_sent_at: a.last_sent_at.map(time),
            deferred: a.deferred,
            bounced: a.bounced,
            complained: a.complained,
            unsubscribed: a.unsubscribed,
        }
    }
}

/// One issue, with what followed its send.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssueDetail {
    #[serde(flatten)]
    pub issue: IssueSummary,
    pub aftermath: IssueAftermath,
}

/// A page of issues.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuePage {
    pub issues: Vec<IssueSummary>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// Which issues to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Issues per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u16>,
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
}

/// One article of a dry run.
#[derive(Debug, Serialize, ToSchema)]
pub struct DryRunArticle {
    pub title: String,
    pub url: String,
    pub author: Option<String>,
    #[schema(format = DateTime)]
    pub published_at: String,
    pub summary: String,
    /// Where it came from (a source's or feed's name), when known.
    pub source: Option<String>,
}

/// This week's issue as it would be queued now; nothing is written.
#[derive(Debug, Serialize, ToSchema)]
pub struct DryRun {
    /// The ISO week of now, in `schedule.timezone`.
    #[schema(example = "2026-W48")]
    pub week: String,
    /// The week has its issue already: a dispatch would queue nothing.
    pub already_dispatched: bool,
    /// Articles published since this moment are in it.
    #[schema(format = DateTime)]
    pub since: String,
    /// The subject in the site's language; `null` when there is no article.
    pub subject: Option<String>,
    /// Readers it would be queued for.
    pub recipients: i64,
    /// Its articles in the site's language's order.
    pub articles: Vec<DryRunArticle>,
}

/// Issues, newest week first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/issues",
    operation_id = "listIssues",
    tag = "issues",
    params(ListQuery),
    responses((status = 200, description = "A page of issues", body = IssuePage))
)]
pub async fn list(query: web::Query<ListQuery>, state: web::Data<ApiState>) -> Result<HttpResponse, Problem> {
    let query = query.into_inner();
    // Newest first: the page starts after its cursor's week, going back.
    let paging = Paging::parse(query.limit, query.cursor.as_deref(), PAGE_SIZES, IssueWeek::parse)?;
    let found = issues::progress_page(&state.db, paging.after, Utc::now(), paging.rows_to_read()).await?;
    let (found, next_cursor) = paging.page(found, |i| i.week.clone());
    Ok(HttpResponse::Ok().json(IssuePage {
        issues: found.into_iter().map(IssueSummary::from).collect(),
        next_cursor,
    }))
}

/// One issue: its state, its delivery counts and what followed its send.
#[utoipa::path(
    get,
    path = "/api/v1/issues/{week}",
    operation_id = "showIssue",
    tag = "issues",
    params(("week" = String, Path, description = "The issue's ISO week", example = "2026-W48",
            pattern = "^[0-9]{4}-W[0-9]{2}$")),
    responses((status = 200, description = "The issue", body = IssueDetail))
)]
pub async fn show(week: web::Path<String>, state: web::Data<ApiState>) -> Result<HttpResponse, Problem> {
    let week = IssueWeek::parse(&week).ok_or_else(|| Problem::new(Kind::NotFound))?;
    let progress = issues::progress(&state.db, week, Utc::now())
        .await?
        .ok_or_else(|| Problem::new(Kind::NotFound))?;
    let aftermath = issue_report::aftermath(&state.db, progress.id).await?;
    Ok(HttpResponse::Ok().json(IssueDetail {
        issue: progress.into(),
        aftermath: aftermath.into(),
    }))
}

/// This week's issue as `gazette dispatch --dry-run` computes it: week,
/// recipients, articles, subject. Nothing is queued or written.
#[utoipa::path(
    get,
    path = "/api/v1/issues/dry-run",
    operation_id = "dryRunIssue",
    tag = "issues",
    responses((status = 200, description = "This week's issue as it would go out now", body = DryRun))
)]
pub async fn dry_run(state: web::Data<ApiState>) -> Result<HttpResponse, Problem> {
    let now = Utc::now();
    let preview = dispatch::preview(&state.db, &state.settings, now)
        .await
        .map_err(Problem::unexpected)?;
    let issue = preview.issue.as_ref();
    let in_issue = issue.map_or(0, |i| i.articles.min(preview.articles.len()));
    Ok(HttpResponse::Ok().json(DryRun {
        week: preview.week.to_string(),
        already_dispatched: preview.already_dispatched,
        since: time(preview.since),
        subject: issue.map(|i| i.subject.clone()),
        recipients: preview.recipients,
        articles: preview.articles[..in_issue]
            .iter()
            .map(|a| DryRunArticle {
                title: a.title.clone(),
                url: a.url.clone(),
                author: a.author.clone(),
                published_at: time(a.published_at),
                summary: a.summary.clone(),
                source: a.source_name.clone(),
            })
            .collect(),
    }))
}
