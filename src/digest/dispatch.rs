//! Assembling this week's issue: its articles (published since the last
//! issue's window ended, or in the last 7 days for the first), the rendered
//! snapshot, and one queued delivery per confirmed reader.

use chrono::{DateTime, Duration, Utc};

use crate::config::Settings;
use crate::db::Db;
use crate::db::articles;
use crate::db::issues;
use crate::db::subscribers;
use crate::digest::render::{self, DigestArticle, DigestFrame};
use crate::domain::SubscriberStatus;
use crate::domain::{IssueWeek, RenderedIssue};
use crate::links::Links;

/// This week's issue as it would go out, written nowhere.
pub struct Preview {
    pub week: IssueWeek,
    /// The week has its issue already: dispatching again does nothing.
    pub already_dispatched: bool,
    /// Articles published from here on are in it.
    pub since: DateTime<Utc>,
    pub articles: Vec<DigestArticle>,
    pub snapshot: Option<RenderedIssue>,
    pub recipients: i64,
}

/// Builds the preview of the issue for the week of `now`: the articles
/// published since the last issue's window ended (the last 7 days for the
/// first issue), newest first, capped at `digest.max_articles`.
pub async fn preview(db: &Db, settings: &Settings, now: DateTime<Utc>) -> Result<Preview, String> {
    let week = settings.schedule.issue_week(now);
    let already_dispatched = issues::exists(db, week)
        .await
        .map_err(|e| format!("cannot read the issues: {e}"))?;
    let last_end = issues::last_window_end(db)
        .await
        .map_err(|e| format!("cannot read the issues: {e}"))?;
    let since = last_end.unwrap_or(now - Duration::days(7));
    let limit = i64::from(settings.digest.max_articles);
    let rows = articles::published_between(db, since, now, limit)
        .await
        .map_err(|e| format!("cannot read the articles: {e}"))?;
    let articles: Vec<DigestArticle> = rows
        .into_iter()
        .map(|a| DigestArticle {
            title: a.title,
            url: a.url,
            author: a.author,
            published_at: a.published_at,
            summary: a.summary,
        })
        .collect();
    let recipients = subscribers::count_by_status(db, SubscriberStatus::Confirmed)
        .await
        .map_err(|e| format!("cannot count the subscribers: {e}"))?;
    let snapshot = if articles.is_empty() {
        None
    } else {
        let publication = settings.mail.publication();
        let frame = DigestFrame {
            publication: &publication,
            links: Links::new(settings.server.base_url.clone()),
            postal_address: &settings.digest.postal_address,
            subject_template: &settings.digest.subject,
            timezone: settings.schedule.timezone.0,
        };
        Some(render::render(&frame, week, now, &articles).map_err(|e| format!("cannot render the digest: {e}"))?)
    };
    Ok(Preview {
        week,
        already_dispatched,
        since,
        articles,
        snapshot,
        recipients,
    })
}

/// What `gazette dispatch` did.
pub enum Dispatched {
    Queued {
        week: IssueWeek,
        recipients: u64,
        articles: usize,
    },
    AlreadyDispatched {
        week: IssueWeek,
    },
    NothingNew {
        week: IssueWeek,
        since: DateTime<Utc>,
    },
}

/// Stores this week's issue and queues it for every confirmed reader, once
/// per week: a second run finds the week's issue and queues nothing.
pub async fn dispatch(db: &Db, settings: &Settings, now: DateTime<Utc>) -> Result<Dispatched, String> {
    let preview = preview(db, settings, now).await?;
    let week = preview.week;
    if preview.already_dispatched {
        return Ok(Dispatched::AlreadyDispatched { week });
    }
    let Some(snapshot) = preview.snapshot else {
        return Ok(Dispatched::NothingNew {
            week,
            since: preview.since,
        });
    };
    let queued = issues::create_and_queue(db, week, &snapshot, (preview.since, now), now)
        .await
        .map_err(|e| format!("cannot queue the issue: {e}"))?;
    Ok(match queued {
        Some(queued) => Dispatched::Queued {
            week,
            recipients: queued.recipients,
            articles: snapshot.articles,
        },
        // Another dispatch (cron and the scheduler, say) won the race.
        None => Dispatched::AlreadyDispatched { week },
    })
}
