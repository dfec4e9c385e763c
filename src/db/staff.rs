//! Staff accounts.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::domain::SubscriberEmail;
use crate::with_pool;

/// The one spelling of a staff address that the account lookup, the
/// uniqueness of accounts and the login limits all use: `Staff@Example.org`
/// and `staff@ｅxample.org` (fullwidth letters, mapped by IDNA) are one
/// account, for the lookup as for the limits.
pub fn account_key(email: &SubscriberEmail) -> String {
    email.dedupe_key()
}

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
        .bind(account_key(email))
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
        let mut tx = pool.begin().await?;
        let changed = sqlx::query("UPDATE staff_users SET password_hash = $2, password_changed_at = $3 WHERE email_key = $1")
            .bind(account_key(email))
            .bind(password_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM staff_sessions WHERE staff_id IN (SELECT id FROM staff_users WHERE email_key = $1)")
            .bind(account_key(email))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        changed
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
            .bind(account_key(email))
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

/// Replaces a staff user's password hash by id, and ends every session of
/// theirs but `keep` (the one that made the change).
pub async fn set_password_by_id(
    db: &Db,
    id: Uuid,
    password_hash: &str,
    now: DateTime<Utc>,
    keep: &SessionKey,
) -> Result<(), sqlx::Error> {
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query("UPDATE staff_users SET password_hash = $2, password_changed_at = $3 WHERE id = $1")
            .bind(id)
            .bind(password_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM staff_sessions WHERE staff_id = $1 AND id_hash <> $2")
            .bind(id)
            .bind(keep.0.as_slice())
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    })
}

/// A staff session as the database knows it: the SHA-256 of the secret
/// the cookie carries, so a copy of the table opens no session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKey(pub [u8; 32]);

/// Records a session of `staff_id` that ends at `expires_at` whatever
/// happens, and forgets sessions that have ended.
pub async fn start_session(
    db: &Db,
    key: &SessionKey,
    staff_id: Uuid,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query("DELETE FROM staff_sessions WHERE expires_at <= $1").bind(now).execute(pool).await?;
        sqlx::query("INSERT INTO staff_sessions (id_hash, staff_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(key.0.as_slice())
            .bind(staff_id)
            .bind(now)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(|_| ())
    })
}

/// The staff user of a session that has not ended by `now`.
pub async fn session_user(db: &Db, key: &SessionKey, now: DateTime<Utc>) -> Result<Option<StaffUser>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT u.id, u.email, u.password_hash, u.password_changed_at
             FROM staff_sessions s JOIN staff_users u ON u.id = s.staff_id
             WHERE s.id_hash = $1 AND s.expires_at > $2",
        )
        .bind(key.0.as_slice())
        .bind(now)
        .fetch_optional(pool)
        .await
    })
}

/// Ends one session (logout); harmless when it has ended already.
pub async fn end_session(db: &Db, key: &SessionKey) -> Result<(), sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query("DELETE FROM staff_sessions WHERE id_hash = $1")
            .bind(key.0.as_slice())
            .execute(pool)
            .await
            .map(|_| ())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_an_address_has_one_account_key() {
        let key = |raw: &str| account_key(&SubscriberEmail::parse(raw, crate::domain::AddressPolicy::LOOKUP).unwrap());
        assert_eq!(key("staff@ｅxample.org"), "staff@example.org");
        assert_eq!(key("Staff@EXAMPLE.org"), "staff@example.org");
        assert_eq!(key(" staff@ｅｘａｍｐｌｅ.ｏｒｇ "), "staff@example.org");
    }
}
