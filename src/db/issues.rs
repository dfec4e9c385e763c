//! Issues: one per ISO week, stored as rendered (a [`RenderedIssue`], its
//! parts with their link places).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::domain::{IssueState, IssueStatus, IssueWeek, LinkedText, RenderedIssue, WebIssue};
use crate::i18n::Language;
use crate::with_pool;

/// Where the last issue's article window ended: the next one starts there.
pub async fn last_window_end(db: &Db) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_scalar("SELECT window_end FROM issues ORDER BY window_end DESC LIMIT 1")
            .fetch_optional(pool)
            .await
    })
}

/// A queued issue: its id and how many readers it goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    pub issue_id: Uuid,
    pub recipients: u64,
}

/// A story link whose clicks an issue counts (`tracking.clicks =
/// "aggregate"`): the first is position 1 (`Links::counted_click`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedLink {
    pub url: String,
    pub title: String,
}

/// Stores the week's issue (`issue` in the site's default language, and
/// its `translations`) and queues one delivery per confirmed reader, in
/// one transaction. `None` when the week has an issue already: dispatching
/// twice queues nothing twice. The issue's `counted_links` are written with
/// it.
pub async fn create_and_queue(
    db: &Db,
    week: IssueWeek,
    issue: &RenderedIssue,
    translations: &[(Language, RenderedIssue)],
    counted_links: &[CountedLink],
    window: (DateTime<Utc>, DateTime<Utc>),
    now: DateTime<Utc>,
) -> Result<Option<Queued>, sqlx::Error> {
    let issue_id = Uuid::now_v7();
    let stored = StoredParts::of(issue);
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let created = sqlx::query(
            "INSERT INTO issues (id, week, subject, html, html_links, text, text_links, article_count, window_start,
                                 window_end, status, created_at, lead_title, web_html)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'sending', $11, $12, $13)
             ON CONFLICT (week) DO NOTHING",
        )
        .bind(issue_id)
        .bind(week.to_string())
        .bind(&issue.subject)
        .bind(&stored.html)
        .bind(&stored.html_links)
        .bind(&stored.text)
        .bind(&stored.text_links)
        .bind(stored.article_count)
        .bind(window.0)
        .bind(window.1)
        .bind(now)
        .bind(stored.lead_title)
        .bind(stored.web_html)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if created == 0 {
            return Ok(None);
        }
        for (language, translated) in translations {
            let stored = StoredParts::of(translated);
            sqlx::query(
                "INSERT INTO issue_translations (issue_id, language, subject, html, html_links, text, text_links,
                                                 article_count, lead_title, web_html)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(issue_id)
            .bind(language.tag())
            .bind(&translated.subject)
            .bind(&stored.html)
            .bind(&stored.html_links)
            .bind(&stored.text)
            .bind(&stored.text_links)
            .bind(stored.article_count)
            .bind(stored.lead_title)
            .bind(stored.web_html)
            .execute(&mut *tx)
            .await?;
        }
        // Written with the issue: a digest never links to a count that is
        // not there.
        for (i, link) in counted_links.iter().enumerate() {
            sqlx::query("INSERT INTO issue_links (issue_id, position, url, title) VALUES ($1, $2, $3, $4)")
                .bind(issue_id)
                .bind(i32::try_from(i + 1).unwrap_or(i32::MAX))
                .bind(&link.url)
                .bind(&link.title)
                .execute(&mut *tx)
                .await?;
        }
        // Set-based: readers who confirm later are not added to this issue,
        // nor readers who paused the digest past it (a pause that has run
        // out is no pause: resuming needs nothing written).
        let recipients = sqlx::query(
            "INSERT INTO deliveries (issue_id, subscriber_id, status, attempts, next_attempt_at)
             SELECT $1, id, 'queued', 0, $2 FROM subscribers
             WHERE status = 'confirmed' AND (paused_until IS NULL OR paused_until <= $2)",
        )
        .bind(issue_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        // A big issue changes the table's shape at once; fresh statistics
        // keep the workers' claims on the index from the first one.
        db.refresh_statistics(crate::db::Table::Deliveries).await;
        Ok(Some(Queued { issue_id, recipients }))
    })
}

