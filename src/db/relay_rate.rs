//! Send slots of a relay, shared by every worker process: the row of a
//! relay holds its next free slot, and [`reserve`] takes a few slots at
//! once by moving it forward in one atomic statement. Slots are spaced one
//! interval apart whoever takes them, so all workers together keep to the
//! relay's rate (see `delivery::rate` for how a worker paces itself).
//!
//! Time is microseconds since the Unix epoch on the database's clock, read
//! inside the statement: workers on machines whose clocks disagree still
//! share one timeline, and a worker only ever uses the difference between
//! a slot and the `now` the same statement returned.

use crate::db::Db;
use crate::with_pool;

/// Slots taken by one [`reserve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// The first slot; the others follow one interval apart.
    pub first_us: i64,
    /// The database's clock as the statement finished, to measure the
    /// slots against.
    pub now_us: i64,
}

/// One upsert, so the first worker of a new relay needs no set-up and two
/// workers racing on the row are serialised by it: PostgreSQL locks the
/// conflicting row and evaluates the update on its latest version, SQLite
/// holds its write lock for the whole statement. The next free slot never
/// lies more than `$3` behind now, so slots left unused during a quiet
/// period are forgotten instead of adding up to a burst.
///
/// Binds: `$1` relay, `$2` slots, `$3` how far behind now the first slot
/// may lie (µs), `$4` interval (µs).
const RESERVE: [&str; 2] = [
    // SQLite: 'now' is fixed for the whole statement (millisecond resolution).
    "INSERT INTO relay_send_slots (relay, next_slot_us)
     VALUES ($1, CAST(unixepoch('subsec') * 1000000 AS INTEGER) - $3 + $2 * $4)
     ON CONFLICT (relay) DO UPDATE
     SET next_slot_us = MAX(next_slot_us, CAST(unixepoch('subsec') * 1000000 AS INTEGER) - $3) + $2 * $4
     RETURNING next_slot_us - $2 * $4, CAST(unixepoch('subsec') * 1000000 AS INTEGER)",
    // PostgreSQL: clock_timestamp(), not now(): the transaction's start
    // would be stale by however long the statement waited for the row lock.
    // The `now` returned is read after the update's, never before it, so a
    // worker can only think its slots later than they are.
    // The binds are typed (`$2::BIGINT * $4::BIGINT`): without a type,
    // preparing it alone (tests/api/schema.rs) finds `unknown * unknown`.
    "INSERT INTO relay_send_slots AS r (relay, next_slot_us)
     VALUES ($1, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT - $3::BIGINT + $2::BIGINT * $4::BIGINT)
     ON CONFLICT (relay) DO UPDATE
     SET next_slot_us = GREATEST(r.next_slot_us, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT - $3::BIGINT)
                        + $2::BIGINT * $4::BIGINT
     RETURNING r.next_slot_us - $2::BIGINT * $4::BIGINT, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT",
];

/// Reserves `slots` consecutive send slots of `relay`, `interval_us` apart,
/// the first no earlier than `behind_us` before now.
pub async fn reserve(
    db: &Db,
    relay: &str,
    slots: i64,
    interval_us: i64,
    behind_us: i64,
) -> Result<Reservation, sqlx::Error> {
    let sql = db.pick(&RESERVE);
    let (first_us, now_us): (i64, i64) = with_pool!(db, pool => {
        sqlx::query_as(sql)
            .bind(relay)
            .bind(slots)
            .bind(behind_us)
            .bind(interval_us)
            .fetch_one(pool)
            .await?
    });
    Ok(Reservation { first_us, now_us })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten seconds between slots: the test's own statements take far less,
    /// so "contiguous" and "not moved to now" cannot be told apart by luck.
    const INTERVAL: i64 = 10_000_000;
    const BEHIND: i64 = 2 * INTERVAL;

    async fn database() -> Db {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        let db = Db::Sqlite(pool);
        db.migrate().await.unwrap();
        db
    }

    #[tokio::test]
    async fn reservations_are_contiguous_and_a_quiet_relay_starts_at_most_the_burst_behind_now() {
        let db = database().await;
        // A relay never used: its first slot is as far behind now as allowed.
        let first = reserve(&db, "smtp://a:25", 3, INTERVAL, BEHIND).await.unwrap();
        assert_eq!(first.first_us, first.now_us - BEHIND);
        // The next reservation starts where the last one ended, whoever makes it.
        let second = reserve(&db, "smtp://a:25", 5, INTERVAL, BEHIND).await.unwrap();
        assert_eq!(second.first_us, first.first_us + 3 * INTERVAL);
        let third = reserve(&db, "smtp://a:25", 1, INTERVAL, BEHIND).await.unwrap();
        assert_eq!(third.first_us, second.first_us + 5 * INTERVAL);
        // Another relay has slots of its own.
        let other = reserve(&db, "smtp://b:25", 1, INTERVAL, BEHIND).await.unwrap();
        assert_eq!(other.first_us, other.now_us - BEHIND);

        // An hour of silence: the slots it left unused are not owed.
        with_pool!(&db, pool => {
            sqlx::query("UPDATE relay_send_slots SET next_slot_us = next_slot_us - 3600000000 WHERE relay = 'smtp://a:25'")
                .execute(pool)
                .await
                .map(drop)
                .unwrap()
        });
        let after_quiet = reserve(&db, "smtp://a:25", 2, INTERVAL, BEHIND).await.unwrap();
        assert_eq!(after_quiet.first_us, after_quiet.now_us - BEHIND);
        let next = reserve(&db, "smtp://a:25", 1, INTERVAL, BEHIND).await.unwrap();
        assert_eq!(next.first_us, after_quiet.first_us + 2 * INTERVAL);
    }
}
