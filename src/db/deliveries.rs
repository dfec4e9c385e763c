//! The delivery ledger: one row per (issue, reader), `queued → sending →
//! sent`, or `failed` (given up), or `skipped` (the reader left before
//! their copy went out). Claims carry a lease, like transactional mail.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::webhooks::{self, record_webhook};
use crate::db::{Db, lease_claim_sql, requeue_expired_sql, subscribers};
use crate::domain::{DeliveryStatus, SubscriberStatus, WebhookEvent};
use crate::with_pool;

/// A claimed delivery with what the message needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedDelivery {
    pub issue_id: Uuid,
    pub subscriber_id: Uuid,
    pub attempts: i32,
    pub email: String,
    pub name: String,
    pub subscriber_status: SubscriberStatus,
    pub unsubscribe_secret: Vec<u8>,
    /// The reader's language, as stored: their copy is the issue in it.
    pub language: String,
}

/// SQLite claims, then reads the batch by its lease time (its single
/// writer makes the two statements safe); PostgreSQL claims and reads in one
/// statement, so workers on many machines can never read each other's rows.
/// PostgreSQL's claim finds the rows it locked by their place in the table
/// (`ctid`), which the lock keeps still until the update: a quarter less
/// work a claim than looking each up again by its key (500 rows, 4.8 ms →
/// 3.6 ms with migration 0030, BENCHMARKS.md).
const CLAIM: [&str; 2] = [
    lease_claim_sql!(@one "deliveries", "issue_id, subscriber_id", "", ""),
    "WITH claimed AS (
         UPDATE deliveries SET status = 'sending', locked_until = $2, attempts = attempts + 1, claimed_by = $4
         WHERE ctid = ANY(ARRAY(
             SELECT ctid FROM deliveries WHERE status = 'queued' AND next_attempt_at <= $1
             ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED))
         RETURNING issue_id, subscriber_id, attempts)
     SELECT c.issue_id, c.subscriber_id, c.attempts, s.email, s.name, s.status AS subscriber_status,
            s.unsubscribe_secret, s.language
     FROM claimed c JOIN subscribers s ON s.id = c.subscriber_id",
];

/// Returns to the queue the claimed rows whose lease ran out by `now`: the
/// last resort for claims no proof of life covers (see
/// [`crate::db::workers::reap`]). Claimers run it now and then, not before
/// every claim: it reads every row in flight.
pub async fn requeue_expired(db: &Db, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query(requeue_expired_sql!("deliveries"))
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
    })
}

/// Claims up to `limit` due deliveries until `lease_until` for the worker
/// `worker` (the id of its proof of life), with each reader's details. The
/// issues themselves are read once per issue by
/// [`crate::db::issues::rendered`], not once per reader.
pub async fn claim_due(
    db: &Db,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
    worker: Uuid,
) -> Result<Vec<ClaimedDelivery>, sqlx::Error> {
    let sql = db.pick(&CLAIM);
    match db {
        Db::Postgres(pool) => {
            sqlx::query_as(sql)
                .bind(now)
                .bind(lease_until)
                .bind(limit)
                .bind(worker)
                .fetch_all(pool)
                .await
        }
        Db::Sqlite(pool) => {
            let claimed = sqlx::query(sql)
                .bind(now)
                .bind(lease_until)
                .bind(limit)
                .bind(worker)
                .execute(pool)
                .await?;
            if claimed.rows_affected() == 0 {
                return Ok(Vec::new());
            }
            sqlx::query_as(
                "SELECT d.issue_id, d.subscriber_id, d.attempts, s.email, s.name, s.status AS subscriber_status,
                        s.unsubscribe_secret, s.language
                 FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
                 WHERE d.status = 'sending' AND d.locked_until = $1",
            )
            .bind(lease_until)
            .fetch_all(pool)
            .await
        }
    }
}

/// What became of one claimed delivery.
#[derive(Debug, Clone)]
pub enum Settled {
    Sent {
        message_id: String,
        at: DateTime<Utc>,
    },
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    Failed {
        error: String,
        /// The address does not exist: the reader is marked bounced with
        /// this outcome, in the same transaction.
        bounced: bool,
    },
    Skipped {
        reason: String,
    },
    /// Never tried (the worker is stopping): back to the queue as it was.
    Released,
}