/// Marks issues whose deliveries are all settled as sent, and records
/// `issue.sent` for each in the same transaction.
pub async fn mark_finished(db: &Db) -> Result<u64, sqlx::Error> {
    let now = Utc::now();
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let finished: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE issues SET status = 'sent'
             WHERE status = 'sending' AND NOT EXISTS (
                 SELECT 1 FROM deliveries d WHERE d.issue_id = issues.id AND d.status IN ('queued', 'sending')
             )
             RETURNING id",
        )
        .fetch_all(&mut *tx)
        .await?;
        for issue in &finished {
            sqlx::query(crate::db::webhooks::RECORD_FOR_ISSUE)
                .bind(Uuid::now_v7())
                .bind(now)
                .bind(issue)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(finished.len() as u64)
    })
}

/// Whether the week has its issue already.
pub async fn exists(db: &Db, week: IssueWeek) -> Result<bool, sqlx::Error> {
    let found: Option<i32> = with_pool!(db, pool => {
        sqlx::query_scalar("SELECT 1 FROM issues WHERE week = $1").bind(week.to_string()).fetch_optional(pool).await?
    });
    Ok(found.is_some())
}

/// An issue as the archive lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ArchivedIssue {
    pub week: String,
    pub subject: String,
    /// The lead story's title, in the rendering for the language asked
    /// for; `None` for an issue stored before it was kept.
    pub lead_title: Option<String>,
    pub article_count: i32,
    pub created_at: DateTime<Utc>,
}

impl ArchivedIssue {
    /// What the archive lists the issue by: its lead story, or for an
    /// issue stored before that was kept, its subject.
    pub fn title(&self) -> &str {
        self.lead_title.as_deref().unwrap_or(&self.subject)
    }
}

/// Every dispatched issue but cancelled ones (most readers never got
/// those), newest first, each as rendered in `language` where it was.
pub async fn archive(db: &Db, language: Language) -> Result<Vec<ArchivedIssue>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT i.week, i.subject, COALESCE(t.lead_title, i.lead_title) AS lead_title,
                    COALESCE(t.article_count, i.article_count) AS article_count, i.created_at
             FROM issues i LEFT JOIN issue_translations t ON t.issue_id = i.id AND t.language = $1
             WHERE i.cancelled_at IS NULL
             ORDER BY i.week DESC",
        )
        .bind(language.tag())
        .fetch_all(pool)
        .await
    })
}

/// One archived issue as the site shows it.
pub enum ArchivedPage {
    /// Its page, in the language asked for where it was rendered in it.
    Page { web: WebIssue, created_at: DateTime<Utc> },
    /// An issue stored before pages were kept: its email as it was.
    Email(RenderedIssue),
}

#[derive(sqlx::FromRow)]
struct ArchivedColumns {
    lead_title: Option<String>,
    web_html: Option<String>,
    created_at: DateTime<Utc>,
    #[sqlx(flatten)]
    columns: RenderedColumns,
}

/// One archived issue, by week, in `language` where it was rendered in it;
/// `None` for a cancelled one.
pub async fn archived(db: &Db, week: IssueWeek, language: Language) -> Result<Option<ArchivedPage>, sqlx::Error> {
    let found: Option<ArchivedColumns> = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT CASE WHEN t.web_html IS NULL THEN i.lead_title ELSE t.lead_title END AS lead_title,
                    COALESCE(t.web_html, i.web_html) AS web_html, i.created_at,
                    i.subject, i.html, i.html_links, i.text, i.text_links, i.article_count
             FROM issues i LEFT JOIN issue_translations t ON t.issue_id = i.id AND t.language = $2
             WHERE i.week = $1 AND i.cancelled_at IS NULL",
        )
        .bind(week.to_string())
        .bind(language.tag())
        .fetch_optional(pool)
        .await?
    });
    let Some(found) = found else { return Ok(None) };
    Ok(Some(match (found.lead_title, found.web_html) {
        (Some(lead_title), Some(stories_html)) => ArchivedPage::Page {
            web: WebIssue {
                lead_title,
                stories_html,
            },
            created_at: found.created_at,
        },
        _ => ArchivedPage::Email(found.columns.into_issue()?),
    }))
}

