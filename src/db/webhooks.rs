//! Outbound webhooks: the endpoints staff register, the events written in
//! the transactions that cause them, and the ledger of deliveries (one row
//! per event and endpoint) the webhook sender claims with a lease, like the
//! mail deliveries.
//!
//! An event is written by one `INSERT … SELECT` in the transaction of the
//! change it reports (see [`record_webhook!`]), and only while an enabled
//! endpoint wants its kind, so a list nobody listens to pays one index
//! look-up. The sender then fans each event out to the endpoints that want
//! it ([`fan_out`]) and claims the deliveries that are due ([`claim_due`]).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::{Db, lease_claim_sql, requeue_expired_sql};
use crate::domain::{WebhookDeliveryStatus, WebhookEndpointStatus, WebhookEvent, WebhookOutcome};
use crate::with_pool;

/// Whether an enabled endpoint wants events of kind `$2`.
macro_rules! wanted_sql {
    ($kind:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM webhook_endpoint_events w JOIN webhook_endpoints p ON p.id = w.endpoint_id
                     WHERE w.event = ",
            $kind,
            " AND p.status = 'enabled')"
        )
    };
}
pub(crate) use wanted_sql;

/// Records event `$2` (a [`WebhookEvent`] word) about reader `$4` as `$1`
/// at `$3`, with their address as it is now. Run it in the transaction of
/// the change, after the change, and only when the change happened.
pub(crate) const RECORD_FOR_SUBSCRIBER: &str = concat!(
    "INSERT INTO webhook_events (id, kind, at, subscriber_id, email)
     SELECT $1, $2, $3, s.id, s.email FROM subscribers s WHERE s.id = $4 AND ",
    wanted_sql!("$2")
);

/// [`RECORD_FOR_SUBSCRIBER`] for several readers (`$4` an array;
/// PostgreSQL). The ids are made by the database.
pub(crate) const RECORD_FOR_SUBSCRIBERS_POSTGRES: &str = concat!(
    "INSERT INTO webhook_events (id, kind, at, subscriber_id, email)
     SELECT gen_random_uuid(), $1, $2, s.id, s.email FROM subscribers s WHERE s.id = ANY($3) AND ",
    wanted_sql!("$1")
);

/// Records `issue.sent` for issue `$3` as `$1` at `$2`.
pub(crate) const RECORD_FOR_ISSUE: &str = concat!(
    "INSERT INTO webhook_events (id, kind, at, issue_id, week)
     SELECT $1, 'issue.sent', $2, i.id, i.week FROM issues i WHERE i.id = $3 AND ",
    wanted_sql!("'issue.sent'")
);

/// Records webhook event `$event` about reader `$subscriber` on `$conn`
/// (a transaction), at `$now`.
macro_rules! record_webhook {
    ($conn:expr, $event:expr, $subscriber:expr, $now:expr) => {
        sqlx::query($crate::db::webhooks::RECORD_FOR_SUBSCRIBER)
            .bind(uuid::Uuid::now_v7())
            .bind($crate::domain::WebhookEvent::as_str($event))
            .bind($now)
            .bind($subscriber)
            .execute($conn)
            .await
    };
}
pub(crate) use record_webhook;

// ---------------------------------------------------------------------------
// Endpoints.

/// An endpoint as staff and the API see it (never its secret).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    pub status: WebhookEndpointStatus,
    pub events: Vec<WebhookEvent>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
}

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: Uuid,
    url: String,
    status: WebhookEndpointStatus,
    created_at: DateTime<Utc>,
    created_by: String,
    disabled_at: Option<DateTime<Utc>>,
    disabled_reason: Option<String>,
}

/// Registers an endpoint with its secret (`whsec_…`) and events.
pub async fn create(
    db: &Db,
    url: &str,
    secret: &str,
    events: &[WebhookEvent],
    by: &str,
    now: DateTime<Utc>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, url, secret, status, created_at, created_by)
             VALUES ($1, $2, $3, 'enabled', $4, $5)",
        )
        .bind(id)
        .bind(url)
        .bind(secret)
        .bind(now)
        .bind(by)
        .execute(&mut *tx)
        .await?;
        for event in events {
            sqlx::query("INSERT INTO webhook_endpoint_events (endpoint_id, event) VALUES ($1, $2)")
                .bind(id)
                .bind(event.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    });
    Ok(id)
}