/// A claim's outcome, keyed by the claim (the attempt number it made).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub issue_id: Uuid,
    pub subscriber_id: Uuid,
    pub attempts: i32,
    pub settled: Settled,
}

/// The columns an outcome writes.
struct Columns<'a> {
    status: DeliveryStatus,
    next_attempt_at: Option<DateTime<Utc>>,
    error: Option<&'a str>,
    message_id: Option<&'a str>,
    sent_at: Option<DateTime<Utc>>,
    /// 1 for a released claim, whose attempt did not happen.
    unclaimed: i32,
}

impl Outcome {
    fn bounced(&self) -> bool {
        matches!(self.settled, Settled::Failed { bounced: true, .. })
    }

    fn columns(&self) -> Columns<'_> {
        let mut columns = Columns {
            status: DeliveryStatus::Queued,
            next_attempt_at: None,
            error: None,
            message_id: None,
            sent_at: None,
            unclaimed: 0,
        };
        match &self.settled {
            Settled::Sent { message_id, at } => {
                columns.status = DeliveryStatus::Sent;
                columns.message_id = Some(message_id);
                columns.sent_at = Some(*at);
            }
            Settled::Retry { at, error } => {
                columns.next_attempt_at = Some(*at);
                columns.error = Some(error);
            }
            Settled::Failed { error, .. } => {
                columns.status = DeliveryStatus::Failed;
                columns.error = Some(error);
            }
            Settled::Skipped { reason } => {
                columns.status = DeliveryStatus::Skipped;
                columns.error = Some(reason);
            }
            Settled::Released => columns.unclaimed = 1,
        }
        columns
    }
}

/// The outcome of one claim on SQLite, its binds numbered from `$first`:
/// issue, reader, the claim's attempt number, then the six [`Columns`].
fn record_one_sql(first: usize) -> String {
    let [
        issue,
        reader,
        attempts,
        status,
        next_at,
        error,
        message_id,
        sent_at,
        unclaimed,
    ] = std::array::from_fn(|i| format!("${}", first + i));
    format!(
        "UPDATE deliveries
         SET status = {status}, next_attempt_at = COALESCE({next_at}, next_attempt_at),
             last_error = COALESCE({error}, last_error), message_id = COALESCE({message_id}, message_id),
             sent_at = COALESCE({sent_at}, sent_at), attempts = attempts - {unclaimed},
             locked_until = NULL, claimed_by = NULL
         WHERE issue_id = {issue} AND subscriber_id = {reader} AND attempts = {attempts}
           AND (status = 'sending' OR (status = 'queued' AND {status} = 'sent'))"
    )
}

/// Outcomes per query on SQLite. Every query sqlx runs on SQLite is a
/// hand-off to its database thread and back, and one a row made those
/// hand-offs the largest cost of recording a send; so a query carries this
/// many outcome statements, each on its own binds (one hand-off; sqlx
/// prepares them once). A shorter last chunk repeats its last outcome,
/// which changes nothing the second time (its claim is settled), so there
/// is one query text. An `UPDATE … FROM (VALUES …)` of the rows, tried
/// first, took 40 µs a row: SQLite joins the materialised values slowly.
const SQLITE_RECORD_ROWS: usize = 64;

fn sqlite_record_many() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        (0..SQLITE_RECORD_ROWS)
            .map(|row| record_one_sql(row * 9 + 1))
            .collect::<Vec<_>>()
            .join(";\n")
    })
}

const RECORD_MANY: &str = "UPDATE deliveries d
     SET status = u.status, next_attempt_at = COALESCE(u.next_at, d.next_attempt_at),
         last_error = COALESCE(u.error, d.last_error), message_id = COALESCE(u.message_id, d.message_id),
         sent_at = COALESCE(u.sent_at, d.sent_at), attempts = d.attempts - u.unclaimed, locked_until = NULL,
         claimed_by = NULL
     FROM UNNEST($1::uuid[], $2::uuid[], $3::int4[], $4::text[], $5::timestamptz[], $6::text[], $7::text[],
                 $8::timestamptz[], $9::int4[])
          AS u(issue_id, subscriber_id, attempts, status, next_at, error, message_id, sent_at, unclaimed)
     WHERE d.issue_id = u.issue_id AND d.subscriber_id = u.subscriber_id AND d.attempts = u.attempts
       AND (d.status = 'sending' OR (d.status = 'queued' AND u.status = 'sent'))";