/// A rendered issue's parts as they are written, in `issues` and
/// `test_sends` alike.
pub(crate) struct StoredParts {
    pub html: String,
    pub html_links: String,
    pub text: String,
    pub text_links: String,
    pub article_count: i32,
    /// The issue's page for the site, where the rendering made one.
    pub lead_title: Option<String>,
    pub web_html: Option<String>,
}

impl StoredParts {
    pub(crate) fn of(issue: &RenderedIssue) -> Self {
        let (html, html_links) = issue.html.to_stored();
        let (text, text_links) = issue.text.to_stored();
        Self {
            html,
            html_links,
            text,
            text_links,
            article_count: i32::try_from(issue.articles).unwrap_or(i32::MAX),
            lead_title: issue.web.as_ref().map(|web| web.lead_title.clone()),
            web_html: issue.web.as_ref().map(|web| web.stories_html.clone()),
        }
    }
}

/// A rendered part as stored with its link places; a row that does not
/// read back is an error, never a part with links in the wrong places.
fn stored_part(text: String, links: Option<&str>) -> Result<LinkedText, sqlx::Error> {
    LinkedText::from_stored(text, links).map_err(|why| sqlx::Error::Decode(Box::new(why)))
}

/// The columns a rendered issue is read from, in `issues` and `test_sends`
/// alike.
#[derive(sqlx::FromRow)]
pub(crate) struct RenderedColumns {
    subject: String,
    html: String,
    html_links: Option<String>,
    text: String,
    text_links: Option<String>,
    article_count: i32,
}

impl RenderedColumns {
    pub(crate) fn into_issue(self) -> Result<RenderedIssue, sqlx::Error> {
        Ok(RenderedIssue {
            subject: self.subject,
            html: stored_part(self.html, self.html_links.as_deref())?,
            text: stored_part(self.text, self.text_links.as_deref())?,
            articles: usize::try_from(self.article_count).unwrap_or_default(),
            web: None,
        })
    }
}

#[derive(sqlx::FromRow)]
struct WeekColumns {
    week: String,
    #[sqlx(flatten)]
    columns: RenderedColumns,
}

/// An issue's week and its rendering, as the sender needs them.
pub async fn rendered(
    db: &Db,
    issue_id: Uuid,
    language: Language,
) -> Result<Option<(IssueWeek, RenderedIssue)>, sqlx::Error> {
    // The issue in `language` where it was rendered in it; else as stored
    // in `issues` (the default language, or an issue from before).
    let found: Option<WeekColumns> = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT i.week, COALESCE(t.subject, i.subject) AS subject, COALESCE(t.html, i.html) AS html,
                    CASE WHEN t.issue_id IS NULL THEN i.html_links ELSE t.html_links END AS html_links,
                    COALESCE(t.text, i.text) AS text,
                    CASE WHEN t.issue_id IS NULL THEN i.text_links ELSE t.text_links END AS text_links,
                    COALESCE(t.article_count, i.article_count) AS article_count
             FROM issues i LEFT JOIN issue_translations t ON t.issue_id = i.id AND t.language = $2
             WHERE i.id = $1",
        )
        .bind(issue_id)
        .bind(language.tag())
        .fetch_optional(pool)
        .await?
    });
    let Some(WeekColumns { week, columns }) = found else {
        return Ok(None);
    };
    let week =
        IssueWeek::parse(&week).ok_or_else(|| sqlx::Error::Decode(format!("`{week}` is not an ISO week").into()))?;
    Ok(Some((week, columns.into_issue()?)))
}

