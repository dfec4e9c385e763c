//! Feed imports staff started from the admin: one row each, written by the
//! background task that fetches, parses and saves the feed, read by the
//! page that shows its progress and result.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::domain::{FeedImportStatus, ImportReport};
use crate::with_pool;

/// An import as its page shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FeedImport {
    pub id: Uuid,
    pub url: String,
    pub requested_by: String,
    pub status: FeedImportStatus,
    pub entries_total: Option<i32>,
    pub entries_done: i32,
    pub added: i32,
    pub updated: i32,
    pub unchanged: i32,
    /// Entries staff had edited, left as they made them.
    pub kept_staff_edit: i32,
    /// New articles without a usable date, given the import time.
    pub dated_at_import: i32,
    pub rejected: i32,
    /// The first rejected entries, one per line, with their reasons.
    pub rejections: String,
    /// How many warnings the import had, and the first of them, one per
    /// line (entries imported with something staff should know).
    pub warned: i32,
    pub warnings: String,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Rejected entries kept for the page; the count has them all.
pub const REJECTIONS_KEPT: usize = 20;

/// Warnings kept for the page; the count has them all.
pub const WARNINGS_KEPT: usize = 20;

/// The first `kept` of `lines`, one per line (a line break in one becomes a space).
fn first_lines(lines: impl Iterator<Item = String>, kept: usize) -> String {
    lines
        .take(kept)
        .map(|line| line.replace(['\r', '\n'], " "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub async fn create(db: &Db, url: &str, requested_by: &str, now: DateTime<Utc>) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    with_pool!(db, pool => {
        sqlx::query(
            "INSERT INTO feed_imports (id, url, requested_by, status, created_at, updated_at)
             VALUES ($1, $2, $3, 'queued', $4, $4)",
        )
        .bind(id)
        .bind(url)
        .bind(requested_by)
        .bind(now)
        .execute(pool)
        .await?;
    });
    Ok(id)
}

pub async fn set_status(db: &Db, id: Uuid, status: FeedImportStatus, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query("UPDATE feed_imports SET status = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(status)
            .bind(now)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Entries saved so far, of `total`.
pub async fn progress(db: &Db, id: Uuid, done: usize, total: usize, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query("UPDATE feed_imports SET entries_done = $2, entries_total = $3, updated_at = $4 WHERE id = $1")
            .bind(id)
            .bind(count(done))
            .bind(count(total))
            .bind(now)
            .execute(pool)
            .await?;
    });
    Ok(())
}

pub async fn finish(db: &Db, id: Uuid, report: &ImportReport, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let rejections = first_lines(
        report.rejected.iter().map(|r| format!("{}: {}", r.entry, r.reason)),
        REJECTIONS_KEPT,
    );
    let warnings = first_lines(
        report.warnings.iter().map(|w| format!("{}: {}", w.entry, w.message)),
        WARNINGS_KEPT,
    );
    with_pool!(db, pool => {
        sqlx::query(
            "UPDATE feed_imports SET status = 'done', added = $2, updated = $3, unchanged = $4, rejected = $5,
                    rejections = $6, kept_staff_edit = $7, dated_at_import = $8, warned = $9, warnings = $10,
                    updated_at = $11, finished_at = $11
             WHERE id = $1",
        )
        .bind(id)
        .bind(count(report.added))
        .bind(count(report.updated))
        .bind(count(report.unchanged))
        .bind(count(report.rejected.len()))
        .bind(rejections)
        .bind(count(report.kept_staff_edit))
        .bind(count(report.dated_at_import))
        .bind(count(report.warnings.len()))
        .bind(warnings)
        .bind(now)
        .execute(pool)
        .await?;
    });
    Ok(())
}

pub async fn fail(db: &Db, id: Uuid, error: &str, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query(
            "UPDATE feed_imports SET status = 'failed', error = $2, updated_at = $3, finished_at = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(error)
        .bind(now)
        .execute(pool)
        .await?;
    });
    Ok(())
}

pub async fn find(db: &Db, id: Uuid) -> Result<Option<FeedImport>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT id, url, requested_by, status, entries_total, entries_done, added, updated, unchanged,
                    kept_staff_edit, dated_at_import, rejected, rejections, warned, warnings, error, created_at,
                    updated_at, finished_at
             FROM feed_imports WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await
    })
}
