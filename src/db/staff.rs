//! Staff accounts.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::domain::SubscriberEmail;
use crate::with_pool;

/// Adds a staff user; `false` when one with this address exists already.
pub async fn add(
    db: &Db,
    email: &SubscriberEmail,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let added = with_pool!(db, pool => {
        sqlx::query(
            "INSERT INTO staff_users (id, email, email_key, password_hash, created_at, password_changed_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (email_key) DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(email.as_str())
        .bind(email.dedupe_key())
        .bind(password_hash)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(added == 1)
}

/// Replaces a staff user's password hash; `false` when there is no such user.
pub async fn set_password(
    db: &Db,
    email: &SubscriberEmail,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let changed = with_pool!(db, pool => {
        sqlx::query("UPDATE staff_users SET password_hash = $2, password_changed_at = $3 WHERE email_key = $1")
            .bind(email.dedupe_key())
            .bind(password_hash)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(changed == 1)
}

pub async fn count(db: &Db) -> Result<i64, sqlx::Error> {
    with_pool!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM staff_users").fetch_one(pool).await)
}