/// An issue with its delivery counts, for the admin pages.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IssueProgress {
    pub id: Uuid,
    pub week: String,
    pub subject: String,
    pub article_count: i32,
    pub status: IssueStatus,
    pub created_at: DateTime<Utc>,
    pub paused_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub queued: i64,
    pub sending: i64,
    pub sent: i64,
    pub failed: i64,
    pub skipped: i64,
    /// Copies sent in the minute before the query.
    pub sent_last_minute: i64,
}

impl IssueProgress {
    pub fn total(&self) -> i64 {
        self.queued + self.sending + self.sent + self.failed + self.skipped
    }

    pub fn state(&self) -> IssueState {
        IssueState::of(self.status, self.paused_at.is_some(), self.cancelled_at.is_some())
    }
}

// $1: one minute ago. Grouped by the primary key, which both backends accept
// for the issue's other columns. Settled outcomes add the issue's summary of
// pruned rows (`db::retention`), one row per issue at most, so its MAX is
// its value.
macro_rules! select_progress {
    ($rest:literal) => {
        concat!(
            "SELECT i.id, i.week, i.subject, i.article_count, i.status, i.created_at, i.paused_at, i.cancelled_at,
                    COALESCE(SUM(CASE WHEN d.status = 'queued' THEN 1 ELSE 0 END), 0) AS queued,
                    COALESCE(SUM(CASE WHEN d.status = 'sending' THEN 1 ELSE 0 END), 0) AS sending,
                    COALESCE(SUM(CASE WHEN d.status = 'sent' THEN 1 ELSE 0 END), 0) + COALESCE(MAX(p.sent), 0) AS sent,
                    COALESCE(SUM(CASE WHEN d.status = 'failed' THEN 1 ELSE 0 END), 0) + COALESCE(MAX(p.failed), 0)
                        AS failed,
                    COALESCE(SUM(CASE WHEN d.status = 'skipped' THEN 1 ELSE 0 END), 0) + COALESCE(MAX(p.skipped), 0)
                        AS skipped,
                    COALESCE(SUM(CASE WHEN d.status = 'sent' AND d.sent_at >= $1 THEN 1 ELSE 0 END), 0)
                        AS sent_last_minute
             FROM issues i LEFT JOIN deliveries d ON d.issue_id = i.id
                  LEFT JOIN delivery_summaries p ON p.issue_id = i.id ",
            $rest
        )
    };
}

/// The newest issues with their progress.
pub async fn recent_progress(db: &Db, now: DateTime<Utc>, limit: i64) -> Result<Vec<IssueProgress>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(select_progress!("GROUP BY i.id ORDER BY i.week DESC LIMIT $2"))
            .bind(now - chrono::Duration::minutes(1))
            .bind(limit)
            .fetch_all(pool)
            .await
    })
}

/// Up to `limit` issues with their progress, newest week first, of the
/// weeks before `before` (all when `None`): keyset pages of the list.
pub async fn progress_page(
    db: &Db,
    before: Option<IssueWeek>,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<IssueProgress>, sqlx::Error> {
    // Weeks are `YYYY-Www`: their text sorts as they do; `~` after digits.
    let before = before.map_or_else(|| "~".to_owned(), |w| w.to_string());
    with_pool!(db, pool => {
        sqlx::query_as(select_progress!("WHERE i.week < $2 GROUP BY i.id ORDER BY i.week DESC LIMIT $3"))
            .bind(now - chrono::Duration::minutes(1))
            .bind(&before)
            .bind(limit)
            .fetch_all(pool)
            .await
    })
}

pub async fn progress(db: &Db, week: IssueWeek, now: DateTime<Utc>) -> Result<Option<IssueProgress>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(select_progress!("WHERE i.week = $2 GROUP BY i.id"))
            .bind(now - chrono::Duration::minutes(1))
            .bind(week.to_string())
            .fetch_optional(pool)
            .await
    })
}