/// Records a batch of outcomes in one transaction (one statement on
/// PostgreSQL, and one more for bounced readers). Each is tied to its
/// claim: if the row went back to the queue (its lease ran out, or its
/// worker was taken for dead) and another worker claimed it since, that
/// worker's state stands. A sent copy is recorded on a row that went back
/// but was not claimed again (the same attempt number): it left, and
/// sending it again would be a second copy.
pub async fn record(db: &Db, outcomes: &[Outcome]) -> Result<(), sqlx::Error> {
    if outcomes.is_empty() {
        return Ok(());
    }
    match db {
        Db::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            for chunk in outcomes.chunks(SQLITE_RECORD_ROWS) {
                let last = chunk.last().expect("chunks are never empty");
                let padded = chunk.iter().chain(std::iter::repeat(last)).take(SQLITE_RECORD_ROWS);
                let mut query = sqlx::query(sqlite_record_many());
                for outcome in padded {
                    let c = outcome.columns();
                    query = query
                        .bind(outcome.issue_id)
                        .bind(outcome.subscriber_id)
                        .bind(outcome.attempts)
                        .bind(c.status)
                        .bind(c.next_attempt_at)
                        .bind(c.error)
                        .bind(c.message_id)
                        .bind(c.sent_at)
                        .bind(c.unclaimed);
                }
                query.execute(&mut *tx).await?;
            }
            for outcome in outcomes.iter().filter(|o| o.bounced()) {
                let bounced = sqlx::query(subscribers::MARK_BOUNCED)
                    .bind(outcome.subscriber_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if bounced == 1 {
                    record_webhook!(
                        &mut *tx,
                        WebhookEvent::SubscriberBounced,
                        outcome.subscriber_id,
                        Utc::now()
                    )?;
                }
            }
            tx.commit().await
        }
        Db::Postgres(pool) => {
            let columns: Vec<Columns<'_>> = outcomes.iter().map(Outcome::columns).collect();
            let mut tx = pool.begin().await?;
            sqlx::query(RECORD_MANY)
                .bind(outcomes.iter().map(|o| o.issue_id).collect::<Vec<_>>())
                .bind(outcomes.iter().map(|o| o.subscriber_id).collect::<Vec<_>>())
                .bind(outcomes.iter().map(|o| o.attempts).collect::<Vec<_>>())
                .bind(columns.iter().map(|c| c.status).collect::<Vec<_>>())
                .bind(columns.iter().map(|c| c.next_attempt_at).collect::<Vec<_>>())
                .bind(columns.iter().map(|c| c.error).collect::<Vec<_>>())
                .bind(columns.iter().map(|c| c.message_id).collect::<Vec<_>>())
                .bind(columns.iter().map(|c| c.sent_at).collect::<Vec<_>>())
                .bind(columns.iter().map(|c| c.unclaimed).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await?;
            let bounced: Vec<Uuid> = outcomes
                .iter()
                .filter(|o| o.bounced())
                .map(|o| o.subscriber_id)
                .collect();
            if !bounced.is_empty() {
                let bounced: Vec<Uuid> = sqlx::query_scalar(subscribers::MARK_BOUNCED_MANY)
                    .bind(bounced)
                    .fetch_all(&mut *tx)
                    .await?;
                if !bounced.is_empty() {
                    sqlx::query(webhooks::RECORD_FOR_SUBSCRIBERS_POSTGRES)
                        .bind(WebhookEvent::SubscriberBounced.as_str())
                        .bind(Utc::now())
                        .bind(bounced)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await
        }
    }
}

/// The status of the delivery to the reader with this address, for tests
/// with one issue.
pub async fn status_for(db: &Db, email_key: &str) -> Result<Option<DeliveryStatus>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_scalar(
            "SELECT d.status FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id WHERE s.email_key = $1",
        )
        .bind(email_key)
        .fetch_optional(pool)
        .await
    })
}
