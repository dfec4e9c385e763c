//! Idempotency keys for staff forms that must act once: a double click or a
//! resubmitted form carries the same key, and only the first one acts.

use chrono::{DateTime, Utc};

use crate::db::Db;
use crate::with_pool;

/// Records `key`; `true` the first time, `false` for every repeat.
pub async fn first_use(db: &Db, key: &str, action: &str, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let inserted = with_pool!(db, pool => {
        sqlx::query(
            "INSERT INTO admin_submissions (idempotency_key, action, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(key)
        .bind(action)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(inserted == 1)
}
