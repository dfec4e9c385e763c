//! Assembling this week's issue. So far the preview (`gazette dispatch
//! --dry-run`); storing the issue and queueing it for every confirmed
//! reader arrive with the delivery engine.

use chrono::{DateTime, Duration, Utc};

use crate::config::Settings;
use crate::db::Db;
use crate::db::articles;
use crate::db::subscribers;
use crate::digest::render::{self, DigestArticle, DigestFrame, DigestSnapshot};
use crate::digest::week::IssueWeek;
use crate::domain::SubscriberStatus;

/// This week's issue as it would go out, written nowhere.
pub struct Preview {
    pub week: IssueWeek,
    /// Articles published from here on are in it.
    pub since: DateTime<Utc>,
    pub articles: Vec<DigestArticle>,
    pub snapshot: Option<DigestSnapshot>,
    pub recipients: i64,
}

/// Builds the preview of the issue for the week of `now`: the articles
/// published in the last 7 days (the first issue's window), newest first,
/// capped at `digest.max_articles`.
pub async fn preview(db: &Db, settings: &Settings, now: DateTime<Utc>) -> Result<Preview, String> {
    let week = IssueWeek::of(now);
    let since = now - Duration::days(7);
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
            site_url: settings.server.base_url.as_str(),
            postal_address: &settings.digest.postal_address,
            subject_template: &settings.digest.subject,
        };
        Some(render::render(&frame, week, now, &articles).map_err(|e| format!("cannot render the digest: {e}"))?)
    };
    Ok(Preview {
        week,
        since,
        articles,
        snapshot,
        recipients,
    })
}