const ENDPOINT_COLUMNS: &str =
    "SELECT id, url, status, created_at, created_by, disabled_at, disabled_reason FROM webhook_endpoints";

/// Every endpoint, oldest first.
pub async fn list(db: &Db) -> Result<Vec<Endpoint>, sqlx::Error> {
    let (rows, events): (Vec<EndpointRow>, Vec<(Uuid, String)>) = with_pool!(db, pool => {
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!("{ENDPOINT_COLUMNS} ORDER BY created_at, id")))
            .fetch_all(pool)
            .await?;
        let events = sqlx::query_as("SELECT endpoint_id, event FROM webhook_endpoint_events")
            .fetch_all(pool)
            .await?;
        (rows, events)
    });
    Ok(rows.into_iter().map(|row| endpoint(row, &events)).collect())
}

/// One endpoint.
pub async fn find(db: &Db, id: Uuid) -> Result<Option<Endpoint>, sqlx::Error> {
    let (row, events): (Option<EndpointRow>, Vec<(Uuid, String)>) = with_pool!(db, pool => {
        let row = sqlx::query_as(sqlx::AssertSqlSafe(format!("{ENDPOINT_COLUMNS} WHERE id = $1")))
            .bind(id)
            .fetch_optional(pool)
            .await?;
        let events = sqlx::query_as("SELECT endpoint_id, event FROM webhook_endpoint_events WHERE endpoint_id = $1")
            .bind(id)
            .fetch_all(pool)
            .await?;
        (row, events)
    });
    Ok(row.map(|row| endpoint(row, &events)))
}

fn endpoint(row: EndpointRow, events: &[(Uuid, String)]) -> Endpoint {
    let wanted: Vec<WebhookEvent> = WebhookEvent::ALL
        .into_iter()
        .filter(|e| events.iter().any(|(id, word)| *id == row.id && word == e.as_str()))
        .collect();
    Endpoint {
        id: row.id,
        url: row.url,
        status: row.status,
        events: wanted,
        created_at: row.created_at,
        created_by: row.created_by,
        disabled_at: row.disabled_at,
        disabled_reason: row.disabled_reason,
    }
}

/// Disables an endpoint (`reason` says why) or enables it again; `false`
/// when there is no such endpoint or it already was so. Deliveries still
/// queued for a disabled endpoint are given up when claimed.
pub async fn set_status(
    db: &Db,
    id: Uuid,
    status: WebhookEndpointStatus,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let disabled = status == WebhookEndpointStatus::Disabled;
    let changed = with_pool!(db, pool => {
        sqlx::query(
            "UPDATE webhook_endpoints SET status = $2, disabled_at = $3, disabled_reason = $4
             WHERE id = $1 AND status <> $2",
        )
        .bind(id)
        .bind(status)
        .bind(disabled.then_some(now))
        .bind(reason.filter(|_| disabled))
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(changed == 1)
}

/// Deletes an endpoint with its deliveries and attempts; `false` when there
/// was none.
pub async fn delete(db: &Db, id: Uuid) -> Result<bool, sqlx::Error> {
    let deleted = with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query("DELETE FROM webhook_attempts WHERE endpoint_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM webhook_endpoint_events WHERE endpoint_id = $1").bind(id).execute(&mut *tx).await?;
        let deleted = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        deleted
    });
    Ok(deleted == 1)
}

// ---------------------------------------------------------------------------
// The sender's side: fan-out, claim, outcome.

