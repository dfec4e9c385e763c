//! Assembling this week's issue: its articles (published since the last
//! issue's window ended, or in the last 7 days for the first), the rendered
//! issue, and one queued delivery per confirmed reader.
//!
//! [`dispatch`] is the one way an issue is queued: the scheduler, `gazette
//! dispatch` and the staff's "send now" all call it, and it holds the
//! dispatch lock while it works.

use chrono::{DateTime, Duration, Utc};

use crate::config::Settings;
use crate::db::Db;
use crate::db::articles;
use crate::db::dispatch_lock::DispatchLock;
use crate::db::issues;
use crate::db::subscribers;
use crate::digest::render::{self, DigestArticle, DigestFrame, RenderError};
use crate::domain::{IssueWeek, RenderedIssue};
use crate::i18n::Language;
use crate::links::Links;

/// Why this week's issue could not be previewed or queued. Each message
/// carries its cause, so none is also reported as a `source` (an error
/// chain printed with `{:#}` would show it twice).
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("cannot take the dispatch lock: {0}")]
    Lock(sqlx::Error),
    #[error("cannot read the issues: {0}")]
    ReadIssues(sqlx::Error),
    #[error("cannot read the articles: {0}")]
    ReadArticles(sqlx::Error),
    #[error("cannot count the subscribers: {0}")]
    CountSubscribers(sqlx::Error),
    #[error("cannot render the digest: {0}")]
    Render(RenderError),
    #[error("cannot queue the issue: {0}")]
    Queue(sqlx::Error),
}

/// This week's issue as it would go out, written nowhere.
pub struct Preview {
    pub week: IssueWeek,
    /// The week has its issue already: dispatching again does nothing.
    pub already_dispatched: bool,
    /// Articles published from here on are in it.
    pub since: DateTime<Utc>,
    pub articles: Vec<DigestArticle>,
    pub issue: Option<RenderedIssue>,
    pub recipients: i64,
}

/// Builds the preview of the issue for the week of `now`: the articles
/// published since the last issue's window ended (the last 7 days for the
/// first issue), newest first, capped at `digest.max_articles`.
pub async fn preview(db: &Db, settings: &Settings, now: DateTime<Utc>) -> Result<Preview, DispatchError> {
    let week = settings.schedule.issue_week(now);
    let already_dispatched = issues::exists(db, week).await.map_err(DispatchError::ReadIssues)?;
    let last_end = issues::last_window_end(db).await.map_err(DispatchError::ReadIssues)?;
    let since = last_end.unwrap_or(now - Duration::days(7));
    let limit = i64::from(settings.digest.max_articles);
    let rows = articles::published_between(db, since, now, limit)
        .await
        .map_err(DispatchError::ReadArticles)?;
    let articles: Vec<DigestArticle> = rows
        .into_iter()
        .map(|a| DigestArticle {
            title: a.title,
            url: a.url,
            author: a.author,
            published_at: a.published_at,
            summary: a.summary,
            source_name: a.source_name,
        })
        .collect();
    let recipients = subscribers::count_receiving(db, now)
        .await
        .map_err(DispatchError::CountSubscribers)?;
    let issue = if articles.is_empty() {
        None
    } else {
        Some(render_in(
            settings,
            settings.site.default_language,
            week,
            now,
            &articles,
        )?)
    };
    Ok(Preview {
        week,
        already_dispatched,
        since,
        articles,
        issue,
        recipients,
    })
}

/// What a dispatch did.
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

/// The week's issue with the digest's own words in `language`.
fn render_in(
    settings: &Settings,
    language: Language,
    week: IssueWeek,
    now: DateTime<Utc>,
    articles: &[DigestArticle],
) -> Result<RenderedIssue, DispatchError> {
    let publication = settings.mail.publication();
    let frame = DigestFrame {
        publication: &publication,
        links: Links::new(settings.server.base_url.clone()),
        postal_address: &settings.digest.postal_address,
        subject_template: &settings.digest.subject,
        timezone: settings.schedule.timezone.0,
        language,
    };
    render::render(&frame, week, now, articles).map_err(DispatchError::Render)
}

/// Stores this week's issue and queues it for every confirmed reader, once
/// per week: a second run finds the week's issue and queues nothing.
///
/// It waits for any other dispatch to finish first, in this process or
/// another (see [`DispatchLock`]), so two never build the same week's issue
/// side by side.
pub async fn dispatch(db: &Db, settings: &Settings, now: DateTime<Utc>) -> Result<Dispatched, DispatchError> {
    let lock = DispatchLock::acquire(db).await.map_err(DispatchError::Lock)?;
    let done = queue_issue(db, settings, now).await;
    lock.release().await;
    done
}

async fn queue_issue(db: &Db, settings: &Settings, now: DateTime<Utc>) -> Result<Dispatched, DispatchError> {
    let preview = preview(db, settings, now).await?;
    let week = preview.week;
    if preview.already_dispatched {
        return Ok(Dispatched::AlreadyDispatched { week });
    }
    let Some(issue) = preview.issue else {
        return Ok(Dispatched::NothingNew {
            week,
            since: preview.since,
        });
    };
    // Rendered once per language, each reader's copy is one of these.
    let translations = Language::all()
        .filter(|language| *language != settings.site.default_language)
        .map(|language| Ok((language, render_in(settings, language, week, now, &preview.articles)?)))
        .collect::<Result<Vec<_>, DispatchError>>()?;
    let queued = issues::create_and_queue(db, week, &issue, &translations, (preview.since, now), now)
        .await
        .map_err(DispatchError::Queue)?;
    Ok(match queued {
        Some(queued) => Dispatched::Queued {
            week,
            recipients: queued.recipients,
            articles: issue.articles,
        },
        // Another dispatch wrote the week's issue between our read and this
        // write (possible on SQLite, where the lock holds nothing): the
        // unique week turned this one away.
        None => Dispatched::AlreadyDispatched { week },
    })
}
