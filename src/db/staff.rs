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

/// A staff user as login and sessions need them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StaffUser {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub password_changed_at: DateTime<Utc>,
}

pub async fn find_by_email(db: &Db, email: &SubscriberEmail) -> Result<Option<StaffUser>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as("SELECT id, email, password_hash, password_changed_at FROM staff_users WHERE email_key = $1")
            .bind(email.dedupe_key())
            .fetch_optional(pool)
            .await
    })
}

pub async fn find_by_id(db: &Db, id: Uuid) -> Result<Option<StaffUser>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as("SELECT id, email, password_hash, password_changed_at FROM staff_users WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await
    })
}

/// Replaces a staff user's password hash by id.
pub async fn set_password_by_id(db: &Db, id: Uuid, password_hash: &str, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query("UPDATE staff_users SET password_hash = $2, password_changed_at = $3 WHERE id = $1")
            .bind(id)
            .bind(password_hash)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
    })
}