/// Makes a queued delivery, due at `$1` and given up after `$2`, for every
/// enabled endpoint that wants each event not fanned out yet; then marks
/// those events fanned out. SQLite has one writer, so its two statements
/// in one transaction see the same events; PostgreSQL marks and fans out
/// the same rows in one statement (an event committed between two
/// statements would be marked without its deliveries).
const FAN_OUT: [&[&str]; 2] = [
    &[
        "INSERT INTO webhook_deliveries (event_id, endpoint_id, status, attempts, next_attempt_at, give_up_at, created_at)
         SELECT e.id, w.endpoint_id, 'queued', 0, $1, $2, $1
         FROM webhook_events e JOIN webhook_endpoint_events w ON w.event = e.kind
         JOIN webhook_endpoints p ON p.id = w.endpoint_id
         WHERE e.fanned_out_at IS NULL AND p.status = 'enabled'
         ON CONFLICT DO NOTHING",
        "UPDATE webhook_events SET fanned_out_at = $1 WHERE fanned_out_at IS NULL",
    ],
    &["WITH e AS (
           UPDATE webhook_events SET fanned_out_at = $1 WHERE id IN (
               SELECT id FROM webhook_events WHERE fanned_out_at IS NULL ORDER BY at LIMIT 1000 FOR UPDATE SKIP LOCKED
           ) RETURNING id, kind
       )
       INSERT INTO webhook_deliveries (event_id, endpoint_id, status, attempts, next_attempt_at, give_up_at, created_at)
       SELECT e.id, w.endpoint_id, 'queued', 0, $1, $2, $1
       FROM e JOIN webhook_endpoint_events w ON w.event = e.kind JOIN webhook_endpoints p ON p.id = w.endpoint_id
       WHERE p.status = 'enabled'
       ON CONFLICT DO NOTHING"],
];

/// Queues the deliveries of new events (see [`FAN_OUT`]); returns how many.
pub async fn fan_out(db: &Db, now: DateTime<Utc>, give_up_at: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let statements = match db {
        Db::Sqlite(_) => FAN_OUT[0],
        Db::Postgres(_) => FAN_OUT[1],
    };
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let mut queued = None;
        for statement in statements {
            let done = sqlx::query(*statement).bind(now).bind(give_up_at).execute(&mut *tx).await?;
            queued.get_or_insert(done.rows_affected());
        }
        tx.commit().await?;
        Ok(queued.unwrap_or(0))
    })
}

const CLAIM: [&str; 2] = lease_claim_sql!(
    "webhook_deliveries",
    "event_id, endpoint_id",
    "RETURNING event_id, endpoint_id, attempts"
);

/// A delivery claimed by a sender, with what it needs to send it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub event_id: Uuid,
    pub endpoint_id: Uuid,
    pub attempts: i32,
    pub kind: WebhookEvent,
    pub at: DateTime<Utc>,
    pub subscriber_id: Option<Uuid>,
    pub email: Option<String>,
    pub issue_id: Option<Uuid>,
    pub week: Option<String>,
    pub url: String,
    pub secret: String,
    pub endpoint_status: WebhookEndpointStatus,
    pub give_up_at: DateTime<Utc>,
}

/// Claims up to `limit` due deliveries until `lease_until` for `sender`.
/// Deliveries whose lease ran out (their sender died) go back first.
pub async fn claim_due(
    db: &Db,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
    sender: Uuid,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let sql = db.pick(&CLAIM);
    with_pool!(db, pool => {
        sqlx::query(requeue_expired_sql!("webhook_deliveries")).bind(now).execute(pool).await?;
        let keys: Vec<(Uuid, Uuid, i32)> =
            sqlx::query_as(sql).bind(now).bind(lease_until).bind(limit).bind(sender).fetch_all(pool).await?;
        let mut claimed = Vec::with_capacity(keys.len());
        for (event_id, endpoint_id, _) in keys {
            let row: Option<Claimed> = sqlx::query_as(
                "SELECT d.event_id, d.endpoint_id, d.attempts, e.kind, e.at, e.subscriber_id, e.email, e.issue_id,
                        e.week, p.url, p.secret, p.status AS endpoint_status, d.give_up_at
                 FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
                 JOIN webhook_endpoints p ON p.id = d.endpoint_id
                 WHERE d.event_id = $1 AND d.endpoint_id = $2",
            )
            .bind(event_id)
            .bind(endpoint_id)
            .fetch_optional(pool)
            .await?;
            claimed.extend(row);
        }
        Ok(claimed)
    })
}

/// What one attempt came to, for [`record_attempt`].
#[derive(Debug, Clone)]
pub struct Attempted<'a> {
    pub event_id: Uuid,
    pub endpoint_id: Uuid,
    /// The attempt's number (the claim's `attempts`).
    pub attempt: i32,
    pub outcome: WebhookOutcome,
    pub status_code: Option<u16>,
    pub error: Option<&'a str>,
    /// For [`WebhookOutcome::Retry`]: when.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Records an attempt and settles its delivery in one transaction: done,
