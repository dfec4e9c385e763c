//! `/admin`: readers by status, signups and confirmations over 30 days as
//! a chart drawn on the server (SVG, no script), this week's draft, and the
//! last issues with their delivery progress, and the SMTP relays' figures
//! as the workers report them.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::AdminState;
use super::chrome::{Chrome, Section, html};
use super::issues::ProgressView;
use super::session::Staff;
use crate::db::stats::IssueFeedback;
use crate::db::{issues, relay_status, stats, subscriber_admin};
use crate::digest::dispatch;
use crate::web::error::PageError;

const DAYS: usize = 30;

/// One day's bars, in SVG user units.
pub struct Bar {
    pub x: u32,
    pub signups_y: u32,
    pub signups_h: u32,
    pub confirmations_y: u32,
    pub confirmations_h: u32,
    pub label: String,
    pub title: String,
}

pub struct Chart {
    pub bars: Vec<Bar>,
    pub max: usize,
    pub total_signups: usize,
    pub total_confirmations: usize,
}

const CHART_HEIGHT: u32 = 100;

/// Buckets the times into the last [`DAYS`] days (UTC) ending `today`.
pub fn chart(today: NaiveDate, signups: &[DateTime<Utc>], confirmations: &[DateTime<Utc>]) -> Chart {
    let first = today - Duration::days(DAYS as i64 - 1);
    let bucket = |times: &[DateTime<Utc>]| {
        let mut counts = [0usize; DAYS];
        for t in times {
            let day = (t.date_naive() - first).num_days();
            if (0..DAYS as i64).contains(&day) {
                counts[day as usize] += 1;
            }
        }
        counts
    };
    let (s, c) = (bucket(signups), bucket(confirmations));
    let max = s.iter().chain(c.iter()).copied().max().unwrap_or(0).max(1);
    let height = |n: usize| (n as u32 * CHART_HEIGHT).div_ceil(max as u32);
    let bars = (0..DAYS)
        .map(|i| {
            let day = first + Duration::days(i as i64);
            let (sh, ch) = (height(s[i]), height(c[i]));
            Bar {
                x: 10 * i as u32,
                signups_y: CHART_HEIGHT - sh,
                signups_h: sh,
                confirmations_y: CHART_HEIGHT - ch,
                confirmations_h: ch,
                label: if i % 7 == 0 {
                    day.format("%-d %b").to_string()
                } else {
                    String::new()
                },
                title: format!("{}: {} signups, {} confirmations", day.format("%-d %b"), s[i], c[i]),
            }
        })
        .collect();
    Chart {
        bars,
        max,
        total_signups: s.iter().sum(),
        total_confirmations: c.iter().sum(),
    }
}

pub struct Draft {
    /// The week being shaped: this week's, or next week's once this
    /// week's (`sent_week`) has gone out.
    pub week: String,
    pub sent_week: String,
    pub already_dispatched: bool,
    /// When staff scheduled it to go out, in the schedule's zone.
    pub scheduled: Option<String>,
    pub articles: usize,
    pub recipients: i64,
    pub subject: Option<String>,
}

/// A relay's line: every worker's figures added up (`db::relay_status`).
pub struct RelayView {
    pub relay: String,
    /// "healthy", or "cooling down until 14:05:09 UTC".
    pub state: String,
    pub sent: i64,
    pub deferred: i64,
    pub failed: i64,
    pub unreachable: i64,
}

impl From<relay_status::RelayStatus> for RelayView {
    fn from(status: relay_status::RelayStatus) -> Self {
        Self {
            state: match status.cooling_until {
                Some(until) => format!("cooling down until {}", until.format("%H:%M:%S UTC")),
                None => "healthy".into(),
            },
            relay: status.relay,
            sent: status.sent,
            deferred: status.deferred,
            failed: status.failed,
            unreachable: status.unreachable,
        }
    }
}

#[derive(Template)]
#[template(path = "web/admin/dashboard.html")]
struct DashboardPage {
    c: Chrome,
    counts: subscriber_admin::StatusCounts,
    chart: Chart,
    draft: Option<Draft>,
    /// When the built-in scheduler next dispatches, in its time zone.
    next_run: Option<String>,
    /// The draft's week and the time staff chose for it, when they did:
    /// that is the next send.
    staff_send: Option<(String, String)>,
    cron: String,
    issues: Vec<ProgressView>,
    relays: Vec<RelayView>,
    feedback: Option<FeedbackView>,
    /// Policy blocks over the last [`POLICY_DAYS`] days, per receiving domain.
    policy_blocks: Vec<(String, i64)>,
    policy_days: i64,
}

/// Above these, mailbox providers start to distrust the sender (Gmail's
/// bulk-sender rules want complaints well under 0.3 %).
const BOUNCE_WARNING: f64 = 0.02;
const COMPLAINT_WARNING: f64 = 0.001;
/// The window of the policy blocks per domain.
const POLICY_DAYS: i64 = 30;

/// The last issue's bounce and complaint rates, as the dashboard shows them.
pub struct FeedbackView {
    pub week: String,
    pub sent: i64,
    pub failed: i64,
    pub bounced: i64,
    pub complained: i64,
    pub bounce_rate: String,
    pub complaint_rate: String,
    pub bounce_warning: bool,
    pub complaint_warning: bool,
}