/// Where a paused issue's queued copies wait: no worker claims them until
/// the send is resumed. The worker is left as it is (it claims by
/// `next_attempt_at`); a copy in flight when staff pause still finishes.
fn paused_until() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("9999-01-01T00:00:00Z")
        .expect("a valid date")
        .with_timezone(&Utc)
}

/// The condition, on issue `$1`, that some of its copies wait in the queue.
macro_rules! copies_waiting {
    () => {
        "EXISTS (SELECT 1 FROM deliveries WHERE issue_id = $1 AND status = 'queued')"
    };
}

/// What a control on a send in progress did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Done,
    /// The issue is not in a state where this makes sense (already sent,
    /// already paused, …): nothing changed.
    NotApplicable,
}

/// Holds back the copies of a send still waiting in the queue. A send
/// with none waiting (the last copies are with a worker) has nothing to
/// pause.
pub async fn pause(db: &Db, issue_id: Uuid, now: DateTime<Utc>) -> Result<Control, sqlx::Error> {
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let paused = sqlx::query(concat!(
            "UPDATE issues SET paused_at = $2
             WHERE id = $1 AND status = 'sending' AND paused_at IS NULL AND cancelled_at IS NULL AND ",
            copies_waiting!()
        ))
        .bind(issue_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if paused == 0 {
            return Ok(Control::NotApplicable);
        }
        sqlx::query("UPDATE deliveries SET next_attempt_at = $2 WHERE issue_id = $1 AND status = 'queued'")
            .bind(issue_id)
            .bind(paused_until())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Control::Done)
    })
}

pub async fn resume(db: &Db, issue_id: Uuid, now: DateTime<Utc>) -> Result<Control, sqlx::Error> {
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let resumed = sqlx::query(
            "UPDATE issues SET paused_at = NULL
             WHERE id = $1 AND status = 'sending' AND paused_at IS NOT NULL AND cancelled_at IS NULL",
        )
        .bind(issue_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if resumed == 0 {
            return Ok(Control::NotApplicable);
        }
        sqlx::query("UPDATE deliveries SET next_attempt_at = $2 WHERE issue_id = $1 AND status = 'queued'")
            .bind(issue_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Control::Done)
    })
}

/// Stops a send: every copy not yet handed to a worker is skipped. A send
/// with no copy left waiting cannot be cancelled: every reader has it or
/// is about to, and a cancelled issue leaves the archive.
pub async fn cancel(db: &Db, issue_id: Uuid, now: DateTime<Utc>) -> Result<Control, sqlx::Error> {
    let control = with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let cancelled = sqlx::query(concat!(
            "UPDATE issues SET cancelled_at = $2, paused_at = NULL
             WHERE id = $1 AND status = 'sending' AND cancelled_at IS NULL AND ",
            copies_waiting!()
        ))
        .bind(issue_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if cancelled == 0 {
            return Ok(Control::NotApplicable);
        }
        sqlx::query(
            "UPDATE deliveries SET status = 'skipped', last_error = 'the send was cancelled by staff'
             WHERE issue_id = $1 AND status = 'queued'",
        )
        .bind(issue_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Control::Done
    });
    mark_finished(db).await?;
    Ok(control)
}

/// Puts a finished issue's failed copies back in the queue for a fresh set
/// of attempts.
pub async fn retry_failed(db: &Db, issue_id: Uuid, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let requeued = sqlx::query(
            "UPDATE deliveries SET status = 'queued', attempts = 0, next_attempt_at = $2, locked_until = NULL
             WHERE issue_id = $1 AND status = 'failed'
               AND EXISTS (SELECT 1 FROM issues WHERE id = $1 AND status = 'sent' AND cancelled_at IS NULL)",
        )
        .bind(issue_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if requeued > 0 {
            sqlx::query("UPDATE issues SET status = 'sending' WHERE id = $1")
                .bind(issue_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(requeued)
    })
}