/// back in the queue, or given up; a 410 also disables the endpoint. Only
/// the claim that made the attempt may settle it (if its lease ran out and
/// another sender claimed it since, that sender's state stands); the
/// attempt is recorded either way, since it happened.
pub async fn record_attempt(db: &Db, a: &Attempted<'_>, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let status = match a.outcome {
        WebhookOutcome::Delivered => WebhookDeliveryStatus::Delivered,
        WebhookOutcome::Retry => WebhookDeliveryStatus::Queued,
        WebhookOutcome::Failed | WebhookOutcome::Disabled => WebhookDeliveryStatus::Failed,
    };
    let code = a.status_code.map(i32::from);
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO webhook_attempts (id, event_id, endpoint_id, attempt, at, outcome, status_code, error,
                                           next_attempt_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(Uuid::now_v7())
        .bind(a.event_id)
        .bind(a.endpoint_id)
        .bind(a.attempt)
        .bind(now)
        .bind(a.outcome)
        .bind(code)
        .bind(a.error)
        .bind(a.next_attempt_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE webhook_deliveries
             SET status = $4, next_attempt_at = COALESCE($5, next_attempt_at), last_status_code = $6,
                 last_error = $7, delivered_at = $8, locked_until = NULL, claimed_by = NULL
             WHERE event_id = $1 AND endpoint_id = $2 AND attempts = $3 AND status = 'sending'",
        )
        .bind(a.event_id)
        .bind(a.endpoint_id)
        .bind(a.attempt)
        .bind(status)
        .bind(a.next_attempt_at)
        .bind(code)
        .bind(a.error)
        .bind((a.outcome == WebhookOutcome::Delivered).then_some(now))
        .execute(&mut *tx)
        .await?;
        if a.outcome == WebhookOutcome::Disabled {
            sqlx::query(
                "UPDATE webhook_endpoints SET status = 'disabled', disabled_at = $2,
                        disabled_reason = 'the endpoint answered 410 Gone'
                 WHERE id = $1 AND status = 'enabled'",
            )
            .bind(a.endpoint_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    })
}

/// Puts the delivery of `event_id` to `endpoint_id` back in the queue, due
/// now, with another day of retries; `false` when there is no such
/// delivery or it is being sent right now.
pub async fn resend(
    db: &Db,
    endpoint_id: Uuid,
    event_id: Uuid,
    now: DateTime<Utc>,
    give_up_at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let changed = with_pool!(db, pool => {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'queued', next_attempt_at = $3, give_up_at = $4
             WHERE event_id = $1 AND endpoint_id = $2 AND status <> 'sending'",
        )
        .bind(event_id)
        .bind(endpoint_id)
        .bind(now)
        .bind(give_up_at)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(changed == 1)
}

/// One attempt as the staff area shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Attempt {
    pub event_id: Uuid,
    pub kind: WebhookEvent,
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub outcome: WebhookOutcome,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// An endpoint's latest attempts, newest first.
pub async fn recent_attempts(db: &Db, endpoint_id: Uuid, limit: i64) -> Result<Vec<Attempt>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT a.event_id, e.kind, a.attempt, a.at, a.outcome, a.status_code, a.error, a.next_attempt_at
             FROM webhook_attempts a JOIN webhook_events e ON e.id = a.event_id
             WHERE a.endpoint_id = $1 ORDER BY a.at DESC, a.id DESC LIMIT $2",
        )
        .bind(endpoint_id)
        .bind(limit)
        .fetch_all(pool)
        .await
    })
}

/// Attempts by outcome, for `/metrics`.
pub async fn attempts_by_outcome(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as("SELECT outcome, COUNT(*) FROM webhook_attempts GROUP BY outcome").fetch_all(pool).await
    })
}

/// Deliveries by status, for `/metrics`.
pub async fn deliveries_by_status(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as("SELECT status, COUNT(*) FROM webhook_deliveries GROUP BY status").fetch_all(pool).await
    })
}
