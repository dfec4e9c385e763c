//! What staff shape in a week's issue before it goes out (the editor's
//! desk): its subject, preheader and note, the order of its stories, and a
//! time of its own to go out ("send at"). Dispatch reads the week's draft;
//! the scheduler reads the scheduled ones.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::domain::IssueWeek;
use crate::with_pool;

/// A week's draft as staff left it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssueDraft {
    /// `None`: from `digest.subject`.
    pub subject: Option<String>,
    /// `None`: the lead story's summary.
    pub preheader: Option<String>,
    /// As typed; parsed with `domain::EditorNote`.
    pub editor_note: String,
    /// The order of the digest's sections as staff gave it.
    pub section_order: Vec<String>,
    pub send_at: Option<DateTime<Utc>>,
    pub fired_at: Option<DateTime<Utc>>,
    /// The week's stories in the order staff gave them, lead first.
    pub order: Vec<Uuid>,
}

#[derive(sqlx::FromRow)]
struct DraftRow {
    subject: Option<String>,
    preheader: Option<String>,
    editor_note: String,
    section_order: String,
    send_at: Option<DateTime<Utc>>,
    fired_at: Option<DateTime<Utc>>,
}

/// The week's draft; the default (nothing shaped) for a week staff have not
/// touched.
pub async fn find(db: &Db, week: IssueWeek) -> Result<IssueDraft, sqlx::Error> {
    let week = week.to_string();
    let (row, order): (Option<DraftRow>, Vec<Uuid>) = with_pool!(db, pool => {
        let row = sqlx::query_as(
            "SELECT subject, preheader, editor_note, section_order, send_at, fired_at FROM issue_drafts
             WHERE week = $1",
        )
        .bind(&week)
        .fetch_optional(pool)
        .await?;
        let order = sqlx::query_scalar(
            "SELECT article_id FROM issue_draft_order WHERE week = $1 ORDER BY position, article_id",
        )
        .bind(&week)
        .fetch_all(pool)
        .await?;
        (row, order)
    });
    Ok(match row {
        Some(row) => IssueDraft {
            subject: row.subject,
            preheader: row.preheader,
            editor_note: row.editor_note,
            section_order: row.section_order.lines().map(str::to_owned).collect(),
            send_at: row.send_at,
            fired_at: row.fired_at,
            order,
        },
        None => IssueDraft {
            order,
            ..IssueDraft::default()
        },
    })
}

/// What staff wrote for the week's issue, in one statement: the subject
/// and preheader (`None`: generated) and the note.
pub async fn save_words(
    db: &Db,
    week: IssueWeek,
    subject: Option<&str>,
    preheader: Option<&str>,
    editor_note: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query(
            "INSERT INTO issue_drafts (week, subject, preheader, editor_note, updated_at, updated_by)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (week) DO UPDATE SET subject = excluded.subject, preheader = excluded.preheader,
                 editor_note = excluded.editor_note, updated_at = excluded.updated_at,
                 updated_by = excluded.updated_by",
        )
        .bind(week.to_string())
        .bind(subject)
        .bind(preheader)
        .bind(editor_note)
        .bind(now)
        .bind(by)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// Gives the week's sections this order (names as staff gave them).
pub async fn save_section_order(
    db: &Db,
    week: IssueWeek,
    order: &[String],
    by: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query(
            "INSERT INTO issue_drafts (week, section_order, updated_at, updated_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT (week) DO UPDATE SET section_order = excluded.section_order,
                 updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(week.to_string())
        .bind(order.join("\n"))
        .bind(now)
        .bind(by)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// Schedules the week's issue to go out at `send_at`, or (`None`) takes it
/// off and leaves it to the weekly schedule.
pub async fn schedule(
    db: &Db,
    week: IssueWeek,
    send_at: Option<DateTime<Utc>>,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query(
            "INSERT INTO issue_drafts (week, send_at, updated_at, updated_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT (week) DO UPDATE SET send_at = excluded.send_at, fired_at = NULL,
                 updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(week.to_string())
        .bind(send_at)
        .bind(now)
        .bind(by)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// The scheduled send that comes first, due or not.
pub async fn next_scheduled(db: &Db) -> Result<Option<(IssueWeek, DateTime<Utc>)>, sqlx::Error> {
    let found: Option<(String, DateTime<Utc>)> = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT week, send_at FROM issue_drafts WHERE send_at IS NOT NULL ORDER BY send_at, week LIMIT 1",
        )
        .fetch_optional(pool)
        .await?
    });
    Ok(found.and_then(|(week, at)| IssueWeek::parse(&week).map(|week| (week, at))))
}

/// Records that the week's send scheduled for `send_at` fired; `false` when
/// staff changed or took it off meanwhile (or another process recorded it).
pub async fn mark_fired(
    db: &Db,
    week: IssueWeek,
    send_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = with_pool!(db, pool => {
        sqlx::query("UPDATE issue_drafts SET send_at = NULL, fired_at = $3 WHERE week = $1 AND send_at = $2")
            .bind(week.to_string())
            .bind(send_at)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(done > 0)
}

/// Gives the week's stories this order, lead first, replacing the one
/// before, in one transaction.
pub async fn set_order(
    db: &Db,
    week: IssueWeek,
    order: &[Uuid],
    by: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let week = week.to_string();
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO issue_drafts (week, updated_at, updated_by) VALUES ($1, $2, $3)
             ON CONFLICT (week) DO UPDATE SET updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(&week)
        .bind(now)
        .bind(by)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM issue_draft_order WHERE week = $1")
            .bind(&week)
            .execute(&mut *tx)
            .await?;
        for (position, id) in order.iter().enumerate() {
            sqlx::query("INSERT INTO issue_draft_order (week, article_id, position) VALUES ($1, $2, $3)")
                .bind(&week)
                .bind(id)
                .bind(i32::try_from(position).unwrap_or(i32::MAX))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    });
    Ok(())
}
