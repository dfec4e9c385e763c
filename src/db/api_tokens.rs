//! The JSON API's tokens: made (by staff, in the staff area or the CLI),
//! listed, revoked, and looked up by hash for each request.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::domain::{ApiScope, ApiToken, ApiTokenName};
use crate::with_pool;

/// A token as lists show it: never the secret, which is not kept.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenRecord {
    pub id: Uuid,
    pub name: String,
    pub scope: ApiScope,
    pub created_at: DateTime<Utc>,
    /// `cli`, or the staff address that made it.
    pub created_by: String,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A token a request presented that is known and not revoked.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActiveToken {
    pub id: Uuid,
    pub scope: ApiScope,
    /// Its name, for the records of what it changed (read with the token:
    /// no second query per request).
    pub name: String,
}

/// Records a new token for `name`; returns its id.
pub async fn create(
    db: &Db,
    name: &ApiTokenName,
    scope: ApiScope,
    token: &ApiToken,
    created_by: &str,
    now: DateTime<Utc>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    with_pool!(db, pool => {
        sqlx::query(
            "INSERT INTO api_tokens (id, name, scope, token_hash, created_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(name.as_str())
        .bind(scope)
        .bind(token.hash())
        .bind(now)
        .bind(created_by)
        .execute(pool)
        .await?;
    });
    Ok(id)
}

/// Every token, newest first, revoked ones included.
pub async fn list(db: &Db) -> Result<Vec<TokenRecord>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT id, name, scope, created_at, created_by, revoked_at FROM api_tokens
             ORDER BY created_at DESC, id DESC",
        )
        .fetch_all(pool)
        .await
    })
}

/// Revokes a token; `false` when there is none with this id or it was
/// revoked already.
pub async fn revoke(db: &Db, id: Uuid, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let changed = with_pool!(db, pool => {
        sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(changed == 1)
}

/// The token behind `token`, if it is known and not revoked.
pub async fn find_active(db: &Db, token: &ApiToken) -> Result<Option<ActiveToken>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as("SELECT id, scope, name FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL")
            .bind(token.hash())
            .fetch_optional(pool)
            .await
    })
}
