//! Aggregate click counts (`tracking.clicks = "aggregate"`): an issue's
//! story links and how many times people followed each. Nothing here knows
//! who clicked: the rows are per issue and link, and a click only adds one.

use crate::db::Db;
use crate::domain::IssueWeek;
use crate::with_pool;

/// One story link of an issue and its count.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LinkClicks {
    pub position: i32,
    pub url: String,
    pub title: String,
    pub clicks: i64,
}

/// Where the story link at `position` of `week`'s issue leads; `None`
/// for a link no issue has.
pub async fn target(db: &Db, week: IssueWeek, position: i32) -> Result<Option<String>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_scalar(
            "SELECT l.url FROM issue_links l JOIN issues i ON i.id = l.issue_id
             WHERE i.week = $1 AND l.position = $2",
        )
        .bind(week.to_string())
        .bind(position)
        .fetch_optional(pool)
        .await
    })
}

/// Counts one click on the story link at `position` of `week`'s issue.
pub async fn count(db: &Db, week: IssueWeek, position: i32) -> Result<(), sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query(
            "UPDATE issue_links SET clicks = clicks + 1
             WHERE position = $2 AND issue_id = (SELECT id FROM issues WHERE week = $1)",
        )
        .bind(week.to_string())
        .bind(position)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// Every counted story link of `week`'s issue, in the digest's order.
pub async fn for_issue(db: &Db, week: IssueWeek) -> Result<Vec<LinkClicks>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT l.position, l.url, l.title, l.clicks FROM issue_links l JOIN issues i ON i.id = l.issue_id
             WHERE i.week = $1 ORDER BY l.position",
        )
        .bind(week.to_string())
        .fetch_all(pool)
        .await
    })
}