impl From<IssueFeedback> for FeedbackView {
    fn from(f: IssueFeedback) -> Self {
        let (bounce, complaint) = (f.bounce_rate(), f.complaint_rate());
        Self {
            bounce_rate: percent(bounce),
            complaint_rate: percent(complaint),
            bounce_warning: bounce > BOUNCE_WARNING,
            complaint_warning: complaint > COMPLAINT_WARNING,
            week: f.week,
            sent: f.sent,
            failed: f.failed,
            bounced: f.bounced,
            complained: f.complained,
        }
    }
}

/// A rate as a percentage, with enough places to tell 0.1 % apart.
fn percent(rate: f64) -> String {
    format!("{:.2} %", rate * 100.0)
}

pub async fn page(
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let site = state.site.as_str();
    let now = Utc::now();
    let counts = subscriber_admin::status_counts(&state.db).await?;
    let today = now.date_naive();
    let since = (today - Duration::days(DAYS as i64 - 1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    let (signups, confirmations) = subscriber_admin::activity_since(&state.db, since).await?;
    let schedule = &state.settings.schedule;
    let in_zone = |at: chrono::DateTime<Utc>| {
        at.with_timezone(&schedule.timezone.0)
            .format("%A %-d %B %Y, %H:%M %Z")
            .to_string()
    };
    let draft = match dispatch::preview(&state.db, &state.settings, now).await {
        Ok(preview) => Some(Draft {
            week: preview.draft_week.to_string(),
            sent_week: preview.week.to_string(),
            already_dispatched: preview.already_dispatched,
            scheduled: preview.draft.send_at.map(in_zone),
            articles: preview.issue.as_ref().map(|s| s.articles).unwrap_or(0),
            recipients: preview.recipients,
            subject: preview.issue.map(|s| s.subject),
        }),
        Err(e) => {
            // The draft is quoted from articles: outside text, escaped.
            tracing::error!(error = %crate::terminal::escape(&e.to_string()), "admin: cannot build this week's draft");
            None
        }
    };
    let issues = issues::recent_progress(&state.db, now, 5)
        .await?
        .into_iter()
        .map(ProgressView::from)
        .collect();
    let relays = relay_status::read(&state.db, now)
        .await?
        .into_iter()
        .map(RelayView::from)
        .collect();
    let feedback = stats::last_issue_feedback(&state.db).await?.map(FeedbackView::from);
    let policy_blocks = stats::policy_blocks_by_domain(&state.db, now - Duration::days(POLICY_DAYS), 20).await?;
    let next_run = schedule.next_run(now).map(in_zone);
    let staff_send = draft
        .as_ref()
        .and_then(|d| d.scheduled.clone().map(|at| (d.week.clone(), at)));
    let c = Chrome::new(site, &session, Some(&staff)).in_section(Section::Dashboard);
    Ok(html(
        StatusCode::OK,
        &DashboardPage {
            c,
            counts,
            chart: chart(today, &signups, &confirmations),
            draft,
            next_run,
            staff_send,
            cron: schedule.cron.as_str().to_owned(),
            issues,
            relays,
            feedback,
            policy_blocks,
            policy_days: POLICY_DAYS,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warnings_start_above_two_percent_bounces_and_a_tenth_of_a_percent_complaints() {
        let view = |sent, failed, bounced, complained| {
            FeedbackView::from(IssueFeedback {
                week: "2026-W48".into(),
                sent,
                failed,
                bounced,
                complained,
            })
        };
        let at_the_limits = view(1000, 0, 20, 1);
        assert!(!at_the_limits.bounce_warning && !at_the_limits.complaint_warning);
        assert_eq!(
            (
                at_the_limits.bounce_rate.as_str(),
                at_the_limits.complaint_rate.as_str()
            ),
            ("2.00 %", "0.10 %")
        );
        let over = view(990, 10, 11, 2);
        assert!(
            over.bounce_warning && over.complaint_warning,
            "{} {}",
            over.bounce_rate,
            over.complaint_rate
        );
        let none_sent = view(0, 0, 0, 0);
        assert!(!none_sent.bounce_warning && none_sent.bounce_rate == "0.00 %");
    }

    #[test]
    fn the_chart_counts_each_day_and_scales_to_the_busiest() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let at = |d: u32| {
            NaiveDate::from_ymd_opt(2026, 11, d)
                .unwrap()
                .and_hms_opt(12, 0, 0)
                .unwrap()
                .and_utc()
        };
        let old = NaiveDate::from_ymd_opt(2026, 10, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        let chart = chart(today, &[at(28), at(28), at(27), old], &[at(28)]);
        assert_eq!((chart.total_signups, chart.total_confirmations, chart.max), (3, 1, 2));
        let last = chart.bars.last().unwrap();
        assert_eq!((last.signups_h, last.confirmations_h), (100, 50));
        assert_eq!(chart.bars[28].signups_h, 50);
        assert_eq!(chart.bars.len(), 30);
    }
}
